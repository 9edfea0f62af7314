"""Fused CuPy primitives for the rules' fast paths (see :class:`bpgpu.backends.InPlaceOps`).

Each elementwise stage becomes one kernel over memory already allocated: the activation in place on
the matrix product's output, the activation's derivative applied in place to the incoming delta,
the matched output delta in one pass, the column sum as a product with a ones vector (a GEMM,
faster than a column reduction), and each optimizer update in one or two kernels per parameter.

Not yet verified on a GPU: the CuPy backend does not use these primitives until the equality tests
in ``tests/test_fast_paths.py`` (``test_cupy_fused_ops_match_reference``) have passed on a CUDA
card, and ``CupyBackend.ops`` is switched to :class:`CupyOps` after that run.
"""

from __future__ import annotations

import cupy as cp

from . import InPlaceOps


def _kernel(params, out, op, name):
    return cp.ElementwiseKernel(params, out, op, f"bpgpu_{name}")


_sigmoid = _kernel("T x", "T z", "z = 1 / (1 + exp(-x))", "sigmoid")
_relu = _kernel("T x", "T z", "z = max(x, (T)0)", "relu")
_exp_shift = _kernel("T m", "T z", "z = exp(z - m)", "exp_shift")
_sigmoid_grad = _kernel("T y", "T g", "g = g * y * (1 - y)", "sigmoid_grad")
_tanh_grad = _kernel("T y", "T g", "g = g * (1 - y * y)", "tanh_grad")
_relu_grad = _kernel("T y", "T g", "g = y > (T)0 ? g : (T)0", "relu_grad")
_scaled_diff = _kernel("T y, T t, T s", "T d", "d = (y - t) * s", "scaled_diff")
_axpy = _kernel("T a, T g", "T p", "p += a * g", "axpy")
_scale_axpy = _kernel("T mu, T a, T g", "T v", "v = mu * v + a * g", "scale_axpy")
_scale_addcmul = _kernel("T mu, T a, T g, T h", "T v", "v = mu * v + a * g * h", "scale_addcmul")
_addcdiv_sqrt = _kernel("T a, T m, T v, T eps", "T p", "p += a * m / (sqrt(v) + eps)",
                        "addcdiv_sqrt")


class CupyOps(InPlaceOps):
    def __init__(self, xp):
        super().__init__(xp)
        self._ones = {}

    def sigmoid_(self, z):
        return _sigmoid(z, z)

    def tanh_(self, z):
        return cp.tanh(z, out=z)

    def relu_(self, z):
        return _relu(z, z)

    def softmax_(self, z):
        _exp_shift(z.max(axis=1, keepdims=True), z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def mul_sigmoid_grad_(self, g, y):
        return _sigmoid_grad(y, g)

    def mul_tanh_grad_(self, g, y):
        return _tanh_grad(y, g)

    def mask_relu_grad_(self, g, y):
        return _relu_grad(y, g)

    def scaled_diff(self, y, t, s):
        return _scaled_diff(y, t, y.dtype.type(s))

    def column_sum(self, d):
        key = (d.shape[0], d.dtype, d.device.id)
        ones = self._ones.get(key)
        if ones is None:
            ones = self._ones[key] = cp.ones((1, d.shape[0]), dtype=d.dtype)
        return (ones @ d).reshape(-1)

    def matmul_into(self, a, b, out):
        return cp.matmul(a, b, out=out)

    def column_sum_into(self, d, out):
        key = (d.shape[0], d.dtype, d.device.id)
        ones = self._ones.get(key)
        if ones is None:
            ones = self._ones[key] = cp.ones((1, d.shape[0]), dtype=d.dtype)
        cp.matmul(ones, d, out=out.reshape(1, -1))
        return out

    def axpy_(self, p, a, g):
        return _axpy(p.dtype.type(a), g, p)

    def scale_axpy_(self, v, mu, a, g):
        f = v.dtype.type
        return _scale_axpy(f(mu), f(a), g, v)

    def scale_addcmul_(self, v, mu, a, g, h):
        f = v.dtype.type
        return _scale_addcmul(f(mu), f(a), g, h, v)

    def addcdiv_sqrt_(self, p, a, m, v, eps):
        f = p.dtype.type
        return _addcdiv_sqrt(f(a), m, v, f(eps), p)

    def add_scaled_(self, x, a, y):
        return _axpy(x.dtype.type(a), y, x)  # the kernel only reads y
