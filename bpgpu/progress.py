"""A one-line progress bar for training, drawn on standard error when it is a terminal.

It reads no device values: within an epoch it counts steps; loss and accuracy are shown when an
epoch ends, from values training has already read.
"""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """``epoch 3/20 [#######.....] 41% loss 0.3121 acc 0.912 · 2.1s left``."""

    width = 24
    refresh_s = 0.1

    def __init__(self, epochs, enabled=True, stream=None, first=0):
        self.stream = stream or sys.stderr
        self.enabled = enabled and epochs > first and is_tty(self.stream)
        self.epochs = epochs
        self.epoch = self.first = first
        self.summary = ""
        self.t0 = time.perf_counter()
        self._last = 0.0

    def before_step(self, rows, X, T):
        """Nothing to draw before a step (a :class:`bpgpu.training.StepHook`)."""

    def after_step(self, step, n_steps):
        now = time.perf_counter()
        if self.enabled and (now - self._last >= self.refresh_s or step == n_steps):
            self._last = now
            self._draw((self.epoch + step / n_steps) / self.epochs)

    def epoch_done(self, epoch, logs):
        self.epoch = epoch
        parts = [f"loss {logs['loss']:.4f}"]
        if "accuracy" in logs:
            parts.append(f"acc {logs['accuracy']:.3f}")
        if "val_accuracy" in logs:
            parts.append(f"val_acc {logs['val_accuracy']:.3f}")
        self.summary = " ".join(parts)
        if self.enabled:
            self._draw(epoch / self.epochs)

    def _draw(self, frac):
        filled = int(self.width * frac)
        elapsed = time.perf_counter() - self.t0
        done = frac - self.first / self.epochs  # the share of the work done in this run
        left = elapsed * (1 - frac) / done if done > 0 else float("nan")
        line = (f"\repoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (self.width - filled)}]"
                f" {frac:4.0%} {self.summary} · {left:.1f}s left")
        self.stream.write(line.ljust(100)[:120])
        self.stream.flush()

    def close(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def is_tty(stream):
    """Whether ``stream`` is a terminal (False for closed or fake streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
