"""Training: batch, mini-batch and online learning, with per-epoch history.

The data move to the device once per call; each epoch's permutation is drawn on the host and moved
once; batches are taken on the device; loss and accuracy accumulate on the device and are read once
per epoch. Nothing in the step waits for the device.
"""

from __future__ import annotations

import math
import time

from . import _host, optim
from .errors import TrainingDiverged


def fit(net, X, y, *, epochs=10, batch_size=32, lr=0.1, optimizer="sgd", shuffle=True,
        validation_data=None, verbose=False, callbacks=(), **optimizer_options):
    """Train ``net`` on (X, y) by backpropagation and return the per-epoch history.

    Parameters
    ----------
    X : array-like, shape (n, sizes[0])
    y : array-like, shape (n,) class labels or (n, sizes[-1]) targets
    epochs : int
    batch_size : int, "full" or None
        Examples per step: ``"full"``/``None`` is batch learning (one step per epoch over the
        whole set), 1 is online learning, anything between is mini-batch learning.
    lr : float
        The learning rate η.
    optimizer : {"sgd", "momentum", "adam"}
    shuffle : bool
        Visit the examples in a new random order every epoch (seeded by the net's seed).
    validation_data : (X_val, y_val), optional
        Held-out data evaluated after every epoch.
    verbose : bool
        Show a progress bar on standard error.
    callbacks : sequence of callables
        Each is called as ``cb(net, epoch, logs)`` after every epoch.
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
    """
    epochs, batch_size = _check_schedule(epochs, batch_size)
    opt = optim.get(optimizer, lr=_check_lr(lr), **optimizer_options)
    with net.backend.context():
        Xd = net._inputs(X)
        Td = net._targets(y, Xd.shape[0])
        val = None
        if validation_data is not None:
            Xv = net._inputs(validation_data[0], "X_val")
            val = (Xv, net._targets(validation_data[1], Xv.shape[0], "y_val"))
        classify = is_classification(net, y)
        run = _Run(Trainer(net, opt), Xd, Td, batch_size, shuffle, classify)
        return _loop(run, epochs, val, verbose, callbacks)


def _loop(run, epochs, val, verbose, callbacks):
    from .progress import ProgressBar

    history = {"loss": [], "time": []}
    bar = ProgressBar(epochs, enabled=verbose)
    try:
        for epoch in range(epochs):
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
    finally:
        bar.close()
    run.net.history = history
    return history


class Trainer:
    """An optimizer bound to a network: its state, and one training step on device arrays.

    >>> tr = Trainer(net, "momentum", lr=0.05)                          # doctest: +SKIP
    >>> out = tr.step(X, T)   # X, T already on net's device: forward, backward, update

    Parameters
    ----------
    net : MLP
    optimizer : str or optimizer object ({"sgd", "momentum", "adam"})
    lr : float, optional
    **options
        Further optimizer settings (``momentum``, ``beta1``, ...).
    """

    def __init__(self, net, optimizer="sgd", lr=None, **options):
        self.net = net
        self.opt = optim.get(optimizer, lr=lr, **options)
        self.params = net.params
        self.state = self.opt.init_state(self.params)

    def step(self, X, T):
        """One training step — forward, backward, update — returning the batch's outputs.

        X (n, sizes[0]) and T (n, sizes[-1]) must already be arrays on the net's device.
        """
        acts = self.net._forward(X)
        _, grads = self.net._backward(acts, T)
        flat = [g for pair in grads for g in pair if g is not None]
        self.net.kernels.update(self.opt, self.params, flat, self.state)
        return acts[-1]


class _Run:
    """One fit call's state: device data, the trainer, and the epoch loop body."""

    def __init__(self, trainer, X, T, batch_size, shuffle, classify):
        self.trainer, self.net, self.X, self.T = trainer, trainer.net, X, T
        self.params = trainer.params
        self.n = X.shape[0]
        self.batch = self.n if batch_size is None else min(batch_size, self.n)
        self.shuffle, self.classify = shuffle and self.batch < self.n, classify
        self.epochs_done = 0

    def epoch(self, bar):
        net, xp = self.net, self.net.xp
        snapshot = [xp.asarray(p, copy=True) for p in self.params]
        order = None
        if self.shuffle:
            perm = _host.permutation(net.shuffle_rng, self.n)
            order = net.backend.asarray(perm, xp.int64)
        loss_sum, correct = 0.0, 0
        n_steps = math.ceil(self.n / self.batch)
        for k, start in enumerate(range(0, self.n, self.batch)):
            Xb, Tb = self._batch(order, start)
            out = self.trainer.step(Xb, Tb)
            loss_sum = loss_sum + net.loss.value(out, Tb) * Xb.shape[0]
            if self.classify:
                correct = correct + count_correct(xp, out, Tb)
            bar.batch_done(k + 1, n_steps)
        self.epochs_done += 1
        logs = {"loss": float(loss_sum) / self.n}
        if self.classify:
            logs["accuracy"] = float(correct) / self.n
        if not math.isfinite(logs["loss"]):
            self._restore(snapshot, logs["loss"])
        return logs

    def _batch(self, order, start):
        stop = min(start + self.batch, self.n)
        if order is None:
            if start == 0 and stop == self.n:
                return self.X, self.T
            return self.X[start:stop, ...], self.T[start:stop, ...]
        idx = order[start:stop]
        xp = self.net.xp
        return xp.take(self.X, idx, axis=0), xp.take(self.T, idx, axis=0)

    def _restore(self, snapshot, loss):
        for p, s in zip(self.params, snapshot):
            p[...] = s
        good = self.epochs_done - 1
        raise TrainingDiverged(
            f"the loss became {loss} in epoch {self.epochs_done}; the weights are those after "
            f"epoch {good}; lower the learning rate (lr={self.trainer.opt.lr})")


def _check_schedule(epochs, batch_size):
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a whole number ≥ 0, got {epochs!r}")
    if batch_size in (None, "full"):
        return epochs, None
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number ≥ 1 or 'full', got {batch_size!r}")
    return epochs, batch_size


def _check_lr(lr):
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr)
                                                                         and lr > 0):
        raise ValueError(f"lr (the learning rate η) must be a finite number > 0, got {lr!r}")
    return float(lr)


def is_classification(net, y):
    """Whether accuracy means something: a probability output, or targets given as labels."""
    shape = getattr(y, "shape", None)
    ndim = len(shape) if shape is not None else len(_host.host_array(y, "y").shape)
    return net.output.name in ("softmax", "logistic") or (ndim == 1 and net.sizes[-1] > 1)


def labels_of(xp, out):
    """Class labels from outputs or one-hot targets: argmax per row, or ``≥ 0.5`` for one column."""
    if out.shape[1] == 1:
        return xp.astype(out[:, 0] >= 0.5, xp.int64)
    return xp.argmax(out, axis=1)


def count_correct(xp, out, T):
    """How many rows of ``out`` pick the same class as the targets (a 0-d device array)."""
    return xp.sum(xp.astype(labels_of(xp, out) == labels_of(xp, T), xp.int64))


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
