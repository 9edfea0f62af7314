"""Read the arrays NumPy users save: ``np.savez`` files (arrays ``X`` and ``y``) and ``.npy`` files,
each header checked against the bytes that follow before anything is allocated."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpgpu.datasets._table import Table, count, existing, note
from bpgpu.errors import DatasetError

__all__ = ["read_npy", "read_npz"]


def _npz_array(path: Path, archive, key: str) -> np.ndarray:
    """Return array ``key`` of an open .npz archive, naming it in any error."""
    fix = "save it with np.savez(path, X=features, y=labels)"
    if key not in archive.files:
        held = ", ".join(repr(name) for name in archive.files) or "no arrays"
        raise DatasetError(f"{path} has no array {key!r} (it holds {held}); {fix}")
    try:
        return archive[key]
    except ValueError:  # object arrays need pickle, which is never loaded
        raise DatasetError(
            f"{path} array {key!r} holds Python objects; save numbers or strings, "
            "e.g. np.savez(path, X=X.astype(float), y=y.astype(str))"
        ) from None


def _npz_features(path: Path, X: np.ndarray) -> np.ndarray:
    """Check the feature array of an .npz file and return it as float64."""
    if X.ndim != 2 or 0 in X.shape or X.dtype.kind not in "biuf":
        raise DatasetError(
            f"{path} array 'X' has shape {X.shape} and dtype {X.dtype}; save a 2-D array of "
            "numbers, one row per sample"
        )
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        row, column = np.argwhere(~np.isfinite(X))[0]
        raise DatasetError(
            f"{path} array 'X' holds NaN or infinity (first at X[{row}, {column}]); "
            "replace them with numbers or drop those rows"
        )
    return X


def _npz_labels(path: Path, y: np.ndarray, n: int) -> np.ndarray:
    """Check the label array of an .npz file and return it as float64 or str."""
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or y.shape[0] != n:
        raise DatasetError(
            f"{path} array 'y' has shape {y.shape}, expected ({n},) to match X's "
            f"{count(n, 'row')}; save one label per row of X"
        )
    if y.dtype.kind in "US":
        return np.char.strip(y.astype(str))
    if y.dtype.kind not in "biuf" or not np.isfinite(y).all():
        raise DatasetError(
            f"{path} array 'y' holds {y.dtype} values or NaN or infinity; save finite numbers "
            "or strings as labels"
        )
    return y.astype(np.float64)


def read_npz(path: str | Path, labels: bool = True) -> Table:
    """Read arrays ``X`` and ``y`` from a file written by ``np.savez`` or ``np.savez_compressed``.

    Parameters
    ----------
    path : str or Path
        The .npz file: ``X`` 2-D numbers; ``y`` 1-D (or one column), numbers or strings.
        Nothing is unpickled.
    labels : bool, default True
        Read ``y`` too; ``False`` reads ``X`` alone (features to predict from), and ``labels``
        is then None.

    Returns
    -------
    Table
        ``X`` float64 (n, k); ``labels`` float64 or str (n,); ``columns`` None; a note.

    Raises
    ------
    DatasetError
        In one line: the file, the array at fault and the fix.
    """
    path = existing(path, ".npz file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(
            f"{path} cannot be read as a NumPy .npz file ({exc}); save it with "
            "np.savez(path, X=features, y=labels)"
        ) from None
    if isinstance(archive, np.ndarray):
        raise DatasetError(f"{path} holds a single array; save it with np.savez(path, X=X, y=y)")
    with archive:
        X = _npz_features(path, _npz_array(path, archive, "X"))
        y = _npz_array(path, archive, "y") if labels else None
    found = None if y is None else _npz_labels(path, y, X.shape[0])
    return Table(X, found, None, note(X, found, ["NumPy .npz"]))


def read_npy(path: str | Path) -> np.ndarray:
    """Read one array of numbers, 1-D or 2-D, from a file written by ``np.save``.

    The header is read and checked first (numbers only, so nothing is unpickled; one or two
    dimensions; no more data claimed than the file holds), so a small file claiming a huge shape
    costs nothing.

    Raises
    ------
    DatasetError
        In one line: the file, what is wrong and the fix.
    """
    path = existing(path, ".npy file")
    fix = "save a 1-D or 2-D array of numbers with np.save(path, X)"
    try:
        with open(path, "rb") as f:
            shape, dtype = _npy_header(path, f, fix)
            left = path.stat().st_size - f.tell()
    except (OSError, ValueError) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"{path} is not a NumPy .npy file ({exc}); {fix}") from None
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize  # Python ints: no overflow
    if needed > left:
        raise DatasetError(
            f"{path} is truncated: its header claims shape {shape} of {dtype} ({needed:,} bytes) "
            f"but only {left:,} bytes follow; {fix}"
        )
    try:
        return np.load(path, allow_pickle=False, mmap_mode=None)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} cannot be read as a NumPy .npy file ({exc}); {fix}") from None


_NPY_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _npy_header(path: Path, f, fix: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype in an open .npy file's header, checked to be numbers, 1-D or 2-D."""
    if path.stat().st_size == 0:
        raise DatasetError(f"{path} is empty (0 bytes); {fix}")
    version = np.lib.format.read_magic(f)
    if version not in _NPY_HEADERS:
        raise DatasetError(f"{path} is a .npy file of version {version}, not 1.0 or 2.0; {fix}")
    shape, _, dtype = _NPY_HEADERS[version](f)
    if dtype.hasobject or dtype.kind not in "biuf":
        raise DatasetError(f"{path} holds {dtype} values, not numbers; {fix}")
    if len(shape) not in (1, 2):
        raise DatasetError(f"{path} holds an array of shape {shape}; {fix}")
    return shape, dtype
