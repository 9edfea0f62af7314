"""The transforms a network carries: per-column standardisation, ``x ↦ (x − mean) / scale``.

Features of very different sizes (one around 5, another around 600,000) saturate the first layer's
units, and every first-layer gradient is then exactly zero. Standardising each feature with the
mean and standard deviation of the *training* rows removes that, and the network keeps the two
vectors so that ``predict`` and ``evaluate`` apply the same transform to new rows (as a
scikit-learn ``Pipeline`` of ``StandardScaler`` and ``MLPClassifier`` does).

The transform is applied where inputs enter a network (:meth:`bpgpu.MLP.device_inputs`), never
inside the training step: host inputs in float64 on the host, device inputs on the device.

A regression network may also carry a target transform: its targets are standardised the same
way where they enter (:meth:`bpgpu.MLP.device_targets`), so that prices in whole dollars train as
well as values near 1, and :meth:`bpgpu.MLP.predict` answers in the original units.
"""

from __future__ import annotations

import math

import numpy as np


class Standardize:
    """``x ↦ (x − mean) / scale`` per feature.

    Parameters
    ----------
    mean, scale : array-like, shape (n_features,)
        Finite numbers; every ``scale`` > 0.
    """

    kind = "standardize"

    def __init__(self, mean, scale):
        self.mean = _vector(mean, "mean")
        self.scale = _vector(scale, "scale")
        if self.mean.shape != self.scale.shape:
            raise ValueError(f"the transform's mean has {self.mean.size} entries and its scale "
                             f"{self.scale.size}; they must match")
        if np.any(self.scale <= 0):
            raise ValueError("the transform's scale must be > 0 for every feature")
        self._on_device = {}

    @classmethod
    def fit(cls, X):
        """The standardisation of the rows X (n, n_features): their mean and standard deviation,
        a deviation of (nearly) zero — a constant column — counting as 1, as scikit-learn's
        ``StandardScaler`` does."""
        X = np.asarray(X, dtype=np.float64)
        mean, std = X.mean(axis=0), X.std(axis=0)
        constant = std < 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
        return cls(mean, np.where(constant, 1.0, std))

    @property
    def n_features(self):
        return int(self.mean.size)

    def host(self, X):
        """The transform of host rows X (n, n_features), in float64."""
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.scale

    def device(self, backend, X, dtype):
        """The transform of device rows X (already of ``dtype`` on ``backend``), on the device."""
        mean, scale = self._device_pair(backend, dtype)
        return (X - mean) / scale

    def _device_pair(self, backend, dtype):
        key = (backend.name, str(dtype))
        if key not in self._on_device:  # moved once per device and dtype
            self._on_device[key] = (backend.asarray(self.mean, dtype),
                                    backend.asarray(self.scale, dtype))
        return self._on_device[key]

    def inverse(self, backend, Y, dtype):
        """``Y · scale + mean``: device values on the transformed scale back in the original
        units (for a target transform)."""
        mean, scale = self._device_pair(backend, dtype)
        return Y * scale + mean

    def to_json(self):
        """The transform as JSON-able data (Python floats round-trip exactly)."""
        return {"kind": self.kind, "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_json(cls, data):
        """The transform written by :meth:`to_json`; ``ValueError`` for anything else."""
        if not isinstance(data, dict) or data.get("kind") != cls.kind:
            raise ValueError(f"unknown input transform {data!r}")
        return cls(data.get("mean"), data.get("scale"))

    def __eq__(self, other):
        return (isinstance(other, Standardize) and np.array_equal(self.mean, other.mean)
                and np.array_equal(self.scale, other.scale))

    __hash__ = None

    def __repr__(self):
        return f"Standardize({self.n_features} features)"


def _vector(values, name):
    if not isinstance(values, (list, tuple, np.ndarray)):
        raise ValueError(f"the transform's {name} must be a list of numbers, got {values!r}")
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"the transform's {name} must be a list of numbers") from None
    if arr.ndim != 1 or arr.size == 0 or not all(math.isfinite(v) for v in arr.tolist()):
        raise ValueError(f"the transform's {name} must be a non-empty list of finite numbers")
    return arr
