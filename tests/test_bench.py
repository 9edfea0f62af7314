"""``bpgpu bench``: the FLOP and memory accounting, the option parsing, the peers doing the same
work, and the shape of the JSON a run writes. No assertion here depends on how fast anything ran.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from bpgpu.benchmarks import (
    accounting,
    bench,
    cases,
    envinfo,
    measure,
    memory,
    report,
    tf32,
    timing,
)

MNIST = [784, 1024, 1024, 10]


def test_step_flops_mnist_mlp_batch_64_hand_count():
    B = 64
    forward = 2 * B * (784 * 1024 + 1024 * 1024 + 1024 * 10)
    weight_grads = forward  # y_{l-1}ᵀ δ_l: the same products again
    input_grads = 2 * B * (1024 * 1024 + 1024 * 10)  # δ_l W_lᵀ, none for the first layer
    assert forward + weight_grads + input_grads == 612_106_240
    assert accounting.step_flops(MNIST, B) == 612_106_240


def test_step_flops_two_layer_nets():
    # One weight layer (5 inputs, 3 outputs): forward and weight gradient only.
    assert accounting.step_flops([5, 3], 8) == 2 * 8 * 15 + 2 * 8 * 15 == 480
    # 64-32-10 at 32: forward 2·B·(2048 + 320), weight grads the same, input grad of layer 2.
    assert accounting.step_flops([64, 32, 10], 32) == 2 * (2 * 32 * 2368) + 2 * 32 * 320 == 323_584


def test_min_bytes_hand_count():
    params = (784 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 10 + 10)
    assert params == accounting.param_count(MNIST) == 1_863_690
    activations = 64 * (784 + 1024 + 1024 + 10)  # X = y_0 and y_1..y_3
    deltas = 64 * (1024 + 1024 + 10)  # δ_1..δ_3
    expected = 4 * (params + params + activations + deltas)  # weights + gradients, no SGD state
    assert expected == 16_163_920
    assert accounting.min_bytes(MNIST, 64, 4) == expected
    # [2, 3, 2] at batch 4 in float64, with one state value per parameter (momentum):
    # params 2·3+3 + 3·2+2 = 17; activations 4·(2+3+2) = 28; deltas 4·(3+2) = 20.
    assert accounting.min_bytes([2, 3, 2], 4, 8, state_per_param=1) == 8 * (3 * 17 + 28 + 20) == 792


def test_parse_nets_presets_widths_and_separators():
    assert accounting.parse_nets("mnist-mlp") == [("mnist-mlp", MNIST, None)]
    assert accounting.parse_nets("digits-mlp;784,256,10") == [
        ("digits-mlp", [64, 32, 10], None), ("784-256-10", [784, 256, 10], None)]
    assert accounting.parse_nets(["4-8-3", "mnist-mlp,digits-mlp"]) == [
        ("4-8-3", [4, 8, 3], None), ("mnist-mlp", MNIST, None),
        ("digits-mlp", [64, 32, 10], None)]
    assert accounting.parse_nets("mnist-mlp@64,512;4x8x3@16") == [
        ("mnist-mlp", MNIST, [64, 512]), ("4-8-3", [4, 8, 3], [16])]
    with pytest.raises(ValueError, match="unknown net 'resnet50'"):
        accounting.parse_nets("resnet50")
    with pytest.raises(ValueError, match="softmax output needs ≥ 2 units"):
        accounting.parse_nets("4,8,1")
    with pytest.raises(ValueError, match="bad batch size '0'"):
        accounting.parse_nets("digits-mlp@0")


def test_parse_batches_and_peers():
    assert accounting.parse_batches("64, 512,64") == [64, 512]
    for bad in ("0", "-8", "1.5", "abc", ""):
        with pytest.raises(ValueError, match="batch size"):
            accounting.parse_batches(bad)
    assert accounting.parse_peers("raw,torch") == ["raw", "torch"]
    assert accounting.parse_peers("none") == []
    assert accounting.parse_peers("jax,raw") == ["jax", "raw"]
    with pytest.raises(ValueError, match="unknown peer 'tensorflow'"):
        accounting.parse_peers("tensorflow")


def test_plans():
    nets = accounting.parse_nets("mnist-mlp;digits-mlp")
    plan = accounting.plan(nets, None, quick=True)
    assert [(name, b) for name, _, b in plan] == [("mnist-mlp", 64), ("mnist-mlp", 512),
                                                  ("digits-mlp", 32), ("digits-mlp", 2048)]
    plan = accounting.plan(nets, "8,16", quick=False)
    assert [b for _, _, b in plan] == [8, 16, 8, 16]
    plan = accounting.plan(accounting.parse_nets("mnist-mlp@64;digits-mlp"), "8", quick=False)
    assert [(name, b) for name, _, b in plan] == [("mnist-mlp", 64), ("digits-mlp", 8)]
    plan = accounting.plan(accounting.parse_nets("mnist-mlp@64;digits-mlp"), None, quick=True,
                           default=[512])  # --distributed: one batch size unless told
    assert [(name, b) for name, _, b in plan] == [("mnist-mlp", 64), ("digits-mlp", 512)]


@pytest.mark.parametrize("argv, message", [
    (["--nets", "no-such-net"], "unknown net 'no-such-net'"),
    (["--batch-sizes", "0"], "bad batch size '0'"),
    (["--batch-sizes", "64,abc"], "bad batch size 'abc'"),
    (["--peers", "tensorflow"], "unknown peer 'tensorflow'"),
    (["--repeats", "0"], "--repeats must be ≥ 1"),
    (["--devices", "cpu:7"], "device 'cpu:7' is not usable here"),
])
def test_bad_options_exit_2_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--devices", "cpu", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("peer", "device", "dtype", "rtol", "atol"), [
    ("raw", "cpu", "float64", 1e-12, 1e-14),
    ("jax", "jax:cpu", "float32", 1e-5, 1e-6),
])
def test_a_peer_does_bpgpus_sgd_step(peer, device, dtype, rtol, atol):
    if peer == "jax":
        pytest.importorskip("jax")
    sizes = [5, 7, 4, 3]
    data = cases.HostData(sizes, 9, dtype, cases.reference_weights(sizes, dtype))
    ours, other = cases.BpgpuCase("cpu", data), cases.CASES[peer](device, data)
    for case in (ours, other):
        case.setup()
        case.step()
        case.step()
    for (W0, _), (W1, b1), (W2, b2) in zip(data.weights, ours.host_weights(),
                                            other.host_weights(), strict=True):
        assert not np.allclose(W0, W1)  # the steps moved the weights
        np.testing.assert_allclose(W2, W1, rtol=rtol, atol=atol)
        np.testing.assert_allclose(b2, b1, rtol=rtol, atol=atol)


def test_the_jax_peer_donates_its_parameters():
    pytest.importorskip("jax")
    sizes = [5, 7, 4, 3]
    data = cases.HostData(sizes, 9, "float32", cases.reference_weights(sizes, "float32"))
    case = cases.JaxCase("jax:cpu", data)
    case.setup()
    for _ in range(2):  # warnings are errors here: no "donated buffers were not usable"
        before = case.params
        case.step()
        assert all(a.is_deleted() for pair in before for a in pair)  # donated, not copied
        assert not any(a.is_deleted() for pair in case.params for a in pair)
    case.sync()
    case.free()


TINY = ["--devices", "cpu", "--nets", "4,8,3", "--batch-sizes", "16", "--repeats", "1",
        "--peers", "raw", "--target-s", "0.005", "--ceiling-n", "64", "--settle-s", "0"]


def test_tiny_run_writes_every_field(tmp_path, capsys):
    out, png = tmp_path / "res" / "r.json", tmp_path / "r.png"
    assert bench.main([*TINY, "--json", str(out), "--plot", str(png)]) == 0
    doc = json.loads(out.read_text())
    env, records = doc["env"], doc["records"]
    assert set(envinfo.ENV_KEYS) <= set(env)
    assert env["tf32"]["requested"] is False
    assert env["dtype"] == "float32" and env["devices"]["cpu"]
    assert isinstance(env["blas"], list) and env["ceilings"]["cpu"]["tflops"] > 0
    assert {(r["impl"], r["device"]) for r in records} == {("bpgpu", "cpu"), ("raw", "cpu")}
    for r in records:
        assert set(measure.RECORD_FIELDS) <= set(r)
        assert r["error"] is None
        assert r["net"] == "4-8-3" and r["sizes"] == [4, 8, 3] and r["batch"] == 16
        assert r["dtype"] == "float32" and r["hardware"] == "cpu"
        assert r["step_s_min"] <= r["step_s"] <= r["step_s_max"]
        assert r["samples_per_s"] == pytest.approx(16 / r["step_s"])
        assert r["flops_per_step"] == accounting.step_flops([4, 8, 3], 16)
        assert r["tflops"] > 0 and r["ceiling_tflops"] > 0 and r["pct_of_ceiling"] > 0
        assert r["min_bytes"] == accounting.min_bytes([4, 8, 3], 16, 4)
        assert r["peak_bytes"] > 0  # NumPy reports to tracemalloc
        assert r["max_abs_diff"] < 1e-5  # the same work from the same start
    ours = next(r for r in records if r["impl"] == "bpgpu")
    assert set(ours["speedup_vs"]) == {"raw"} and ours["speedup_vs"]["raw"] > 0
    assert png.stat().st_size > 0
    table = capsys.readouterr().out
    assert "bpgpu/s" in table and "×raw" in table and "4-8-3" in table


def test_a_compiling_device_gets_step_and_epoch_records(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "r.json"
    argv = [*TINY, "--json", str(out)]
    argv[argv.index("cpu")], argv[argv.index("raw")] = "cpu,jax:cpu", "jax"
    assert bench.main(argv) == 0
    records = json.loads(out.read_text())["records"]
    got = {(r["impl"], r["device"], r["mode"]): r for r in records}
    assert set(got) == {("bpgpu", "cpu", "step"), ("bpgpu", "jax:cpu", "step"),
                        ("bpgpu", "jax:cpu", "epoch"), ("jax", "jax:cpu", "step")}
    epoch = got["bpgpu", "jax:cpu", "epoch"]
    rows = 16 * cases.EPOCH_BATCHES + 8  # full batches, then a ragged half batch
    assert epoch["rows"] == rows and epoch["samples_per_s"] == pytest.approx(rows / epoch["step_s"])
    assert epoch["flops_per_step"] == accounting.step_flops([4, 8, 3], rows)
    assert epoch["max_abs_diff"] is None  # other rows than the step's batch: not compared
    assert got["jax", "jax:cpu", "step"]["max_abs_diff"] < 1e-5  # the same work
    assert set(got["bpgpu", "jax:cpu", "epoch"]["speedup_vs"]) == {"jax"}


class _OutOfMemory(cases.RawCase):
    def build(self):
        raise MemoryError("Unable to allocate 64.0 GiB")


def test_a_failing_measurement_is_recorded_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(cases.CASES, "raw", _OutOfMemory)
    out = tmp_path / "r.json"
    assert bench.main([*TINY, "--json", str(out)]) == 0
    records = {r["impl"]: r for r in json.loads(out.read_text())["records"]}
    assert records["bpgpu"]["error"] is None and records["bpgpu"]["samples_per_s"] > 0
    err = records["raw"]["error"]
    assert "out of memory at batch 16" in err and "--batch-sizes 8" in err
    assert records["raw"]["step_s"] is None
    assert "out of memory at batch 16" in capsys.readouterr().err


def test_cpu_meter_gives_a_share_or_none():
    meter = timing.CpuMeter()
    meter.start()
    assert meter.share() is None  # a window under 0.1 s is too short to tell


def _rec(impl, device, sps, batch=64):
    r = dict.fromkeys(measure.RECORD_FIELDS)
    r.update(net="n", sizes=[4, 8, 3], batch=batch, impl=impl, device=device,
             hardware=accounting.hardware_of(device), samples_per_s=sps, tflops=1e-3,
             pct_of_ceiling=1.0, peak_over_min=1.1)
    return r


def test_table_ratios_per_hardware_and_gpu_over_cpu():
    records = [_rec("bpgpu", "cpu", 100.0), _rec("raw", "cpu", 50.0),
               _rec("torch", "torch:cpu", 200.0), _rec("bpgpu", "cuda:0", 1000.0),
               _rec("torch", "torch:cuda:0", 500.0)]
    rows = {line.split()[2]: line.split() for line in report.table(records).splitlines()[2:]}
    # columns: net batch device bpgpu torch raw sklearn jax TFLOP %ceil ×torch ×raw ×sklearn ×jax
    # GPU/CPU
    assert rows["cpu"][10:15] == ["0.50", "2.00", "-", "-", "-"]
    assert rows["cuda:0"][10:15] == ["2.00", "-", "-", "-", "10.00"]
    assert accounting.hardware_of("torch:cuda:1") == "cuda:1"
    assert accounting.hardware_of("jax:cuda:1") == accounting.hardware_of("jax:gpu:1") == "cuda:1"
    assert accounting.hardware_of("jax:cpu") == "cpu"
    assert accounting.hardware_of("strict") == "cpu"


def test_epoch_records_are_labelled_per_epoch_step_records_per_step(capsys):
    step, epoch = _rec("bpgpu", "jax:cpu", 1000.0), _rec("bpgpu", "jax:cpu", 2000.0)
    step.update(mode="step", rows=64)
    epoch.update(mode="epoch", rows=136)
    for r in (step, epoch):
        r.update(step_s=0.004, spread=0.0, retried=0, host_load_other=0.0)
    report.progress(step, 1, 2, 1.0)
    report.progress(epoch, 2, 2, 0.0)
    step_line, epoch_line = capsys.readouterr().err.splitlines()
    assert "4 ms/step" in step_line and "ms/epoch" not in step_line
    assert "bpgpu epoch" in epoch_line and "4 ms/epoch" in epoch_line
    assert "ms/step" not in epoch_line
    assert "jax:cpu epoch" in report.table([step, epoch])
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    report._plot_net(ax, [step, epoch])
    assert "one epoch of fit" in ax.get_ylabel()
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {
        "bpgpu on jax:cpu", "bpgpu epoch on jax:cpu"}
    ax = Figure().subplots()
    report._plot_net(ax, [step])
    assert ax.get_ylabel() == "samples / s (one SGD step)"

# -- a run cut short keeps what it measured ------------------------------------------------------

def test_sigterm_ends_the_run_with_every_finished_measurement_written(tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "bpgpu.benchmarks.bench", "--devices", "cpu", "--nets", "4,8,3",
           "--batch-sizes", "8,16,32,64,128,256,512,1024", "--repeats", "40", "--peers", "none",
           "--target-s", "0.05", "--ceiling-n", "64", "--settle-s", "0", "--json", str(out)]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        deadline = time.monotonic() + 120
        while not (out.exists() and json.loads(out.read_text())["records"]):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        partial = json.loads(out.read_text())  # written as measured, before the run ends
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert partial["env"]["complete"] is False
    doc = json.loads(out.read_text())
    assert doc["env"]["interrupted"] is True and doc["env"]["complete"] is False
    assert 1 <= len(doc["records"]) < 8 and all(r["error"] is None for r in doc["records"])
    assert "interrupted; writing what was measured" in stderr
    assert "4-8-3" in stdout  # the table of what was measured


def test_a_complete_run_says_so(tmp_path):
    out = tmp_path / "r.json"
    assert bench.main([*TINY, "--peers", "none", "--json", str(out)]) == 0
    env = json.loads(out.read_text())["env"]
    assert env["complete"] is True and env["interrupted"] is False
    assert not (tmp_path / "r.json.tmp").exists()


# -- TF32, the driver, and CuPy's memory, read without a GPU -------------------------------------

def test_tf32_uses_pytorchs_current_api_and_restores_it(monkeypatch):
    torch = pytest.importorskip("torch")
    if not isinstance(getattr(torch.backends.cuda.matmul, "fp32_precision", None), str):
        pytest.skip("this PyTorch predates torch.backends.cuda.matmul.fp32_precision")

    def legacy(*args):
        raise AssertionError("the deprecated allow_tf32 flag was used")

    monkeypatch.setattr(torch._C, "_set_cublas_allow_tf32", legacy)
    monkeypatch.setattr(torch._C, "_get_cublas_allow_tf32", legacy)
    before = torch.backends.cuda.matmul.fp32_precision
    with tf32.tf32_mode(True) as note:
        assert torch.backends.cuda.matmul.fp32_precision == "tf32"
        assert tf32.tf32_state(True, note)["torch_float32_matmul"] == "tf32"
    assert torch.backends.cuda.matmul.fp32_precision == before
    with tf32.tf32_mode(False):
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    assert torch.backends.cuda.matmul.fp32_precision == before


def _fake_cupy(monkeypatch, **attrs):
    """A stand-in ``cupy`` module in sys.modules (the tests run without CuPy)."""
    cupy = types.ModuleType("cupy")
    cupy.__dict__.update(attrs)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    return cupy


def _fake_cupy_linalg(monkeypatch):
    """CuPy's compute-type bookkeeping as ``cupy/_core/_routines_linalg.pyx`` keeps it."""
    linalg = types.ModuleType("cupy._core._routines_linalg")
    linalg.COMPUTE_TYPE_TBD, linalg.COMPUTE_TYPE_DEFAULT, linalg.COMPUTE_TYPE_TF32 = 0, 1, 7
    kept = {"float32": 0}

    def get_compute_type(dtype):
        if kept[dtype] == 0:  # read CUPY_TF32 once, at the first float32 product, and keep it
            kept[dtype] = 7 if int(os.environ.get("CUPY_TF32", "0")) > 0 else 1
        return kept[dtype]

    linalg.get_compute_type = get_compute_type
    linalg.set_compute_type = kept.__setitem__
    linalg.compute_type_to_str = {1: "COMPUTE_TYPE_DEFAULT", 7: "COMPUTE_TYPE_TF32"}.get
    core = types.ModuleType("cupy._core")
    core._routines_linalg = linalg
    _fake_cupy(monkeypatch, _core=core)
    monkeypatch.setitem(sys.modules, "cupy._core", core)
    monkeypatch.setitem(sys.modules, "cupy._core._routines_linalg", linalg)
    return kept


def test_tf32_reaches_cupy_after_its_first_float32_product(monkeypatch):
    monkeypatch.delenv("CUPY_TF32", raising=False)
    kept = _fake_cupy_linalg(monkeypatch)
    kept["float32"] = 1  # a float32 product already ran: CUPY_TF32 alone would change nothing
    with tf32.tf32_mode(True) as note:
        assert note == "" and kept["float32"] == 7 and os.environ["CUPY_TF32"] == "1"
        assert tf32.tf32_state(True)["cupy_float32_compute_type"] == "COMPUTE_TYPE_TF32"
    assert kept["float32"] == 1 and "CUPY_TF32" not in os.environ


def test_the_driver_is_read_from_nvidia_smi_not_from_a_library(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho '580.159.03, NVIDIA H200'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path), prepend=os.pathsep)
    runtime = types.SimpleNamespace(driverGetVersion=lambda: 13000)
    _fake_cupy(monkeypatch, cuda=types.SimpleNamespace(runtime=runtime))
    assert envinfo.nvidia_driver() == {"version": "580.159.03", "gpus": ["NVIDIA H200"],
                                       "cuda": "13.0"}


class _Pool:
    """CuPy's pool as the meter sees it: bytes in use, bytes cached, and the hooks it calls."""

    def __init__(self, hooks, in_use):
        self.hooks, self.in_use, self.cached = hooks, in_use, 0

    def used_bytes(self):
        return self.in_use

    def total_bytes(self):
        return self.in_use + self.cached

    def malloc(self, n):
        self.in_use += n
        for h in list(self.hooks):
            h.malloc_postprocess(device_id=0, size=n, mem_size=n, mem_ptr=1, pmem_id=1)

    def free(self, n):
        self.in_use, self.cached = self.in_use - n, self.cached + n
        for h in list(self.hooks):
            h.free_postprocess(device_id=0, mem_size=n, mem_ptr=1, pmem_id=1)


def test_cupy_peak_is_memory_in_use_not_the_pools_cache(monkeypatch):
    hooks = []

    class MemoryHook:
        def __enter__(self):
            hooks.append(self)

        def __exit__(self, *exc):
            hooks.remove(self)

    class Device(contextlib.nullcontext):
        def synchronize(self):
            pass

    pool = _Pool(hooks, in_use=100)  # held before the case is built: not counted
    _fake_cupy(monkeypatch, get_default_memory_pool=lambda: pool,
               cuda=types.SimpleNamespace(MemoryHook=MemoryHook, Device=Device))
    meter = memory.PeakMeter(types.SimpleNamespace(memory="cupy", hardware="cuda:0"))
    meter.start()
    pool.malloc(1000)  # the warm-up step
    pool.free(1000)
    meter.reset()
    for n in (400, 300):
        pool.malloc(n)
    pool.free(400)
    pool.malloc(200)
    pool.free(300)
    pool.free(200)
    assert meter.peak() == 700  # in use at once, above the baseline
    assert pool.total_bytes() - 100 == 1900  # what the pool's reserved total would have said
    meter.stop()
    assert hooks == []
