"""Optimizers: SGD, SGD with momentum (plain or Nesterov's), Adam and AdamW.

An optimizer is its hyper-parameters; its state (the current learning rate, velocities, moments,
step count) is a separate dict made by ``init_state(params)``, so it can be saved in a checkpoint
and restored. The default learning rates are those of :mod:`bpgpu.defaults`.
``params`` and ``grads`` are flat lists of device arrays of the same shapes. Each update is a pure
function, ``step(params, grads, state) → (params', state')``, which never writes into an array (so
JAX can compile it), and a fast path ``step_`` beside it that does the same with a backend's
in-place primitives (:class:`bpgpu.backends.InPlaceOps`).

**The learning rate is data.** ``lr`` is the base rate η0; the rate a step uses is the state's
``"lr"`` (put there by ``init_state``): a Python float when steps run one by one, a 0-d device
array of the parameters' dtype inside a compiled step, like Adam's step count. A schedule changes
it between epochs (:meth:`bpgpu.training.Trainer.set_lr`) without a new compilation. A state
without one (an older file, a hand-made ``{}``) steps at ``lr``.

**Weight decay** (``weight_decay=λ``) acts on the weight matrices, never on the bias vectors. The
rule tells them apart by shape, :func:`decays` (two dimensions or more): in bpgpu's layout,
``[W0, b0, W1, b1, ...]`` or ``[W0, W1, ...]``, that is exactly the weights, so no mask travels
beside the parameters and each rule keeps its decay in its own update, pure and in place. SGD,
momentum and Adam add the coupled L2 term to the gradient first, ``∂E/∂W += λ W`` (what
``torch.optim``'s ``weight_decay`` does, there on every parameter); AdamW decays the weights
themselves, ``W ← W − η λ W``, then takes Adam's step on the plain gradient.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers

from array_api_compat import array_namespace

from . import packed
from .defaults import LR


def decays(p):
    """Whether weight decay applies to parameter ``p``: the weight matrices (2-D), not the
    biases (1-D)."""
    return p.ndim >= 2


class SGD:
    """Plain gradient descent, the lecture's ``Δw = -η ∂E/∂w``."""

    name = "sgd"
    decoupled = False
    """Whether the weight decay acts on the weights (AdamW) rather than on the gradient (L2)."""

    def __init__(self, lr=LR["sgd"], weight_decay=0.0):
        self.lr = check_setting("lr (the learning rate η)", lr)
        self.weight_decay = check_setting("weight_decay (λ)", weight_decay, low_ok=True)

    def init_state(self, params):
        return {"lr": self.lr}

    def rate(self, state):
        """The learning rate of this step: the state's, else the base rate ``lr``."""
        return state.get("lr", self.lr)

    def decay(self, params, grads, lr):
        """``(params, grads)`` with the weight decay applied, as a pure function: ``g + λ W`` on
        every weight's gradient, or (``decoupled``) ``W − η λ W`` on every weight."""
        lam = self.weight_decay
        if not lam:
            return params, grads
        if self.decoupled:
            return [p * (1 - lr * lam) if decays(p) else p for p in params], grads
        return params, [g + lam * p if decays(p) else g for p, g in zip(params, grads)]

    def decay_(self, params, grads, lr, ops):
        """:meth:`decay` in place: writes into the weights (decoupled) or their gradients."""
        lam = self.weight_decay
        if not lam:
            return params, grads
        if self.decoupled:
            return [ops.scale_(p, 1 - lr * lam) if decays(p) else p for p in params], grads
        return params, [ops.add_scaled_(g, lam, p) if decays(p) else g
                        for p, g in zip(params, grads)]

    def step(self, params, grads, state):
        """One update as a pure function: ``(params, grads, state) → (params', state')``."""
        lr = self.rate(state)
        params, grads = self.decay(params, grads, lr)
        return [p - lr * g for p, g in zip(params, grads)], state

    def step_(self, params, grads, state, ops):
        """:meth:`step` with a backend's in-place primitives: writes into ``params``, consumes
        ``grads``."""
        lr = self.rate(state)
        params, grads = self.decay_(params, grads, lr, ops)
        return [ops.axpy_(p, -lr, g) for p, g in zip(params, grads)], state

    def apply(self, params, grads, state, ops=None):
        """One update: the fast path ``step_`` on ``ops`` where this class has one for its own
        ``step`` (a subclass that redefines only ``step`` gets its ``step``), else ``step``. The
        state's learning rate is kept, also by a ``step`` that builds its state afresh."""
        if ops is not None and _path(type(self)) != _REFERENCE:
            params, new = self.step_(params, grads, state, ops)
        else:
            params, new = self.step(params, grads, state)
        if "lr" in state and "lr" not in new:
            new = {**new, "lr": state["lr"]}
        return params, new

    def step_buffers(self, params, grads, state, ops):
        """:meth:`step_` over whole buffers (:mod:`bpgpu.packed`), returning the new state:
        ``params`` and ``grads`` are :class:`~bpgpu.packed.Packed` lists of one layout, and the
        parameters, gradients and every list of the state are taken as one array each — or two,
        the weights and the biases, where a weight decay tells them apart — so a step makes the
        same few calls however many layers the network has. The state's lists become buffers of
        their own on the first step. For the built-in optimizers (:func:`updates_buffers`)."""
        split = self.weight_decay != 0
        given, lists = state, {}
        for key, value in state.items():
            if isinstance(value, list):
                if not lists:
                    given = dict(state)
                lists[key] = value = packed.packed_like(value, params.layout)
                given[key] = value.segments(split)
        ps = params.segments(split)
        new_ps, new = self.step_(ps, grads.segments(split), given, ops)
        _written(new_ps, ps)
        if lists:  # step_ made a new dict (a built-in one does)
            for key, value in lists.items():
                _written(new[key], given[key])
                new[key] = value
        return new

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({settings})"


class Momentum(SGD):
    """SGD with momentum: ``v ← μ v − η g``, ``w ← w + v``.

    With ``nesterov=True``, Nesterov's accelerated gradient in PyTorch's form, step for step
    ``torch.optim.SGD(momentum=μ, nesterov=True)``: ``b ← μ b + g``, ``w ← w − η (g + μ b)``. Its
    buffer ``b`` holds no learning rate (it is the state's ``"buffer"``, not ``"velocity"``), so a
    changed rate applies to the whole step at once. At a constant rate the plain form is PyTorch's
    too (``v = −η b``).
    """

    name = "momentum"

    def __init__(self, lr=LR["momentum"], momentum=0.9, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.momentum = check_setting("momentum", momentum, high=1.0, low_ok=True)
        self.nesterov = check_flag("nesterov", nesterov)

    def init_state(self, params):
        key = "buffer" if self.nesterov else "velocity"
        return {"lr": self.lr, key: [_zeros_like(p) for p in params]}

    def step(self, params, grads, state):
        lr, mu = self.rate(state), self.momentum
        params, grads = self.decay(params, grads, lr)
        if self.nesterov:
            bs = [mu * b + g for g, b in zip(grads, state["buffer"])]
            new = [p - lr * (g + mu * b) for p, g, b in zip(params, grads, bs)]
            return new, {**state, "buffer": bs}
        vs = [mu * v - lr * g for g, v in zip(grads, state["velocity"])]
        return [p + v for p, v in zip(params, vs)], {**state, "velocity": vs}

    def step_(self, params, grads, state, ops):
        lr, mu = self.rate(state), self.momentum
        params, grads = self.decay_(params, grads, lr, ops)
        if self.nesterov:  # PyTorch's own order of operations
            bs = [ops.add_scaled_(ops.scale_(b, mu), 1.0, g)
                  for g, b in zip(grads, state["buffer"])]
            grads = [ops.add_scaled_(g, mu, b) for g, b in zip(grads, bs)]
            return [ops.axpy_(p, -lr, g) for p, g in zip(params, grads)], {**state, "buffer": bs}
        vs = [ops.scale_axpy_(v, mu, -lr, g) for g, v in zip(grads, state["velocity"])]
        return [ops.add_(p, v) for p, v in zip(params, vs)], {**state, "velocity": vs}


class Adam(SGD):
    """Adam (Kingma & Ba, 2015), with the bias correction folded into the step size.

    The step count ``t`` and the rate are Python numbers when steps run one by one, and 0-d
    device arrays inside a compiled step; the bias correction is written so that both work.
    """

    name = "adam"

    def __init__(self, lr=LR["adam"], beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self.beta1 = check_setting("beta1", beta1, high=1.0, low_ok=True)
        self.beta2 = check_setting("beta2", beta2, high=1.0, low_ok=True)
        self.eps = check_setting("eps", eps)

    def init_state(self, params):
        return {"lr": self.lr, "step": 0, "m": [_zeros_like(p) for p in params],
                "v": [_zeros_like(p) for p in params]}

    def corrected(self, t, lr):
        """Step t's (step size, ε) at rate ``lr``, with the bias correction folded in."""
        c = (1 - self.beta2**t) ** 0.5
        return lr * c / (1 - self.beta1**t), self.eps * c

    def step(self, params, grads, state):
        lr, t = self.rate(state), state["step"] + 1
        params, grads = self.decay(params, grads, lr)
        size, eps = self.corrected(t, lr)
        b1, b2 = self.beta1, self.beta2
        ms = [b1 * m + (1 - b1) * g for g, m in zip(grads, state["m"])]
        vs = [b2 * v + (1 - b2) * (g * g) for g, v in zip(grads, state["v"])]
        new = [p - size * m / (v**0.5 + eps) for p, m, v in zip(params, ms, vs)]
        return new, {**state, "step": t, "m": ms, "v": vs}

    def step_(self, params, grads, state, ops):
        lr, t = self.rate(state), state["step"] + 1
        params, grads = self.decay_(params, grads, lr, ops)
        size, eps = self.corrected(t, lr)
        b1, b2 = self.beta1, self.beta2
        # v first: the m update may consume g
        vs = [ops.scale_addcmul_(v, b2, 1 - b2, g, g) for g, v in zip(grads, state["v"])]
        ms = [ops.scale_axpy_(m, b1, 1 - b1, g) for g, m in zip(grads, state["m"])]
        new = [ops.addcdiv_sqrt_(p, -size, m, v, eps) for p, m, v in zip(params, ms, vs)]
        return new, {**state, "step": t, "m": ms, "v": vs}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``:
    ``W ← W − η λ W`` on the weights, then Adam's step on the plain gradient."""

    name = "adamw"
    decoupled = True

    def __init__(self, lr=LR["adamw"], beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
        super().__init__(lr, beta1, beta2, eps, weight_decay)


def check_setting(name, value, low=0.0, high=math.inf, low_ok=False):
    """``value`` as a float, checked to be a real number in (low, high) ([low, high) with
    ``low_ok``); otherwise a ValueError naming the setting and the range."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    x = float(value) if ok else math.nan
    if not (low <= x < high if low_ok else low < x < high):
        if high == math.inf and not low_ok:
            raise ValueError(f"{name} must be a finite number > {low:g}, got {value!r}")
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}), got {value!r}")
    return x


def check_flag(name, value):
    """``value`` as a Python bool (a Python or NumPy bool); otherwise a one-line ValueError."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


@functools.cache
def rate_is_data(cls):
    """Whether optimizer class ``cls`` steps with a built-in ``step``, which reads its rate from
    the state; a custom ``step`` may read ``self.lr``, a constant once compiled."""
    return next(c for c in cls.__mro__ if "step" in vars(c)).__module__ == __name__


_REFERENCE, _ARRAYS, _BUFFERS = "step", "step_", "step_ on buffers"


@functools.cache
def _path(cls):
    """How optimizer class ``cls`` updates where the backend writes in place: its pure ``step``
    (a class that defines ``step`` without a ``step_`` of its own), its fast path ``step_``
    per array, or — a built-in class itself, whose rules are elementwise — ``step_`` over whole
    buffers. A subclass may change any part (its decay, its state), so it steps per array."""
    definer = next(c for c in cls.__mro__ if "step" in vars(c))
    if "step_" not in vars(definer):
        return _REFERENCE
    return _BUFFERS if cls in OPTIMIZERS.values() else _ARRAYS


@functools.cache
def updates_buffers(cls):
    """Whether optimizer class ``cls`` updates whole buffers (:meth:`SGD.step_buffers`): the
    built-in optimizers themselves; a subclass, or any custom optimizer, is given one array per
    parameter (and fresh gradient arrays at every step)."""
    return _path(cls) == _BUFFERS


def _written(results, buffers):
    """Make sure an in-place rule's results are in ``buffers`` (a primitive that made a new array
    instead of writing into its argument is copied back)."""
    for a, b in zip(results, buffers):
        if a is not b:
            b[...] = a


def _zeros_like(p):
    return array_namespace(p).zeros_like(p)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Adam, AdamW)}


def get(name, lr=None, **kwargs):
    """An optimizer by name, e.g. ``get("adam", lr=1e-3)`` (or an optimizer, returned as is)."""
    if not isinstance(name, str):
        if lr is not None or kwargs:
            raise TypeError("give the learning rate and options to the optimizer object itself, "
                            f"not beside it (got {name!r} with lr={lr!r}, {kwargs})")
        return name
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if lr is not None:
        kwargs["lr"] = lr
    cls = OPTIMIZERS[name]
    accepted = [p for p in inspect.signature(cls).parameters]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"optimizer {name!r} takes {', '.join(accepted)}; got "
                        f"{', '.join(unknown)}")
    return cls(**kwargs)
