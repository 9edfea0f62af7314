"""The training step: an optimizer bound to a network (:class:`Trainer`), one pure step
``(params, optimizer state, X, T) → (params', state', outputs)``, run in place or compiled, and
the compilation modes."""

from __future__ import annotations

from array_api_compat import device

from .. import defaults, optim
from ..network import labels_of
from ..registry import COMPILING_DEVICES

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
