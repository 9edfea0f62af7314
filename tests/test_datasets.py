"""Tests for bpgpu.datasets: built-in data, MNIST IDX files, CSV files and the split."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from bpgpu.datasets import Dataset, load, names, split
from bpgpu.errors import DatasetError

#: sha256 of the shipped digits arrays (uint8 X bytes then uint8 y bytes).
DIGITS_SHA256 = "87ff0c9e40dc7e2c0e34e7257799c2e3f3aec1a016363bb11cad869ec428a826"


def _digits_hash(X: np.ndarray, y: np.ndarray) -> str:
    pixels = np.asarray(X, dtype=np.uint8)
    labels = np.asarray(y, dtype=np.uint8)
    return hashlib.sha256(pixels.tobytes() + labels.tobytes()).hexdigest()


# --- spec dispatch -------------------------------------------------------------------------


def test_names_lists_the_spec_forms():
    assert names() == ["digits", "xor", "cafeteria[:WEEKS]", "spirals[:N]", "mnist:DIR", "csv:PATH",
                       "npz:PATH"]


def test_unknown_spec_lists_valid_forms():
    with pytest.raises(DatasetError, match="unknown dataset spec 'iris'") as info:
        load("iris")
    for form in names():
        assert form in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("spirals:abc", "expected spirals:N with N an integer >= 2"),
        ("spirals:1", "expected spirals:N with N an integer >= 2"),
        ("cafeteria:0", "expected cafeteria:WEEKS with WEEKS an integer >= 1"),
        ("cafeteria:", "expected cafeteria:WEEKS"),
        ("digits:3", "digits takes no argument"),
        ("mnist", "use mnist:DIR"),
        ("csv:", "use csv:PATH"),
    ],
)
def test_bad_spec_argument(spec, expected):
    with pytest.raises(DatasetError, match=expected) as info:
        load(spec)
    assert "\n" not in str(info.value)


# --- built-in data sets --------------------------------------------------------------------


def test_digits_shape_dtype_range():
    ds = load("digits")
    assert ds.name == "digits"
    assert ds.X.shape == (1797, 64) and ds.X.dtype == np.float64
    assert ds.y.shape == (1797,) and ds.y.dtype == np.int64
    assert ds.n_classes == 10 and ds.n_outputs == 10 and ds.n_features == 64
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    counts = np.bincount(ds.y, minlength=10)
    assert counts.sum() == 1797 and counts.min() >= 170 and counts.max() <= 190
    assert "\n" not in ds.description


def test_digits_shipped_arrays_are_unchanged():
    ds = load("digits")
    pixels = ds.X * 16.0
    assert np.array_equal(pixels, np.rint(pixels))
    assert _digits_hash(pixels, ds.y) == DIGITS_SHA256


def test_digits_match_scikit_learn_copy():
    # Locate scikit-learn without importing it: ``import sklearn`` alone takes about a second.
    found = importlib.util.find_spec("sklearn")
    if found is None or found.origin is None:
        pytest.skip("scikit-learn is not installed")
    source = Path(found.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if not source.is_file():
        pytest.skip(f"scikit-learn has no {source}")
    table = np.loadtxt(source, delimiter=",")
    ds = load("digits")
    assert _digits_hash(table[:, :-1], table[:, -1]) == _digits_hash(ds.X * 16.0, ds.y)
    assert _digits_hash(table[:, :-1], table[:, -1]) == DIGITS_SHA256


def test_xor():
    ds = load("xor")
    assert ds.X.dtype == np.float64 and ds.X.shape == (4, 2)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [0, 1, 1, 0]
    assert ds.n_classes == 2 and ds.n_outputs == 2
    assert np.array_equal(ds.y, np.logical_xor(ds.X[:, 0], ds.X[:, 1]))


def test_cafeteria_is_the_lecture_bill():
    ds = load("cafeteria")
    assert ds.X.tolist() == [[5.0, 2.0, 3.0]] and ds.y.tolist() == [[850.0]]
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.float64
    assert ds.n_classes is None and ds.n_outputs == 1 and ds.n_features == 3
    assert ds.hints == {
        "layers": [3, 1],
        "activation": "identity",
        "output": "identity",
        "loss": "sse",
        "bias": False,
        "init_weights": [[[50.0], [50.0], [50.0]]],
        "standardize": False,
    }
    assert np.asarray(ds.hints["init_weights"][0]).shape == (3, 1)


def test_cafeteria_weeks_are_seeded_bills():
    ds = load("cafeteria:12", seed=3)
    assert ds.X.shape == (12, 3) and ds.y.shape == (12, 1)
    assert ds.X[0].tolist() == [5.0, 2.0, 3.0] and ds.y[0, 0] == 850.0
    assert ds.X.min() >= 1 and ds.X.max() <= 6 and np.array_equal(ds.X, np.rint(ds.X))
    assert np.array_equal(ds.y[:, 0], ds.X @ np.array([50.0, 150.0, 100.0]))
    assert np.array_equal(load("cafeteria:12", seed=3).X, ds.X)
    assert not np.array_equal(load("cafeteria:12", seed=4).X, ds.X)


def test_spirals_shape_and_range():
    ds = load("spirals")
    assert ds.X.shape == (400, 2) and ds.X.dtype == np.float64
    assert ds.y.dtype == np.int64 and np.bincount(ds.y).tolist() == [200, 200]
    assert ds.n_classes == 2 and np.abs(ds.X).max() <= 1.0
    odd = load("spirals:7")
    assert odd.X.shape == (7, 2) and np.bincount(odd.y).tolist() == [4, 3]


def test_spirals_deterministic_per_seed():
    first, again, other = (
        load("spirals:50", seed=1),
        load("spirals:50", seed=1),
        load("spirals:50", seed=2),
    )
    assert np.array_equal(first.X, again.X) and np.array_equal(first.y, again.y)
    assert not np.array_equal(first.X, other.X)


def test_dataset_is_frozen_and_checks_shapes():
    ds = load("xor")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"
    with pytest.raises(DatasetError, match="y has shape"):
        Dataset("bad", np.zeros((3, 2)), np.zeros(2, dtype=np.int64), 2, "bad")
    regression = Dataset("r", np.zeros((3, 2)), np.zeros((3, 4)), None, "r")
    assert regression.n_outputs == 4 and regression.hints == {}


# --- MNIST ---------------------------------------------------------------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(folder, images, labels, gz=False):
    for stem, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        data = _idx_bytes(array)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)


@pytest.fixture
def mnist_arrays():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[1, 0, 0] = 0, 255
    labels = np.array([7, 2, 1, 0, 9], dtype=np.uint8)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_idx_files(tmp_path, mnist_arrays, gz):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, images, labels, gz=gz)
    ds = load(f"mnist:{tmp_path}")
    assert ds.X.shape == (5, 784) and ds.X.dtype == np.float64
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert np.array_equal(ds.X, images.reshape(5, 784) / 255.0)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [7, 2, 1, 0, 9]
    assert ds.n_classes == 10 and ds.n_features == 784


def test_mnist_missing_files(tmp_path):
    with pytest.raises(DatasetError) as info:
        load(f"mnist:{tmp_path}")
    message = str(info.value)
    assert str(tmp_path) in message
    assert "train-images-idx3-ubyte[.gz]" in message and "train-labels-idx1-ubyte[.gz]" in message
    assert "does not download" in message


def test_mnist_missing_label_file_is_named(tmp_path, mnist_arrays):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(mnist_arrays[0]))
    with pytest.raises(DatasetError, match="lacks train-labels-idx1-ubyte;"):
        load(f"mnist:{tmp_path}")


def test_mnist_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load(f"mnist:{tmp_path / 'nowhere'}")


def test_mnist_truncated_file(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, images, labels)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match=r"is truncated: header shape \(5, 28, 28\)"):
        load(f"mnist:{tmp_path}")
    path.write_bytes(path.read_bytes()[:9])
    with pytest.raises(DatasetError, match="is truncated: its header needs 16 bytes"):
        load(f"mnist:{tmp_path}")


def test_mnist_bad_magic_and_corrupt_gzip(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, images, labels)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(DatasetError, match="is not an IDX file"):
        load(f"mnist:{tmp_path}")
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DatasetError, match="cannot read MNIST file"):
        load(f"mnist:{tmp_path}")


def test_mnist_count_mismatch(tmp_path, mnist_arrays):
    images, labels = mnist_arrays
    _write_mnist(tmp_path, images, labels[:4])
    with pytest.raises(DatasetError, match=r"has 5 images but .* has 4 labels"):
        load(f"mnist:{tmp_path}")


# --- CSV -----------------------------------------------------------------------------------


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return f"csv:{path}"


def test_csv_classification_without_header(tmp_path):
    spec = _csv(tmp_path, "0.5,1,7\n1.5,2,3\n2.5,3,7\n\n3.5,4,5\n4.5,5,3\n5.5,6,5\n")
    ds = load(spec)
    assert ds.name == spec
    assert ds.X.dtype == np.float64 and ds.X.shape == (6, 2)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == [2, 0, 2, 1, 0, 1]
    assert ds.n_classes == 3 and ds.classes == [3, 5, 7]
    assert load(spec, task="regress").y[:, 0].tolist() == [7, 3, 7, 5, 3, 5]


def test_csv_regression_with_header(tmp_path):
    ds = load(_csv(tmp_path, "x1,x2,target\n1,2,0.5\n3,4,1.0\n5,6,2\n"))
    assert ds.X.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    assert ds.y.dtype == np.float64 and ds.y.shape == (3, 1)
    assert ds.y[:, 0].tolist() == [0.5, 1.0, 2.0]
    assert ds.n_classes is None and ds.n_outputs == 1
    assert "header skipped" in ds.description


def test_csv_header_with_numeric_names_and_float_labels(tmp_path):
    ds = load(_csv(tmp_path, "0,1,label\n0.1,0.2,1.0\n0.3,0.4,-1.0\n0.5,0.6,1\n0.7,0.8,-1\n"))
    assert ds.X.shape == (4, 2) and ds.y.tolist() == [1, 0, 1, 0]
    assert ds.classes == [-1, 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("a,b,label\n", "header line but no data rows"),
        ("1\n2\n", "line 1: no ',' ';' or tab delimiter found, so the file has one column"),
        ("1,2,0\n3,4\n", "line 2: 2 fields, expected 3 like line 1"),
        ("1,2,0\n3,x,1\n", "line 2 column 2: 'x' is not a number"),
        ("1,2,0\n3,,1\n", "line 2 column 2: an empty cell \\(a missing value\\)"),
        ("1,2,0\n3,4,nan\n", "line 2 column 3: 'nan' is not a finite number"),
        ("1,2,0\n3,inf,1\n", "line 2 column 2: 'inf' is not a finite number"),
    ],
)
def test_csv_errors(tmp_path, text, expected):
    with pytest.raises(DatasetError, match=expected) as info:
        load(_csv(tmp_path, text))
    assert "\n" not in str(info.value)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load(f"csv:{tmp_path / 'missing.csv'}")


# --- split ---------------------------------------------------------------------------------


def test_split_sizes_and_partition():
    X = np.arange(20, dtype=np.float64).reshape(10, 2)
    y = np.arange(10, dtype=np.float64).reshape(10, 1)
    X_train, y_train, X_val, y_val = split(X, y, 0.3, seed=5)
    assert X_train.shape == (7, 2) and y_train.shape == (7, 1)
    assert X_val.shape == (3, 2) and y_val.shape == (3, 1)
    assert sorted(np.concatenate([y_train, y_val])[:, 0].tolist()) == list(range(10))
    assert np.array_equal(X_train[:, 0] / 2, y_train[:, 0])


def test_split_zero_fraction_gives_empty_validation():
    X, y = np.ones((6, 3)), np.zeros(6, dtype=np.int64)
    X_train, y_train, X_val, y_val = split(X, y, 0.0)
    assert X_train.shape == (6, 3) and y_train.shape == (6,)
    assert X_val.shape == (0, 3) and y_val.shape == (0,) and y_val.dtype == np.int64
    _, _, _, y_val2 = split(X, np.zeros((6, 2)), 0.0)
    assert y_val2.shape == (0, 2)


def test_split_is_stratified():
    y = np.repeat(np.arange(3), [50, 30, 20]).astype(np.int64)
    X = np.arange(100, dtype=np.float64).reshape(-1, 1)
    _, y_train, X_val, y_val = split(X, y, 0.2, seed=1)
    assert np.bincount(y_val).tolist() == [10, 6, 4]
    assert np.bincount(y_train).tolist() == [40, 24, 16]
    assert np.array_equal(y[X_val[:, 0].astype(int)], y_val)


def test_split_deterministic_per_seed():
    ds = load("spirals:60")
    first, again = split(ds.X, ds.y, 0.25, seed=7), split(ds.X, ds.y, 0.25, seed=7)
    other = split(ds.X, ds.y, 0.25, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[2], other[2])


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1.5])
def test_split_rejects_bad_fraction(fraction):
    with pytest.raises(DatasetError, match=r"val_fraction must be in \[0, 1\)"):
        split(np.ones((4, 1)), np.zeros(4, dtype=np.int64), fraction)


def test_split_rejects_mismatched_lengths():
    with pytest.raises(DatasetError, match="same length"):
        split(np.ones((4, 1)), np.zeros(3, dtype=np.int64), 0.5)
