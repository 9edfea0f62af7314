"""One training step (:class:`Trainer`) and one epoch of steps (:class:`EpochRunner`).

Both work on arrays already on the device and never wait for it inside an epoch: the loss and
the count of correct answers accumulate on the device and are read once, when the epoch ends.
(Data-parallel training over MPI on host buffers is the exception: each step's all-reduce goes
through host memory.)
"""

from __future__ import annotations

import math

from array_api_compat import device

from . import _host, optim
from .errors import TrainingDiverged


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

    def __init__(self, net, optimizer="sgd", lr=None, parallel=None, **options):
        self.net = net
        self.opt = optim.get(optimizer, lr=lr, **options)
        self.params = net.params
        with net.backend.context():
            self.state = self.opt.init_state(self.params)
        self.parallel = parallel

    def step(self, X, T):
        """One training step — forward, backward, update — returning the batch's outputs.

        X (n, sizes[0]) and T (n, sizes[-1]) must already be arrays on the net's device. Under
        data parallelism they are this rank's shard, and may be empty.
        """
        with self.net.backend.context():
            return self.step_in_context(X, T)

    def step_in_context(self, X, T):
        """:meth:`step` for callers already inside ``net.backend.context()`` (the epoch loop)."""
        if X.shape[0] == 0:  # an empty shard still takes part in the all-reduce
            out, flat = None, [self.net.xp.zeros_like(p) for p in self.params]
        else:
            acts = self.net._forward(X)
            _, grads = self.net._backward(acts, T)
            out, flat = acts[-1], [g for pair in grads for g in pair if g is not None]
        if self.parallel is not None:
            flat = self.parallel.average(self.net.xp, flat, X.shape[0])
        self.net.kernels.update(self.opt, self.params, flat, self.state)
        return out


class EpochRunner:
    """One fit call's state: device data, the trainer, and the body of an epoch."""

    def __init__(self, trainer, X, T, batch_size, shuffle, classify):
        self.trainer, self.net, self.X, self.T = trainer, trainer.net, X, T
        self.params = trainer.params
        self.n = X.shape[0]
        self.batch = self.n if batch_size is None else min(batch_size, self.n)
        self.shuffle, self.classify = shuffle and self.batch < self.n, classify
        # The targets' classes, found once here rather than in every step.
        self.labels = labels_of(self.net.xp, T) if classify else None
        self.epochs_done = 0

    def epoch(self, bar=None):
        """Run one epoch of steps; return its logs (``loss``, and ``accuracy`` when classifying)."""
        with self.net.backend.context():
            return self._epoch(bar)

    def _epoch(self, bar):
        net, xp = self.net, self.net.xp
        snapshot = [xp.asarray(p, copy=True) for p in self.params]
        order = None
        if self.shuffle:
            perm = _host.permutation(net.shuffle_rng, self.n)
            order = net.backend.asarray(perm, xp.int64)
        loss_sum = correct = xp.zeros((), dtype=net.dtype, device=device(self.X))
        n_steps = math.ceil(self.n / self.batch)
        for k, start in enumerate(range(0, self.n, self.batch)):
            Xb, Tb, Lb = self._batch(order, start)
            out = self.trainer.step_in_context(Xb, Tb)
            if out is not None:
                loss_sum = loss_sum + net.loss.value(out, Tb) * Xb.shape[0]
                if self.classify:
                    hits = xp.astype(labels_of(xp, out) == Lb, net.dtype)
                    correct = correct + xp.sum(hits)
            if bar is not None:
                bar.batch_done(k + 1, n_steps)
        self.epochs_done += 1
        # One read from the device per epoch: the loss, the hits and the largest weight.
        totals = self.net.backend.to_host(
            xp.stack([loss_sum, correct, _largest_magnitude(xp, self.params)])).tolist()
        if self.trainer.parallel is not None:
            totals[:2] = self.trainer.parallel.sum_scalars(totals[:2])
        logs = {"loss": totals[0] / self.n}
        if self.classify:
            logs["accuracy"] = totals[1] / self.n
        if not math.isfinite(logs["loss"]):
            self._restore(snapshot, f"the loss became {logs['loss']}")
        if not math.isfinite(totals[2]):
            self._restore(snapshot, "a weight became NaN or infinite")
        return logs

    def _batch(self, order, start):
        """This step's inputs, targets and target classes (``None`` when not classifying)."""
        stop = min(start + self.batch, self.n)
        if self.trainer.parallel is not None:
            start, stop = self.trainer.parallel.shard(start, stop)
        arrays = (self.X, self.T, self.labels)
        if order is None:
            if start == 0 and stop == self.n:
                return arrays
            return tuple(None if a is None else a[start:stop, ...] for a in arrays)
        idx = order[start:stop]
        xp = self.net.xp
        return tuple(None if a is None else xp.take(a, idx, axis=0) for a in arrays)

    def _restore(self, snapshot, what):
        for p, s in zip(self.params, snapshot):
            p[...] = s
        lr = self.trainer.opt.lr
        raise TrainingDiverged(
            f"{what} in epoch {self.epochs_done}; the weights are those after "
            f"epoch {self.epochs_done - 1}; lower the learning rate (lr={lr:g})", lr=lr)


def _largest_magnitude(xp, params):
    """max |w| over all parameters, as one device scalar (NaN or inf when any weight is)."""
    biggest = None
    for p in params:
        m = xp.max(xp.abs(p))
        biggest = m if biggest is None else xp.maximum(biggest, m)
    return biggest


def labels_of(xp, out):
    """Class labels from outputs or one-hot targets: argmax per row, or ``≥ 0.5`` for one column."""
    if out.shape[1] == 1:
        return xp.astype(out[:, 0] >= 0.5, xp.int64)
    return xp.argmax(out, axis=1)


def count_correct(xp, out, T):
    """How many rows of ``out`` pick the same class as the targets (a 0-d device array)."""
    return xp.sum(xp.astype(labels_of(xp, out) == labels_of(xp, T), xp.int64))
