"""Fused CuPy kernels for the training step (see :mod:`bpgpu.kernels`).

Each elementwise stage of the step becomes one kernel over memory already allocated: bias and
activation together on the matrix product's output, the activation's derivative applied in place
to the incoming delta, the matched output delta in one pass, the bias gradient as a product with
a ones vector (a GEMM, faster than a column reduction), and each optimizer update as one kernel
per parameter.

Not yet verified on a GPU: the CuPy backend does not use these kernels until the equality tests in
``tests/test_kernels.py`` (``test_cupy_fused_kernels_match_reference``) have passed on a CUDA card,
and ``CupyBackend.kernels`` is switched to :class:`CupyKernels` after that run.
"""

from __future__ import annotations

import cupy as cp

from bpgpu import kernels, optim

_ACT_FORWARD = {
    "identity": "z = z + b",
    "logistic": "z = 1 / (1 + exp(-(z + b)))",
    "tanh": "z = tanh(z + b)",
    "relu": "z = max(z + b, (T)0)",
}
_ACT_BACKWARD = {
    "logistic": "g = g * y * (1 - y)",
    "tanh": "g = g * (1 - y * y)",
    "relu": "g = y > (T)0 ? g : (T)0",
}
_forward = {name: cp.ElementwiseKernel("T b", "T z", op, f"bpgpu_fwd_{name}")
            for name, op in _ACT_FORWARD.items()}
_backward = {name: cp.ElementwiseKernel("T y", "T g", op, f"bpgpu_bwd_{name}")
             for name, op in _ACT_BACKWARD.items()}
_exp_shift = cp.ElementwiseKernel("T m", "T z", "z = exp(z - m)", "bpgpu_exp_shift")
_delta = cp.ElementwiseKernel("T y, T t, T s", "T d", "d = (y - t) * s", "bpgpu_out_delta")
_sgd = cp.ElementwiseKernel("T g, T lr", "T p", "p -= lr * g", "bpgpu_sgd")
_momentum = cp.ElementwiseKernel("T g, T lr, T mu", "T p, T v", "v = mu * v - lr * g; p += v",
                                 "bpgpu_momentum")
_adam = cp.ElementwiseKernel(
    "T g, T b1, T b2, T step, T eps", "T p, T m, T v",
    "m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g; p -= step * m / (sqrt(v) + eps)",
    "bpgpu_adam")


class CupyKernels(kernels.Kernels):
    name = "cupy-fused"

    def __init__(self):
        self._ones = {}

    def dense(self, a, W, b, act):
        z = a @ W
        if act.name == "softmax":
            if b is not None:
                z += b
            _exp_shift(z.max(axis=1, keepdims=True), z)
            z /= z.sum(axis=1, keepdims=True)
            return z
        if b is not None and act.name in _forward:
            _forward[act.name](b, z)
            return z
        if b is not None:
            z += b
        return act.forward(z)

    def hidden_delta(self, y, delta_next, W_next, act):
        g = delta_next @ W_next.T
        if act.name == "identity":
            return g
        if act.name in _backward:
            _backward[act.name](y, g)
            return g
        return act.backward(y, g)

    def output_delta(self, loss, act, y, t):
        if act.name in loss.matched_outputs:
            return _delta(y, t, y.dtype.type(1 / y.shape[0]))
        return super().output_delta(loss, act, y, t)

    def bias_grad(self, xp, delta):
        key = (delta.shape[0], delta.dtype, delta.device.id)
        ones = self._ones.get(key)
        if ones is None:
            ones = self._ones[key] = cp.ones((1, delta.shape[0]), dtype=delta.dtype)
        return (ones @ delta).reshape(-1)

    def update(self, opt, params, grads, state):
        if type(opt) is optim.SGD:
            for p, g in zip(params, grads):
                _sgd(g, p.dtype.type(opt.lr), p)
        elif type(opt) is optim.Momentum:
            for p, g, v in zip(params, grads, state["velocity"]):
                _momentum(g, p.dtype.type(opt.lr), p.dtype.type(opt.momentum), p, v)
        elif type(opt) is optim.Adam:
            step, eps = opt.advance(state)
            for p, g, m, v in zip(params, grads, state["m"], state["v"]):
                f = p.dtype.type
                _adam(g, f(opt.beta1), f(opt.beta2), f(step), f(eps), p, m, v)
        else:
            opt.update(params, grads, state)
