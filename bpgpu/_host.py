"""Host-side helpers: random numbers and input checks, done in NumPy before anything moves.

The Array API has no random numbers, so initial weights and shuffling permutations are drawn here
from a seeded ``numpy.random.Generator`` and moved to the device; one seed therefore gives the same
initial weights and the same batch order on every device.
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from .backends import to_numpy


def seed_streams(seed):
    """Two independent generators from one seed: (initial weights, shuffling)."""
    init, shuffle = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init), np.random.default_rng(shuffle)


def initial_weights(sizes, activation_name, rng, bias=True):
    """Glorot-uniform weights (He-uniform before ReLU) and zero biases, as float64 host arrays.

    The logistic's slope at 0 is 1/4, so its range is widened by 4 (Glorot & Bengio, 2010) to keep
    the first deltas from vanishing.
    """
    gain = {"logistic": 0.58, "relu": math.sqrt(2.0)}.get(activation_name, 1.0)
    pairs = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = gain * math.sqrt(6.0 / (n_in + n_out))
        if activation_name == "relu":
            limit = math.sqrt(6.0 / n_in)
        W = rng.uniform(-limit, limit, size=(n_in, n_out))
        pairs.append((W, np.zeros(n_out) if bias else None))
    return pairs


def is_whole(value):
    """A whole number (Python or NumPy integer), but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def permutation(rng, n):
    """A shuffled index array for one epoch."""
    return rng.permutation(n).astype(np.int64)


def host_array(x, name):
    """``x`` as a NumPy array, with a clear error for data that is not numeric."""
    try:
        arr = to_numpy(x)
    except Exception as exc:
        raise TypeError(f"{name} must be an array of numbers; could not read it ({exc})") from None
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} holds complex numbers; pass real numbers (e.g. x.real or abs(x))")
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or arr.dtype == np.bool_):
        raise TypeError(f"{name} must hold numbers, found dtype {arr.dtype}; convert it with "
                        "astype(float) or encode text columns first")
    return arr


def check_range(arr, dtype_name, name):
    """Refuse finite values that would become infinite when cast to the network's dtype."""
    limit = np.finfo(dtype_name).max
    if arr.size and arr.dtype.kind == "f" and np.abs(arr).max() > limit:
        raise ValueError(f"{name} has values up to {np.abs(arr).max():.3g}, beyond {dtype_name}'s "
                         f"range ({limit:.3g}); rescale the data or use dtype='float64'")


def label_values(classes, index):
    """Output indices (a NumPy int array) as the labels in ``classes`` (unchanged if ``None``)."""
    return index if classes is None else np.asarray(classes)[index]


def physical_memory():
    """This machine's memory in bytes, or ``None`` where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def check_fits(nbytes, what, fix):
    """Refuse, before allocating, ``nbytes`` of host memory that this machine does not have at
    all: a ``MemoryError`` naming ``what``, the size and ``fix`` (a smaller request that does
    fit can still fail later, as any allocation can)."""
    total = physical_memory()
    if total is not None and nbytes > total:
        raise MemoryError(f"{what} needs {nbytes / 2**30:,.1f} GiB, more than this machine's "
                          f"{total / 2**30:,.1f} GiB of memory; {fix}")
