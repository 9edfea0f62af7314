"""MNIST from local IDX files (raw or gzip-compressed); bpgpu never downloads anything."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from bpgpu.datasets._dataset import Dataset
from bpgpu.errors import DatasetError

IMAGES_FILE = "train-images-idx3-ubyte"
LABELS_FILE = "train-labels-idx1-ubyte"

#: IDX type codes (third magic byte) and the big-endian NumPy dtypes they stand for.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _find(folder: Path, stem: str) -> Path | None:
    """Return ``folder/stem`` or ``folder/stem.gz``, whichever exists (raw first)."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(path: Path) -> bytes:
    """Return the (decompressed) content of an IDX file."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"cannot read MNIST file {path} ({exc}); replace it with an intact copy"
        ) from exc


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (magic number, big-endian dimensions, then the data).

    Parameters
    ----------
    path : pathlib.Path
        The file, raw or with a ``.gz`` suffix.

    Returns
    -------
    numpy.ndarray
        The array with the shape given by the header, in native byte order.

    Raises
    ------
    DatasetError
        If the magic number is wrong or the file is truncated or has trailing bytes.
    """
    raw = _read_bytes(path)
    fix = "replace it with an intact copy from the MNIST distribution"
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DatasetError(
            f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'missing'}); {fix}"
        )
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DatasetError(
            f"{path} is truncated: its header needs {header_len} bytes, the file has "
            f"{len(raw)}; {fix}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[raw[2]]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_len
    if found != expected:
        problem = "truncated" if found < expected else "malformed (trailing bytes)"
        raise DatasetError(
            f"{path} is {problem}: header shape {dims} needs {expected} data bytes, "
            f"found {found}; {fix}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _check(images: np.ndarray, labels: np.ndarray, paths: tuple[Path, Path]) -> None:
    """Raise DatasetError unless the image and label arrays fit together as MNIST."""
    image_path, label_path = paths
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetError(
            f"{image_path} holds {images.dtype} data of shape {images.shape}, expected "
            "unsigned-byte images (n, rows, cols); check that the file names are not swapped"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetError(
            f"{label_path} holds {labels.dtype} data of shape {labels.shape}, expected "
            "unsigned-byte labels (n,); check that the file names are not swapped"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels; "
            "use the image and label files of the same MNIST set"
        )
    if labels.size and labels.max() > 9:
        raise DatasetError(
            f"{label_path} has label {int(labels.max())}, MNIST labels are 0..9; "
            "use the MNIST label file"
        )


def load_mnist(spec: str, folder: str) -> Dataset:
    """Load the MNIST training set from IDX files in a local folder.

    Parameters
    ----------
    spec : str
        The spec string, stored as the data set's name.
    folder : str
        Folder holding ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``,
        each raw or with a ``.gz`` suffix.

    Returns
    -------
    Dataset
        X float64 in [0, 1] of shape (n, rows * cols) (784 features for MNIST),
        y int64 labels 0..9, 10 classes.
    """
    where = Path(folder).expanduser()
    how = (
        f"put {IMAGES_FILE}[.gz] and {LABELS_FILE}[.gz] from the MNIST distribution in "
        f"{where}; bpgpu does not download"
    )
    if not where.is_dir():
        raise DatasetError(f"MNIST folder {where} does not exist; {how}")
    image_path, label_path = _find(where, IMAGES_FILE), _find(where, LABELS_FILE)
    missing = [name for name, p in ((IMAGES_FILE, image_path), (LABELS_FILE, label_path)) if not p]
    if missing:
        raise DatasetError(f"MNIST folder {where} lacks {' and '.join(missing)}; {how}")
    images, labels = read_idx(image_path), read_idx(label_path)
    _check(images, labels, (image_path, label_path))
    n, rows, cols = images.shape
    return Dataset(
        name=spec,
        X=images.reshape(n, rows * cols).astype(np.float64) / 255.0,
        y=labels.astype(np.int64),
        n_classes=10,
        description=(
            f"MNIST training set from {where}: {n} {rows}x{cols} images scaled to [0, 1], "
            "10 classes"
        ),
    )
