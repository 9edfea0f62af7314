"""Bad settings and sizes: one line at the command line (exit 2), refused before any training or
allocation they would waste, and whatever a network accepts it also saves and loads."""

import time

import numpy as np
import pytest

import bpgpu
from bpgpu import _host, cli


def bpgpu_cli(capsys, *args):
    """``bpgpu ARGS`` in this process: (exit status, stdout, stderr); argparse's exits too."""
    try:
        status = cli.main(list(args))
    except SystemExit as exc:
        status = exc.code
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize(("args", "expected"), [
    (["train", "--lr", "abc"], "bpgpu train: error: argument --lr: invalid float value: 'abc' "
                               "(see bpgpu train --help)"),
    (["trian"], "bpgpu: error: argument COMMAND: invalid choice: 'trian'"),
    (["predict", "--model", "m.st"], "bpgpu predict: error: the following arguments are "
                                     "required: --input (see bpgpu predict --help)"),
    (["train", "--seed", "-1"], "bpgpu: error: --seed must be a whole number ≥ 0, got -1"),
])
def test_usage_errors_are_one_line(capsys, args, expected):
    status, out, err = bpgpu_cli(capsys, *args)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(expected)


@pytest.mark.parametrize(("args", "what"), [
    (["--layers", "64,1000000000,10"], "a network of layer sizes [64, 1000000000, 10]"),
    (["--dataset", "spirals:10000000000"], "spirals:10000000000 (10,000,000,000 points) needs"),
    (["--dataset", "cafeteria:100000000000"], "cafeteria:100000000000 (100,000,000,000 weeks)"),
])
def test_sizes_no_machine_holds_are_refused_before_allocating(capsys, args, what):
    if _host.physical_memory() is None:
        pytest.skip("this system does not say how much memory it has")
    t0 = time.perf_counter()
    status, _, err = bpgpu_cli(capsys, "train", "--device", "cpu", *args)
    assert time.perf_counter() - t0 < 10  # refused, not attempted
    assert status == 2 and err.count("\n") == 1
    assert err.startswith("bpgpu: error: out of memory: ") and what in err
    assert "more than this machine's" in err


def test_a_failed_host_allocation_is_one_line_with_the_fix(capsys, monkeypatch):
    def refuse(*args, **kwargs):
        np.empty((2**40, 2**10))  # NumPy's own MemoryError, with its size and shape

    monkeypatch.setattr(_host, "initial_weights", refuse)
    status, _, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--epochs", "1")
    assert status == 2 and err.count("\n") == 1
    assert err.startswith("bpgpu: error: out of memory: Unable to allocate")
    assert err.rstrip().endswith("use smaller layers, a smaller --batch-size or fewer rows")


def test_the_estimators_refuse_a_layer_no_machine_holds():
    pytest.importorskip("sklearn")
    from bpgpu.sklearn import BPClassifier

    if _host.physical_memory() is None:
        pytest.skip("this system does not say how much memory it has")
    X, y = np.random.default_rng(0).normal(size=(8, 3)), np.arange(8) % 2
    with pytest.raises(MemoryError, match=r"layer sizes \[3, 1000000000, 1\]"):
        BPClassifier(hidden_layer_sizes=(10**9,), device="cpu").fit(X, y)


def test_a_bad_plot_format_fails_before_training_and_writes_nothing(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    t0 = time.perf_counter()
    status, out, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--epochs", "200",
                                 "--plot", str(tmp_path / "x.xyz"),
                                 "--save", str(tmp_path / "m.safetensors"))
    assert status == 2 and "matplotlib cannot write '.xyz' files; use one of" in err
    assert out == "" and list(tmp_path.iterdir()) == []
    assert time.perf_counter() - t0 < 5  # 200 epochs were never started


def test_the_model_is_saved_before_the_plot_is_drawn(capsys, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from bpgpu.cli import report

    def broken(*args, **kwargs):
        raise OSError("the plot failed")

    monkeypatch.setattr(report, "plot_history", broken)
    status, _, err = bpgpu_cli(capsys, "train", "--device", "cpu", "--epochs", "1",
                               "--plot", str(tmp_path / "c.png"),
                               "--save", str(tmp_path / "m.safetensors"))
    assert status == 2 and "the plot failed" in err
    assert bpgpu.load(tmp_path / "m.safetensors").sizes == [64, 32, 10]


@pytest.mark.parametrize("settings", [
    {"bias": 0}, {"bias": 1}, {"seed": np.int64(3)}, {"bias": np.bool_(True)},
    {"fused": np.bool_(False)}, {"seed": np.uint8(7), "fused": 0},
])
def test_whatever_a_network_accepts_it_saves_and_loads(tmp_path, settings):
    net = bpgpu.MLP([3, 4, 2], device="cpu", **settings)
    net.fit(np.eye(3)[[0, 1, 2, 0]], np.array([0, 1, 0, 1]), epochs=1, batch_size=2)
    net.save(tmp_path / "m.safetensors")
    loaded = bpgpu.load(tmp_path / "m.safetensors")
    for key, value in settings.items():
        assert getattr(loaded, key) == value and type(getattr(loaded, key)) in (int, bool)
    np.testing.assert_array_equal(loaded.predict(np.eye(3), host=True),
                                  net.predict(np.eye(3), host=True))


@pytest.mark.parametrize(("settings", "message"), [
    ({"bias": 2}, "bias must be True or False, got 2"),
    ({"fused": "yes"}, "fused must be True or False, got 'yes'"),
    ({"seed": -1}, "seed must be a whole number ≥ 0, got -1"),
    ({"seed": 1.5}, "seed must be a whole number ≥ 0, got 1.5"),
])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        bpgpu.MLP([3, 2], device="cpu", **settings)


def test_an_empty_input_file_is_one_line(capsys, tmp_path):
    model = tmp_path / "m.safetensors"
    bpgpu.MLP([3, 2], device="cpu").save(model)
    for name in ("empty.csv", "empty.npy"):
        (tmp_path / name).write_bytes(b"")
        status, out, err = bpgpu_cli(capsys, "predict", "--model", str(model), "--input",
                                     str(tmp_path / name))
        assert status == 2 and out == "" and err.count("\n") == 1
        assert name in err and "empty" in err
