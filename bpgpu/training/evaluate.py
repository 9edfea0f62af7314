"""Scoring a network: the loss and the correct count, in chunks, compiled where the device
compiles, read once."""

from __future__ import annotations

import functools
import weakref

from .. import _host
from ..network import labels_of
from . import compiled as shared


def evaluate_arrays(net, X, T, classify, chunk=8192):
    """Loss and accuracy of ``net`` on device arrays, in chunks that bound the memory used; one
    read from the device at the end, and one compiled call per chunk where the device compiles."""
    metrics, totals, n = _chunk_metrics(net), None, X.shape[0]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)  # the standard leaves out-of-bounds slices unspecified
        m = metrics(net.params, X[start:stop, ...], T[start:stop, ...])
        totals = m if totals is None else totals + m
    loss_sum, correct = net.backend.to_host(totals).tolist()
    logs = {"loss": loss_sum / n}
    if classify:
        logs["accuracy"] = correct / n
    return logs


def _chunk_metrics(net):
    """:func:`chunk_totals` for ``net``, compiled where its device compiles (each operation run
    on its own would be compiled on its own, at a far higher cost), once for every network of its
    structure (:mod:`bpgpu.training.compiled`)."""
    if "step" not in net.backend.compile_modes:
        return functools.partial(chunk_totals, net)
    if not shared.shares(net):  # a subclass: its own, held as long as the network lives
        if net not in _OWN:  # the function holds the network weakly: no leak
            _OWN[net] = net.backend.compile(functools.partial(chunk_totals, weakref.proxy(net)))
        return _OWN[net]
    return shared.get(("metrics", shared.structure_key(net)), lambda: net.backend.compile(
        functools.partial(chunk_totals, shared.shell(net))))


_OWN = weakref.WeakKeyDictionary()


def chunk_totals(net, params, X, T):
    """The summed loss and the count of correct answers on (X, T) under ``params``, as one
    device vector."""
    xp = net.xp
    out = net.forward_pass(X, params)[-1]
    correct = xp.astype(count_correct(xp, out, T), net.dtype)
    return xp.stack([net.loss.value(out, T) * X.shape[0], correct])


def evaluate(net, X, y):
    """``{"loss": ..., "accuracy": ...}`` of ``net`` on (X, y) (accuracy for classification)."""
    with net.backend.context():
        Xd = net.device_inputs(X)
        Td = net.device_targets(y, Xd.shape[0])
        return evaluate_arrays(net, Xd, Td, is_classification(net, y))




def count_correct(xp, out, T):
    """How many rows of ``out`` pick the same class as the targets (a 0-d device array)."""
    return xp.sum(xp.astype(labels_of(xp, out) == labels_of(xp, T), xp.int32))


def is_classification(net, y):
    """Whether accuracy means something: a probability output, or targets given as labels."""
    shape = getattr(y, "shape", None)
    ndim = len(shape) if shape is not None else len(_host.host_array(y, "y").shape)
    return net.output.name in ("softmax", "logistic") or (ndim == 1 and net.sizes[-1] > 1)
