"""Optimizers: SGD, SGD with momentum, Adam — each an in-place update of the parameters.

An optimizer is its hyper-parameters; its state (velocities, moments, step count) is a separate
dict made by ``init_state(params)``, so it can be saved in a checkpoint and restored.
``params`` and ``grads`` are flat lists of device arrays of the same shapes.
"""

from __future__ import annotations

import inspect
import math

from array_api_compat import array_namespace


class SGD:
    """Plain gradient descent, the lecture's ``Δw = -η ∂E/∂w``."""

    name = "sgd"

    def __init__(self, lr=0.1):
        self.lr = float(lr)

    def init_state(self, params):
        return {}

    def update(self, params, grads, state):
        for p, g in zip(params, grads):
            p -= self.lr * g

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr})"


class Momentum(SGD):
    """SGD with momentum: ``v ← μ v - η g``, ``w ← w + v``."""

    name = "momentum"

    def __init__(self, lr=0.1, momentum=0.9):
        super().__init__(lr)
        self.momentum = float(momentum)

    def init_state(self, params):
        return {"velocity": [_zeros_like(p) for p in params]}

    def update(self, params, grads, state):
        for p, g, v in zip(params, grads, state["velocity"]):
            v *= self.momentum
            v -= self.lr * g
            p += v


class Adam(SGD):
    """Adam (Kingma & Ba, 2015), with the bias correction folded into the step size."""

    name = "adam"

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def init_state(self, params):
        return {"step": 0, "m": [_zeros_like(p) for p in params],
                "v": [_zeros_like(p) for p in params]}

    def advance(self, state):
        """Count one more step; return its (step size, ε) with the bias correction folded in."""
        state["step"] += 1
        t, b1, b2 = state["step"], self.beta1, self.beta2
        return self.lr * math.sqrt(1 - b2**t) / (1 - b1**t), self.eps * math.sqrt(1 - b2**t)

    def update(self, params, grads, state):
        step, eps = self.advance(state)
        b1, b2 = self.beta1, self.beta2
        for p, g, m, v in zip(params, grads, state["m"], state["v"]):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= step * m / (v**0.5 + eps)


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
