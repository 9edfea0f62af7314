"""Compilation modes: a compiled step or epoch gives the step-by-step loop's weights, and a device
asked for a mode it lacks says which devices have it. JAX's own specs and 64-bit mode."""

import os
import subprocess
import sys

import numpy as np
import pytest

import bpgpu

from .conftest import to_np


def _jax(spec="jax:cpu"):
    try:
        return bpgpu.get_backend(spec)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(f"{spec} unavailable: {exc}")


def _train(device, mode, optimizer, dtype, epochs=3, batch_size=7):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((45, 5)), rng.integers(0, 3, 45)  # 45 = 6 × 7 + 3: a ragged batch
    net = bpgpu.MLP([5, 8, 3], device=device, dtype=dtype, seed=2)
    hist = net.fit(X, y, epochs=epochs, batch_size=batch_size, lr=0.05, optimizer=optimizer,
                   compile=mode)
    return [to_np(p) for p in net.params], hist


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_compiled_epochs_and_steps_give_the_stepwise_weights(optimizer, dtype):
    _jax()
    if dtype == "float64" and os.environ.get("JAX_ENABLE_X64") in ("0", "false"):
        pytest.skip("JAX's 64-bit mode is off")
    # float32: XLA fuses and orders the arithmetic its own way; Adam's 1/√v magnifies that.
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    ref, ref_hist = _train("jax:cpu", "none", optimizer, dtype)
    cpu, _ = _train("cpu", "none", optimizer, dtype)
    for mode in ("step", "epoch"):
        got, hist = _train("jax:cpu", mode, optimizer, dtype)
        for a, b, c in zip(got, ref, cpu):
            np.testing.assert_allclose(a, b, **tol)
            np.testing.assert_allclose(a, c, **tol)
        np.testing.assert_allclose(hist["loss"], ref_hist["loss"], **tol)
        np.testing.assert_allclose(hist["accuracy"], ref_hist["accuracy"], **tol)
    assert not np.allclose(ref[0], _train("jax:cpu", "none", optimizer, dtype, epochs=0)[0][0])


def test_a_compiled_epoch_follows_a_changed_learning_rate_and_set_weights():
    _jax()
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((20, 4)), rng.integers(0, 2, 20)
    nets = [bpgpu.MLP([4, 3, 2], device=d, seed=0) for d in ("jax:cpu", "cpu")]
    for net in nets:
        tr = bpgpu.Trainer(net, "sgd", lr=0.1)
        Xd, Td = net.device_inputs(X), net.device_targets(y, 20)
        tr.step(Xd, Td)
        tr.opt.lr = 0.5  # a new compilation, not the old learning rate baked in
        tr.step(Xd, Td)
        net.set_weights([(W * 0 + 0.1, b) for W, b in
                         [(to_np(W), to_np(b)) for W, b in net.weights]])
        tr.step(Xd, Td)  # the trainer trains the new weights
    for a, b in zip(nets[0].params, nets[1].params):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["step", "epoch"])
def test_a_mode_the_device_lacks_names_the_devices_that_have_it(mode):
    net = bpgpu.MLP([2, 2], device="cpu")
    with pytest.raises(ValueError, match=f"compile='{mode}' is not available on cpu.*jax:cpu"):
        net.fit(np.zeros((4, 2)), [0, 1, 0, 1], compile=mode)
    with pytest.raises(ValueError, match="compile must be one of auto, none, step, epoch"):
        net.fit(np.zeros((4, 2)), [0, 1, 0, 1], compile="fast")


def test_the_cli_refuses_a_mode_in_one_line(capsys):
    from bpgpu.cli import main

    assert main(["train", "--device", "cpu", "--compile", "epoch", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "devices that compile: jax" in err[0]


def test_auto_compiles_epochs_on_jax_and_nothing_on_numpy():
    from bpgpu.training import resolve_mode

    assert resolve_mode(_jax(), "auto") == "epoch"
    assert resolve_mode(_jax(), "auto", epochs=False) == "step"
    assert resolve_mode(_jax(), "auto", parallel=object()) == "none"
    assert resolve_mode(bpgpu.get_backend("cpu"), "auto") == "none"


def test_jax_specs_and_their_errors():
    _jax()
    assert bpgpu.get_backend("jax:cpu").name == "jax:cpu"
    assert bpgpu.get_backend("JAX:CPU").name == "jax:cpu"
    for bad in ("jax:cpu:1", "jax:quantum", "jax:cuda:x"):
        with pytest.raises(bpgpu.DeviceUnavailableError, match="bad JAX device"):
            bpgpu.get_backend(bad)
    import jax

    if not jax.devices("cpu") or any(d.platform == "gpu" for d in jax.devices()):
        return
    for spec in ("jax:cuda", "jax:gpu:0"):
        with pytest.raises(bpgpu.DeviceUnavailableError, match="sees no CUDA device.*jax-cuda12"):
            bpgpu.get_backend(spec)
    rows = {r.spec: r for r in bpgpu.devices()}
    assert rows["jax:cpu"].available and rows["jax:cpu"].extra["compile"][-1] == "epoch"
    assert not rows["jax:cuda"].available


def test_float64_without_jax_64_bit_mode_says_how_to_turn_it_on():
    _jax()
    code = ("import bpgpu\n"
            "try:\n"
            "    bpgpu.MLP([2, 2], device='jax:cpu', dtype='float64')\n"
            "except bpgpu.DeviceUnavailableError as e:\n"
            "    print(e)\n"
            "net = bpgpu.MLP([2, 2], device='jax:cpu')\n"
            "net.fit([[0., 1.], [1., 0.]], [0, 1], epochs=2, batch_size=1)\n"
            "print(net.params[0].dtype)\n")
    env = {**os.environ, "JAX_ENABLE_X64": "0"}
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "JAX_ENABLE_X64=1" in out and out.strip().endswith("float32")


def test_validation_on_a_compiling_device_matches_the_cpu():
    _jax()
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((60, 4)), rng.integers(0, 3, 60)
    hists = [bpgpu.MLP([4, 6, 3], device=d, seed=1).fit(
        X[:40], y[:40], epochs=3, batch_size=8, validation_data=(X[40:], y[40:]))
        for d in ("jax:cpu", "cpu")]
    for key in ("val_loss", "val_accuracy", "loss", "accuracy"):
        np.testing.assert_allclose(hists[0][key], hists[1][key], rtol=1e-5, atol=1e-6)
    assert len(set(hists[1]["val_loss"])) == 3  # the validation follows the training
