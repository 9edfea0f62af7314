"""The backends' fast paths agree with the Array API reference on the same inputs."""

import numpy as np
import pytest

import bpgpu
from bpgpu import activations, kernels, losses

from .conftest import to_np

ACTS = ["identity", "logistic", "tanh", "relu", "softmax"]


def _fast(device):
    ks = bpgpu.get_backend(device).kernels
    if ks is None:
        pytest.skip(f"{device} has no fast paths; it runs the reference itself")
    return ks


def _arrays(device, *host, dtype="float32"):
    be = bpgpu.get_backend(device)
    return [be.asarray(h, dtype) for h in host]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("act", ACTS)
def test_dense_and_hidden_delta_match_reference(device, act, dtype):
    fast, ref = _fast(device), kernels.REFERENCE
    rng = np.random.default_rng(0)
    # Values large enough to saturate the logistic and overflow a naive exp(-z).
    a, W, b = rng.standard_normal((9, 5)) * 40, rng.standard_normal((5, 4)), rng.standard_normal(4)
    f = activations.get(act)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    with bpgpu.get_backend(device).context():  # where the network calls its kernels
        y_ref = to_np(ref.dense(*_arrays(device, a, W, b, dtype=dtype), f))
        y_fast = to_np(fast.dense(*_arrays(device, a, W, b, dtype=dtype), f))
    np.testing.assert_allclose(y_fast, y_ref, **tol)
    if act == "softmax":
        return
    y, d, W2 = _arrays(device, y_ref, rng.standard_normal((9, 3)), rng.standard_normal((4, 3)),
                       dtype=dtype)
    np.testing.assert_allclose(to_np(fast.hidden_delta(y, d, W2, f)),
                               to_np(ref.hidden_delta(y, d, W2, f)), **tol)


@pytest.mark.parametrize("output,loss", [("softmax", "cross_entropy"), ("identity", "sse"),
                                         ("logistic", "mse")])
def test_output_delta_and_grads_match_reference(device, output, loss):
    fast, ref = _fast(device), kernels.REFERENCE
    rng = np.random.default_rng(1)
    act, lo = activations.get(output), losses.get(loss)
    lo = losses.for_output(lo, output)
    y_host = to_np(ref.dense(*_arrays(device, rng.standard_normal((6, 3)), np.eye(3),
                                      np.zeros(3)), act))
    y, t = _arrays(device, y_host, np.eye(3)[[0, 1, 2, 0, 1, 2]])
    d_ref = to_np(ref.output_delta(lo, act, y, t))
    np.testing.assert_allclose(to_np(fast.output_delta(lo, act, y, t)), d_ref, rtol=1e-6)
    xp = bpgpu.get_backend(device).xp
    (d,) = _arrays(device, d_ref)
    np.testing.assert_allclose(to_np(fast.bias_grad(xp, d)), to_np(ref.bias_grad(xp, d)),
                               rtol=1e-6)
    np.testing.assert_allclose(to_np(fast.weight_grad(y, d)), to_np(ref.weight_grad(y, d)),
                               rtol=1e-6)


@pytest.mark.parametrize("opt", ["sgd", "momentum", "adam"])
def test_training_with_and_without_fast_paths_agrees(device, opt):
    _fast(device)
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
def test_cupy_fused_kernels_match_reference(act, opt):
    """The CuPy kernels against the Array API path, on the same CuPy inputs (float32)."""
    try:
        be = bpgpu.get_backend("cuda")
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    from bpgpu.backends.cupy_kernels import CupyKernels

    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((64, 6)) * 3, rng.integers(0, 3, 64)
    nets = [bpgpu.MLP([6, 8, 3], activation=act, device=be, seed=4, fused=False)
            for _ in range(2)]
    nets[0].kernels = CupyKernels()
    for net in nets:
        net.fit(X, y, epochs=2, batch_size=16, lr=0.05, optimizer=opt)
    for (W1, b1), (W2, b2) in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(to_np(W1), to_np(W2), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(to_np(b1), to_np(b2), rtol=1e-4, atol=1e-5)
