"""Training: the step as a pure function, the one epoch loop, :func:`fit` and :func:`evaluate`.

One step is ``(params, optimizer state, X, T) → (params', state', outputs)``. The reference never
writes into an array; on NumPy and PyTorch the same call runs the rules' in-place fast paths,
and on a compiling device (JAX) it is compiled once per shape — one call per step, or a whole epoch
(the shuffled batches taken on the device, the ragged last batch included) as one call.

Nothing waits for the device inside an epoch: the loss and the count of correct answers accumulate
on the device and are read once, when the epoch ends (data-parallel training over MPI on host
buffers is the exception: each step's all-reduce goes through host memory).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import warnings
import weakref

from array_api_compat import device

from . import _host, defaults, optim
from . import checkpoint as checkpoints
from .distributed import DataParallel
from .errors import DeviceOutOfMemory, TrainingDiverged
from .files import check_writable
from .network import labels_of
from .progress import ProgressBar
from .registry import COMPILING_DEVICES
from .transform import Standardize
from .validation import check_every, check_schedule

MODES = ("auto", "none", "step", "epoch")


def resolve_mode(backend, compile, parallel=None, epochs=True):
    """The compilation mode to use: ``"auto"`` becomes the most ``backend`` compiles (``"epoch"``
    on JAX; ``"step"`` for a lone Trainer; ``"none"`` under data parallelism or where nothing
    compiles)."""
    if compile not in MODES:
        raise ValueError(f"compile must be one of {', '.join(MODES)}, got {compile!r}")
    if compile == "epoch" and not epochs:
        raise ValueError("a Trainer runs one step at a time: compile='epoch' is for fit")
    have = [m for m in backend.compile_modes if epochs or m != "epoch"]
    if compile == "auto":
        return "none" if parallel is not None else have[-1]
    if compile not in have:
        raise ValueError(f"compile={compile!r} is not available on {backend.name}, which runs "
                         f"steps operation by operation; devices that compile: "
                         f"{COMPILING_DEVICES}")
    if parallel is not None and compile != "none":
        raise ValueError("data-parallel training (comm=..., --distributed) runs operation by "
                         "operation; use compile 'none' or 'auto'")
    return compile


class Trainer:
    """An optimizer bound to a network: its state, and one training step on device arrays.

    The trainer holds no parameters: each step reads the network's current parameters and
    replaces them with the step's result, so it follows :meth:`MLP.set_weights`, rollbacks and
    loads.

    >>> tr = Trainer(net, "momentum", lr=0.05)                          # doctest: +SKIP
    >>> out = tr.step(X, T)   # X, T already on net's device: forward, backward, update

    Parameters
    ----------
    net : MLP
    optimizer : str or optimizer object ({"sgd", "momentum", "adam"}), default "adam"
    lr : float, optional
        Default: the optimizer's, from :mod:`bpgpu.defaults`.
    compile : {"auto", "none", "step"}
        ``"step"`` compiles the step once per shape on devices that compile (JAX); ``"auto"``
        does so where the device can.
    **options
        Further optimizer settings (``momentum``, ``beta1``, ...).
    """

    def __init__(self, net, optimizer=defaults.OPTIMIZER, lr=None, parallel=None, compile="auto",
                 **options):
        self.net = net
        self.opt = optim.get(optimizer, lr=lr, **options)
        self.parallel = parallel
        self.mode = resolve_mode(net.backend, compile, parallel, epochs=False)
        with net.backend.context():
            self.state = self.opt.init_state(net.params)
        self._compiled = {}
        self._checked = set()  # the batch shapes step has checked

    def carry_on(self):
        """Take the network's optimizer state from its last ``fit`` (Adam's moments and step
        count, momentum's velocities) when that optimizer and its settings are this one's; else
        keep the fresh state. Returns whether it did."""
        if self.net.optimizer_state is None:
            return False
        opt, state = self.net.optimizer_state
        if type(opt) is not type(self.opt) or vars(opt) != vars(self.opt):
            return False
        self.state = state
        return True

    def step(self, X, T):
        """One training step — forward, backward, update — returning the batch's outputs.

        X (n, sizes[0]) and T (n, sizes[-1]) must already be arrays of the net's dtype on its
        device, as the first layer sees them (``net.device_inputs(X)`` and
        ``net.device_targets(y, n)`` make them, through the network's transforms); they are
        checked once per new shape, and anything else is a one-line ``TypeError`` or
        ``ValueError``. Under data parallelism they are this rank's shard, and may be empty.
        """
        key = (type(X), tuple(X.shape), X.dtype, type(T), tuple(T.shape), T.dtype)
        if key not in self._checked:
            self._check_batch(X, T)
            self._checked.add(key)
        with self.net.backend.context():
            return self.step_in_context(X, T)

    def _check_batch(self, X, T):
        net = self.net
        for name, a, width in (("X", X, net.sizes[0]), ("T", T, net.sizes[-1])):
            if not net.backend.owns(a) or device(a) != device(net.params[0]):
                raise TypeError(f"Trainer.step takes arrays on the network's device "
                                f"({net.device}); its {name} is a {type(a).__module__}."
                                f"{type(a).__name__}: make it with net.device_inputs(X) / "
                                "net.device_targets(y, n), or train with fit")
            if a.dtype != net.dtype:
                raise TypeError(f"Trainer.step: {name} is {a.dtype}, the network computes in "
                                f"{net.dtype_name}; make it with net.device_inputs(X) / "
                                "net.device_targets(y, n)")
            if a.ndim != 2 or a.shape[1] != width or a.shape[0] != X.shape[0]:
                raise ValueError(f"Trainer.step: {name} has shape {tuple(a.shape)}; expected "
                                 f"({X.shape[0]}, {width}) for the network {net.sizes}")

    def step_in_context(self, X, T):
        """:meth:`step` for callers already inside ``net.backend.context()``."""
        fn = self.compiled("step", self.pure_step) if self.mode != "none" else self.pure_step
        params, self.state, out = fn(self.net.params, self.state, X, T)
        self.net.replace_params(params)
        return out

    def pure_step(self, params, state, X, T):
        """The training step as a pure function: ``(params, state, X, T) → (params', state',
        outputs)``; on backends with in-place primitives it reuses the arrays it is given."""
        net = self.net
        if X.shape[0] == 0:  # an empty shard still takes part in the all-reduce
            out, grads = None, [net.xp.zeros_like(p) for p in params]
        else:
            acts = net.forward_pass(X, params)
            pairs = net.backward_pass(acts, T, params)[1]
            out, grads = acts[-1], [g for pair in pairs for g in pair if g is not None]
        if self.parallel is not None:
            grads = self.parallel.average(net.xp, grads, X.shape[0])
        params, state = self.opt.apply(params, grads, state, net.ops)
        return params, state, out

    def batch(self, params, state, X, T, labels):
        """:meth:`pure_step` plus the batch's summed loss and correct count (0-d arrays)."""
        params, state, out = self.pure_step(params, state, X, T)
        xp, dtype = self.net.xp, self.net.dtype
        if out is None:
            zero = xp.zeros((), dtype=dtype, device=device(X))
            return params, state, zero, zero
        loss = self.net.loss.value(out, T) * X.shape[0]
        hits = (xp.zeros((), dtype=dtype, device=device(X)) if labels is None
                else xp.sum(xp.astype(labels_of(xp, out) == labels, dtype)))
        return params, state, loss, hits

    def compiled(self, name, fn, donate=(0, 1)):
        """``fn`` compiled by the backend (by default parameters and state donated), kept per
        name until the optimizer's settings change (a changed learning rate is a new
        compilation)."""
        settings = [v for v in vars(self.opt).values() if isinstance(v, (int, float, str))]
        settings.append(type(self.opt))
        entry = self._compiled.get(name)
        if entry is None or entry[0] != settings:
            be = self.net.backend
            entry = self._compiled[name] = settings, be.compile(fn, donate=donate)
            # A counter (Adam's t) is carried on the device in the parameters' float dtype: exact
            # to 2^24 steps in float32, and its powers then stay in that dtype.
            self.state = {k: be.asarray(v, self.net.dtype) if isinstance(v, (int, float)) else v
                          for k, v in self.state.items()}
        return entry[1]


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
        fn = tr.compiled("batch", tr.batch) if tr.mode != "none" else tr.batch
        loss_sum = correct = net.xp.zeros((), dtype=net.dtype, device=device(self.X))
        n_steps = math.ceil(self.n / self.batch)
        for k, start in enumerate(range(0, self.n, self.batch)):
            start, stop = self._rows(start)
            Xb, Tb, Lb = self._batch(order, start, stop)
            hook.before_step(range(start, stop) if perm is None else perm[start:stop], Xb, Tb)
            params, tr.state, loss, hits = fn(net.params, tr.state, Xb, Tb, Lb)
            net.replace_params(params)
            loss_sum, correct = loss_sum + loss, correct + hits
            hook.after_step(k + 1, n_steps)
        return loss_sum, correct

    def _compiled_epoch(self, perm):
        net, tr = self.net, self.trainer
        order = net.backend.asarray(range(self.n) if perm is None else perm, net.xp.int64)
        # One compilation per batch size, traced again for new data shapes; it holds no data.
        fn = tr.compiled(("epoch", self.batch),
                         functools.partial(epoch_function, tr, self.batch), donate=())
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
        lr = self.trainer.opt.lr
        raise TrainingDiverged(
            f"{what} in epoch {self.epochs_done}; the weights are those after "
            f"epoch {self.epochs_done - 1}; lower the learning rate (lr={lr:g})", lr=lr)


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


def fit(net, X, y, *, epochs=defaults.EPOCHS, batch_size=defaults.BATCH_SIZE, lr=None,
        optimizer=defaults.OPTIMIZER, shuffle=True, validation_data=None, verbose=False,
        callbacks=(), checkpoint=None, checkpoint_every=1, resume=None, comm=None,
        compile="auto", standardize=False, end_metrics=False, **optimizer_options):
    """Train ``net`` on (X, y) by backpropagation and return the per-epoch history.

    A second ``fit`` on the same network continues the first: it runs ``epochs`` more epochs,
    appends to :attr:`MLP.history`, and carries on the optimizer's state (Adam's moments and step
    count, momentum's velocities) when the optimizer and its settings are the same — so
    ``fit(epochs=5)`` twice trains as ``fit(epochs=10)`` does. A network saved and loaded keeps
    that state too. Another optimizer, or other settings, start from a fresh state.

    Parameters
    ----------
    X : array-like, shape (n, sizes[0])
    y : array-like, shape (n,) class labels or (n, sizes[-1]) targets
        Labels are the network's ``classes`` where it has them, else the output indices
        ``0..k-1``.
    epochs : int, default 30
        Epochs to run in this call; with ``resume``, the total to reach (counting the
        checkpoint's).
    batch_size : int, "full" or None, default 32
        Examples per step: ``"full"``/``None`` is batch learning (one step per epoch over the
        whole set), 1 is online learning, anything between is mini-batch learning.
    lr : float, optional
        The learning rate η; default 0.01 for adam, 0.1 for sgd, 0.05 for momentum (the one table
        of defaults, :mod:`bpgpu.defaults`, shared with ``bpgpu train`` and the estimators).
    optimizer : {"adam", "sgd", "momentum"}, default "adam"
    shuffle : bool
        Visit the examples in a new random order every epoch (seeded by the net's seed).
    validation_data : (X_val, y_val), optional
        Held-out data evaluated after every epoch.
    verbose : bool
        Show a progress bar (tqdm): a widget in a notebook, or a line on standard error where it
        is a terminal; nothing in logs or pipes.
    callbacks : sequence of callables
        Each is called as ``cb(net, epoch, logs)`` after every epoch (``epoch`` counts every
        epoch the network has trained, from 1).
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
    compile : {"auto", "none", "step", "epoch"}
        ``"none"`` runs each step operation by operation; ``"step"`` compiles the step, and
        ``"epoch"`` a whole epoch (the progress bar then moves once per epoch), on devices that
        compile (JAX). ``"auto"``: the most the device compiles. Every mode gives the same
        weights within float tolerance.
    standardize : bool, default False
        Give a network without an input transform one learned from X: each feature's mean and
        standard deviation (:class:`bpgpu.transform.Standardize`), applied to every input from
        then on (validation data, ``predict``, ``evaluate``) and saved with the network. A
        regression network (``net.task == "regress"``) gets a target transform from y too:
        losses are then on the standardised targets, and ``predict`` answers in y's units. A
        network that has a transform keeps it (its weights were trained on that scale).
    end_metrics : bool, default False
        Also record ``end_loss`` (and ``end_accuracy``): the training set scored with the
        weights at the end of each epoch, at the cost of one more pass over it. ``loss`` and
        ``accuracy`` are the running means over the epoch's batches, each batch scored with the
        weights it was trained from (as Keras reports them).
    **optimizer_options
        ``momentum`` for momentum; ``beta1``, ``beta2``, ``eps`` for Adam.

    Returns
    -------
    dict
        ``net.history``: lists indexed by epoch, every epoch the network has trained: ``loss``
        and ``time`` always; ``accuracy`` for classification; ``val_loss`` / ``val_accuracy``
        with validation data; ``end_loss`` / ``end_accuracy`` with ``end_metrics``.

    Raises
    ------
    TrainingDiverged
        The loss became NaN or infinite; the weights are restored to the end of the last good
        epoch.
    DeviceOutOfMemory
        The data or a batch does not fit on the device; the message names the batch size.

    Warns
    -----
    UserWarning
        On a network's first epoch, when the first layer's gradients are all exactly zero while
        the output layer's are not: saturated units, most often from unscaled inputs.
    """
    epochs, batch_size = check_schedule(epochs, batch_size)
    every = check_every(checkpoint_every)
    opt = optim.get(optimizer, lr=lr, **optimizer_options)  # it checks its own settings
    mode = resolve_mode(net.backend, compile, comm)
    settings = {"batch_size": batch_size, "shuffle": bool(shuffle)}
    if checkpoint is not None:
        check_writable(checkpoint)
    if standardize:
        learn_transforms(net, X, y)
    with net.backend.context(), _out_of_memory_hint(net, batch_size):
        Xd = net.device_inputs(X)
        Td = net.device_targets(y, Xd.shape[0])
        val = _validation(net, validation_data)
        resumed = checkpoints.restore_net(net, resume, opt, settings) if resume else None
        parallel = DataParallel(comm, net.backend) if comm is not None else None
        trainer = Trainer(net, opt, parallel=parallel, compile="none" if mode == "none" else "step")
        if resumed:
            start, history = checkpoints.restore_trainer(trainer, *resumed)
            stop = epochs
        else:
            start, history = _continued(net, trainer)
            stop = start + epochs
        if start == 0 and (parallel is None or parallel.rank == 0):
            warn_if_saturated(net, Xd, Td)
        run = EpochRunner(trainer, Xd, Td, batch_size, shuffle, is_classification(net, y), mode)
        run.epochs_done = start
        lead = parallel is None or parallel.rank == 0
        saver = checkpoints.Saver(checkpoint, every, settings) if checkpoint and lead else None
        loop = _Loop(run, val, verbose and lead, callbacks, saver, end_metrics)
        try:
            return loop.train(range(start, stop), history)
        except TrainingDiverged:
            raise  # every rank sees the same summed loss, so all of them raise together
        except Exception as exc:
            if parallel is not None and parallel.size > 1:
                parallel.abort(exc)
            raise
        finally:
            net.optimizer_state = trainer.opt, trainer.state


def learn_transforms(net, X, y):
    """Give ``net`` the standardisation of X (and, for regression, of y) it does not have yet."""
    if net.input_transform is None:
        net.input_transform = Standardize.fit(_host.host_array(X, "X"))
    if net.task == "regress" and net.target_transform is None:
        T = _host.host_array(y, "y")
        net.target_transform = Standardize.fit(T.reshape(T.shape[0], -1))


def _continued(net, trainer):
    """(epochs done, history so far) of ``net``, giving ``trainer`` the optimizer state of the
    last ``fit`` when its optimizer and settings are the same."""
    trainer.carry_on()
    history = {k: list(v) for k, v in (net.history or {}).items()}
    return len(history.get("loss", [])), history or {"loss": [], "time": []}


def warn_if_saturated(net, X, T, rows=64):
    """Warn when the first layer's weight gradients on the first ``rows`` examples (device
    arrays, as the network sees them) are all exactly zero while the output layer's are not:
    the error reaches the output but no longer the first layer, whose units are saturated."""
    if len(net.sizes) < 3:
        return
    n = min(rows, X.shape[0])
    X, T = X[:n, ...], T[:n, ...]
    if "step" in net.backend.compile_modes:  # run eagerly, each operation would compile alone
        net, X, T = net.to("cpu"), net.backend.to_host(X), net.backend.to_host(T)
        X, T = net.backend.asarray(X, net.dtype), net.backend.asarray(T, net.dtype)
    grads = net.backward_pass(net.forward_pass(X), T)[1]
    xp = net.xp
    first, last = xp.max(xp.abs(grads[0][0])), xp.max(xp.abs(grads[-1][0]))
    first, last, size = net.backend.to_host(xp.stack([first, last, xp.max(xp.abs(X))])).tolist()
    if first == 0 and last > 0:
        fix = ("standardize them: fit(..., standardize=True), or bpgpu train without "
               "--no-standardize" if net.input_transform is None
               else "lower the learning rate or change the activation")
        warnings.warn(f"the first layer's gradients are all exactly zero on the first {n} rows "
                      f"while the output layer's are not: its units are saturated (inputs up to "
                      f"{size:.3g} in size); {fix}", UserWarning, stacklevel=3)


def _validation(net, data):
    if data is None:
        return None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("validation_data must be a pair (X_val, y_val)")
    Xv = net.device_inputs(data[0], "X_val")
    return Xv, net.device_targets(data[1], Xv.shape[0], "y_val")


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


class _Loop:
    """The epochs of one ``fit`` call: train, score, record, report, checkpoint."""

    def __init__(self, run, val, verbose, callbacks, saver, end_metrics):
        self.run, self.val, self.verbose = run, val, verbose
        self.callbacks, self.saver, self.end_metrics = callbacks, saver, end_metrics

    def train(self, epochs, history):
        run = self.run
        bar = ProgressBar(epochs.stop, enabled=self.verbose, first=epochs.start)
        try:
            for epoch in epochs:
                t0 = time.perf_counter()
                logs = run.epoch(bar)
                logs.update(self._scores(run))
                logs["time"] = time.perf_counter() - t0
                for key, value in logs.items():
                    history.setdefault(key, []).append(value)
                bar.epoch_done(epoch + 1, logs)
                for cb in self.callbacks:
                    cb(run.net, epoch + 1, logs)
                if self.saver is not None:
                    self.saver.maybe_save(run, epoch + 1, epochs.stop, history)
        finally:
            bar.close()
            run.net.history = history
        return history

    def _scores(self, run):
        logs = {}
        if self.end_metrics:
            logs.update({"end_" + k: v for k, v in
                         evaluate_arrays(run.net, run.X, run.T, run.classify).items()})
        if self.val is not None:
            logs.update({"val_" + k: v for k, v in
                         evaluate_arrays(run.net, *self.val, run.classify).items()})
        return logs


def is_classification(net, y):
    """Whether accuracy means something: a probability output, or targets given as labels."""
    shape = getattr(y, "shape", None)
    ndim = len(shape) if shape is not None else len(_host.host_array(y, "y").shape)
    return net.output.name in ("softmax", "logistic") or (ndim == 1 and net.sizes[-1] > 1)


def evaluate_arrays(net, X, T, classify, chunk=8192):
    """Loss and accuracy of ``net`` on device arrays, in chunks that bound the memory used; one
    read from the device at the end, and one compiled call per chunk where the device compiles."""
    metrics, totals, n = _chunk_metrics(net), None, X.shape[0]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)  # the standard leaves out-of-bounds slices unspecified
        m = metrics(net.params, X[start:stop, ...], T[start:stop, ...])
        totals = m if totals is None else totals + m
    loss_sum, correct = net.backend.to_host(totals).tolist()
    logs = {"loss": loss_sum / n}
    if classify:
        logs["accuracy"] = correct / n
    return logs


_COMPILED_METRICS = weakref.WeakKeyDictionary()


def _chunk_metrics(net):
    """:func:`chunk_totals` for ``net``, compiled once per network where its device compiles
    (each operation run on its own would be compiled on its own, at a far higher cost)."""
    if "step" not in net.backend.compile_modes:
        return functools.partial(chunk_totals, net)
    if net not in _COMPILED_METRICS:  # the function holds the network weakly: no leak
        _COMPILED_METRICS[net] = net.backend.compile(
            functools.partial(chunk_totals, weakref.proxy(net)))
    return _COMPILED_METRICS[net]


def chunk_totals(net, params, X, T):
    """The summed loss and the count of correct answers on (X, T) under ``params``, as one
    device vector."""
    xp = net.xp
    out = net.forward_pass(X, params)[-1]
    correct = xp.astype(count_correct(xp, out, T), net.dtype)
    return xp.stack([net.loss.value(out, T) * X.shape[0], correct])


def evaluate(net, X, y):
    """``{"loss": ..., "accuracy": ...}`` of ``net`` on (X, y) (accuracy for classification)."""
    with net.backend.context():
        Xd = net.device_inputs(X)
        Td = net.device_targets(y, Xd.shape[0])
        return evaluate_arrays(net, Xd, Td, is_classification(net, y))


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


def count_correct(xp, out, T):
    """How many rows of ``out`` pick the same class as the targets (a 0-d device array)."""
    return xp.sum(xp.astype(labels_of(xp, out) == labels_of(xp, T), xp.int32))
