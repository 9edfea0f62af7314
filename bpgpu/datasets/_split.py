"""Seeded train/validation split, stratified by class for integer labels."""

from __future__ import annotations

import zlib

import numpy as np

from bpgpu.errors import DatasetError


def _n_val(n_samples: int, val_fraction: float) -> int:
    """Return ``round(val_fraction * n)``, capped so one sample is left for training."""
    n_val = round(val_fraction * n_samples)
    return min(n_val, max(n_samples - 1, 0))


def _class_quotas(counts: np.ndarray, n_val: int) -> np.ndarray:
    """Share ``n_val`` among classes in proportion to ``counts`` (largest remainder)."""
    exact = counts * (n_val / counts.sum())
    quotas = np.floor(exact).astype(np.int64)
    room = quotas < counts
    order = np.argsort(-(exact - quotas), kind="stable")
    for k in order[room[order]][: n_val - int(quotas.sum())]:
        quotas[k] += 1
    return quotas


def _stratified(y: np.ndarray, n_val: int, rng: np.random.Generator) -> np.ndarray:
    """Draw validation indices class by class so each class keeps its share."""
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quotas = _class_quotas(counts, n_val)
    picked = [
        rng.permutation(np.flatnonzero(inverse == k))[:quota] for k, quota in enumerate(quotas)
    ]
    return rng.permutation(np.concatenate(picked)) if picked else np.empty(0, np.intp)


def _check(X: np.ndarray, y: np.ndarray, val_fraction: float) -> None:
    """Raise DatasetError for mismatched arrays or a fraction outside [0, 1)."""
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise DatasetError(
            f"split needs X and y with one row per sample, got shapes {X.shape} and {y.shape}; "
            "pass arrays of the same length"
        )
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(
            f"val_fraction must be in [0, 1), got {val_fraction}; use e.g. 0.2 for 20% validation"
        )


def split(
    X: np.ndarray, y: np.ndarray, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split samples into a training and a validation part.

    Parameters
    ----------
    X : numpy.ndarray
        Inputs, one row per sample.
    y : numpy.ndarray
        Labels of shape (n,) or targets of shape (n, n_outputs).
    val_fraction : float
        Fraction of the samples for validation, in [0, 1); the count is
        ``round(val_fraction * n)``, capped so at least one sample stays for training.
        ``0`` gives empty validation arrays with the right trailing shape.
    seed : int, optional
        Seed for ``numpy.random.default_rng``; the same seed gives the same split.

    Returns
    -------
    X_train, y_train, X_val, y_val : numpy.ndarray
        The two parts, each in shuffled order.

    Notes
    -----
    When ``y`` is 1-D with an integer dtype the split is stratified: each class gets
    its proportional share of the validation samples (largest-remainder rounding).
    """
    X, y = np.asarray(X), np.asarray(y)
    _check(X, y, val_fraction)
    rng = np.random.default_rng(seed)
    n_samples = len(X)
    n_val = _n_val(n_samples, val_fraction)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer) and n_samples:
        val = _stratified(y, n_val, rng)
    else:
        val = rng.permutation(n_samples)[:n_val]
    is_val = np.zeros(n_samples, dtype=bool)
    is_val[val] = True
    train = rng.permutation(np.flatnonzero(~is_val))
    return X[train], y[train], X[val], y[val]


def fingerprint(X: np.ndarray, y: np.ndarray) -> str:
    """A CRC-32 of a data set's inputs and targets (as float64 and int64 or float64 arrays), to
    tell whether two loads are the same data: ``"crc32:<8 hex digits>"``."""
    crc = 0
    for start in range(0, len(X), _ROWS_PER_CRC):  # in slices: no copy of a large X at once
        crc = zlib.crc32(np.ascontiguousarray(X[start:start + _ROWS_PER_CRC], np.float64), crc)
    y = np.asarray(y)
    y = y.astype(np.int64) if np.issubdtype(y.dtype, np.integer) else y.astype(np.float64)
    return f"crc32:{zlib.crc32(np.ascontiguousarray(y), crc):08x}"


_ROWS_PER_CRC = 4096


def held_out_rows(y: np.ndarray, fraction: float, seed: int = 0,
                  stratify: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The row indices ``(train, held_out)`` of a seeded split of ``fraction`` of the rows, for
    ``fit``'s ``validation_fraction``: stratified by class when ``stratify`` (by default, when
    ``y`` is 1-D integers, booleans or text — labels, not regression targets)."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not (
            0 < fraction < 1):
        raise ValueError(f"validation_fraction must be a number in (0, 1), got {fraction!r}")
    y = np.asarray(y)
    if stratify is None:
        stratify = y.ndim == 1 and y.dtype.kind in "biuUSO"
    key = np.unique(y, return_inverse=True)[1].reshape(-1) if stratify else np.zeros(len(y))
    train, _, val, _ = split(np.arange(len(y))[:, None], key, fraction, seed=seed)
    if len(val) == 0 or len(train) == 0:
        raise ValueError(f"validation_fraction={fraction} of {len(y)} rows leaves no row to "
                         "hold out or to train on; use a larger share or more rows")
    return train[:, 0], val[:, 0]
