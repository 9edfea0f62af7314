"""The tqdm progress bar: drawn on terminals, never into pipes or logs; steps and epochs counted."""

import io

import numpy as np

import bpgpu
from bpgpu.training.progress import ProgressBar, shown


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_counts_steps_within_epochs_and_shows_the_logs():
    out = Terminal()
    bar = ProgressBar(4, file=out, first=1)  # resumed after epoch 1
    assert bar.bar.n == 1
    bar.after_step(1, 4)
    assert bar.bar.n == 1.25
    for k in (2, 3, 4):
        bar.after_step(k, 4)
    bar.epoch_done(2, {"loss": 0.25, "accuracy": 0.5, "val_accuracy": 0.75})
    bar.epoch_done(3, {"loss": 0.125})  # a compiled epoch: no steps seen
    bar.epoch_done(4, {"loss": 0.0625})
    bar.close()
    text = out.getvalue()
    assert "loss=0.2500, acc=0.500, val_acc=0.750" in text
    assert "epoch 4/4: 100%|" in text and "loss=0.0625" in text and text.endswith("\n")


def test_nothing_is_drawn_into_a_pipe_or_when_disabled():
    assert not shown(io.StringIO()) and shown(Terminal())
    for bar in (ProgressBar(3, file=io.StringIO()), ProgressBar(3, enabled=False, file=Terminal()),
                ProgressBar(3, file=Terminal(), first=3)):
        assert bar.bar is None
        bar.after_step(1, 2)
        bar.epoch_done(1, {"loss": 1.0})
        bar.close()


def test_fit_verbose_into_a_log_writes_nothing(capsys):
    rng = np.random.default_rng(0)
    bpgpu.MLP([3, 2], seed=0).fit(rng.standard_normal((8, 3)), np.arange(8) % 2, epochs=2,
                                  verbose=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
