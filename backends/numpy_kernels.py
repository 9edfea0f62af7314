"""In-place NumPy fast paths for the training step (see :mod:`bpgpu.kernels`).

The same arithmetic as the Array API reference, reusing each freshly made array instead of
allocating a temporary per operation: the step's elementwise work then costs one or two passes
over memory per layer rather than four or five. The reference stays the definition; the tests
compare the two.
"""

from __future__ import annotations

import numpy as np

from bpgpu import kernels, optim


class NumpyKernels(kernels.Kernels):
    name = "numpy-inplace"

    def dense(self, a, W, b, act):
        z = a @ W
        if b is not None:
            z += b
        return _FORWARD.get(act.name, _generic_forward)(z, act)

    def hidden_delta(self, y, delta_next, W_next, act):
        g = delta_next @ W_next.T
        if act.name == "logistic":
            g *= y
            g *= 1 - y
            return g
        if act.name == "tanh":
            g *= 1 - y * y
            return g
        return act.backward(y, g)

    def output_delta(self, loss, act, y, t):
        if act.name in loss.matched_outputs:
            d = y - t
            d *= 1 / y.shape[0]
            return d
        return super().output_delta(loss, act, y, t)

    def bias_grad(self, xp, delta):
        return np.add.reduce(delta, axis=0)  # the ufunc itself: no Python-level wrapper

    def update(self, opt, params, grads, state):
        if type(opt) is not optim.SGD:
            return opt.update(params, grads, state)
        for p, g in zip(params, grads):
            g *= opt.lr
            p -= g


def _logistic(z, act):
    # 1 / (1 + exp(-z)) in place. exp overflows to inf for z < -88 (float32), which gives exactly
    # 0; the warning it would raise is silenced by NumpyBackend.context(), entered once per step.
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)
    return z


def _tanh(z, act):
    return np.tanh(z, out=z)


def _relu(z, act):
    return np.maximum(z, 0, out=z)


def _softmax(z, act):
    z -= np.maximum.reduce(z, axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= np.add.reduce(z, axis=1, keepdims=True)
    return z


def _generic_forward(z, act):
    return act.forward(z)


_FORWARD = {"logistic": _logistic, "tanh": _tanh, "relu": _relu, "softmax": _softmax}
