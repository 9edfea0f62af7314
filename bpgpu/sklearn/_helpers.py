"""Helpers of :mod:`bpgpu.sklearn` that need no estimator: one ``partial_fit`` epoch, array API
namespaces and device specs, verbose lines. Private.
"""

from __future__ import annotations

import sys

import array_api_compat
import numpy as np
from sklearn import get_config

from ..training import EpochRunner, resolve_mode


def one_epoch(trainer, X, T, batch_size, epochs_done=0):
    """One shuffled pass of mini-batch steps over device arrays X, T, after ``epochs_done``
    earlier ones; the mean loss. A device that compiles epochs runs it as one compiled call
    (kept by the trainer between calls)."""
    run = EpochRunner(trainer, X, T, batch_size, shuffle=True, classify=False,
                      mode=resolve_mode(trainer.net.backend, "auto"))
    run.epochs_done = epochs_done
    return run.epoch()["loss"]


def epoch_printer(epochs):
    """A bpgpu.fit callback printing one line per epoch on standard error."""
    def report(net, epoch, logs):
        acc = f"  accuracy {logs['accuracy']:.4f}" if "accuracy" in logs else ""
        print(f"epoch {epoch}/{epochs}  loss {logs['loss']:.4f}{acc}", file=sys.stderr)

    return report


def namespace_of(X):
    """X's array namespace when array API dispatch is on and X is not NumPy, else None."""
    if not get_config()["array_api_dispatch"] or isinstance(X, np.ndarray):
        return None
    try:
        xp = array_api_compat.array_namespace(X)
    except TypeError:
        return None
    return None if array_api_compat.is_numpy_namespace(xp) else xp


def device_spec_of(X):
    """The bpgpu device spec where X lives, or None when bpgpu has no backend for it."""
    if array_api_compat.is_torch_array(X):
        dev = X.device
        if dev.type == "cpu":
            return "torch:cpu"
        return f"torch:cuda:{dev.index or 0}" if dev.type == "cuda" else None
    if array_api_compat.is_cupy_array(X):
        return f"cuda:{X.device.id}"
    if type(X).__module__.startswith("array_api_strict"):
        return "strict"
    return None
