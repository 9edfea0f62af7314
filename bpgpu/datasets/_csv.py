"""Numeric CSV files: feature columns, then the label (or regression target) column."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np

from bpgpu.datasets._dataset import Dataset
from bpgpu.errors import DatasetError


def _is_number(cell: str) -> bool:
    """Return True when ``cell`` parses as a float."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield the non-blank rows of ``path`` with their 1-based line numbers."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(
            f"cannot read CSV file {path} ({exc}); give a readable UTF-8 comma-separated file"
        ) from exc


def _cell(path: Path, line: int, column: int, text: str) -> float:
    """Parse one cell, raising a DatasetError that names its row and column."""
    try:
        value = float(text)
    except ValueError:
        shown = repr(text.strip()) if text.strip() else "an empty cell"
        raise DatasetError(
            f"{path} row {line} column {column}: {shown} is not a number; "
            "make every cell after the optional header line numeric"
        ) from None
    if not math.isfinite(value):
        raise DatasetError(
            f"{path} row {line} column {column}: {text.strip()!r} is not finite; "
            "replace NaN and infinite values with numbers"
        )
    return value


def _numbers(path: Path, line: int, row: list[str]) -> np.ndarray:
    """Convert one data row to float64, naming the first bad cell on failure."""
    try:
        values = np.asarray(row, dtype=np.float64)
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        values = np.array([_cell(path, line, j, text) for j, text in enumerate(row, start=1)])
    return values


def _table(path: Path, rows: Iterator[tuple[int, list[str]]]) -> tuple[np.ndarray, bool]:
    """Return the numeric table from ``rows`` and whether a header line was skipped."""
    first_line, first = next(rows, (0, []))
    if not first:
        raise DatasetError(f"CSV file {path} is empty; give feature columns then a label column")
    width, header = len(first), not all(_is_number(cell) for cell in first)
    if width < 2:
        raise DatasetError(
            f"{path} has {width} column; give at least one feature column then the label column"
        )
    data = [] if header else [_numbers(path, first_line, first)]
    for line, row in rows:
        if len(row) != width:
            raise DatasetError(
                f"{path} row {line} has {len(row)} columns, expected {width} like "
                f"row {first_line}; give every row the same number of cells"
            )
        data.append(_numbers(path, line, row))
    if not data:
        raise DatasetError(f"{path} has a header line but no data rows; add data rows below it")
    return np.vstack(data), header


def load_csv(spec: str, filename: str) -> Dataset:
    """Load a numeric CSV file: features first, the label or target in the last column.

    A first line holding any non-numeric cell is taken as a header and skipped. If every
    value in the last column is an integer, the data set is a classification one with the
    labels remapped to ``0..k-1`` (the original values are in ``hints["classes"]``);
    otherwise it is a regression one with ``y`` of shape ``(n, 1)``.

    Parameters
    ----------
    spec : str
        The spec string, stored as the data set's name.
    filename : str
        Path of the CSV file.

    Returns
    -------
    Dataset
        X float64 of shape (n, columns - 1); y int64 labels or float64 targets.
    """
    path = Path(filename).expanduser()
    if not path.is_file():
        raise DatasetError(f"CSV file {path} does not exist; give the path of an existing file")
    with closing(_rows(path)) as rows:
        table, header = _table(path, rows)
    X, target = table[:, :-1], table[:, -1]
    skipped = ", header skipped" if header else ""
    shape = f"{X.shape[0]} rows, {X.shape[1]} features{skipped}"
    if np.all(target == np.round(target)):
        classes, labels = np.unique(target, return_inverse=True)
        return Dataset(
            name=spec,
            X=X,
            y=labels.astype(np.int64).reshape(-1),
            n_classes=len(classes),
            description=f"CSV {path}: {shape}, {len(classes)} classes (integer last column)",
            hints={"classes": [int(c) for c in classes]},
        )
    return Dataset(
        name=spec,
        X=X,
        y=target.reshape(-1, 1),
        n_classes=None,
        description=f"CSV {path}: {shape}, regression on the last column",
    )
