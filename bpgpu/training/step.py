"""The training step: an optimizer bound to a network (:class:`Trainer`), one pure step
``(params, optimizer state, X, T) → (params', state', outputs)``, run in place or compiled, and
the compilation modes."""

from __future__ import annotations

import functools

from array_api_compat import device

from .. import defaults, optim, packed, schedules
from ..network import labels_of
from ..registry import COMPILING_DEVICES
from . import compiled as shared

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
    >>> out = tr.step(X, T)   # on net's device: forward, backward, update  # doctest: +SKIP

    The learning rate of the next steps is data in the optimizer state (``state["lr"]``), set
    by :meth:`set_lr`, or once per epoch from :attr:`schedule` by :meth:`begin_epoch`; a new rate
    never compiles the step again.

    Attributes
    ----------
    schedule : bpgpu.schedules.Schedule
        The learning-rate schedule :meth:`begin_epoch` follows (the constant rate by default).
    rate : float
        The learning rate of the next step, as last set (read without a device transfer).

    Parameters
    ----------
    net : MLP
    optimizer : str or optimizer object ({"sgd", "momentum", "adam", "adamw"}), default "adam"
    lr : float, schedule or callable, optional
        The base rate η0 (default: the optimizer's, from :mod:`bpgpu.defaults`); or a schedule
        (a :class:`bpgpu.schedules.Schedule`, or ``f(epoch) -> rate``) over the optimizer's
        default η0.
    compile : {"auto", "none", "step"}
        ``"step"`` compiles the step once per shape on devices that compile (JAX); ``"auto"``
        does so where the device can.
    schedule : schedule, str or callable, optional
        The learning-rate schedule over a numeric ``lr``: a :class:`bpgpu.schedules.Schedule`, a
        command-line form such as ``"step:10:0.5"`` (:func:`bpgpu.schedules.from_spec`; a
        ``"cosine"`` needs ``epochs``) or ``f(epoch) -> rate``. Default: the constant rate.
    epochs : int, optional
        The run's length in epochs, for a ``"cosine"`` schedule given by name.
    **options
        Further optimizer settings (``momentum``, ``nesterov``, ``beta1``, ``weight_decay``, ...).
    """

    def __init__(self, net, optimizer=defaults.OPTIMIZER, lr=None, parallel=None, compile="auto",
                 schedule=None, epochs=None, **options):
        self.net = net
        base, self.schedule = schedules.resolve(lr, schedule, epochs)
        self.opt = optim.get(optimizer, lr=base, **options)
        self.parallel = parallel
        self.mode = resolve_mode(net.backend, compile, parallel, epochs=False)
        with net.backend.context():
            self.state = self.opt.init_state(net.params)
        self.rate = self.opt.lr  # the current learning rate, kept on the host
        self._base = self.opt.lr  # the base rate the state's rate was last taken from
        self._compiled = {}  # name → (key, the shared compiled function)
        self._structure = None
        self._checked = set()  # the batch shapes step has checked
        self._grads = None  # the buffered step's gradient buffer (bpgpu.packed)
        self._run = net.backend.in_context(type(self).step_in_context)

    def __getstate__(self):
        # What the trainer made for itself (its context wrapper, its gradient buffer, the compiled
        # functions it holds) is made again after unpickling or copying, not carried.
        return {k: v for k, v in vars(self).items() if k not in ("_run", "_grads", "_compiled")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._run = self.net.backend.in_context(type(self).step_in_context)
        self._grads, self._compiled = None, {}

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
        self.set_lr(self.opt.lr)  # not the last fit's scheduled rate: begin_epoch sets its own
        return True

    def set_lr(self, value):
        """Make ``value`` (a number > 0) the learning rate of the steps that follow, and return
        it as a float: a Python float in the state where steps run one by one, a 0-d device
        array of the parameters' dtype where they are compiled (new data, not a new
        compilation)."""
        rate = optim.check_setting("lr (the learning rate η)", value)
        be = self.net.backend
        if self.mode == "none":
            lr = rate
        else:
            with be.context():
                lr = be.asarray(rate, self.net.dtype)
        self.state = {**self.state, "lr": lr}  # a new dict: a rollback snapshot may hold the old
        self.rate = rate
        return rate

    def follow_lr(self):
        """Take up a base rate set on the optimizer itself (``trainer.opt.lr = 0.5``) since the
        state's rate was last set from it."""
        if self.opt.lr != self._base:
            self._base = self.opt.lr
            self.set_lr(self.opt.lr)

    def begin_epoch(self, epoch):
        """Set the rate of ``epoch`` (0-based, counting every epoch the network has trained)
        from :attr:`schedule` and the optimizer's base rate; return it, for the history."""
        self.follow_lr()
        return self.set_lr(schedules.rate_at(self.schedule, epoch, self.opt.lr))

    def end_epoch(self, epoch, logs):
        """Tell :attr:`schedule` how ``epoch`` went (its logs: ``loss``, ``val_loss``, ...)."""
        self.schedule.observe(epoch, logs)

    def step(self, X, T):
        """One training step — forward, backward, update — returning the batch's outputs.

        X (n, sizes[0]) and T (n, sizes[-1]) must already be arrays of the net's dtype on its
        device, as the first layer sees them (``net.device_inputs(X)`` and
        ``net.device_targets(y, n)`` make them, through the network's transforms); they are
        checked once per new shape, and anything else is a one-line ``TypeError`` or
        ``ValueError``. Under data parallelism they are this rank's shard, and may be empty.
        """
        key = (X.shape, T.shape, X.dtype, T.dtype, type(X), type(T))
        if key not in self._checked:
            self._check_batch(X, T)
            self._checked.add(key)
        self.follow_lr()
        return self._run(self, X, T)

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
        net = self.net
        params = net._params  # the network's own list, not a copy (net.params): only read
        fn = self.compiled("step", lambda t: t.pure_step) if self.mode != "none" else \
            self.pure_step
        params, self.state, out = fn(params, self.state, X, T)
        net.replace_params(params)
        return out

    def pure_step(self, params, state, X, T):
        """The training step as a pure function: ``(params, state, X, T) → (params', state',
        outputs)``; on backends with in-place primitives it reuses the arrays it is given.

        Parameters that are views into one buffer (:mod:`bpgpu.packed`, as a fused network on
        NumPy or PyTorch keeps them) take the buffered step with a built-in optimizer: the
        gradients are written into one buffer kept by the trainer, and the optimizer updates the
        whole buffer at once. A custom optimizer is given fresh gradient arrays, one per
        parameter, as ever."""
        net = self.net
        if self._buffered(params):
            return self._packed_step(params, state, X, T)
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

    def _buffered(self, params):
        """Whether a step on ``params`` takes the buffered path (:meth:`_packed_step`)."""
        return (self.net.ops is not None and packed.is_packed(params)
                and optim.updates_buffers(type(self.opt)))

    def _packed_step(self, params, state, X, T):
        net, grads = self.net, self._grads
        if grads is None or (grads.layout is not params.layout and (
                grads.layout != params.layout or grads.flat.dtype != params.flat.dtype
                or device(grads.flat) != device(params.flat))):
            # one spare element after the gradients: the all-reduce's row count
            grads = self._grads = packed.pack(params, spare=1, copy=False)
        if X.shape[0] == 0:  # an empty shard still takes part in the all-reduce
            out = None
            grads.flat[...] = 0
        else:
            acts = net.forward_pass(X, params)
            net.backward_pass(acts, T, params, into=grads)
            out = acts[-1]
        if self.parallel is not None:
            self.parallel.average_packed(grads, X.shape[0])
        return params, self.opt.step_buffers(params, grads, state, net.ops), out

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

    def compiled(self, name, make, donate=(0, 1)):
        """The function ``make(t)`` builds over a trainer ``t``, compiled by the backend (by
        default parameters and state donated).

        For bpgpu's own classes it is built over a parameterless copy of this trainer
        (:func:`bpgpu.training.compiled.shell_trainer`) and shared by every trainer of the same
        network structure and optimizer settings in the process
        (:mod:`bpgpu.training.compiled`): a second network of the same shape compiles nothing. A
        subclass's (network, trainer or optimizer) is built over this trainer and kept by it.
        The learning rate is not one of the settings for the built-in rules, which read it from
        the state as data (a custom ``step`` may read ``self.lr`` instead: for it a new ``lr`` is
        a new compilation)."""
        if getattr(make, "__self__", None) is self or (
                isinstance(make, functools.partial) and make.args and make.args[0] is self):
            raise TypeError("Trainer.compiled takes a builder since 0.4.0: "
                            "compiled(name, lambda t: t.pure_step), not the trainer's function "
                            "itself")
        if self._structure is None:  # a network's structure never changes
            self._structure = shared.structure_key(self.net)
        opt_key = shared.optimizer_key(self.opt, optim.rate_is_data(type(self.opt)))
        key = (name, tuple(donate), self._structure, opt_key)
        entry = self._compiled.get(name)
        if entry is not None and entry[0] == key:
            return entry[1]
        be = self.net.backend
        if shared.shares(self.net, self):
            fn = shared.get(key, lambda: be.compile(make(shared.shell_trainer(self)),
                                                    donate=donate))
        else:  # compiled over this trainer itself, and kept by it alone
            fn = be.compile(make(self), donate=donate)
        self._compiled[name] = key, fn
        # A counter (Adam's t) and the rate are carried on the device in the parameters' float
        # dtype: t is exact to 2^24 steps in float32, and its powers stay in that dtype.
        self.state = {k: be.asarray(v, self.net.dtype) if isinstance(v, (int, float)) else v
                      for k, v in self.state.items()}
        return fn
