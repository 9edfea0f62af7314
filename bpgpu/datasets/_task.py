"""Classification or regression: the rule that decides, and labels turned into class indices.

The rule for ``task="auto"`` (the README states it): a last column of text, or of whole numbers
with at most :data:`MAX_AUTO_CLASSES` distinct values and no more than half as many distinct
values as rows, holds class labels; anything else (fractions, or many distinct whole numbers such
as prices in whole dollars) is a regression target.
"""

from __future__ import annotations

import numpy as np

from bpgpu.datasets._dataset import Dataset
from bpgpu.errors import DatasetError
from bpgpu.validation import encode_labels

TASKS = ("auto", "classify", "regress")
MAX_AUTO_CLASSES = 20


def decide(labels: np.ndarray, task: str = "auto") -> tuple[str, str]:
    """``("classify" | "regress", why)`` for a 1-D label column under ``task``."""
    if task not in TASKS:
        raise DatasetError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    text = labels.dtype.kind in "USO"
    if text:
        if task == "regress":
            raise DatasetError("the target column holds text, which cannot be regressed; "
                               "use --task classify (or auto)")
        return "classify", "the last column holds text labels"
    whole = bool(np.all(labels == np.round(labels)))
    distinct = len(np.unique(labels))
    if task == "classify":
        if not whole:
            raise DatasetError("--task classify, but the last column holds fractions (e.g. "
                               f"{_fraction(labels)!r}); use --task regress for such targets")
        return "classify", "--task classify"
    if task == "regress":
        return "regress", "--task regress"
    if not whole:
        return "regress", "the last column holds fractions"
    if distinct <= MAX_AUTO_CLASSES and 2 * distinct <= len(labels):
        return "classify", (f"the last column holds {distinct} distinct whole numbers in "
                            f"{len(labels):,} rows; --task regress to fit them as numbers")
    return "regress", (f"the last column holds {distinct:,} distinct whole numbers in "
                       f"{len(labels):,} rows, too many for classes (at most {MAX_AUTO_CLASSES}, "
                       "each in two rows or more on average); --task classify to treat them as "
                       "classes")


def _fraction(labels):
    return labels[labels != np.round(labels)][0].item()


def labelled(name: str, X: np.ndarray, labels: np.ndarray, *, task: str = "auto",
             classes=None, description: str = "", hints: dict | None = None) -> Dataset:
    """A :class:`Dataset` from features and a raw label column (numbers or text).

    Parameters
    ----------
    name : str
        The spec the data came from.
    X : numpy.ndarray, shape (n, n_features)
    labels : numpy.ndarray, shape (n,)
        Class labels (numbers or text) or regression targets.
    task : {"auto", "classify", "regress"}
        See :func:`decide`.
    classes : list, optional
        The classes to number the labels by (a model's, when it is evaluated); a label not among
        them is a :class:`DatasetError` naming it. By default the sorted distinct labels.
    description, hints
        As in :class:`Dataset`; the task is added to the description, and why it was chosen
        to the hints (``task_reason``).
    """
    chosen, why = decide(labels, task)
    hints = {**(hints or {}), "task_reason": why}
    if chosen == "classify" and classes is None and len(np.unique(labels)) < 2:
        raise DatasetError(f"{name}: the label column holds one class only "
                           f"({labels[0].item()!r}); a classifier needs rows of two classes "
                           "or more (or use --task regress for numeric targets)")
    if chosen == "regress":
        return Dataset(name=name, X=X, y=np.asarray(labels, dtype=np.float64).reshape(-1, 1),
                       n_classes=None, description=f"{description}, regression",
                       hints=hints)
    if classes is None:
        classes = np.unique(labels).tolist()
        if labels.dtype.kind not in "USO":
            classes = [int(c) for c in classes]
    y = relabel_indices(name, labels, classes)
    return Dataset(name=name, X=X, y=y, n_classes=len(classes), classes=list(classes),
                   description=f"{description}, {len(classes)} classes", hints=hints)


def relabel_indices(name: str, labels: np.ndarray, classes) -> np.ndarray:
    """The index in ``classes`` of each label; a :class:`DatasetError` for an unknown one."""
    try:
        return encode_labels(classes, labels, name)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None


def relabel(data: Dataset, classes) -> Dataset:
    """``data`` with its class indices renumbered by ``classes`` (a model's labels)."""
    if data.n_classes is None:
        raise DatasetError(f"{data.name} holds regression targets, not class labels; evaluate a "
                           "regression model on it, or a classifier on labelled data")
    labels = np.asarray(data.classes)[data.y]
    y = relabel_indices(data.name, labels, classes)
    return Dataset(name=data.name, X=data.X, y=y, n_classes=len(classes), classes=list(classes),
                   description=data.description, hints=data.hints)
