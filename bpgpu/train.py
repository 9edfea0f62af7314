"""Training: batch, mini-batch and online learning, with per-epoch history.

The data move to the device once per call; each epoch's permutation is drawn on the host and moved
once; batches are taken on the device; loss and accuracy accumulate on the device and are read once
per epoch. Nothing in the step waits for the device (but for the MPI host all-reduce, see
bpgpu.distributed).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time

from . import _host, optim
from . import checkpoint as checkpoints
from ._host import is_whole
from .distributed import DataParallel
from .errors import DeviceOutOfMemory, TrainingDiverged
from .trainer import EpochRunner, Trainer, count_correct


def fit(net, X, y, *, epochs=10, batch_size=32, lr=None, optimizer="sgd", shuffle=True,
        validation_data=None, verbose=False, callbacks=(), checkpoint=None, checkpoint_every=1,
        resume=None, comm=None, **optimizer_options):
    """Train ``net`` on (X, y) by backpropagation and return the per-epoch history.

    Parameters
    ----------
    X : array-like, shape (n, sizes[0])
    y : array-like, shape (n,) class labels or (n, sizes[-1]) targets
    epochs : int
        Train until this many epochs are done in all (counting those of a resumed checkpoint).
    batch_size : int, "full" or None
        Examples per step: ``"full"``/``None`` is batch learning (one step per epoch over the
        whole set), 1 is online learning, anything between is mini-batch learning.
    lr : float, optional
        The learning rate η; default 0.1 for sgd and momentum, 0.001 for adam.
    optimizer : {"sgd", "momentum", "adam"}
    shuffle : bool
        Visit the examples in a new random order every epoch (seeded by the net's seed).
    validation_data : (X_val, y_val), optional
        Held-out data evaluated after every epoch.
    verbose : bool
        Show a progress bar on standard error.
    callbacks : sequence of callables
        Each is called as ``cb(net, epoch, logs)`` after every epoch.
    checkpoint : path, optional
        Write a checkpoint (weights, optimizer state, epoch, RNG state) here, atomically.
    checkpoint_every : int
        Epochs between checkpoints (one is always written after the last epoch).
    resume : path, optional
        Continue from a checkpoint written by an earlier call with the same settings.
    comm : mpi4py communicator, optional
        Data-parallel training over its ranks (see :mod:`bpgpu.distributed`): every rank calls
        ``fit`` with the same data and seed; each step's global batch of ``batch_size`` is
        shared out among the ranks and their gradients averaged. Only rank 0 shows progress and
        writes checkpoints. An error on one rank aborts them all rather than leave them waiting.
    **optimizer_options
        ``momentum`` for momentum; ``beta1``, ``beta2``, ``eps`` for Adam.

    Returns
    -------
    dict
        Lists indexed by epoch: ``loss`` and ``time`` always; ``accuracy`` for classification;
        ``val_loss`` / ``val_accuracy`` with validation data.

    Raises
    ------
    TrainingDiverged
        The loss became NaN or infinite; the weights are restored to the end of the last good
        epoch.
    DeviceOutOfMemory
        The data or a batch does not fit on the device; the message names the batch size.
    """
    epochs, batch_size = _check_schedule(epochs, batch_size)
    every = _check_every(checkpoint_every)
    opt = optim.get(optimizer, lr=_check_lr(lr), **optimizer_options)
    settings = {"batch_size": batch_size, "shuffle": bool(shuffle)}
    if checkpoint is not None:
        checkpoints.check_writable(checkpoint)
    with net.backend.context(), _out_of_memory_hint(net, batch_size):
        Xd = net._inputs(X)
        Td = net._targets(y, Xd.shape[0])
        val = _validation(net, validation_data)
        resumed = checkpoints.restore_net(net, resume, opt, settings) if resume else None
        parallel = DataParallel(comm, net.backend) if comm is not None else None
        trainer = Trainer(net, opt, parallel=parallel)
        start, history = 0, {"loss": [], "time": []}
        if resumed:
            start, history = checkpoints.restore_trainer(trainer, *resumed)
        run = EpochRunner(trainer, Xd, Td, batch_size, shuffle, is_classification(net, y))
        run.epochs_done = start
        lead = parallel is None or parallel.rank == 0
        saver = checkpoints.Saver(checkpoint, every, settings) if checkpoint and lead else None
        try:
            return _loop(run, range(start, epochs), val, verbose and lead, callbacks, history,
                         saver)
        except TrainingDiverged:
            raise  # every rank sees the same summed loss, so all of them raise together
        except Exception as exc:
            if parallel is not None and parallel.size > 1:
                parallel.abort(exc)
            raise


def _validation(net, data):
    if data is None:
        return None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("validation_data must be a pair (X_val, y_val)")
    Xv = net._inputs(data[0], "X_val")
    return Xv, net._targets(data[1], Xv.shape[0], "y_val")


@contextlib.contextmanager
def _out_of_memory_hint(net, batch_size):
    try:
        yield
    except Exception as exc:
        if not net.backend.is_out_of_memory(exc):
            raise
        what = "the whole set" if batch_size is None else f"batch_size={batch_size}"
        raise DeviceOutOfMemory(
            f"out of memory on {net.device} training {net.sizes} with {what}: lower the batch "
            "size (--batch-size), or use a device with more memory") from exc


def _loop(run, epochs, val, verbose, callbacks, history, saver):
    from .progress import ProgressBar

    bar = ProgressBar(epochs.stop, enabled=verbose, first=epochs.start)
    try:
        for epoch in epochs:
            t0 = time.perf_counter()
            logs = run.epoch(bar)
            if val is not None:
                logs.update({"val_" + k: v for k, v in
                             evaluate_arrays(run.net, *val, run.classify).items()})
            logs["time"] = time.perf_counter() - t0
            for key, value in logs.items():
                history.setdefault(key, []).append(value)
            bar.epoch_done(epoch + 1, logs)
            for cb in callbacks:
                cb(run.net, epoch + 1, logs)
            if saver is not None:
                saver.maybe_save(run, epoch + 1, epochs.stop, history)
    finally:
        bar.close()
    run.net.history = history
    return history


def _check_schedule(epochs, batch_size):
    if not is_whole(epochs) or epochs < 0:
        raise ValueError(f"epochs must be a whole number ≥ 0, got {epochs!r}")
    if batch_size is None or (isinstance(batch_size, str) and batch_size == "full"):
        return int(epochs), None
    if not is_whole(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number ≥ 1 or 'full', got {batch_size!r}")
    return int(epochs), int(batch_size)


def _check_every(every):
    if not is_whole(every) or every < 1:
        raise ValueError(f"checkpoint_every must be a whole number ≥ 1, got {every!r}")
    return int(every)


def _check_lr(lr):
    if lr is None:
        return None
    if (isinstance(lr, bool) or not isinstance(lr, numbers.Real)
            or not (math.isfinite(lr) and lr > 0)):
        raise ValueError(f"lr (the learning rate η) must be a finite number > 0, got {lr!r}")
    return float(lr)


def is_classification(net, y):
    """Whether accuracy means something: a probability output, or targets given as labels."""
    shape = getattr(y, "shape", None)
    ndim = len(shape) if shape is not None else len(_host.host_array(y, "y").shape)
    return net.output.name in ("softmax", "logistic") or (ndim == 1 and net.sizes[-1] > 1)


def evaluate_arrays(net, X, T, classify, chunk=8192):
    """Loss and accuracy of ``net`` on device arrays, in chunks that bound the memory used."""
    xp = net.xp
    loss_sum, correct = 0.0, 0
    n = X.shape[0]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)  # the standard leaves out-of-bounds slices unspecified
        Xb, Tb = X[start:stop, ...], T[start:stop, ...]
        out = net._forward(Xb)[-1]
        loss_sum = loss_sum + net.loss.value(out, Tb) * Xb.shape[0]
        if classify:
            correct = correct + count_correct(xp, out, Tb)
    logs = {"loss": float(loss_sum) / X.shape[0]}
    if classify:
        logs["accuracy"] = float(correct) / X.shape[0]
    return logs


def evaluate(net, X, y):
    """``{"loss": ..., "accuracy": ...}`` of ``net`` on (X, y) (accuracy for classification)."""
    with net.backend.context():
        Xd = net._inputs(X)
        Td = net._targets(y, Xd.shape[0])
        return evaluate_arrays(net, Xd, Td, is_classification(net, y))
