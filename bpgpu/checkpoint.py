"""Checkpoints: weights, optimizer state, epoch, RNG state and history in one atomic file.

A checkpoint is a model file (:mod:`bpgpu.io`) with the optimizer's arrays added and a
``checkpoint`` entry in its metadata, so ``bpgpu.load`` reads it as a model too. Resuming restores
everything the next epoch depends on, so an interrupted run continued with ``resume=`` ends with
the same weights as an uninterrupted one (bit for bit on the CPU).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from . import io
from .errors import ModelFileError


class Saver:
    """Writes a checkpoint every ``every`` epochs (and after the last one)."""

    def __init__(self, path, every, settings):
        self.path, self.every, self.settings = path, every, settings

    def maybe_save(self, run, epoch, epochs, history):
        if epoch % self.every == 0 or epoch == epochs:
            save(self.path, run.trainer, epoch, history, self.settings)


def check_writable(path):
    """Fail before training, not after the first epoch, when ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir() or not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: give a file name in an existing folder")


def save(path, trainer, epoch, history, settings):
    """Write ``trainer``'s network and optimizer state after ``epoch`` to ``path``."""
    net, be = trainer.net, trainer.net.backend
    arrays, scalars, lists = {}, {}, {}
    for key, value in trainer.state.items():
        if isinstance(value, list):
            lists[key] = len(value)
            arrays.update({f"opt.{key}.{i}": be.to_host(a) for i, a in enumerate(value)})
        else:  # a step count: a Python int, or a 0-d device array where the step is compiled
            scalars[key] = int(value if isinstance(value, int) else be.to_host(value).item())
    meta = {"checkpoint": {
        "epoch": epoch, "optimizer": trainer.opt.name, "hyper": vars(trainer.opt),
        "state_scalars": scalars, "state_lists": lists, "settings": settings,
        "rng": net.shuffle_rng.bit_generator.state, "history": history}}
    io.save(net, path, extra_arrays=arrays, extra_meta=meta)


def read(path, net):
    """The checkpoint's metadata and arrays, checked to belong to ``net``'s architecture."""
    meta, arrays = io.read(path)
    ckpt = meta.get("checkpoint")
    if not isinstance(ckpt, dict):
        raise ModelFileError(f"{path}: a model file, not a checkpoint (no optimizer state); "
                             "write checkpoints with checkpoint= / --checkpoint")
    mine, theirs = io.model_config(net), {k: meta.get(k) for k in io.model_config(net)}
    mine.pop("seed"), theirs.pop("seed")
    if mine != theirs:
        raise ValueError(f"{path} is a checkpoint of a different network {theirs}; this one is "
                         f"{mine}")
    return ckpt, arrays


def restore_net(net, path, opt, settings):
    """Put the checkpoint's weights and RNG state into ``net``; return what the trainer needs."""
    ckpt, arrays = read(path, net)
    if ckpt["optimizer"] != opt.name:
        raise ValueError(f"{path} was trained with optimizer {ckpt['optimizer']!r}, not "
                         f"{opt.name!r}; resume with the same optimizer")
    if ckpt.get("settings") != settings:
        raise ValueError(f"{path} was written with {ckpt.get('settings')}, not {settings}; "
                         "resume with the same batch size and shuffling")
    if ckpt.get("hyper") != vars(opt):
        warnings.warn(f"resuming {path} with optimizer settings {vars(opt)}; the checkpoint was "
                      f"written with {ckpt.get('hyper')}", UserWarning, stacklevel=4)
    n = len(net.sizes) - 1
    net.set_weights([(arrays[f"W{i}"], arrays.get(f"b{i}")) for i in range(n)])
    net.shuffle_rng.bit_generator.state = ckpt["rng"]
    return ckpt, arrays


def restore_trainer(trainer, ckpt, arrays):
    """Put the checkpoint's optimizer state into ``trainer``; return (epoch, history)."""
    be, dtype = trainer.net.backend, trainer.net.dtype
    for key, count in ckpt["state_lists"].items():
        trainer.state[key] = [be.asarray(arrays[f"opt.{key}.{i}"], dtype) for i in range(count)]
    trainer.state.update(ckpt["state_scalars"])
    return int(ckpt["epoch"]), {k: list(v) for k, v in ckpt["history"].items()}
