"""In-place PyTorch primitives for the rules' fast paths (see :class:`bpgpu.backends.InPlaceOps`).

PyTorch's own fused operations where the Array API reference needs several: ``addmm`` for the
product plus bias, ``sigmoid_``/``tanh_``/``relu_`` in place, the activation derivatives as
PyTorch's backward kernels, and the optimizer updates as in-place ``add_`` / ``addcmul_`` /
``addcdiv_`` calls without temporaries. The tests compare every fast path with its reference.
"""

from __future__ import annotations

from . import InPlaceOps


class TorchOps(InPlaceOps):
    def __init__(self, xp, torch):
        super().__init__(xp)
        self.torch = torch
        self._aten = torch.ops.aten

    def linear(self, a, W, b):
        return a @ W if b is None else self.torch.addmm(b, a, W)

    def sigmoid_(self, z):
        return z.sigmoid_()

    def tanh_(self, z):
        return z.tanh_()

    def relu_(self, z):
        return z.relu_()

    def softmax_(self, z):
        return self.torch.softmax(z, dim=1)

    def mul_sigmoid_grad_(self, g, y):
        return self._aten.sigmoid_backward(g, y)

    def mul_tanh_grad_(self, g, y):
        return self._aten.tanh_backward(g, y)

    def mask_relu_grad_(self, g, y):
        return g.masked_fill_(y <= 0, 0)

    def matmul_into(self, a, b, out):
        return self.torch.mm(a, b, out=out)

    def column_sum_into(self, d, out):
        return self.torch.sum(d, dim=0, out=out)

    def scaled_diff(self, y, t, s):
        return (y - t).mul_(s)

    def add_(self, p, v):
        return p.add_(v)

    def axpy_(self, p, a, g):
        return p.add_(g, alpha=a)

    def scale_axpy_(self, v, mu, a, g):
        return v.mul_(mu).add_(g, alpha=a)

    def scale_addcmul_(self, v, mu, a, g, h):
        return v.mul_(mu).addcmul_(g, h, value=a)

    def addcdiv_sqrt_(self, p, a, m, v, eps):
        return p.addcdiv_(m, v.sqrt().add_(eps), value=a)

    def add_scaled_(self, x, a, y):
        return x.add_(y, alpha=a)

    def scale_(self, x, c):
        return x.mul_(c)
