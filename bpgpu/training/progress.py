"""Training progress as a tqdm bar: a widget in Jupyter (``tqdm.auto``), a line on a terminal.

It is drawn only where someone watches — a notebook, or standard error on a terminal — and never
into logs or pipes. It reads no device values: within an epoch it counts steps; loss and accuracy
are shown when an epoch ends, from values training has already read.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

IN_NOTEBOOK = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)
"""Whether ``tqdm.auto`` chose the Jupyter widget (a notebook kernel with ipywidgets)."""


class ProgressBar:
    """``epoch 3/20:  41%|████▏     | 00:02<00:03, loss=0.3121, acc=0.912``, by epochs and the
    steps within them (a :class:`bpgpu.training.StepHook` with ``epoch_done`` and ``close``).

    Parameters
    ----------
    epochs : int
        The epoch training runs up to.
    enabled : bool
        ``False`` draws nothing; so does a run with no epochs left or nowhere to draw.
    file : text stream, optional
        Where a terminal bar goes; default standard error.
    first : int
        Epochs already done (a resumed run starts its bar there).
    """

    def __init__(self, epochs, enabled=True, file=None, first=0):
        self.epochs, self.epoch = epochs, first
        self.bar = None
        if enabled and epochs > first and shown(file):
            self.bar = tqdm(total=epochs, initial=first, file=file, desc=self._desc(first + 1),
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                       "{elapsed}<{remaining}{postfix}",
                            dynamic_ncols=True, mininterval=0.1)

    def _desc(self, epoch):
        return f"epoch {min(epoch, self.epochs)}/{self.epochs}"

    def before_step(self, rows, X, T):
        """Nothing to draw before a step."""

    def after_step(self, step, n_steps):
        if self.bar is not None:  # tqdm itself redraws at most every mininterval
            self.bar.update(self.epoch + step / n_steps - self.bar.n)

    def epoch_done(self, epoch, logs):
        self.epoch = epoch
        if self.bar is None:
            return
        shown_logs = {"loss": f"{logs['loss']:.4f}"}
        for key, short in (("accuracy", "acc"), ("val_accuracy", "val_acc")):
            if key in logs:
                shown_logs[short] = f"{logs[key]:.3f}"
        self.bar.set_description_str(self._desc(epoch + 1), refresh=False)
        self.bar.set_postfix(shown_logs, refresh=False)
        self.bar.update(epoch - self.bar.n)
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def shown(file=None):
    """Whether a progress bar would be seen: in a notebook, or on a terminal ``file`` (default
    standard error)."""
    return IN_NOTEBOOK or is_tty(sys.stderr if file is None else file)


def is_tty(stream):
    """Whether ``stream`` is a terminal (False for closed or fake streams)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
