"""``fit``: the epochs of a training run — transforms, continuation, checkpoints, progress,
validation and callbacks — around the epoch runner."""

from __future__ import annotations

import contextlib
import time
import warnings

from .. import _host, defaults, optim, schedules
from ..backends import to_numpy
from ..datasets import held_out_rows
from ..distributed import DataParallel
from ..errors import DeviceOutOfMemory, TrainingDiverged
from ..io import checkpoint as checkpoints
from ..io.files import check_writable
from ..transform import Standardize
from ..validation import check_every, check_schedule
from .callbacks import StopTraining
from .epoch import EpochRunner
from .evaluate import evaluate_arrays, is_classification
from .progress import ProgressBar
from .step import Trainer, resolve_mode


def fit(net, X, y, *, epochs=defaults.EPOCHS, batch_size=defaults.BATCH_SIZE, lr=None,
        optimizer=defaults.OPTIMIZER, shuffle=True, validation_data=None, verbose=False,
        callbacks=(), checkpoint=None, checkpoint_every=1, resume=None, comm=None,
        compile="auto", standardize=False, end_metrics=False, validation_fraction=None,
        schedule=None, **optimizer_options):
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
    lr : float, schedule or callable, optional
        The learning rate η; default 0.01 for adam and adamw, 0.1 for sgd, 0.05 for momentum (the
        one table of defaults, :mod:`bpgpu.defaults`, shared with ``bpgpu train``; the
        scikit-learn estimators take ``MLPClassifier``'s). A schedule from
        :mod:`bpgpu.schedules` (or its command-line form, such as ``"cosine"``), or a function
        ``f(epoch) -> rate`` (0-based epoch, counted over every ``fit``), sets each epoch's rate
        from the optimizer's default base rate; on a compiling device the rate enters the
        compiled step as data, so it compiles no more often. The history records each epoch's
        ``lr``; checkpoints keep the schedule's state.
    schedule : schedule, str or callable, optional
        A schedule beside a numeric ``lr``, which is then its base rate η0
        (``fit(lr=0.05, schedule="cosine")``).
    optimizer : {"adam", "adamw", "sgd", "momentum"}, default "adam"
        Or a registered optimizer's name (:func:`bpgpu.register`), or an optimizer object.
    shuffle : bool
        Visit the examples in a new random order every epoch (seeded by the net's seed).
    validation_data : (X_val, y_val), optional
        Held-out data evaluated after every epoch.
    validation_fraction : float in (0, 1), optional
        Without ``validation_data``: hold out this share of (X, y) instead, drawn with the
        network's seed (stratified by class for labels); the rest is trained on.
    verbose : bool
        Show a progress bar (tqdm): a widget in a notebook, or a line on standard error where it
        is a terminal; nothing in logs or pipes.
    callbacks : sequence of callables
        Each is called as ``cb(net, epoch, logs)`` after every epoch (``epoch`` counts every
        epoch the network has trained, from 1); one may end the run by raising
        :class:`bpgpu.StopTraining`, and one with ``on_train_begin(net)`` / ``on_train_end(net)``
        is told when the run starts and ends (:class:`bpgpu.EarlyStopping` is one).
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
        ``weight_decay`` for every optimizer (L2 on the weights, not the biases:
        ∂E/∂W += λ W; for adamw, decoupled decay W ← W − η λ W, default 0.01); ``momentum`` and
        ``nesterov`` for momentum; ``beta1``, ``beta2``, ``eps`` for Adam and AdamW.

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
    base, schedule = schedules.split(lr, schedule)
    opt = optim.get(optimizer, lr=base, **optimizer_options)  # it checks its own settings
    mode = resolve_mode(net.backend, compile, comm)
    settings = {"batch_size": batch_size, "shuffle": bool(shuffle)}
    if checkpoint is not None:
        check_writable(checkpoint)
    if validation_fraction is not None:
        X, y, validation_data = _held_out(net, X, y, validation_data, validation_fraction)
    if standardize:
        learn_transforms(net, X, y)
    with net.backend.context(), _out_of_memory_hint(net, batch_size):
        Xd = net.device_inputs(X)
        Td = net.device_targets(y, Xd.shape[0])
        val = _validation(net, validation_data)
        resumed = checkpoints.restore_net(net, resume, opt, settings) if resume else None
        parallel = DataParallel(comm, net.backend) if comm is not None else None
        trainer = Trainer(net, opt, parallel=parallel, compile="none" if mode == "none" else "step")
        if resumed:  # the schedule spans the total; the checkpoint restores its state
            trainer.schedule = schedules.get(schedule, epochs=epochs)
            start, history = checkpoints.restore_trainer(trainer, *resumed)
            stop = epochs
        else:
            start, history = _continued(net, trainer)
            stop = start + epochs
            trainer.schedule = schedules.get(schedule, epochs=stop)
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


def _held_out(net, X, y, validation_data, fraction):
    """(X_train, y_train, (X_val, y_val)): a seeded share of the rows held out, stratified by
    class where y holds labels."""
    if validation_data is not None:
        raise ValueError("give validation_data or validation_fraction, not both")
    X, y = _host.host_array(X, "X"), to_numpy(y)
    labels = net.task == "classify" and y.ndim == 1  # stratified; regression targets: not
    train, val = held_out_rows(y, fraction, seed=net.seed, stratify=labels)
    return X[train], y[train], (X[val], y[val])


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
        self._tell("on_train_begin")
        try:
            for epoch in epochs:
                if self._epoch(bar, epoch, epochs.stop, history):
                    break
        finally:
            bar.close()
            run.net.history = history
            self._tell("on_train_end")
        if self.saver is not None and any(hasattr(cb, "on_train_end") for cb in self.callbacks):
            # the last checkpoint holds the weights the run ends with (the best epoch's, where
            # early stopping restored them), as the saved model does
            self.saver.maybe_save(run, run.epochs_done, run.epochs_done, history)
        return history

    def _epoch(self, bar, epoch, last, history):
        """Train, score and record one epoch; True when a callback stopped the run."""
        run, t0 = self.run, time.perf_counter()
        rate = run.trainer.begin_epoch(epoch)
        logs = run.epoch(bar)
        logs.update(self._scores(run))
        run.trainer.end_epoch(epoch, logs)  # a plateau schedule watches the epoch's scores
        logs["lr"], logs["time"] = rate, time.perf_counter() - t0
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
        bar.epoch_done(epoch + 1, logs)
        stopped = False
        try:
            for cb in self.callbacks:
                cb(run.net, epoch + 1, logs)
        except StopTraining:
            stopped = True
        if self.saver is not None:  # a stopped run's last epoch is always checkpointed
            self.saver.maybe_save(run, epoch + 1, epoch + 1 if stopped else last, history)
        return stopped

    def _tell(self, event):
        for cb in self.callbacks:
            if hasattr(cb, event):
                getattr(cb, event)(self.run.net)

    def _scores(self, run):
        logs = {}
        if self.end_metrics:
            logs.update({"end_" + k: v for k, v in
                         evaluate_arrays(run.net, run.X, run.T, run.classify).items()})
        if self.val is not None:
            logs.update({"val_" + k: v for k, v in
                         evaluate_arrays(run.net, *self.val, run.classify).items()})
        return logs
