"""``check_gradients``: the network's backward pass against central finite differences in float64.

The way to convince yourself that the deltas are right: each ``∂E/∂w`` that backpropagation gives
is compared with ``(E(w + ε) − E(w − ε)) / 2ε``, the loss E itself computed by the forward pass
alone. The same check as Chainer's ``gradient_check`` and PyTorch's ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import math

import numpy as np

from . import state


def check_gradients(net, X, y, eps=1e-6, max_entries=1000, seed=0):
    """The largest relative error per layer between ``net``'s gradients and finite differences.

    The check runs on a float64 copy of ``net`` on its device (``net`` is not changed), with the
    same fast paths (``fused``) as ``net``, so it tests the backward pass that trains it.

    Parameters
    ----------
    net : MLP
    X : array-like, shape (n, sizes[0])
        A few examples are enough (the cost is two forward passes per weight checked).
    y : array-like, shape (n,) class labels or (n, sizes[-1]) targets
    eps : float
        The step ε of the central difference ``(E(w + ε) − E(w − ε)) / 2ε``.
    max_entries : int or None
        Check at most this many entries of each ``W`` and ``b``, chosen by a generator seeded
        with ``seed``; ``None`` checks every entry.
    seed : int

    Returns
    -------
    list of float
        Per layer l (from 1), ``max |g − ĝ| / max(|g|, |ĝ|)`` over the checked entries of W_l and
        b_l, g the backward pass's gradient and ĝ the finite difference. Below about 1e-6 the
        backward pass is right; a wrong derivative gives 1e-2 and more.
    """
    twin = state.build(type(net), _as_float64(state.capture(net)), net.device)
    with twin.backend.context():
        Xd = twin.device_inputs(X)
        Td = twin.device_targets(y, Xd.shape[0])
        grads = [g for pair in twin.backward_pass(twin.forward_pass(Xd), Td)[1]
                 for g in pair if g is not None]
        params = twin.params
        rng = np.random.default_rng(seed)
        errors = []
        for k, g in enumerate(grads):
            entries = _entries(g.shape, max_entries, rng)
            numeric = [_central_difference(twin, params, k, idx, eps, Xd, Td) for idx in entries]
            analytic = twin.backend.to_host(g)
            errors.append(_relative_error([analytic[idx] for idx in entries], numeric))
    per_layer = len(errors) // (len(net.sizes) - 1)
    return [max(errors[i:i + per_layer]) for i in range(0, len(errors), per_layer)]


def _as_float64(st):
    return {**st, "config": {**st["config"], "dtype": "float64"}}


def _entries(shape, max_entries, rng):
    """Index tuples of the entries to check: all, or ``max_entries`` drawn without repeats."""
    total = math.prod(shape)
    flat = np.arange(total)
    if max_entries is not None and total > max_entries:
        flat = np.sort(rng.choice(total, size=max_entries, replace=False))
    return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in flat]


def _central_difference(net, params, k, idx, eps, X, T):
    host = np.array(net.backend.to_host(params[k]))
    losses = []
    for step in (eps, -eps):
        trial = host.copy()
        trial[idx] += step
        moved = [*params[:k], net.backend.asarray(trial, net.dtype), *params[k + 1:]]
        losses.append(float(net.loss.value(net.forward_pass(X, moved)[-1], T)))
    return (losses[0] - losses[1]) / (2 * eps)


def _relative_error(analytic, numeric):
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    scale = max(np.max(np.abs(a)), np.max(np.abs(n)))
    return float(np.max(np.abs(a - n)) / scale) if scale > 0 else 0.0
