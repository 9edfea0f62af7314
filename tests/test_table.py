"""Tests of the CSV, .npz and .npy readers: the files users bring, and the errors they get."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from bpgpu.datasets import Table, read_csv, read_npz
from bpgpu.errors import DatasetError

RNG = np.random.default_rng(7)
SPECIES = np.array(["setosa", "versicolor", "virginica"])


def _frame(n: int = 30, text: bool = False, names: bool = True) -> pd.DataFrame:
    """A data frame of 3 feature columns and a label column, as users build them."""
    X = np.round(RNG.normal(size=(n, 3)) * 10, 4)
    y = SPECIES[RNG.integers(0, 3, n)] if text else RNG.integers(0, 3, n)
    frame = pd.DataFrame(X, columns=["sepal", "petal", "width"] if names else None)
    frame[frame.shape[1] if not names else "label"] = y
    return frame


def _write(tmp_path, text: str | bytes, name: str = "data.csv"):
    """Write ``text`` byte for byte (no newline translation)."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def _same(table: Table, frame: pd.DataFrame, columns: list[str] | None) -> None:
    """Assert that ``table`` holds exactly what pandas read into ``frame``."""
    np.testing.assert_array_equal(table.X, frame.iloc[:, :-1].to_numpy(dtype=np.float64))
    expected = frame.iloc[:, -1].to_numpy()
    if expected.dtype.kind in "iuf":
        assert table.labels.dtype == np.float64
        np.testing.assert_array_equal(table.labels, expected.astype(np.float64))
    else:
        assert table.labels.dtype.kind == "U"
        assert table.labels.tolist() == [str(value).strip() for value in expected]
    assert table.X.dtype == np.float64 and table.X.ndim == 2  # a view of the parsed block
    assert table.columns == columns


def _error(path, **kwargs) -> str:
    """Return the message of the DatasetError that reading ``path`` raises; check it is one line."""
    reader = read_npz if str(path).endswith(".npz") else read_csv
    with pytest.raises(DatasetError) as info:
        reader(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


# --- files written by pandas, Excel and by hand -------------------------------------------


@pytest.mark.parametrize("text", [False, True], ids=["integer-labels", "species-labels"])
@pytest.mark.parametrize("index", [True, False], ids=["index", "no-index"])
def test_pandas_named_columns(tmp_path, index, text):
    frame = _frame(text=text)
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=index)
    table = read_csv(path)
    expected = pd.read_csv(path, index_col=0 if index else None)
    _same(table, expected, ["sepal", "petal", "width"])
    assert table.note.startswith("30 rows, 3 features + ")
    assert ("pandas index column dropped" in table.note) == index
    assert "header skipped" in table.note


@pytest.mark.parametrize("index", [True, False], ids=["index", "no-index"])
def test_pandas_unnamed_columns(tmp_path, index):
    frame = _frame(names=False)
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=index)
    assert path.read_text().splitlines()[0] == (",0,1,2,3" if index else "0,1,2,3")
    expected = pd.read_csv(path, index_col=0 if index else None)
    _same(read_csv(path), expected, ["0", "1", "2"])


def test_empty_first_header_cell_kept_when_not_an_index(tmp_path):
    path = _write(tmp_path, ",a,y\n5,1.5,0\n5.5,2.5,1\n")  # not distinct whole numbers
    table = read_csv(path)
    np.testing.assert_array_equal(table.X, [[5, 1.5], [5.5, 2.5]])
    assert table.columns == ["", "a"] and "index" not in table.note


def test_excel_semicolons_decimal_comma_bom_crlf(tmp_path):
    text = "\ufeffLänge;Breite;Art\r\n5,1;3,5;setosa\r\n4,9;-3,0e-1;virginica\r\n\r\n"
    text += "6;2,25;setosa\r\n"
    path = _write(tmp_path, text)
    table = read_csv(path)
    expected = pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig")
    _same(table, expected, ["Länge", "Breite"])
    assert table.note == (
        "3 rows, 2 features + text label; ';'-separated, decimal comma, header skipped"
    )


def test_decimal_comma_numeric_labels_and_commas_in_text_labels(tmp_path):
    table = read_csv(_write(tmp_path, "1,5;2;0,25\n3;4,75;1\n"))
    np.testing.assert_array_equal(table.X, [[1.5, 2], [3, 4.75]])
    np.testing.assert_array_equal(table.labels, [0.25, 1.0])
    table = read_csv(_write(tmp_path, '1,5;2;"Smith, J"\n3;4,5;Doe\n', "names.csv"))
    assert table.labels.tolist() == ["Smith, J", "Doe"]
    np.testing.assert_array_equal(table.X, [[1.5, 2], [3, 4.5]])


def test_tab_file(tmp_path):
    frame = _frame(text=True)
    path = tmp_path / "frame.tsv"
    frame.to_csv(path, sep="\t", index=False)
    table = read_csv(path)
    _same(table, pd.read_csv(path, sep="\t"), frame.columns[:-1].tolist())
    assert "tab-separated" in table.note


def test_quoted_fields(tmp_path):
    path = _write(tmp_path, '"x","y","kind"\n"1.5",2," big, red "\n3,"4e2","small"\n')
    table = read_csv(path)
    _same(table, pd.read_csv(path), ["x", "y"])
    assert table.labels.tolist() == ["big, red", "small"]


def test_blank_lines_spaces_and_signs(tmp_path):
    path = _write(tmp_path, "\n a , b ,y\n\n  \n,,\n 1 ,-2.5, 3\n\n+4,.5e1,-6\n\n")
    table = read_csv(path)
    np.testing.assert_array_equal(table.X, [[1, -2.5], [4, 5]])
    np.testing.assert_array_equal(table.labels, [3, -6])
    assert table.columns == ["a", "b"]


def test_headerless_file(tmp_path):
    data = np.round(RNG.normal(size=(20, 5)), 6)
    path = tmp_path / "plain.csv"
    np.savetxt(path, data, fmt="%.6f", delimiter=",")
    table = read_csv(path)
    np.testing.assert_array_equal(table.X, np.loadtxt(path, delimiter=",")[:, :-1])
    np.testing.assert_array_equal(table.labels, data[:, -1])
    assert table.columns is None
    assert table.note == "20 rows, 4 features + label; ','-separated"


@pytest.mark.parametrize(("header", "rows"), [("yes", 1), (True, 1), ("no", 2), (False, 2)])
def test_header_argument(tmp_path, header, rows):
    table = read_csv(_write(tmp_path, "7,8,9\n1,2,3\n"), header=header)
    assert table.X.shape == (rows, 2)
    assert table.columns == (["7", "8"] if rows == 1 else None)


def test_bad_header_argument(tmp_path):
    with pytest.raises(DatasetError, match="header must be 'auto', 'yes' or 'no'"):
        read_csv(_write(tmp_path, "1,2\n"), header="maybe")


def test_past_the_sample(tmp_path):
    # Rows after the first 64 KiB are read like the others, and their errors name their line.
    body = "".join(f"{i}.25,{i % 7},{i % 3}\n" for i in range(8000))
    table = read_csv(_write(tmp_path, "a,b,y\n" + body))
    assert table.X.shape == (8000, 2) and table.labels[-1] == 7999 % 3
    message = _error(_write(tmp_path, "a,b,y\n" + body + "1,2,cat\n", "late.csv"))
    assert "line 8002 column 3: 'cat' is text, but 8,000 other rows hold numbers" in message
    assert "line 8001 column 2" in _error(_write(tmp_path, body + "1,inf,3\n", "inf.csv"))


def test_good_files_take_the_fast_path(tmp_path, monkeypatch):
    # The csv-module scan is for errors only; good files are parsed by np.loadtxt alone.
    def no_scan(*args):
        raise AssertionError("the success path scanned the file")

    monkeypatch.setattr("bpgpu.datasets._csv._scan", no_scan)
    frame = _frame(text=True)
    frame.to_csv(tmp_path / "text.csv")
    frame.to_csv(tmp_path / "excel.csv", sep=";", decimal=",", index=False)
    assert read_csv(tmp_path / "text.csv").labels.tolist() == frame["label"].tolist()
    assert read_csv(tmp_path / "excel.csv").X.shape == (30, 3)


# --- predict: a model that knows its number of features -----------------------------------


def test_n_features_without_and_with_label(tmp_path):
    path = _write(tmp_path, "a,b,c\n1,2,3\n4,5,6\n")
    table = read_csv(path, n_features=3)
    assert table.labels is None and table.columns == ["a", "b", "c"]
    np.testing.assert_array_equal(table.X, [[1, 2, 3], [4, 5, 6]])
    assert table.note.startswith("2 rows, 3 features; ")
    table = read_csv(path, n_features=2)
    np.testing.assert_array_equal(table.labels, [3, 6])
    assert table.columns == ["a", "b"]


def test_n_features_with_pandas_index(tmp_path):
    path = tmp_path / "frame.csv"
    _frame(text=True).iloc[:, :-1].to_csv(path)
    table = read_csv(path, n_features=3)
    assert table.labels is None and table.X.shape == (30, 3)


def test_n_features_one_column(tmp_path):
    table = read_csv(_write(tmp_path, "1.5\n2\n"), n_features=1)
    np.testing.assert_array_equal(table.X, [[1.5], [2]])


@pytest.mark.parametrize("n_features", [1, 4])
def test_n_features_wrong_width(tmp_path, n_features):
    message = _error(_write(tmp_path, "1,2,3\n4,5,6\n"), n_features=n_features)
    assert f"has 3 columns but the model takes {n_features} feature" in message


def test_n_features_text_in_last_column(tmp_path):
    message = _error(_write(tmp_path, "1,2,cat\n4,5,dog\n"), n_features=3)
    assert "line 1 column 3: 'cat' is not a number" in message


# --- errors: each names the line and column -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("a,b,y\n1,2,3\n4,,6\n", "line 3 column 2", "an empty cell (a missing value); fill it"),
        ("a,b,y\n1,2,\n", "line 2 column 3", "an empty cell"),
        ("1,2,cat\n3,4,5\n5,6,7\n", "line 1 column 3", "'cat' is text, but 2 other rows hold "
         "numbers in this column; make the label column all numbers or all text"),
        ("0x10,5,1\n3,4,5\n", "line 1 column 1", "'0x10' is not a number"),
        ("1,2,3\n4,5\n", "line 2", "2 fields, expected 3 like line 1"),
        ("x,y\n1,2,3\n", "line 2", "3 fields, expected 2 like line 1"),
        ("1,2,3\n4,NaN,6\n", "line 2 column 2", "'NaN' is not a finite number"),
        ("1,2,3\n4,5,-inf\n", "line 2 column 3", "'-inf' is not a finite number"),
        ("1,2,3\n4,five,6\n", "line 2 column 2", "'five' is not a number"),
        ("1,2,a\n3,4,b\n5,6,7\n", "line 3 column 3", "'7' is a number, but 2 other rows hold text"),
        ("\ufeffa;b;y\r\n\r\n1,5;2;3\r\n\r\n4;;6\r\n", "line 5 column 2", "an empty cell"),
        ("a,b,y\n1,2,cat\n3,4, \n", "line 3 column 3", "an empty cell"),
        ("1;2;x\n3;4,5;y\n5;oops;z\n", "line 3 column 2", "'oops' is not a number"),
        ("1\n2\n", "line 1", "no ',' ';' or tab delimiter found"),
    ],
)
def test_error_names_line_and_column(tmp_path, text, where, what):
    message = _error(_write(tmp_path, text))
    assert f"data.csv {where}: {what}" in message


def test_error_for_first_row_suggests_header_names(tmp_path):
    assert "if line 1 is a header" in _error(_write(tmp_path, "id,2,3\n1,2,3\n"))


def test_missing_empty_header_only_and_not_utf8(tmp_path):
    assert "does not exist" in _error(tmp_path / "missing.csv")
    assert "is empty" in _error(_write(tmp_path, "", "empty.csv"))
    assert "is empty" in _error(_write(tmp_path, "\n \n", "blank.csv"))
    assert "header line but no data rows" in _error(_write(tmp_path, "a,b,y\n", "head.csv"))
    assert "is not UTF-8" in _error(_write(tmp_path, "a,b\n1,\xe9\n".encode("latin-1"), "l1.csv"))


# --- .npz files ---------------------------------------------------------------------------


NPZ_LABELS = {
    "float": RNG.normal(size=12),
    "int": np.arange(12) % 3,
    "str": SPECIES[np.arange(12) % 3],
    "column": (np.arange(12) % 2).reshape(-1, 1),
}


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("labels", list(NPZ_LABELS))
def test_npz(tmp_path, save, labels):
    X = RNG.normal(size=(12, 4)).astype(np.float32)
    y = NPZ_LABELS[labels]
    path = tmp_path / "data.npz"
    save(path, X=X, y=y)
    table = read_npz(path)
    np.testing.assert_array_equal(table.X, X.astype(np.float64))
    assert table.X.dtype == np.float64 and table.columns is None
    if labels == "str":
        assert table.labels.dtype.kind == "U" and table.labels.tolist() == y.tolist()
    else:
        assert table.labels.dtype == np.float64
        np.testing.assert_array_equal(table.labels, y.reshape(-1).astype(np.float64))
    label = "text label" if labels == "str" else "label"
    assert table.note == f"12 rows, 4 features + {label}; NumPy .npz"


@pytest.mark.parametrize(
    ("arrays", "what"),
    [
        ({"X": np.ones((3, 2))}, "has no array 'y' (it holds 'X')"),
        ({"features": np.ones((3, 2)), "y": np.ones(3)}, "has no array 'X'"),
        ({"X": np.ones(3), "y": np.ones(3)}, "array 'X' has shape (3,)"),
        ({"X": np.ones((3, 2)), "y": np.ones(4)}, "array 'y' has shape (4,), expected (3,)"),
        ({"X": np.ones((3, 2)), "y": np.ones((3, 2))}, "array 'y' has shape (3, 2)"),
        ({"X": np.array([[1.0, np.nan]]), "y": np.ones(1)}, "'X' holds NaN or infinity"),
        ({"X": np.ones((2, 2)), "y": np.array([1, None], dtype=object)}, "'y' holds Python obj"),
        ({"X": np.array([["a", "b"]]), "y": np.ones(1)}, "array 'X' has shape (1, 2) and dtype"),
    ],
)
def test_npz_errors(tmp_path, arrays, what):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    assert what in _error(path)


def test_npz_not_an_archive(tmp_path):
    np.save(tmp_path / "one.npy", np.ones(3))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    assert "holds a single array" in _error(tmp_path / "one.npz")
    assert "cannot be read as a NumPy .npz file" in _error(_write(tmp_path, "1,2\n", "text.npz"))
    assert "does not exist" in _error(tmp_path / "missing.npz")


def test_messages_are_single_lines_without_tracebacks(tmp_path):
    message = _error(_write(tmp_path, "1,2,3\n4,x,6\n"))
    assert re.fullmatch(r".*data\.csv line 2 column 2: 'x' is not a number; .*", message)
