"""Checks at the API edge: inputs and targets are validated once per call, then moved.

Each error names the argument, what was found and what is expected. Nothing here runs inside the
training step.
"""

from __future__ import annotations

import math

import numpy as np

from ._host import check_range, host_array, is_whole
from .backends import to_numpy
from .optim import check_setting


def check_inputs(net, X, name="X"):
    """X as a device array of the net's dtype, shape (n, sizes[0]), finite, through the net's
    input transform when it has one."""
    if net.backend.owns(X):
        return _check_device_inputs(net, X, name)
    arr = host_array(X, name)
    if arr.ndim == 1:  # one example of sizes[0] features, or n examples of one feature
        arr = arr[:, None] if net.sizes[0] == 1 else arr[None, :]
    _check_shape(arr.shape, net.sizes[0], name)
    if not np.all(np.isfinite(arr)):
        _non_finite(arr, name)
    if net.input_transform is not None:
        arr = net.input_transform.host(arr)
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
    if net.input_transform is not None:
        cast = net.input_transform.device(net.backend, cast, net.dtype)
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
    """Targets as a device array of shape (n_rows, sizes[-1]); class labels become one-hot
    (through the network's ``classes`` when it has them)."""
    if net.classes is not None:
        T = _labels_as_indices(net.classes, T, name)
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
    if net.target_transform is not None:
        arr = net.target_transform.host(arr)
    if net.loss.name == "cross_entropy" and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} has targets in [{arr.min():g}, {arr.max():g}], but "
                         "cross_entropy needs probabilities in [0, 1]; pass class labels, or use "
                         "loss 'sse' or 'mse' for other targets")
    return net.backend.asarray(arr, net.dtype)


def _labels_as_indices(classes, T, name):
    """1-D labels (numbers or text) as indices into ``classes``; anything else unchanged."""
    try:
        arr = to_numpy(T)
    except Exception:
        return T  # host_array names the problem
    if arr.ndim == 2 and arr.shape[1] == 1 and len(classes) > 1 and arr.dtype.kind in "USO":
        arr = arr[:, 0]
    return encode_labels(classes, arr, name) if arr.ndim == 1 else T


def check_classes(classes, n_outputs):
    """The class labels of a network's outputs, in output order, as a list of Python numbers or
    strings (``None`` stays ``None``): unique, one kind, one per output (two for a single
    logistic output)."""
    if classes is None:
        return None
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__len__"):
        raise ValueError(f"classes must be a list of labels, got {classes!r}")
    labels = list(classes) if isinstance(classes, (list, tuple)) else to_numpy(classes).tolist()
    labels = [c.item() if isinstance(c, np.generic) else c for c in labels]
    text = all(isinstance(c, str) for c in labels)
    numbers = all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c)
                  for c in labels)
    if not labels or not (text or numbers):
        raise ValueError(f"classes must be a list of numbers or of strings, got {classes!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"classes must not repeat a label, got {classes!r}")
    if len(labels) < 2:
        raise ValueError(f"classes needs two labels or more (a classifier chooses between "
                         f"them), got {classes!r}")
    if len(labels) != n_outputs and not (n_outputs == 1 and len(labels) == 2):
        raise ValueError(f"{len(labels)} classes for {n_outputs} outputs; give one label per "
                         "output (two for a single logistic output)")
    return labels


def encode_labels(classes, labels, name="y"):
    """The index in ``classes`` of every label in the 1-D array ``labels`` (int64); a label that
    is not among the classes is a one-line ``ValueError`` naming it."""
    ref = np.asarray(classes)
    text = labels.dtype.kind in "USO"
    if text != (ref.dtype.kind in "U"):
        kind = "text" if text else "numbers"
        raise ValueError(f"{name} holds {kind}, but the network's classes are {_few(classes)}; "
                         "pass labels of the same kind")
    if text:
        labels = labels.astype(str)
    order = np.argsort(ref, kind="stable")
    pos = np.minimum(np.searchsorted(ref[order], labels), len(ref) - 1)
    unknown = ref[order][pos] != labels
    if np.any(unknown):
        missing = np.unique(labels[unknown])
        raise ValueError(f"{name} has {len(missing)} label(s) the network has no output for "
                         f"({_few(missing.tolist())[1:-1]}); its classes are {_few(classes)}")
    return order[pos].astype(np.int64)


def _few(values, limit=6):
    shown = ", ".join(repr(_plain(v)) for v in values[:limit])
    return "[" + shown + (", ...]" if len(values) > limit else "]")


def _plain(value):
    """A label as users wrote it: a Python number (7, not 7.0 or np.int64(7)) or string."""
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


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


def check_seed(seed, name="seed"):
    """A seed as a plain Python int ≥ 0 (NumPy integers accepted), so that it saves as JSON."""
    if not is_whole(seed) or seed < 0:
        raise ValueError(f"{name} must be a whole number ≥ 0, got {seed!r}")
    return int(seed)


def check_flag(value, name):
    """A yes/no setting as a plain Python bool (``np.bool_`` and 0/1 accepted)."""
    if isinstance(value, (bool, np.bool_)) or (is_whole(value) and value in (0, 1)):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


def check_every(every):
    """Epochs between checkpoints, a whole number ≥ 1."""
    if not is_whole(every) or every < 1:
        raise ValueError(f"checkpoint_every must be a whole number ≥ 1, got {every!r}")
    return int(every)


def check_lr(lr, name="lr"):
    """The learning rate as a float (or ``None`` for the optimizer's default), checked as the
    optimizers check it, the message naming ``name`` (e.g. the command line's ``--lr``)."""
    return None if lr is None else check_setting(f"{name} (the learning rate η)", lr)
