"""The built-in data sets: digits (shipped file), xor, cafeteria and spirals (generated)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bpgpu.datasets._dataset import Dataset
from bpgpu.errors import DatasetError

DIGITS_FILE = Path(__file__).with_name("data") / "digits.npz"

#: True prices in cents of (coffee, juice, toast) in the lecture's cafeteria example.
CAFETERIA_PRICES = np.array([50.0, 150.0, 100.0])
#: The lecture's single bill: 5 coffees, 2 juices, 3 toasts.
CAFETERIA_WEEK1 = np.array([5.0, 2.0, 3.0])


def load_digits(spec: str) -> Dataset:
    """Load the UCI 8x8 handwritten digits shipped with bpgpu (1,797 samples, 10 classes).

    Parameters
    ----------
    spec : str
        The spec string, stored as the data set's name.

    Returns
    -------
    Dataset
        X float64 in [0, 1] of shape (1797, 64), y int64 labels 0..9.
    """
    try:
        with np.load(DIGITS_FILE, allow_pickle=False) as data:
            pixels, labels = data["X"], data["y"]
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(
            f"cannot read the shipped digits file {DIGITS_FILE} ({exc}); reinstall bpgpu"
        ) from exc
    return Dataset(
        name=spec,
        X=pixels.astype(np.float64) / 16.0,
        y=labels.astype(np.int64),
        n_classes=10,
        description=(
            "UCI optical handwritten digits: 1797 8x8 images scaled to [0, 1], 10 classes "
            "(Alpaydin & Kaynak 1998, CC BY 4.0)"
        ),
    )


def load_xor(spec: str) -> Dataset:
    """Return the four XOR points with labels (0, 1, 1, 0).

    Parameters
    ----------
    spec : str
        The spec string, stored as the data set's name.

    Returns
    -------
    Dataset
        X float64 of shape (4, 2), y int64 of shape (4,), two classes.
    """
    return Dataset(
        name=spec,
        X=np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]),
        y=np.array([0, 1, 1, 0], dtype=np.int64),
        n_classes=2,
        description="XOR: the 4 corners of the unit square, label = x1 xor x2 (2 classes)",
        hints={"standardize": False},  # the lecture's corners, as they are
    )


def load_cafeteria(spec: str, weeks: int, seed: int) -> Dataset:
    """Return the lecture's delta-rule cafeteria bills as a regression data set.

    Week 1 is exactly the lecture's bill: portions (5, 2, 3) of (coffee, juice, toast)
    at true prices (50, 150, 100) cents, so the bill is 850. Further weeks draw integer
    portions 1..6 from ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    spec : str
        The spec string, stored as the data set's name.
    weeks : int
        Number of bills (rows), at least 1.
    seed : int
        Seed for the portions of weeks 2 and later.

    Returns
    -------
    Dataset
        X float64 of shape (weeks, 3), y float64 bills of shape (weeks, 1), with hints for
        the lecture's linear neuron (no bias, identity activation, SSE, 50 cents start).
    """
    rng = np.random.default_rng(seed)
    later = rng.integers(1, 7, size=(weeks - 1, 3)).astype(np.float64)
    portions = np.vstack([CAFETERIA_WEEK1, later])
    bills = (portions @ CAFETERIA_PRICES).reshape(-1, 1)
    hints = {
        "layers": [3, 1],
        "activation": "identity",
        "output": "identity",
        "loss": "sse",
        "bias": False,
        "init_weights": [[[50.0], [50.0], [50.0]]],
        "standardize": False,  # the lecture's portions and cents are the point
    }
    return Dataset(
        name=spec,
        X=portions,
        y=bills,
        n_classes=None,
        description=(
            f"cafeteria: {weeks} bill(s) in cents for portions of (coffee, juice, toast); "
            "true prices 50/150/100 (delta-rule lecture example)"
        ),
        hints=hints,
    )


def load_spirals(spec: str, n_points: int, seed: int, noise: float = 0.03) -> Dataset:
    """Return two interleaved spirals, one per class, with X clipped to [-1, 1].

    Parameters
    ----------
    spec : str
        The spec string, stored as the data set's name.
    n_points : int
        Total number of points, at least 2; class 0 gets the odd one out.
    seed : int
        Seed for ``numpy.random.default_rng`` (positions, noise and order).
    noise : float, optional
        Standard deviation of the Gaussian noise added to each coordinate.

    Returns
    -------
    Dataset
        X float64 of shape (n_points, 2), y int64 labels 0/1 in shuffled order.
    """
    if n_points < 2:
        raise DatasetError(
            f"spirals needs at least 2 points (one per class), got {n_points}; use spirals:N "
            "with N >= 2"
        )
    rng = np.random.default_rng(seed)
    sizes = ((n_points + 1) // 2, n_points // 2)
    points, labels = [], []
    for label, size in enumerate(sizes):
        t = rng.uniform(0.05, 1.0, size)
        angle = 3.0 * np.pi * t + label * np.pi
        radius = 0.9 * t
        xy = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
        points.append(xy + rng.normal(0.0, noise, xy.shape))
        labels.append(np.full(size, label, dtype=np.int64))
    order = rng.permutation(n_points)
    return Dataset(
        name=spec,
        X=np.clip(np.vstack(points), -1.0, 1.0)[order],
        y=np.concatenate(labels)[order],
        n_classes=2,
        description=(
            f"spirals: {n_points} points on two interleaved 1.5-turn spirals in [-1, 1]^2, "
            f"noise {noise:g}, 2 classes"
        ),
    )
