"""In-place NumPy primitives for the rules' fast paths (see :class:`bpgpu.backends.InPlaceOps`).

The same arithmetic as the Array API reference, reusing each freshly made array instead of
allocating a temporary per operation, and calling the ufuncs themselves (no Python-level wrapper):
the step's elementwise work then costs one or two passes over memory per layer rather than four or
five. The tests compare every fast path with its reference.
"""

from __future__ import annotations

import numpy as np

from . import InPlaceOps


class NumpyOps(InPlaceOps):
    def sigmoid_(self, z):
        # exp overflows to inf for z < -88 (float32), which gives exactly 0; the warning it would
        # raise is silenced by NumpyBackend.context(), entered once per step.
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1
        return np.reciprocal(z, out=z)

    def tanh_(self, z):
        return np.tanh(z, out=z)

    def relu_(self, z):
        return np.maximum(z, 0, out=z)

    def softmax_(self, z):
        z -= np.maximum.reduce(z, axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= np.add.reduce(z, axis=1, keepdims=True)
        return z

    def mul_sigmoid_grad_(self, g, y):
        g *= y
        g *= 1 - y
        return g

    def column_sum(self, d):
        return np.add.reduce(d, axis=0)

    def matmul_into(self, a, b, out):
        return np.matmul(a, b, out=out)

    def column_sum_into(self, d, out):
        return np.add.reduce(d, axis=0, out=out)
