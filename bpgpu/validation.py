"""Checks at the API edge: inputs and targets are validated once per call, then moved.

Each error names the argument, what was found and what is expected. Nothing here runs inside the
training step.
"""

from __future__ import annotations

import numpy as np

from ._host import check_range, host_array, is_whole
from .optim import check_setting


def check_inputs(net, X, name="X"):
    """X as a device array of the net's dtype, shape (n, sizes[0]), finite."""
    if net.backend.owns(X):
        return _check_device_inputs(net, X, name)
    arr = host_array(X, name)
    if arr.ndim == 1:  # one example of sizes[0] features, or n examples of one feature
        arr = arr[:, None] if net.sizes[0] == 1 else arr[None, :]
    _check_shape(arr.shape, net.sizes[0], name)
    if not np.all(np.isfinite(arr)):
        _non_finite(arr, name)
    check_range(arr, net.dtype_name, name)
    return net.backend.asarray(arr, net.dtype)


def _non_finite(host, name):
    bad = np.argwhere(~np.isfinite(host))[0]
    raise ValueError(f"{name} contains NaN or infinity (first at row {bad[0]}, column "
                     f"{bad[1]}); remove or impute those values")


def _check_device_inputs(net, X, name):
    xp = net.xp
    _check_shape(tuple(X.shape), net.sizes[0], name)
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must hold numbers, found dtype {X.dtype}; convert it with "
                        "astype(float) or encode text columns first")
    cast = net.backend.asarray(X, net.dtype)  # casts, and moves it if it is on another device
    if not bool(xp.all(xp.isfinite(cast))):  # the error path: find out why, on the host
        host = net.backend.to_host(X)
        if not np.all(np.isfinite(host)):
            _non_finite(host, name)
        check_range(host, net.dtype_name, name)
    return cast


def _check_shape(shape, n_features, name):
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, {n_features}), got shape {shape}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples); pass at least one row")
    if shape[1] != n_features:
        raise ValueError(f"{name} has {shape[1]} features per row, but the network's first "
                         f"layer expects {n_features}; check the data or the layer sizes")


def check_targets(net, T, n_rows, name="y"):
    """Targets as a device array of shape (n_rows, sizes[-1]); class labels become one-hot."""
    arr = host_array(T, name)
    n_out = net.sizes[-1]
    if arr.ndim == 0 or arr.ndim > 2:
        raise ValueError(f"{name} must be labels of shape (n,) or targets of shape (n, {n_out}), "
                         f"got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise ValueError(f"{name} has {arr.shape[0]} rows but X has {n_rows}; they must match")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity; remove those rows")
    check_range(arr, net.dtype_name, name)
    if arr.ndim == 1 and n_out > 1:
        arr = one_hot(arr, n_out, name)
    elif arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[1] != n_out:
        raise ValueError(f"{name} has {arr.shape[1]} columns but the network has {n_out} outputs; "
                         "pass class labels of shape (n,) or targets of matching width")
    if net.loss.name == "cross_entropy" and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} has targets in [{arr.min():g}, {arr.max():g}], but "
                         "cross_entropy needs probabilities in [0, 1]; pass class labels, or use "
                         "loss 'sse' or 'mse' for other targets")
    return net.backend.asarray(arr, net.dtype)


def one_hot(labels, n_classes, name="y"):
    """Integer class labels (n,) as a one-hot float array (n, n_classes), after checking them."""
    if not np.issubdtype(labels.dtype, np.integer) and np.any(labels != np.round(labels)):
        raise ValueError(f"{name} looks like class labels (1-D) but holds fractions; pass "
                         f"integer labels in [0, {n_classes}) or targets of shape "
                         f"(n, {n_classes})")
    lo, hi = labels.min(), labels.max()
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"{name} has labels in [{lo:g}, {hi:g}] but the network has {n_classes} "
                         f"outputs; labels must lie in [0, {n_classes})")
    out = np.zeros((labels.shape[0], n_classes))
    out[np.arange(labels.shape[0]), labels.astype(np.int64)] = 1.0
    return out


def check_schedule(epochs, batch_size, names=("epochs", "batch_size")):
    """``(epochs, batch_size)`` as ints; ``"full"``/``None`` batch size becomes ``None``.

    ``names`` are how the caller spells the two settings (``--epochs``, ``--batch-size`` at the
    command line), for the messages.
    """
    if not is_whole(epochs) or epochs < 0:
        raise ValueError(f"{names[0]} must be a whole number ≥ 0, got {epochs!r}")
    if batch_size is None or (isinstance(batch_size, str) and batch_size == "full"):
        return int(epochs), None
    if not is_whole(batch_size) or batch_size < 1:
        raise ValueError(f"{names[1]} must be a whole number ≥ 1 or 'full', got {batch_size!r}")
    return int(epochs), int(batch_size)


MAX_WIDTH = 2**31


def check_sizes(sizes, name="sizes", hidden=False):
    """Layer widths as a list of ints, each in [1, 2³¹]; at least two unless ``hidden`` (the
    hidden layers alone, which may be none). ``name`` is the caller's name for them."""
    example = "(32,) or (64, 32)" if hidden else "[64, 32, 10]"
    try:
        widths = list(sizes)
    except TypeError:
        widths = None
    if widths is None or not all(is_whole(s) for s in widths):
        raise ValueError(f"{name} must be a list of layer widths such as {example}, "
                         f"got {sizes!r}")
    if (len(widths) < (0 if hidden else 2)) or min(widths, default=1) < 1:
        what = "whole numbers ≥ 1" if hidden else "at least an input and an output width, each ≥ 1"
        raise ValueError(f"{name} needs {what}, got {sizes!r}")
    if max(widths, default=1) > MAX_WIDTH:
        raise ValueError(f"{name} has a layer of {max(widths)} units, more than any device holds")
    return [int(s) for s in widths]


def check_every(every):
    """Epochs between checkpoints, a whole number ≥ 1."""
    if not is_whole(every) or every < 1:
        raise ValueError(f"checkpoint_every must be a whole number ≥ 1, got {every!r}")
    return int(every)


def check_lr(lr, name="lr"):
    """The learning rate as a float (or ``None`` for the optimizer's default), checked as the
    optimizers check it, the message naming ``name`` (e.g. the command line's ``--lr``)."""
    return None if lr is None else check_setting(f"{name} (the learning rate η)", lr)
