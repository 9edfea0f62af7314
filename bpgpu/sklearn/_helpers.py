"""Helpers of :mod:`bpgpu.sklearn` that need no estimator: array API namespaces and device
specs. Private.
"""

from __future__ import annotations

import array_api_compat
import numpy as np
from sklearn import get_config


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
