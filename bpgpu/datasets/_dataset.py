"""The :class:`Dataset` record every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpgpu.errors import DatasetError


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded data set: host-side NumPy arrays plus what a model needs to know about them.

    Parameters
    ----------
    name : str
        The spec the data set was loaded from, e.g. ``"digits"`` or ``"csv:/path/x.csv"``.
    X : numpy.ndarray
        Inputs, float64, shape ``(n_samples, n_features)``.
    y : numpy.ndarray
        Classification: int64 labels of shape ``(n_samples,)`` in ``[0, n_classes)``.
        Regression: float64 targets of shape ``(n_samples, n_outputs)``.
    n_classes : int or None
        Number of classes, or None for regression data.
    description : str
        One line describing the data, shown by the CLI.
    hints : dict, optional
        Suggested model settings (layers, activation, loss, initial weights, ``standardize``,
        ...).
    classes : list, optional
        Classification: the label of each class index (numbers or strings); by default
        ``0..n_classes-1``. ``None`` for regression data.

    Notes
    -----
    Equality and hashing are by identity (``eq=False``): comparing arrays element-wise
    inside a generated ``__eq__`` would be ambiguous.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    n_classes: int | None
    description: str
    hints: dict = field(default_factory=dict)
    classes: list | None = None

    def __post_init__(self) -> None:
        if self.n_classes is not None and self.classes is None:
            object.__setattr__(self, "classes", list(range(self.n_classes)))
        if self.X.ndim != 2:
            raise DatasetError(
                f"dataset {self.name!r}: X must be 2-D (n_samples, n_features), "
                f"got shape {self.X.shape}; reshape the inputs"
            )
        expected_ndim = 1 if self.n_classes is not None else 2
        if self.y.ndim != expected_ndim or len(self.y) != len(self.X):
            raise DatasetError(
                f"dataset {self.name!r}: y has shape {self.y.shape} for X of shape "
                f"{self.X.shape}; give one {'label' if expected_ndim == 1 else 'target row'} "
                "per sample"
            )

    @property
    def task(self) -> str:
        """``"classify"`` or ``"regress"``."""
        return "regress" if self.n_classes is None else "classify"

    @property
    def n_features(self) -> int:
        """Number of input features (columns of ``X``)."""
        return int(self.X.shape[1])

    @property
    def n_outputs(self) -> int:
        """Number of network outputs: ``n_classes`` for classification, ``y.shape[1]`` otherwise."""
        if self.n_classes is not None:
            return int(self.n_classes)
        return int(self.y.shape[1])

    @property
    def n_samples(self) -> int:
        """Number of samples (rows of ``X``)."""
        return int(self.X.shape[0])
