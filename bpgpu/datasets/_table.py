"""The :class:`Table` every file reader returns (features, labels, names, a note), and what the
readers share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpgpu.errors import DatasetError


@dataclass(frozen=True, eq=False)
class Table:
    """Features, labels (or None), the header's feature names (or None) and a note for users."""

    X: np.ndarray
    labels: np.ndarray | None
    columns: list[str] | None
    note: str


def count(n: int, noun: str) -> str:
    """Return e.g. "1 feature" or "4 features"."""
    return f"{n:,} {noun}" + "s" * (n != 1)


def note(X: np.ndarray, labels: np.ndarray | None, extras: list[str]) -> str:
    """Summarise a table in one line for users."""
    label = "" if labels is None else " + text label" if labels.dtype.kind == "U" else " + label"
    shape = f"{count(X.shape[0], 'row')}, {count(X.shape[1], 'feature')}{label}"
    return f"{shape}; {', '.join(extras)}"


def existing(path: str | Path, what: str) -> Path:
    """Return ``path`` as a Path, raising when it is not an existing file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; give the path of an existing {what}")
    return path
