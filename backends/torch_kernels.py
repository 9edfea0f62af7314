"""In-place PyTorch fast paths for the training step (see :mod:`bpgpu.kernels`).

PyTorch's own fused operations where the Array API reference needs several: ``addmm`` for the
product plus bias, ``sigmoid_``/``tanh_``/``relu_`` in place on its output, the activation
derivatives as PyTorch's backward kernels, and each optimizer update as in-place ``add_`` /
``addcmul_`` / ``addcdiv_`` calls without temporaries. The tests compare them with the reference.
"""

from __future__ import annotations

from bpgpu import kernels, optim


class TorchKernels(kernels.Kernels):
    name = "torch-inplace"

    def __init__(self, torch):
        self.torch = torch
        aten = torch.ops.aten
        self._backward = {"logistic": aten.sigmoid_backward, "tanh": aten.tanh_backward}

    def dense(self, a, W, b, act):
        z = a @ W if b is None else self.torch.addmm(b, a, W)
        if act.name == "logistic":
            return z.sigmoid_()
        if act.name == "tanh":
            return z.tanh_()
        if act.name == "relu":
            return z.relu_()
        if act.name == "softmax":
            return self.torch.softmax(z, dim=1)
        return act.forward(z)

    def hidden_delta(self, y, delta_next, W_next, act):
        g = delta_next @ W_next.T
        if act.name in self._backward:
            return self._backward[act.name](g, y)  # g · f'(z), with f' written from y
        if act.name == "relu":
            return g.masked_fill_(y <= 0, 0)
        return act.backward(y, g)

    def output_delta(self, loss, act, y, t):
        if act.name in loss.matched_outputs:
            return (y - t).mul_(1 / y.shape[0])
        return super().output_delta(loss, act, y, t)

    def update(self, opt, params, grads, state):
        if type(opt) is optim.SGD:
            for p, g in zip(params, grads):
                p.add_(g, alpha=-opt.lr)
        elif type(opt) is optim.Momentum:
            for p, g, v in zip(params, grads, state["velocity"]):
                p.add_(v.mul_(opt.momentum).add_(g, alpha=-opt.lr))
        elif type(opt) is optim.Adam:
            step, eps = opt.advance(state)
            b1, b2 = opt.beta1, opt.beta2
            for p, g, m, v in zip(params, grads, state["m"], state["v"]):
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                p.addcdiv_(m, v.sqrt().add_(eps), value=-step)
        else:
            opt.update(params, grads, state)
