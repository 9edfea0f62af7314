"""MNIST from local IDX files (raw or gzip-compressed); bpgpu never downloads anything."""

from __future__ import annotations

import gzip
import math
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

#: The most data bytes an IDX header may claim: the MNIST training images are 47 MB, and a
#: claim past this (or past what the file then holds) is damage, refused before allocating.
MAX_IDX_BYTES = 1 << 34  # 16 GiB
_CHUNK = 1 << 24  # a compressed file is inflated 16 MiB at a time
_FIX = "replace it with an intact copy from the MNIST distribution"


def _find(folder: Path, stem: str) -> Path | None:
    """Return ``folder/stem`` or ``folder/stem.gz``, whichever exists (raw first)."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115


def _read_upto(handle, limit: int) -> bytearray:
    """At most ``limit`` bytes of ``handle``, in chunks: never the claimed size up front, so
    that a few bytes claiming gigabytes cost a few bytes."""
    data = bytearray()
    while len(data) < limit:
        chunk = handle.read(min(_CHUNK, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (magic number, big-endian dimensions, then the data).

    The header is read first; its claimed size is checked against a bound and against the bytes
    that follow (read as a stream, so a gzip bomb or a lying header costs no more than the bytes
    that actually arrive) before the array is made.

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
        If the magic number is wrong, the header claims an impossible size, or the file is
        truncated or has trailing bytes.
    """
    try:
        with _open(path) as handle:
            dims, dtype = _header(path, handle)
            expected = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
            _check_claim(path, dims, expected)
            raw = _read_upto(handle, expected + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"cannot read MNIST file {path} ({exc}); replace it with an intact copy"
        ) from exc
    if len(raw) != expected:  # the stream stopped one byte past the claim
        raise _wrong_size(path, dims, expected, len(raw), streamed=True)
    return np.frombuffer(raw, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _header(path: Path, handle) -> tuple[tuple[int, ...], np.dtype]:
    """The dimensions and dtype an IDX header states (the handle left at the data)."""
    magic = handle.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES:
        raise DatasetError(
            f"{path} is not an IDX file (bad magic number {magic.hex() or 'missing'}); {_FIX}"
        )
    ndim = magic[3]
    raw = _read_upto(handle, 4 * ndim)
    if len(raw) < 4 * ndim:
        raise DatasetError(
            f"{path} is truncated: its header needs {4 + 4 * ndim} bytes, the file has "
            f"{4 + len(raw)}; {_FIX}"
        )
    dims = tuple(int.from_bytes(raw[i : i + 4], "big") for i in range(0, 4 * ndim, 4))
    return dims, IDX_TYPES[magic[2]]


def _check_claim(path: Path, dims: tuple[int, ...], expected: int) -> None:
    """Refuse a header whose size is absurd, or (uncompressed) is not what the file holds."""
    if expected > MAX_IDX_BYTES:
        raise DatasetError(
            f"{path} is malformed: header shape {dims} claims {expected:,} data bytes, more than "
            f"bpgpu reads ({MAX_IDX_BYTES:,}); {_FIX}"
        )
    if path.suffix != ".gz":
        found = path.stat().st_size - 4 - 4 * len(dims)
        if found != expected:
            raise _wrong_size(path, dims, expected, found)


def _wrong_size(
    path: Path, dims: tuple[int, ...], expected: int, found: int, streamed: bool = False
) -> DatasetError:
    """The error for ``found`` data bytes where the header claims ``expected`` (a stream is read
    one byte past the claim, so how many more it holds is not known)."""
    problem = "truncated" if found < expected else "malformed (trailing bytes)"
    shown = f"more than {expected:,}" if streamed and found > expected else f"{found:,}"
    return DatasetError(
        f"{path} is {problem}: header shape {dims} needs {expected:,} data bytes, "
        f"found {shown}; {_FIX}"
    )


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
