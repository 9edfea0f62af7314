"""Float64 finite-difference checks of the backward pass for every activation × loss × depth."""

import warnings

import numpy as np
import pytest

import bpgpu

from .conftest import to_np

HIDDEN = ["identity", "logistic", "tanh", "relu"]
# (output activation, loss): the matched pairs and the unmatched ones the general delta covers.
HEADS = [
    ("softmax", "cross_entropy"),
    ("logistic", "cross_entropy"),
    ("identity", "sse"),
    ("identity", "mse"),
    ("logistic", "sse"),
    ("tanh", "mse"),
    ("softmax", "sse"),
]
DEPTHS = {1: [4, 3], 2: [4, 5, 3], 3: [4, 5, 4, 3]}


def _net(sizes, hidden, output, loss, device):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # softmax + sse warns by design
        return bpgpu.MLP(sizes, activation=hidden, output=output, loss=loss, device=device,
                         dtype="float64", seed=3)


def _data(sizes, output, rng):
    X = rng.standard_normal((6, sizes[0]))
    if output == "softmax":
        T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], 6)]
    elif output == "logistic":
        T = rng.uniform(0.05, 0.95, (6, sizes[-1]))
    else:
        T = rng.standard_normal((6, sizes[-1]))
    return X, T


def _numeric_grads(net, X, T, h=1e-6):
    base = [(to_np(W).copy(), None if b is None else to_np(b).copy()) for W, b in net.weights]
    out = []
    for layer, (W, b) in enumerate(base):
        pair = []
        for which, arr in ((0, W), (1, b)):
            g = np.zeros_like(arr)
            for idx in np.ndindex(arr.shape):
                vals = []
                for sign in (1, -1):
                    trial = [(w.copy(), bb.copy()) for w, bb in base]
                    trial[layer][which][idx] += sign * h
                    net.set_weights(trial)
                    vals.append(net.loss_value(X, T))
                g[idx] = (vals[0] - vals[1]) / (2 * h)
            pair.append(g)
        out.append(pair)
    net.set_weights(base)
    return out


@pytest.mark.parametrize("depth", sorted(DEPTHS))
@pytest.mark.parametrize("output,loss", HEADS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradients_match_finite_differences(device, hidden, output, loss, depth):
    sizes = DEPTHS[depth]
    net = _net(sizes, hidden, output, loss, device)
    X, T = _data(sizes, output, np.random.default_rng(depth))
    analytic = net.gradients(X, T)
    numeric = _numeric_grads(net, X, T)
    for (dW, db), (nW, nb) in zip(analytic, numeric):
        np.testing.assert_allclose(to_np(dW), nW, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(to_np(db), nb, rtol=1e-5, atol=1e-7)


def test_deltas_are_the_lectures_recurrence(device):
    """δ_L = (y − t)/n for softmax + cross-entropy; δ_l = y(1−y) ∘ (δ_{l+1} W_{l+1}ᵀ)."""
    net = bpgpu.MLP([4, 5, 3], device=device, dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    X, labels = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    acts = [to_np(a) for a in net.forward(X)]
    d1, d2 = (to_np(d) for d in net.deltas(X, labels))
    T = np.eye(3)[labels]
    np.testing.assert_allclose(d2, (acts[2] - T) / 7, rtol=1e-12, atol=1e-15)
    W2 = to_np(net.weights[1][0])
    np.testing.assert_allclose(d1, acts[1] * (1 - acts[1]) * (d2 @ W2.T), rtol=1e-12, atol=1e-15)
    (dW1, db1), (dW2, db2) = ((to_np(a), to_np(b)) for a, b in net.gradients(X, labels))
    np.testing.assert_allclose(dW2, acts[1].T @ d2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(db1, d1.sum(axis=0), rtol=1e-12, atol=1e-15)


# -- bpgpu.check_gradients, the public check ------------------------------------------------------

@pytest.mark.parametrize("output,loss", HEADS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_check_gradients_is_tiny_on_correct_networks(device, hidden, output, loss):
    sizes = DEPTHS[2]
    net = _net(sizes, hidden, output, loss, device)
    X, T = _data(sizes, output, np.random.default_rng(5))
    errors = bpgpu.check_gradients(net, X, T)
    assert len(errors) == 2 and max(errors) < 1e-6


def test_check_gradients_checks_in_float64_without_changing_the_net():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    net = bpgpu.MLP([4, 5, 3], dtype="float32", seed=2)
    before = [to_np(W).copy() for W, _ in net.weights]
    errors = bpgpu.check_gradients(net, X, y)
    assert max(errors) < 1e-6  # float32's own rounding would give about 1e-3 here
    assert net.dtype_name == "float32"
    assert all(np.array_equal(to_np(W), w) for (W, _), w in zip(net.weights, before))


@pytest.mark.parametrize("fused", [False, True])
def test_check_gradients_catches_a_wrong_derivative(monkeypatch, fused):
    """tanh' written as 1 − y instead of 1 − y²: the forward pass, and so E, is unchanged."""
    from bpgpu import activations

    tanh = type(activations.get("tanh"))
    monkeypatch.setattr(tanh, "derivative", lambda self, y: 1 - y)
    monkeypatch.setattr(tanh, "backward_", lambda self, y, g, ops: (1 - y) * g)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    net = bpgpu.MLP([4, 5, 3], activation="tanh", dtype="float64", seed=0, fused=fused)
    errors = bpgpu.check_gradients(net, X, y)
    assert errors[0] > 1e-2  # the first layer's gradient goes through the wrong tanh'
    assert errors[1] < 1e-6  # the output layer's does not


def test_check_gradients_samples_large_arrays():
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((4, 30)), rng.integers(0, 2, 4)
    net = bpgpu.MLP([30, 40, 2], dtype="float64", seed=0)
    calls = []
    loss = type(net.loss).value

    def counting(self, out, T):
        calls.append(1)
        return loss(self, out, T)

    import unittest.mock

    with unittest.mock.patch.object(type(net.loss), "value", counting):
        errors = bpgpu.check_gradients(net, X, y, max_entries=50)
    assert max(errors) < 1e-6
    assert len(calls) == 2 * (50 + 40 + 50 + 2)  # W1 1200 → 50, b1 40, W2 80 → 50, b2 2
