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
    def __init__(self, xp):
        super().__init__(xp)
        self._kept = {}  # ones vectors by (shape, dtype), for the column and row sums

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
        # NumPy reduces a C-ordered array's short rows one at a time: for rows of up to 32 (the
        # usual count of classes) the row maxima of a column-major copy are many times faster
        # (10 x for 2,048 rows of 10), and the row sums are a product with a ones vector (gemv).
        rows = np.asfortranarray(z) if z.shape[1] <= 32 else z
        z -= np.maximum.reduce(rows, axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= np.matmul(z, self._ones((z.shape[1], 1), z.dtype))
        return z

    def mul_sigmoid_grad_(self, g, y):
        g *= y
        g *= 1 - y
        return g

    # The column sum as a product with a ones vector (BLAS's gemv): NumPy's reduction over the
    # rows of a C-ordered array walks them one short row at a time, 1.5 x slower for a 32-row
    # batch and 10 x for 2,048 rows of 10 or 32 columns, and it rounds no better.

    def column_sum(self, d):
        return np.matmul(self._ones(d.shape[:1], d.dtype), d)

    def column_sum_into(self, d, out):
        return np.matmul(self._ones(d.shape[:1], d.dtype), d, out=out)

    def _ones(self, shape, dtype):
        key = (shape, dtype)
        ones = self._kept.get(key)
        if ones is None:
            if len(self._kept) >= 16:  # a few batch sizes (the last one ragged) per run
                self._kept.clear()
            ones = self._kept[key] = np.ones(shape, dtype=dtype)
        return ones

    def matmul_into(self, a, b, out):
        return np.matmul(a, b, out=out)
