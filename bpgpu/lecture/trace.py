"""The teaching view: every step's deltas, gradients and weight changes in the lecture's notation.

For each step it prints the inputs x, targets t, outputs y and residual t − y, then per layer the
deltas δ = ∂E/∂z, the gradient ∂E/∂w = yᵀδ, the change Δw (= −η ∂E/∂w for plain SGD) and the new
weights. Only small networks are allowed: past a few dozen numbers per step, nobody reads it.
"""

from __future__ import annotations

import math

import numpy as np

from ..training import EpochRunner, StepHook, Trainer

MAX_PARAMS = 60
MAX_STEPS = 200


def trace_fit(net, X, y, *, epochs, batch_size, lr, optimizer, shuffle, out):
    """Train like :func:`bpgpu.fit`, printing every step; refuses networks too large to print."""
    n_params = sum(int(np.prod(p.shape)) for p in net.params)
    if n_params > MAX_PARAMS:
        raise ValueError(f"--trace prints every weight, and this network has {n_params} "
                         f"(limit {MAX_PARAMS}); use smaller --layers, e.g. 2,2,1")
    n = len(X)
    bs = n if batch_size == "full" else min(batch_size, n)
    steps = epochs * math.ceil(n / bs)
    if steps > MAX_STEPS:
        raise ValueError(f"--trace would print {steps} steps (limit {MAX_STEPS}); lower --epochs "
                         "or raise --batch-size")
    _trace(net, X, y, epochs, bs, lr, optimizer, shuffle, out)


def _trace(net, X, y, epochs, bs, lr, optimizer, shuffle, out):
    Xd = net.device_inputs(X)
    Td = net.device_targets(y, Xd.shape[0])
    trainer = Trainer(net, optimizer, lr=lr)
    names = [a.name for a in net.activations]  # "tanh" when shared, else "tanh/relu" by layer
    label = names[0] if len(set(names)) == 1 else "/".join(names)
    hidden = f"{label} hidden" if names else "no hidden layer"
    print(f"network {'-'.join(map(str, net.sizes))}, {hidden}, {net.output.name} output, "
          f"loss {net.loss.name}, {optimizer} with η = {lr:g}", file=out)
    run = EpochRunner(trainer, Xd, Td, bs, shuffle, classify=False)
    printer = _StepPrinter(net, out)
    for epoch in range(1, epochs + 1):
        printer.epoch = epoch
        run.epoch(printer)


class _StepPrinter(StepHook):
    """Prints each step of the epoch loop: before it the forward and backward pass, after it
    the weight changes and the new outputs."""

    def __init__(self, net, out):
        self.net, self.out, self.step, self.epoch = net, out, 0, 0

    def before_step(self, rows, Xb, Tb):
        net, out, h = self.net, self.out, self.net.backend.to_host
        self.step += 1
        print(f"\nstep {self.step} (epoch {self.epoch}, examples {_ids(rows)})", file=out)
        acts = net.forward_pass(Xb)
        self.deltas, self.grads = net.backward_pass(acts, Tb)
        self.X, self.t = Xb, h(Tb)
        y = h(acts[-1])
        print(f"  x = {_fmt(h(Xb))}", file=out)
        print(f"  t = {_fmt(self.t)}   y = {_fmt(y)}   residual t − y = {_fmt(self.t - y)}   "
              f"E = {float(net.loss.value(acts[-1], Tb)):.6g}", file=out)
        self.before = [(np.array(h(W)), None if b is None else np.array(h(b)))
                       for W, b in net.weights]

    def after_step(self, k, n_steps):
        net, out, h = self.net, self.out, self.net.backend.to_host
        for i, (d, (dW, db), (W0, b0), (W1, b1)) in enumerate(
                zip(self.deltas, self.grads, self.before, net.weights), start=1):
            print(f"  layer {i}: δ = ∂E/∂z = {_fmt(h(d))}", file=out)
            print(f"    ∂E/∂w = yᵀδ = {_fmt(h(dW))}", file=out)
            print(f"    Δw = {_fmt(h(W1) - W0)}   w ← {_fmt(h(W1))}", file=out)
            if db is not None:
                print(f"    ∂E/∂b = Σδ = {_fmt(h(db))}   Δb = {_fmt(h(b1) - b0)}   "
                      f"b ← {_fmt(h(b1))}", file=out)
        y_new = h(net.forward_pass(self.X)[-1])
        print(f"  after the step: y = {_fmt(y_new)}   residual t − y = {_fmt(self.t - y_new)}",
              file=out)


def _fmt(a):
    """Numbers to 5 significant digits; a single row or column prints on one line."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.size == 1:
        return f"{a.reshape(-1)[0]:.5g}"
    text = np.array2string(a, separator=", ", formatter={"float_kind": lambda v: f"{v:.5g}"},
                           max_line_width=10**6)
    return text.replace("\n", "")


def _ids(idx):
    idx = [int(i) + 1 for i in idx]
    return ", ".join(map(str, idx)) if len(idx) <= 8 else f"{len(idx)} examples"
