"""Each rule's fast path (on a backend's in-place primitives) agrees with its pure reference."""

import numpy as np
import pytest

import bpgpu
from bpgpu import activations, losses, optim, packed

from .conftest import to_np

ACTS = ["identity", "logistic", "tanh", "relu", "softmax"]


def _ops(device):
    be = bpgpu.get_backend(device)
    if be.ops is None:
        pytest.skip(f"{device} has no in-place primitives; it runs the reference itself")
    return be, be.ops


def _arrays(be, *host, dtype="float32"):
    return [be.asarray(np.array(h, copy=True), dtype) for h in host]


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTS)
def test_activation_fast_paths_match_reference(device, act, dtype):
    be, ops = _ops(device)
    rng = np.random.default_rng(0)
    # Values large enough to saturate the logistic and overflow a naive exp(-z).
    a, W, b = rng.standard_normal((9, 5)) * 40, rng.standard_normal((5, 4)), rng.standard_normal(4)
    f = activations.get(act)
    with be.context():  # where the network calls its fast paths
        a_, W_, b_ = _arrays(be, a, W, b, dtype=dtype)
        y_ref = to_np(f.forward(a_ @ W_ + b_))
        y_fast = to_np(f.forward_(ops.linear(*_arrays(be, a, W, b, dtype=dtype)), ops))
    np.testing.assert_allclose(y_fast, y_ref, **_tol(dtype))
    y, g = _arrays(be, y_ref, rng.standard_normal((9, 4)), dtype=dtype)
    ref = to_np(f.backward(y, g))
    (g2,) = _arrays(be, to_np(g), dtype=dtype)
    np.testing.assert_allclose(to_np(f.backward_(y, g2, ops)), ref, **_tol(dtype))


@pytest.mark.parametrize("output,loss", [("softmax", "cross_entropy"), ("identity", "sse"),
                                         ("logistic", "mse"), ("logistic", "cross_entropy")])
def test_output_delta_and_column_sum_match_reference(device, output, loss):
    be, ops = _ops(device)
    rng = np.random.default_rng(1)
    act = activations.get(output)
    lo = losses.for_output(losses.get(loss), output)
    (z,) = _arrays(be, rng.standard_normal((6, 3)))
    y = act.forward(z)
    (t,) = _arrays(be, np.eye(3)[[0, 1, 2, 0, 1, 2]])
    d_ref = to_np(losses.output_delta(lo, act, y, t))
    np.testing.assert_allclose(to_np(losses.output_delta(lo, act, y, t, ops)), d_ref, rtol=1e-6)
    (d,) = _arrays(be, d_ref)
    np.testing.assert_allclose(to_np(ops.column_sum(d)), d_ref.sum(axis=0), rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_optimizer_fast_paths_match_reference_over_three_steps(device, name):
    be, ops = _ops(device)
    rng = np.random.default_rng(3)
    host = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    opt = optim.get(name, lr=0.05)
    runs = {}
    for fast in (False, True):
        params = _arrays(be, *host, dtype="float64")
        state = opt.init_state(params)
        for k in range(3):
            grads = _arrays(be, *(h * (k + 1) ** 0.5 for h in host), dtype="float64")
            params, state = (opt.step_(params, grads, state, ops) if fast
                             else opt.step(params, grads, state))
        runs[fast] = [to_np(p) for p in params]
    for a, b in zip(runs[True], runs[False]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert not np.allclose(runs[True][0], host[0])  # the steps moved the parameters


def test_the_reference_step_never_writes_into_its_arrays():
    be = bpgpu.get_backend("cpu")
    rng = np.random.default_rng(4)
    for name in ("sgd", "momentum", "adam"):
        opt = optim.get(name, lr=0.1)
        params = _arrays(be, rng.standard_normal((3, 2)), dtype="float64")
        for p in params:
            p.flags.writeable = False  # a write would raise
        state = opt.init_state(params)
        for a in state.get("velocity", []) + state.get("m", []) + state.get("v", []):
            a.flags.writeable = False
        new, _ = opt.step(params, _arrays(be, np.ones((3, 2)), dtype="float64"), state)
        assert not np.array_equal(new[0], params[0])


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_training_with_and_without_fast_paths_agrees(device, opt):
    _ops(device)
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    nets = [bpgpu.MLP([6, 8, 3], device=device, seed=4, fused=f, dtype="float64")
            for f in (True, False)]
    for net in nets:
        net.fit(X, y, epochs=3, batch_size=8, lr=0.05, optimizer=opt)
    for (W1, b1), (W2, b2) in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(to_np(W1), to_np(W2), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_np(b1), to_np(b2), rtol=1e-10, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("act", ["logistic", "tanh", "relu", "identity"])
@pytest.mark.parametrize("buffers", [False, True], ids=["per-array", "buffers"])
def test_cupy_fused_ops_match_reference(act, opt, buffers):
    """The fused CuPy primitives against the Array API path, on the same CuPy inputs: per
    parameter, and over whole buffers (:mod:`bpgpu.packed`: one launch per update for all
    parameters, the gradients written into views of one buffer)."""
    try:
        be = bpgpu.get_backend("cuda")
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    from bpgpu.backends.cupy_ops import CupyOps

    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((64, 6)) * 3, rng.integers(0, 3, 64)
    nets = [bpgpu.MLP([6, 8, 3], activation=act, device=be, seed=4, fused=False)
            for _ in range(2)]
    nets[0].ops = CupyOps(be.xp)
    if buffers:  # as a fused network of a backend with in-place primitives keeps them
        nets[0]._packs = True
        nets[0].set_weights(nets[0].weights)
        assert packed.is_packed(nets[0].params)
    for net in nets:
        net.fit(X, y, epochs=2, batch_size=16, lr=0.05, optimizer=opt)
    for (W1, b1), (W2, b2) in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(to_np(W1), to_np(W2), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(to_np(b1), to_np(b2), rtol=1e-4, atol=1e-5)
