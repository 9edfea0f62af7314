"""Checkpoints: weights, optimizer state, epoch, RNG state and history in one atomic file.

A checkpoint is a model file (:mod:`bpgpu.io`) of the network's state captured with its trainer
(:func:`bpgpu.state.capture`) plus a ``checkpoint`` entry (the epoch and the batch settings), so
``bpgpu.load`` reads it as a model too. Resuming restores everything the next epoch depends on, so
an interrupted run continued with ``resume=`` ends with the same weights as an uninterrupted one
(bit for bit on the CPU).
"""

from __future__ import annotations

import warnings

from .. import state as states
from ..errors import ModelFileError
from . import modelfile as io


class Saver:
    """Writes a checkpoint every ``every`` epochs (and after the last one)."""

    def __init__(self, path, every, settings):
        self.path, self.every, self.settings = path, every, settings

    def maybe_save(self, run, epoch, epochs, history):
        if epoch % self.every == 0 or epoch == epochs:
            save(self.path, run.trainer, epoch, history, self.settings)


def save(path, trainer, epoch, history, settings):
    """Write ``trainer``'s network and optimizer state after ``epoch`` to ``path``."""
    st = states.capture(trainer.net, trainer)
    st["history"] = history
    st["checkpoint"] = {"epoch": epoch, "settings": settings,
                        "schedule": trainer.schedule.state_dict()}
    io.write(path, st)


def read(path, net):
    """The checkpoint's state, checked to belong to ``net``'s architecture."""
    st = io.read(path)
    if not isinstance(st.get("checkpoint"), dict) or "optimizer" not in st:
        raise ModelFileError(f"{path}: a model file, not a checkpoint (no optimizer state); "
                             "write checkpoints with checkpoint= / --checkpoint")
    keys = ("sizes", "activation", "output", "loss", "bias", "dtype")
    mine = {k: v for k, v in states.config(net).items() if k in keys}
    theirs = {k: st["config"].get(k) for k in keys}
    if mine != theirs:
        raise ValueError(f"{path} is a checkpoint of a different network {theirs}; this one is "
                         f"{mine}")
    return st


def restore_net(net, path, opt, settings):
    """Put the checkpoint's weights and RNG state into ``net``; return ``(state, path)`` for
    :func:`restore_trainer`."""
    st = read(path, net)
    ckpt, saved = st["checkpoint"], st["optimizer"]
    if saved.get("name") != opt.name:
        raise ValueError(f"{path} was trained with optimizer {saved.get('name')!r}, not "
                         f"{opt.name!r}; resume with the same optimizer")
    if ckpt.get("settings") != settings:
        raise ValueError(f"{path} was written with {ckpt.get('settings')}, not {settings}; "
                         "resume with the same batch size and shuffling")
    if vars(states.optimizer_of(st)) != vars(opt):  # settings an older file lacks: defaults
        warnings.warn(f"resuming {path} with optimizer settings {vars(opt)}; the checkpoint was "
                      f"written with {saved.get('hyper')}", UserWarning, stacklevel=4)
    _guarded(path, states.apply, net, st)
    return st, path


def restore_trainer(trainer, st, path):
    """Put the checkpoint's optimizer state into ``trainer``; return (epoch, history)."""
    return _guarded(path, _restore_trainer, trainer, st)


def _restore_trainer(trainer, st):
    states.restore_optimizer(trainer, st)
    if st["checkpoint"].get("schedule") is not None:  # a plateau's best value and wait, ...
        trainer.schedule.load_state_dict(st["checkpoint"]["schedule"])
    history = st.get("history") or {}
    return int(st["checkpoint"]["epoch"]), {k: list(v) for k, v in history.items()}


def _guarded(path, fn, *args):
    """``fn(*args)``, its errors on a damaged checkpoint as one :class:`ModelFileError`."""
    try:
        return fn(*args)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ModelFileError(f"{path}: the checkpoint's state does not fit this network and "
                             f"optimizer ({type(exc).__name__}: {exc})") from None
