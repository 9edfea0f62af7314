"""The ``bpgpu`` command, run as a user runs it (subprocesses)."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import bpgpu


def run(*args, env=None):
    full_env = {**os.environ, "BPGPU_DEVICE": "", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bpgpu", *args], capture_output=True,
                          text=True, env=full_env, timeout=120)


def test_default_train_reaches_95_percent_held_out():
    r = run("--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["dataset"] == "digits" and summary["layers"] == [64, 32, 10]
    assert summary["val_accuracy"] >= 0.95


@pytest.mark.parametrize("device", ["cpu", "strict"])
def test_train_xor_and_digits(device):
    r = run("train", "--device", device, "--dataset", "xor", "--layers", "2,4,1",
            "--batch-size", "full", "--lr", "0.1", "--epochs", "300", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accuracy"] == 1.0
    r = run("train", "--device", device, "--epochs", "3", "--quiet")
    assert r.returncode == 0 and r.stdout == "", r.stderr


def test_human_summary_names_device_time_and_accuracies():
    r = run("train", "--device", "cpu", "--epochs", "2")
    assert r.returncode == 0, r.stderr
    for word in ("device      cpu", "epochs      2", "samples/s", "train", "held-out"):
        assert word in r.stdout


def test_unusable_gpu_is_one_line_and_status_2():
    try:
        bpgpu.get_backend("cuda")
        pytest.skip("a CUDA device is usable here")
    except bpgpu.DeviceUnavailableError:
        pass
    r = run("train", "--device", "cuda")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "bpgpu[cuda12]" in r.stderr or "CUDA" in r.stderr


@pytest.mark.parametrize("args,needle", [
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--layers", "64,x,10"], "--layers '64,x,10'"),
    (["--layers", "10,10"], "starts with 10 but digits has 64 features"),
    (["--dataset", "nope"], "nope"),
    (["--dataset", "csv:/no/such.csv"], "/no/such.csv"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "-1"], "learning rate"),
])
def test_user_mistakes_exit_2_with_one_line(args, needle):
    r = run("train", *args)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_save_then_predict_on_another_backend(tmp_path):
    model = tmp_path / "net.safetensors"
    r = run("train", "--device", "cpu", "--epochs", "3", "--save", str(model), "--quiet")
    assert r.returncode == 0, r.stderr
    X = np.random.default_rng(0).uniform(0, 1, (5, 64))
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    outs = {}
    for device in ("cpu", "strict"):
        out = tmp_path / f"pred-{device}.csv"
        r = run("predict", "--model", str(model), "--input", str(tmp_path / "x.csv"),
                "--device", device, "--out", str(out))
        assert r.returncode == 0, r.stderr
        outs[device] = np.loadtxt(out, delimiter=",", skiprows=1)
    assert outs["cpu"].shape == (5, 11)
    assert np.array_equal(outs["cpu"][:, 0], outs["strict"][:, 0])  # same labels
    np.testing.assert_allclose(outs["cpu"][:, 1:], outs["strict"][:, 1:], rtol=1e-5, atol=1e-6)
    r = run("evaluate", "--model", str(model), "--dataset", "digits", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["accuracy"] > 0.8  # 3 epochs of adam


def test_truncated_model_file_is_a_clear_error(tmp_path):
    model = tmp_path / "net.safetensors"
    bpgpu.MLP([64, 32, 10]).save(model)
    model.write_bytes(model.read_bytes()[:-200])
    r = run("evaluate", "--model", str(model), "--dataset", "digits")
    assert r.returncode == 2
    assert str(model) in r.stderr and "Traceback" not in r.stderr


def test_trace_prints_the_cafeteria_numbers():
    r = run("train", "--trace", "--dataset", "cafeteria", "--layers", "3,1", "--activation",
            "identity", "--loss", "sse", "--lr", "0.0285714", "--batch-size", "full",
            "--epochs", "1")
    assert r.returncode == 0, r.stderr
    assert "residual t − y = 350" in r.stdout
    assert "Δw = [50, 20, 30]" in r.stdout
    assert "w ← [100, 70, 80]" in r.stdout
    assert "residual t − y = -30" in r.stdout


def test_trace_refuses_a_large_network():
    r = run("train", "--trace")
    assert r.returncode == 2 and "--trace" in r.stderr


def test_devices_table_lists_every_backend():
    r = run("devices")
    assert r.returncode == 0, r.stderr
    for spec in ("cpu", "strict", "cuda"):
        assert spec in r.stdout


def test_save_writes_safetensors_whatever_the_suffix(tmp_path):
    from safetensors.numpy import load_file

    r = run("train", "--device", "cpu", "--epochs", "1", "--save", str(tmp_path / "m.npz"),
            "--quiet")
    assert r.returncode == 0, r.stderr
    arrays = load_file(tmp_path / "m.npz")
    params = {"W0": (64, 32), "b0": (32,), "W1": (32, 10), "b1": (10,)}
    moments = {f"opt.{m}.{i}": shape for m in "mv" for i, shape in enumerate(params.values())}
    assert {k: v.shape for k, v in arrays.items()} == {**params, **moments}


def test_check_gradients_prints_the_error_per_layer_before_training():
    r = run("train", "--device", "cpu", "--epochs", "1", "--check-gradients")
    assert r.returncode == 0, r.stderr
    first = next(line for line in r.stdout.splitlines() if line.startswith("gradient check"))
    assert first.startswith("gradient check (float64 central differences, 32 examples)")
    assert r.stdout.index("gradient check") < r.stdout.index("epochs ")  # before training
    errors = [float(e) for e in re.findall(r"\d\.\de-\d\d", first)]
    assert len(errors) == 2 and max(errors) < 1e-6 and first.endswith("ok (< 1e-6)")
    r = run("train", "--device", "cpu", "--epochs", "1", "--check-gradients", "--json")
    errors = json.loads(r.stdout)["gradient_check"]
    assert len(errors) == 2 and max(errors) < 1e-6


def _on_a_terminal(*args):
    """Run bpgpu with stdout and stderr on a pseudo-terminal; what the terminal showed."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    proc = subprocess.Popen([sys.executable, "-m", "bpgpu", *args], stdout=follower,
                            stderr=follower, env={**os.environ, "BPGPU_DEVICE": ""})
    os.close(follower)
    shown = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child has closed the terminal
            break
        if not chunk:
            break
        shown.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    return b"".join(shown).decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_the_progress_bar_shows_on_a_terminal_only():
    shown = _on_a_terminal("train", "--device", "cpu", "--epochs", "3")
    assert "epoch 3/3: 100%|" in shown and "loss=" in shown and "held-out" in shown
    quiet = _on_a_terminal("train", "--device", "cpu", "--epochs", "3", "--no-progress")
    assert "%|" not in quiet and "held-out" in quiet
    piped = run("train", "--device", "cpu", "--epochs", "3")
    assert "%|" not in piped.stderr + piped.stdout
