"""One epoch: the mini-batch loop over the shuffled rows (:class:`EpochRunner`), step by step
or as one compiled call (:func:`epoch_function`), with its totals read once at the end."""

from __future__ import annotations

import functools
import math

from array_api_compat import device

from .. import _host
from ..errors import TrainingDiverged
from ..network import labels_of


class StepHook:
    """Called around every step of an epoch run step by step (the progress bar, ``--trace``)."""

    def before_step(self, rows, X, T):
        """``rows``: the step's example indices; ``X``, ``T``: its device batch."""

    def after_step(self, k, n_steps):
        """Step ``k`` (from 1) of ``n_steps`` in this epoch is done."""


class EpochRunner:
    """One fit call's state: device data, the trainer, and the body of an epoch."""

    def __init__(self, trainer, X, T, batch_size, shuffle, classify, mode="none"):
        self.trainer, self.net, self.X, self.T = trainer, trainer.net, X, T
        self.n = X.shape[0]
        self.batch = self.n if batch_size is None else min(batch_size, self.n)
        self.shuffle, self.classify = shuffle and self.batch < self.n, classify
        self.mode = mode
        # The targets' classes, found once here rather than in every step.
        self.labels = labels_of(self.net.xp, T) if classify else None
        self.epochs_done = 0

    def epoch(self, hook=None):
        """Run one epoch; return its logs (``loss``, and ``accuracy`` when classifying).

        ``hook`` (a :class:`StepHook`) sees every step; a compiled epoch has no steps to show.
        """
        with self.net.backend.context():
            return self._epoch(hook)

    def _epoch(self, hook):
        net, xp = self.net, self.net.xp
        self.trainer.follow_lr()
        perm = _host.permutation(net.shuffle_rng, self.n) if self.shuffle else None
        # What a divergence rolls back to: the parameters and the optimizer state. A compiled
        # epoch is given no buffers to reuse, so its inputs stay intact; elsewhere they may be
        # written into (in-place fast paths) or given up (a compiled step): copies.
        if self.mode == "epoch":
            snapshot = net.params, self.trainer.state
            totals = self._compiled_epoch(perm)
        else:
            snapshot = ([xp.asarray(p, copy=True) for p in net.params],
                        _copied_state(xp, self.trainer.state))
            totals = _totals(xp, *self._stepwise(perm, hook or StepHook()), net.params)
        self.epochs_done += 1
        # One read from the device per epoch: the loss, the hits and the largest weight.
        totals = net.backend.to_host(totals).tolist()
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

    def _stepwise(self, perm, hook):
        net, tr = self.net, self.trainer
        order = None if perm is None else net.backend.asarray(perm, net.xp.int64)
        fn = tr.compiled("batch", lambda t: t.batch) if tr.mode != "none" else tr.batch
        loss_sum = correct = net.xp.zeros((), dtype=net.dtype, device=device(self.X))
        n_steps = math.ceil(self.n / self.batch)
        for k, start in enumerate(range(0, self.n, self.batch)):
            start, stop = self._rows(start)
            Xb, Tb, Lb = self._batch(order, start, stop)
            hook.before_step(range(start, stop) if perm is None else perm[start:stop], Xb, Tb)
            params, tr.state, loss, hits = fn(net._params, tr.state, Xb, Tb, Lb)  # not a copy
            net.replace_params(params)
            loss_sum, correct = loss_sum + loss, correct + hits
            hook.after_step(k + 1, n_steps)
        return loss_sum, correct

    def _compiled_epoch(self, perm):
        net, tr = self.net, self.trainer
        order = net.backend.asarray(range(self.n) if perm is None else perm, net.xp.int64)
        # One compilation per batch size and structure, traced again for new data shapes; it
        # holds no data.
        fn = tr.compiled(("epoch", self.batch),
                         lambda t: functools.partial(epoch_function, t, self.batch), donate=())
        params, tr.state, totals = fn(net.params, tr.state, self.X, self.T, self.labels, order)
        net.replace_params(params)
        return totals

    def _rows(self, start):
        stop = min(start + self.batch, self.n)
        if self.trainer.parallel is not None:
            return self.trainer.parallel.shard(start, stop)
        return start, stop

    def _batch(self, order, start, stop):
        """This step's inputs, targets and target classes (``None`` when not classifying)."""
        arrays = (self.X, self.T, self.labels)
        if order is None:
            if start == 0 and stop == self.n:
                return arrays
            return tuple(None if a is None else a[start:stop, ...] for a in arrays)
        idx = order[start:stop]
        xp = self.net.xp
        return tuple(None if a is None else xp.take(a, idx, axis=0) for a in arrays)

    def _restore(self, snapshot, what):
        self.net.replace_params(snapshot[0])
        self.trainer.state = snapshot[1]
        lr, rate = self.trainer.opt.lr, self.trainer.rate
        now = "" if rate == lr else f"; this epoch's rate {rate:g}"
        raise TrainingDiverged(
            f"{what} in epoch {self.epochs_done}; the weights are those after "
            f"epoch {self.epochs_done - 1}; lower the learning rate (lr={lr:g}{now})", lr=lr)


def epoch_function(trainer, size, params, state, X, T, labels, order):
    """A whole epoch as a pure function: every batch of ``size`` rows of ``order`` in turn, the
    full batches in the backend's loop and the ragged last one after it. Returns the new
    parameters and state and the epoch's totals (summed loss, correct count, largest weight)."""
    xp, n = trainer.net.xp, X.shape[0]

    def body(carry, idx):
        params, state, loss_sum, correct = carry
        Lb = None if labels is None else xp.take(labels, idx, axis=0)
        params, state, loss, hits = trainer.batch(
            params, state, xp.take(X, idx, axis=0), xp.take(T, idx, axis=0), Lb)
        return params, state, loss_sum + loss, correct + hits

    zero = xp.zeros((), dtype=trainer.net.dtype, device=device(X))
    carry, full = (params, state, zero, zero), n // size
    if full:
        rows = xp.reshape(order[:full * size], (full, size))
        carry = trainer.net.backend.scan(body, carry, rows)
    if n % size:
        carry = body(carry, order[full * size:])
    params, state, loss_sum, correct = carry
    return params, state, _totals(xp, loss_sum, correct, params)


def _copied_state(xp, state):
    """The optimizer state with every array copied (Python numbers as they are)."""
    return {k: [xp.asarray(a, copy=True) for a in v] if isinstance(v, list)
            else v if isinstance(v, (int, float)) else xp.asarray(v, copy=True)
            for k, v in state.items()}




def _totals(xp, loss_sum, correct, params):
    """An epoch's summed loss, correct count and largest weight magnitude as one device vector
    (read with one transfer)."""
    return xp.stack([loss_sum, correct, _largest_magnitude(xp, params)])


def _largest_magnitude(xp, params):
    """max |w| over all parameters, as one device scalar (NaN or inf when any weight is)."""
    biggest = None
    for p in params:
        m = xp.max(xp.abs(p))
        biggest = m if biggest is None else xp.maximum(biggest, m)
    return biggest
