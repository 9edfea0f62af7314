"""Callbacks that steer a ``fit``: :class:`StopTraining`, which any callback may raise to end the
run cleanly, and :class:`EarlyStopping`, which raises it when a monitored value stops improving
and can restore the weights of the best epoch (as Keras's ``EarlyStopping(restore_best_weights=
True)`` does).

A callback is any callable ``cb(net, epoch, logs)``, called after every epoch; one that also has
``on_train_begin(net)`` or ``on_train_end(net)`` is told when the run starts, and when it ends,
however it ends (stopped, finished or failed).
"""

from __future__ import annotations

import math

from ..optim import check_setting


class StopTraining(Exception):  # noqa: N818 - a signal, as StopIteration is, not an error
    """Raised by a callback to end ``fit`` after the current epoch: ``fit`` returns the history so
    far, the progress bar closes and a final checkpoint is written."""


class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch's logs: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ...
        (``val_*`` needs ``validation_data`` or ``validation_fraction``).
    patience : int, default 10
        Epochs without improvement before stopping.
    min_delta : float, default 0.0
        The least change that counts as an improvement.
    restore_best : bool, default True
        End with the weights of the best epoch (a copy kept on the device when it improves); a
        run's last checkpoint then holds them too.
    mode : {"auto", "min", "max"}
        Whether smaller or larger is better; ``auto``: larger for accuracies, smaller otherwise.

    Attributes
    ----------
    best, best_epoch, stopped_epoch
        The best value, its epoch (from 1, counted over every ``fit``) and the epoch the run
        stopped at (``None`` if it ran to the end).
    """

    def __init__(self, monitor="val_loss", patience=10, min_delta=0.0, restore_best=True,
                 mode="auto"):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience must be a whole number ≥ 1, got {patience!r}")
        self.monitor, self.patience = str(monitor), patience
        self.min_delta = check_setting("min_delta", min_delta, low_ok=True)
        self.restore_best = bool(restore_best)
        self.larger = mode == "max" or (mode == "auto" and "acc" in self.monitor)
        self.best = self.best_epoch = self.stopped_epoch = None
        self._wait, self._weights = 0, None

    def __call__(self, net, epoch, logs):
        value = self._value(logs)
        if self._improved(value):
            self.best, self.best_epoch, self._wait = value, epoch, 0
            if self.restore_best:  # a copy: the next steps may write into or give up these
                self._weights = [net.xp.asarray(p, copy=True) for p in net.params]
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            raise StopTraining(f"{self.monitor} has not improved for {self.patience} epochs")

    def on_train_begin(self, net):
        """Start afresh: a second ``fit`` with the same callback is a new run."""
        self.best = self.best_epoch = self.stopped_epoch = None
        self._wait, self._weights = 0, None

    def on_train_end(self, net):
        """Give the network the best epoch's weights (with ``restore_best``)."""
        if self._weights is not None:
            net.replace_params(self._weights)
            self._weights = None

    def _value(self, logs):
        if self.monitor not in logs:
            hint = (" (pass validation_data or validation_fraction)"
                    if self.monitor.startswith("val_") else "")
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which this fit does not "
                             f"record{hint}; it records {', '.join(sorted(logs))}")
        return float(logs[self.monitor])

    def _improved(self, value):
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        gain = value - self.best if self.larger else self.best - value
        return gain > self.min_delta

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, restore_best={self.restore_best})")
