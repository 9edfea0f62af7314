"""Loss functions, each averaged over the examples of a batch so that η means the same at every
batch size.

``value(y, t)`` is the batch-mean loss (a 0-d array on the device) and ``grad(y, t)`` its gradient
``dE/dy`` with respect to the network's outputs, shape (n_samples, n_outputs).
"""

from __future__ import annotations

import warnings

from array_api_compat import array_namespace, device


class Loss:
    """A loss: ``value(y, t)`` (batch mean) and ``grad(y, t)`` (= dE/dy)."""

    name = "abstract"
    matched_outputs = ()
    """Output activations for which ``dE/dz = (y - t) / n`` exactly (see :meth:`delta`)."""

    def value(self, y, t):
        raise NotImplementedError

    def grad(self, y, t):
        raise NotImplementedError

    def __repr__(self):
        return self.name


class SSE(Loss):
    """The lecture's error ``E = ½ Σ_k (t_k - y_k)²`` per example, averaged over the batch."""

    name = "sse"
    matched_outputs = ("identity",)

    def value(self, y, t):
        xp = array_namespace(y)
        d = y - t
        return xp.sum(d * d) / (2 * y.shape[0])

    def grad(self, y, t):
        return (y - t) / y.shape[0]


class MSE(Loss):
    """Mean of ``(t - y)²`` over every output of every example."""

    name = "mse"

    def value(self, y, t):
        xp = array_namespace(y)
        d = y - t
        return xp.mean(d * d)

    def grad(self, y, t):
        return (y - t) * (2 / (y.shape[0] * y.shape[1]))


class CrossEntropy(Loss):
    """Cross-entropy after a softmax output: ``E = -Σ_k t_k log y_k`` per example.

    With the softmax, ``dE/dz = (y - t) / n``: the softmax Jacobian cancels the ``1 / y`` of the
    logarithm, so the output delta needs no derivative at all. That is why the pair is "matched",
    and why it stays exact when ``y`` saturates.
    """

    name = "cross_entropy"
    matched_outputs = ("softmax",)

    def value(self, y, t):
        xp = array_namespace(y)
        return -xp.sum(t * _log(xp, y)) / y.shape[0]

    def grad(self, y, t):
        xp = array_namespace(y)
        return -t / (_floor(xp, y) * y.shape[0])


class BinaryCrossEntropy(Loss):
    """Cross-entropy of independent logistic outputs, each a yes/no problem:
    ``E = -Σ_k [t_k log y_k + (1 - t_k) log(1 - y_k)]`` per example.

    With the logistic, ``dE/dz = (y - t) / n``: ``y (1 - y)`` cancels the logarithms' ``1 / y`` and
    ``1 / (1 - y)``. Chosen for ``cross_entropy`` when the output is logistic.
    """

    name = "cross_entropy"
    matched_outputs = ("logistic",)

    def value(self, y, t):
        xp = array_namespace(y)
        return -xp.sum(t * _log(xp, y) + (1 - t) * _log(xp, 1 - y)) / y.shape[0]

    def grad(self, y, t):
        xp = array_namespace(y)
        return (y - t) / (_floor(xp, y * (1 - y)) * y.shape[0])


def _floor(xp, p):
    """``p`` kept at or above the smallest normal number, so a saturated output never gives 1/0.

    ``maximum`` with a 0-d ``full``, not ``clip``: array-api-compat's CuPy ``clip`` assigns through
    boolean masks, and CuPy reads each mask's count back to the host; ``asarray`` of a Python
    float would be a host-to-device copy, which PyTorch follows with a wait on CUDA.
    """
    tiny = xp.full((), xp.finfo(p.dtype).smallest_normal, dtype=p.dtype, device=device(p))
    return xp.maximum(p, tiny)


def _log(xp, p):
    return xp.log(_floor(xp, p))


LOSSES = {loss.name: loss for loss in (SSE(), MSE(), CrossEntropy())}
ALIASES = {"ce": "cross_entropy", "crossentropy": "cross_entropy", "cross-entropy": "cross_entropy"}


def get(name) -> Loss:
    """The loss called ``name``, built in or made known by :func:`bpgpu.register` (or a
    :class:`Loss`, returned as is)."""
    if isinstance(name, Loss):
        return name
    if not isinstance(name, str):
        raise TypeError(f"a loss is a name or a bpgpu.losses.Loss, got {type(name).__name__}")
    key = ALIASES.get(name, name)
    if key not in LOSSES:
        valid = ", ".join(sorted(LOSSES))
        raise ValueError(f"unknown loss {name!r}; choose one of: {valid} (or write your own and "
                         "bpgpu.register it)")
    return LOSSES[key]


def for_output(loss: Loss, output_name: str) -> Loss:
    """The variant of ``loss`` for the output activation (binary cross-entropy after logistic)."""
    if isinstance(loss, CrossEntropy) and output_name == "logistic":
        return BinaryCrossEntropy()
    return loss


def default_output(loss: Loss, n_out):
    """The output activation's name for ``loss`` with ``n_out`` outputs when none is named: the
    matched one for cross-entropy, else ``identity``."""
    if loss.name == "cross_entropy":
        return "softmax" if n_out > 1 else "logistic"
    return "identity"


def check_pairing(output, loss, n_out):
    """Refuse an output activation and loss (names) that cannot train together; warn of one
    that trains slowly."""
    if output == "softmax" and n_out == 1:
        raise ValueError("a softmax over one output is always 1; use output 'logistic' for a "
                         "single yes/no unit, or two softmax outputs")
    if loss == "cross_entropy" and output not in ("softmax", "logistic"):
        raise ValueError(f"loss 'cross_entropy' needs a probability output ('softmax' or "
                         f"'logistic'), got output {output!r}; use loss 'sse' or 'mse' instead")
    if output == "softmax" and loss != "cross_entropy":
        warnings.warn(f"a softmax output with loss {loss!r} trains slowly when saturated; "
                      "'cross_entropy' is the matched loss", UserWarning, stacklevel=3)


def output_delta(loss: Loss, output, y, t, ops=None):
    """The output layer's delta ``dE/dz = f'(z) · dE/dy`` (the lecture's δ at the output).

    For the matched pairs this is simply ``(y - t) / n``, computed without the derivative.
    ``ops``: a backend's in-place primitives for the fast path, or ``None`` for the reference.
    """
    if output.name in loss.matched_outputs:
        if ops is not None:
            return ops.scaled_diff(y, t, 1 / y.shape[0])
        return (y - t) / y.shape[0]
    if ops is not None:
        return output.backward_(y, loss.grad(y, t), ops)
    return output.backward(y, loss.grad(y, t))
