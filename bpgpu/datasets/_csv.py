"""Read the CSV files users bring (comma, semicolon or tab).

:func:`read_csv` follows these rules:

1. The text is UTF-8; a leading BOM (Excel writes one) is ignored, and so are blank lines (and
   lines of delimiters only). Lines end in ``\\n`` or ``\\r\\n``.
2. The delimiter is found in the first 64 KiB (at least 10 lines): among ``,`` ``;`` and tab,
   the candidates that split every sampled line (read by the ``csv`` module, so quoted fields
   are respected) into the same number (at least 2) of fields. If several qualify, ``;`` and
   tab win over ``,`` (a ``;`` on every line is the delimiter, its commas decimal marks). One
   column is an error.
3. With a ``;`` or tab delimiter, when sampled cells look like ``12,5`` (digits, one comma,
   digits), commas are read as decimal points (Excel in many European locales).
4. ``"..."`` fields, with embedded delimiters, are read as the ``csv`` module reads them.
5. ``header="auto"`` (``"yes"``/``True`` and ``"no"``/``False`` force it): the first row is a
   header when none of its cells is a number (names, or an empty first cell), except that it
   may start (after an optional empty first cell) with ``0,1,...,j-1``, pandas' names for
   unnamed columns, as in ``0,1,2,3`` or ``0,1,2,3,label``. Otherwise it is data: ``1,2,cat``
   or ``0x10,5,1`` is data, and its error names line 1.
6. When the header's first cell is empty and the first column holds distinct whole numbers ≥ 0
   (``DataFrame.to_csv`` with its default ``index=True``, also after a split or a shuffle), that
   column is dropped. A first row of numbers whose text label appears in no later sampled row,
   where those rows' text labels repeat (a header of numeric names beside a named label column),
   is refused under ``header="auto"``: ``header="yes"`` or ``"no"`` says which it is.
7. Cells are numbers, read as float64 (ints, floats, exponents, signs, spaces around). An empty
   cell, text in a feature column, NaN or infinity, or a row with a different number of fields
   is an error naming its line (and column) in the file.
8. The last column holds the labels: all numbers give float64, all text a str array (spaces
   around stripped); a mix is an error naming the first cell of the rarer kind.
9. NumPy's C parser (``np.loadtxt``) reads the file in one pass, text labels through a
   converter; only when it fails is the file scanned with the ``csv`` module, which stops at the
   first problem and names it. Targets for a 40 MB numeric file: extra memory at most 4 times
   the file size, time at most twice ``np.loadtxt(path, delimiter=",")``'s.

With ``n_features=K`` (a model's K features), a file of K columns has no label column and a
file of K+1 columns has its label last.
"""

from __future__ import annotations

import csv
import itertools
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np

from bpgpu.datasets._table import Table, count, existing, note
from bpgpu.errors import DatasetError

__all__ = ["read_csv"]

# [0-9], not \d: \d also matches other scripts' digits, which np.loadtxt rejects.
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_DECIMAL_COMMA = re.compile(r"[-+]?[0-9]+,[0-9]+(?:[eE][-+]?[0-9]+)?")
_NON_FINITE = ("nan", "inf", "infinity")
_SAMPLE_CHARS = 64 * 1024
_SAMPLE_LINES = 10  # at least, so that a very wide header still comes with data rows
_DELIMITERS = (";", "\t", ",")  # the preference when several qualify (rule 2)
_SHOWN = {";": "';'", "\t": "tab", ",": "','"}
_HEADER = {"auto": None, "yes": True, "no": False}


@dataclass(frozen=True)
class _Layout:
    """What the first 64 KiB say about a CSV file."""

    path: Path
    delimiter: str
    decimal: bool  # commas are decimal marks (rule 3)
    header: list[str] | None
    skip: int  # physical lines up to and including the header
    width: int
    first_line: int  # the line whose field count fixed ``width``
    text_label: bool  # the sampled last column holds text


def _kind(cell: str, decimal: bool) -> str:
    """Classify a cell as np.loadtxt reads it: "number", "non-finite", "empty" or "text"."""
    text = cell.strip().replace(",", ".") if decimal else cell.strip()
    if not text:
        return "empty"
    if _NUMBER.fullmatch(text):
        return "number"
    return "non-finite" if text.lstrip("+-").lower() in _NON_FINITE else "text"


def _split(lines: list[str], delimiter: str) -> list[tuple[int, list[str]]]:
    """Return the non-blank rows of ``lines`` with their 1-based line numbers."""
    reader = csv.reader(lines, delimiter=delimiter)
    return [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]


def _delimiter(path: Path, lines: list[str], n_features: int | None) -> str:
    """Pick the delimiter of the sampled ``lines`` (rule 2)."""
    counts = {d: [len(row) for _, row in _split(lines, d)] for d in _DELIMITERS}
    if not counts[","]:  # blank lines only: the caller reports an empty file
        return ","
    counts = {d: c for d, c in counts.items() if c[0] >= 2}
    even = [d for d, c in counts.items() if len(set(c)) == 1]
    if even or counts:  # with a ragged row, the most rows agree; the scan names the odd one
        return even[0] if even else max(counts, key=lambda d: counts[d].count(counts[d][0]))
    if n_features == 1:  # a one-feature model reads a one-column file
        return ","
    raise DatasetError(
        f"{path} line 1: no ',' ';' or tab delimiter found, so the file has one column; "
        "separate the feature columns and the label column with commas, semicolons or tabs"
    )


def _is_header(cells: list[str], decimal: bool, header: bool | None) -> bool:
    """Decide whether the first row is a header (rule 5)."""
    if header is not None:
        return header
    names = [cell.strip() for cell in cells]
    names = names[1:] if names[0] == "" else names
    numbered = 0  # pandas names unnamed columns 0, 1, ..., beside any named ones
    while numbered < len(names) and names[numbered] == str(numbered):
        numbered += 1
    return all(_kind(cell, decimal) in ("text", "empty") for cell in names[numbered:])


def _refuse_lone_first_label(path, line, first, rest):
    """A first row of numbers whose text label no later row has, where the later rows' text
    labels repeat (classes), is most likely a header with numeric names (years, wavelengths)
    beside a named label column: too close to call, so ask."""
    label, labels = first[-1].strip(), [row[-1].strip() for _, row in rest]
    classes = set(labels)
    text = all(_kind(cell, False) == "text" for cell in classes)
    if text and 2 * len(classes) <= len(labels) and label not in classes:
        raise DatasetError(
            f"{path} line {line}: is it a header? Its label cell {label!r} appears in no other "
            "row of the first 64 KiB, though its other cells are numbers; say which with "
            "--header yes (names) or --header no (a data row) — header='yes'/'no' in Python")


def _sniff(path: Path, header: bool | None, n_features: int | None) -> _Layout:
    """Work out the layout of ``path`` from its first 64 KiB (rules 2, 3 and 5)."""
    lines, size = [], 0
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for line in handle:
            lines.append(line)
            size += len(line)
            if size >= _SAMPLE_CHARS and len(lines) >= _SAMPLE_LINES:
                break
    delimiter = _delimiter(path, lines, n_features)
    rows = _split(lines, delimiter)
    if not rows:
        raise DatasetError(f"{path} is empty; give rows of feature values, then the label")
    cells = [cell.strip() for _, row in rows for cell in row]
    decimal = delimiter != "," and any(_DECIMAL_COMMA.fullmatch(cell) for cell in cells)
    line, first = rows[0]
    named = _is_header(first, decimal, header)
    data = rows[int(named) :]
    text = any(_kind(row[-1], decimal) == "text" for _, row in data if len(row) == len(first))
    if header is None and not named and text:
        _refuse_lone_first_label(path, line, first, rows[1:])
    names = [cell.strip() for cell in first] if named else None
    return _Layout(path, delimiter, decimal, names, line * named, len(first), line, text)


def _lines(handle: Iterator[str], layout: _Layout) -> Iterator[str]:
    """Yield the lines for np.loadtxt: no header, no blank lines, decimal points."""
    blank = " \t\r\n" + layout.delimiter
    lines = (line for line in itertools.islice(handle, layout.skip, None) if line.strip(blank))
    if not layout.decimal:
        return lines
    if not layout.text_label:
        return (line.replace(",", ".") for line in lines)
    # Text labels keep their commas: only the fields before the last delimiter are numbers.
    split = (line.rpartition(layout.delimiter) for line in lines)
    return (head.replace(",", ".") + sep + tail for head, sep, tail in split)


def _load(layout: _Layout) -> tuple[np.ndarray, dict[str, int]]:
    """Parse the data rows in one pass; text labels come back as codes into the dict."""
    codes: dict[str, int] = {}
    converters = None
    if layout.text_label:
        converters = {layout.width - 1: lambda cell: codes.setdefault(cell, len(codes))}
    with layout.path.open(encoding="utf-8-sig") as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no rows is reported by the caller, not as a warning
        data = np.loadtxt(
            _lines(handle, layout), dtype=np.float64, delimiter=layout.delimiter,
            quotechar='"', comments=None, ndmin=2, converters=converters, encoding="utf-8",
        )  # encoding: NumPy < 2 would otherwise hand the converter latin-1 text
    return data, codes


def _cell_error(layout: _Layout, line: int, column: int, cell: str, kind: str) -> DatasetError:
    """Build the one-line error for a bad cell (rule 7)."""
    where, cell = f"{layout.path} line {line} column {column}", cell.strip()
    if kind == "empty":
        return DatasetError(f"{where}: an empty cell (a missing value); fill it or drop the row")
    if kind == "non-finite":
        fix = "replace NaN and infinity with numbers or drop the row"
        return DatasetError(f"{where}: {cell!r} is not a finite number; {fix}")
    fix = "feature columns hold numbers only, so fix the cell or drop the row"
    if line == layout.first_line and layout.header is None:
        fix += f"; if line {line} is a header, give every column a name"
    return DatasetError(f"{where}: {cell!r} is not a number; {fix}")


def _check_row(layout: _Layout, line: int, cells: list[str], label: int, tally: dict) -> None:
    """Raise on the first bad field of a row; count the label column's kinds in ``tally``."""
    if len(cells) != layout.width:
        raise DatasetError(
            f"{layout.path} line {line}: {len(cells)} fields, expected {layout.width} like "
            f"line {layout.first_line}; give every row the same number of fields"
        )
    for column, cell in enumerate(cells, start=1):
        kind = _kind(cell, layout.decimal)
        if kind in ("empty", "non-finite") or (kind == "text" and column != label):
            raise _cell_error(layout, line, column, cell, kind)
        if column == label:
            tally.setdefault(kind, [0, line, cell.strip()])[0] += 1


def _scan(layout: _Layout, has_label: bool, failure: object) -> NoReturn:
    """Scan the file with the csv module and raise the error for its first problem."""
    label, tally = (layout.width if has_label else 0), {}
    with layout.path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=layout.delimiter)
        for cells in reader:
            if reader.line_num > layout.skip and any(cell.strip() for cell in cells):
                _check_row(layout, reader.line_num, cells, label, tally)
    if len(tally) == 2:  # the label column mixes numbers and text (rule 8)
        text, number = tally["text"], tally["number"]
        rare, common, kind, other = (
            (text, number, "text", "numbers") if text[0] <= number[0]
            else (number, text, "a number", "text")
        )
        raise DatasetError(
            f"{layout.path} line {rare[1]} column {layout.width}: {rare[2]!r} is {kind}, but "
            f"{common[0]:,} other rows hold {other} in this column; make the label column "
            "all numbers or all text"
        )
    raise DatasetError(f"{layout.path} cannot be read ({failure}); check its delimiter and quotes")


def _has_label(path: Path, columns: int, n_features: int | None) -> bool:
    """Decide whether the last of ``columns`` is the label column, checking the count."""
    if n_features is None:
        if columns < 2:
            raise DatasetError(f"{path} has 1 data column; give feature columns, then the label")
        return True
    if columns in (n_features, n_features + 1):
        return columns == n_features + 1
    raise DatasetError(
        f"{path} has {columns} columns but the model takes {count(n_features, 'feature')}; "
        f"give {n_features} feature columns, optionally followed by the label column"
    )


def _is_index(column: np.ndarray) -> bool:
    """A column of distinct whole numbers ≥ 0 under an empty header cell: pandas' index, as
    ``to_csv`` writes it — 0..n-1, or any subset and order of it after a split or shuffle."""
    if not np.all((column >= 0) & (column == np.round(column))):
        return False
    return len(np.unique(column)) == len(column)


def _table(layout: _Layout, data: np.ndarray, codes: dict, n_features: int | None) -> Table:
    """Turn the parsed block into a Table, or raise the scan's error when a check fails."""
    n = data.shape[0]
    if n == 0:
        raise DatasetError(f"{layout.path} has a header line but no data rows; add rows below it")
    index = layout.header is not None and layout.header[0] == "" and layout.width > 1
    index = bool(index and _is_index(data[:, 0]))
    has_label = _has_label(layout.path, layout.width - index, n_features)
    names = [cell.strip() for cell in codes]
    bad = data.shape[1] != layout.width or not np.isfinite(data).all()
    if codes:  # text labels: every one text, and the file has a label column
        bad = bad or not has_label or any(_kind(name, layout.decimal) != "text" for name in names)
    if bad:
        _scan(layout, has_label, "np.loadtxt and the csv module disagree")
    stop = layout.width - has_label
    labels = data[:, -1].copy() if has_label else None
    if codes:
        labels = np.array(names, dtype=str)[labels.astype(np.intp)]
    X = data[:, int(index) : stop]  # a view: a copy would double the memory of a large file
    extras = [f"{_SHOWN[layout.delimiter]}-separated"] + ["decimal comma"] * layout.decimal
    extras += ["header skipped"] * (layout.header is not None)
    extras += ["pandas index column dropped"] * index
    columns = None if layout.header is None else layout.header[int(index) : stop]
    return Table(X, labels, columns, note(X, labels, extras))


def read_csv(
    path: str | Path, *, header: str | bool = "auto", n_features: int | None = None
) -> Table:
    """Read a CSV file of feature columns and (usually) a last, label column.

    Parameters
    ----------
    path : str or Path
        The file; the rules it follows are in this module's docstring.
    header : {"auto", "yes", "no"} or bool, optional
        Whether the first non-blank row is a header; "auto" decides by rule 5.
    n_features : int, optional
        The number of features a model takes: a file of that many columns has no label column.

    Returns
    -------
    Table
        ``X`` float64 (n, k); ``labels`` float64 or str (n,), or None; ``columns``, the header's
        feature names or None; ``note``, one line for users.

    Raises
    ------
    DatasetError
        In one line: the file, the line and column, what is wrong and how to fix it.
    """
    mode = _HEADER.get(header.lower(), "?") if isinstance(header, str) else header
    if not (mode is None or isinstance(mode, bool)):
        raise DatasetError(f"header must be 'auto', 'yes' or 'no', got {header!r}")
    path = existing(path, "CSV file")
    try:
        layout = _sniff(path, mode, n_features)
        try:
            data, codes = _load(layout)
        except UnicodeDecodeError:
            raise
        except ValueError as exc:  # the scan below names the first problem's line and column
            failure = str(exc)
        else:
            return _table(layout, data, codes, n_features)
        columns = layout.width - (layout.header is not None and layout.header[0] == "")
        _scan(layout, n_features is None or columns == n_features + 1, failure)
    except UnicodeDecodeError as exc:
        fix = "save it as UTF-8 (in Excel: 'CSV UTF-8')"
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason}); {fix}") from None
    except csv.Error as exc:
        raise DatasetError(f"{path} cannot be parsed as CSV ({exc}); fix its quotes") from None
