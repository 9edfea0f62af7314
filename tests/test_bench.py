"""``bpgpu bench``: the FLOP and memory accounting, the option parsing, the peers doing the same
work, and the shape of the JSON a run writes. No assertion here depends on how fast anything ran.
"""

import json

import numpy as np
import pytest
from bpgpu.benchmarks import accounting, bench, cases, envinfo, measure, report, timing

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
    with pytest.raises(ValueError, match="unknown peer 'jax'"):
        accounting.parse_peers("jax")


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
    (["--peers", "jax"], "unknown peer 'jax'"),
    (["--repeats", "0"], "--repeats must be ≥ 1"),
    (["--devices", "cpu:7"], "device 'cpu:7' is not usable here"),
])
def test_bad_options_exit_2_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--devices", "cpu", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_raw_step_is_bpgpus_sgd_step():
    sizes = [5, 7, 4, 3]
    data = cases.HostData(sizes, 9, "float64", cases.reference_weights(sizes, "float64"))
    ours, raw = cases.BpgpuCase("cpu", data), cases.RawCase("cpu", data)
    for case in (ours, raw):
        case.setup()
        case.step()
        case.step()
    for (W0, _), (W1, b1), (W2, b2) in zip(data.weights, ours.host_weights(),
                                            raw.host_weights(), strict=True):
        assert not np.allclose(W0, W1)  # the steps moved the weights
        np.testing.assert_allclose(W2, W1, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b2, b1, rtol=1e-12, atol=1e-14)


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
    # columns: net batch device bpgpu torch raw sklearn TFLOP %ceil ×torch ×raw ×sklearn GPU/CPU
    assert rows["cpu"][9:13] == ["0.50", "2.00", "-", "-"]
    assert rows["cuda:0"][9:13] == ["2.00", "-", "-", "10.00"]
    assert accounting.hardware_of("torch:cuda:1") == "cuda:1"
    assert accounting.hardware_of("strict") == "cpu"
