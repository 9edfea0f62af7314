"""The teaching view: every step's deltas, gradients and weight changes in the lecture's notation.

For each step it prints the inputs x, targets t, outputs y and residual t − y, then per layer the
deltas δ = ∂E/∂z, the gradient ∂E/∂w = yᵀδ, the change Δw (= −η ∂E/∂w for plain SGD) and the new
weights. Only small networks are allowed: past a few dozen numbers per step, nobody reads it.
"""

from __future__ import annotations

import math

import numpy as np

from . import _host
from .trainer import Trainer

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
    with net.backend.context():
        _trace(net, X, y, epochs, bs, lr, optimizer, shuffle, out)


def _trace(net, X, y, epochs, bs, lr, optimizer, shuffle, out):
    be, n = net.backend, len(X)
    Xd = net._inputs(X)
    Td = net._targets(y, Xd.shape[0])
    trainer = Trainer(net, optimizer, lr=lr)
    hidden = f"{net.activation.name} hidden" if len(net.sizes) > 2 else "no hidden layer"
    print(f"network {'-'.join(map(str, net.sizes))}, {hidden}, {net.output.name} output, "
          f"loss {net.loss.name}, {optimizer} with η = {lr:g}", file=out)
    step = 0
    for epoch in range(1, epochs + 1):
        order = _host.permutation(net.shuffle_rng, n) if shuffle and bs < n else np.arange(n)
        for start in range(0, n, bs):
            step += 1
            idx = be.asarray(order[start:start + bs], net.xp.int64)
            Xb, Tb = net.xp.take(Xd, idx, axis=0), net.xp.take(Td, idx, axis=0)
            print(f"\nstep {step} (epoch {epoch}, examples {_ids(order[start:start + bs])})",
                  file=out)
            _print_step(net, trainer, Xb, Tb, out)


def _print_step(net, trainer, Xb, Tb, out):
    h = net.backend.to_host
    acts = net._forward(Xb)
    deltas, grads = net._backward(acts, Tb)
    y, t = h(acts[-1]), h(Tb)
    print(f"  x = {_fmt(h(Xb))}", file=out)
    print(f"  t = {_fmt(t)}   y = {_fmt(y)}   residual t − y = {_fmt(t - y)}   "
          f"E = {float(net.loss.value(acts[-1], Tb)):.6g}", file=out)
    before = [(np.array(h(W)), None if b is None else np.array(h(b))) for W, b in net.weights]
    trainer.step(Xb, Tb)
    for i, (d, (dW, db), (W0, b0), (W1, b1)) in enumerate(
            zip(deltas, grads, before, net.weights), start=1):
        print(f"  layer {i}: δ = ∂E/∂z = {_fmt(h(d))}", file=out)
        print(f"    ∂E/∂w = yᵀδ = {_fmt(h(dW))}", file=out)
        print(f"    Δw = {_fmt(h(W1) - W0)}   w ← {_fmt(h(W1))}", file=out)
        if db is not None:
            print(f"    ∂E/∂b = Σδ = {_fmt(h(db))}   Δb = {_fmt(h(b1) - b0)}   "
                  f"b ← {_fmt(h(b1))}", file=out)
    y_new = h(net._forward(Xb)[-1])
    print(f"  after the step: y = {_fmt(y_new)}   residual t − y = {_fmt(t - y_new)}", file=out)


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
