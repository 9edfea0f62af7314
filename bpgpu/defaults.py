"""The one table of defaults shared by :func:`bpgpu.fit` (and ``Trainer``) and ``bpgpu train``.

Both read their defaults from here, and ``tests/test_defaults.py`` holds them (and the README's
table) to it. The scikit-learn estimators take scikit-learn's ``MLPClassifier`` defaults instead,
under its names; the same test holds them to scikit-learn's.

Why these learning rates: measured on the shipped digits (64-32-10, logistic hidden layer, batch 32,
30 epochs, the mean held-out accuracy over seeds 0–2), on the same digits standardised, and on a
standardised regression (scikit-learn's diabetes, 10-32-1, ``sse``). Adam at 0.01 was the best or
within 0.5 points of it on all three (96.4 %, 96.3 %, R² 0.54); 0.001, Adam's textbook default, is
too slow for 30 epochs (91.3 % on the digits). SGD at 0.5, the command line's old default (94.8 %
on the digits), diverges on the regression; 0.1 does not (91.2 %, 94.1 %, R² 0.50). Momentum
(μ = 0.9) at 0.05 reached 94.9 %, 95.4 %, R² 0.50; 0.1 did a little better on the digits, but its
steady step η / (1 − μ) = 1 is twice the SGD rate that diverged.
"""

from __future__ import annotations

OPTIMIZER = "adam"
"""The optimizer when none is named."""

LR = {"sgd": 0.1, "momentum": 0.05, "adam": 0.01, "adamw": 0.01}
"""The learning rate η of each optimizer when none is given."""

EPOCHS = 30
BATCH_SIZE = 32
HIDDEN = (32,)
"""Hidden-layer widths of ``bpgpu train`` (between the data's inputs and outputs) and of the
estimators."""
ACTIVATION = "logistic"
