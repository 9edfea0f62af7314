"""Optimizers: SGD, SGD with momentum, Adam.

An optimizer is its hyper-parameters; its state (velocities, moments, step count) is a separate
dict made by ``init_state(params)``, so it can be saved in a checkpoint and restored. The default
learning rates are those of :mod:`bpgpu.defaults`.
``params`` and ``grads`` are flat lists of device arrays of the same shapes. Each update is a pure
function, ``step(params, grads, state) → (params', state')``, which never writes into an array (so
JAX can compile it), and a fast path ``step_`` beside it that does the same with a backend's
in-place primitives (:class:`bpgpu.backends.InPlaceOps`).
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers

from array_api_compat import array_namespace

from .defaults import LR


class SGD:
    """Plain gradient descent, the lecture's ``Δw = -η ∂E/∂w``."""

    name = "sgd"

    def __init__(self, lr=LR["sgd"]):
        self.lr = check_setting("lr (the learning rate η)", lr)

    def init_state(self, params):
        return {}

    def step(self, params, grads, state):
        """One update as a pure function: ``(params, grads, state) → (params', state')``."""
        return [p - self.lr * g for p, g in zip(params, grads)], state

    def step_(self, params, grads, state, ops):
        """:meth:`step` with a backend's in-place primitives: writes into ``params``, consumes
        ``grads``."""
        return [ops.axpy_(p, -self.lr, g) for p, g in zip(params, grads)], state

    def apply(self, params, grads, state, ops=None):
        """One update: the fast path ``step_`` on ``ops`` where this class has one for its own
        ``step`` (a subclass that redefines only ``step`` gets its ``step``), else ``step``."""
        if ops is not None and _fast_path_is_own(type(self)):
            return self.step_(params, grads, state, ops)
        return self.step(params, grads, state)

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr})"


class Momentum(SGD):
    """SGD with momentum: ``v ← μ v - η g``, ``w ← w + v``."""

    name = "momentum"

    def __init__(self, lr=LR["momentum"], momentum=0.9):
        super().__init__(lr)
        self.momentum = check_setting("momentum", momentum, high=1.0, low_ok=True)

    def init_state(self, params):
        return {"velocity": [_zeros_like(p) for p in params]}

    def step(self, params, grads, state):
        vs = [self.momentum * v - self.lr * g for g, v in zip(grads, state["velocity"])]
        return [p + v for p, v in zip(params, vs)], {"velocity": vs}

    def step_(self, params, grads, state, ops):
        vs = [ops.scale_axpy_(v, self.momentum, -self.lr, g)
              for g, v in zip(grads, state["velocity"])]
        return [ops.add_(p, v) for p, v in zip(params, vs)], {"velocity": vs}


class Adam(SGD):
    """Adam (Kingma & Ba, 2015), with the bias correction folded into the step size.

    The step count ``t`` is a Python int when steps run one by one, and a 0-d device array inside
    a compiled step; the bias correction is written so that both work.
    """

    name = "adam"

    def __init__(self, lr=LR["adam"], beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1 = check_setting("beta1", beta1, high=1.0, low_ok=True)
        self.beta2 = check_setting("beta2", beta2, high=1.0, low_ok=True)
        self.eps = check_setting("eps", eps)

    def init_state(self, params):
        return {"step": 0, "m": [_zeros_like(p) for p in params],
                "v": [_zeros_like(p) for p in params]}

    def corrected(self, t):
        """Step t's (step size, ε) with the bias correction folded in."""
        c = (1 - self.beta2**t) ** 0.5
        return self.lr * c / (1 - self.beta1**t), self.eps * c

    def step(self, params, grads, state):
        t = state["step"] + 1
        size, eps = self.corrected(t)
        b1, b2 = self.beta1, self.beta2
        ms = [b1 * m + (1 - b1) * g for g, m in zip(grads, state["m"])]
        vs = [b2 * v + (1 - b2) * (g * g) for g, v in zip(grads, state["v"])]
        new = [p - size * m / (v**0.5 + eps) for p, m, v in zip(params, ms, vs)]
        return new, {"step": t, "m": ms, "v": vs}

    def step_(self, params, grads, state, ops):
        t = state["step"] + 1
        size, eps = self.corrected(t)
        b1, b2 = self.beta1, self.beta2
        # v first: the m update may consume g
        vs = [ops.scale_addcmul_(v, b2, 1 - b2, g, g) for g, v in zip(grads, state["v"])]
        ms = [ops.scale_axpy_(m, b1, 1 - b1, g) for g, m in zip(grads, state["m"])]
        new = [ops.addcdiv_sqrt_(p, -size, m, v, eps) for p, m, v in zip(params, ms, vs)]
        return new, {"step": t, "m": ms, "v": vs}


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


@functools.cache
def _fast_path_is_own(cls):
    definer = next(c for c in cls.__mro__ if "step" in vars(c))
    return "step_" in vars(definer)


def _zeros_like(p):
    return array_namespace(p).zeros_like(p)


OPTIMIZERS = {cls.name: cls for cls in (SGD, Momentum, Adam)}


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
