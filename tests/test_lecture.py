"""``bpgpu lecture``: every claim of the seed lecture, checked on the numbers it measures."""

import json
import sys

import numpy as np
import pytest

from bpgpu import cli, datasets
from bpgpu.lecture import measure

FIGURES = ["1_cafeteria.png", "2_error_surface.png", "3_learning_rate.png", "4_correlation.png",
           "5_batch_vs_online.png", "6_logistic.png", "7_xor.png"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    """One run of ``bpgpu lecture --out DIR --device cpu``: its folder, report and numbers."""
    pytest.importorskip("matplotlib")
    out = tmp_path_factory.mktemp("lecture")
    captured = _run_cli(["lecture", "--out", str(out), "--device", "cpu"])
    assert captured["rc"] == 0, captured["err"]
    numbers = json.loads((out / "lecture.json").read_text(encoding="utf-8"))
    return {"out": out, "report": captured["out"], "numbers": numbers}


def _run_cli(argv):
    """Run the command in-process; its exit status and what it printed."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = cli.main(argv)
    return {"rc": rc, "out": out.getvalue(), "err": err.getvalue()}


# -- the claims, each a check on the measured numbers ---------------------------------------

CLAIMS = {}


def claim(check):
    CLAIMS[check.__name__] = check
    return check


@claim
def cafeteria_step_is_the_lectures(n):
    step = n["cafeteria_step"]
    assert step["residual_before"] == 350.0  # 3.50 €: bill 850, guess 5·50 + 2·50 + 3·50 = 500
    assert step["delta_w"] == [50.0, 20.0, 30.0]  # Δw = η x (t − y) = (5, 2, 3) · 350 / 35
    assert step["w_after"] == [100.0, 70.0, 80.0]
    assert step["residual_after"] == -30.0  # −0.30 €
    assert step["w_after"][0] > step["w_before"][0] == 50.0  # coffee moved away from 50: worse


@claim
def weeks_of_bills_give_the_true_prices(n):
    p = n["cafeteria_prices"]
    assert p["weeks"] >= 3 and p["true"] == [50.0, 150.0, 100.0]
    assert np.max(np.abs(np.subtract(p["learned"], p["true"]))) == p["max_abs_error"] < 1.0


@claim
def error_surface_is_a_quadratic_bowl(n):
    s = n["error_surface"]
    X = datasets.load("cafeteria:10", seed=0).X[:, 1:]  # juice and toast; coffee is fixed
    # E = ½ mean (t − x·w)² has Hessian XᵀX / n, the same at every w: a bowl of ellipses.
    np.testing.assert_allclose(s["hessian"], X.T @ X / len(X), atol=1e-9)
    assert s["hessian_change"] < 1e-9
    assert min(s["eigenvalues"]) > 0 and s["axis_ratio"] > 1.5
    np.testing.assert_allclose(s["minimum"], [150.0, 100.0], atol=1e-9)


@claim
def too_large_a_learning_rate_diverges(n):
    rows, limit = n["learning_rate"], n["learning_rate_limit"]["eta_max"]
    assert any(r["diverged"] for r in rows) and any(not r["diverged"] for r in rows)
    assert any(r["non_finite"] for r in rows)  # one ran until bpgpu raised TrainingDiverged
    for r in rows:  # the delta rule's bound: stable exactly below 2 / λmax
        assert r["diverged"] == (r["lr"] > limit), r
    best = max((r for r in rows if not r["diverged"]), key=lambda r: r["lr"])
    assert best["final_error"] < 1e-3


@claim
def correlated_inputs_learn_slowly(n):
    rows = n["correlation"]
    assert len(rows) >= 3 and rows[0]["rho"] == 0.0
    epochs = [r["epochs"] for r in rows]
    assert epochs == sorted(epochs) and epochs[-1] >= 5 * epochs[0], epochs
    angles = [r["max_angle_deg"] for r in rows]
    assert angles == sorted(angles) and angles[0] < 1e-3 and angles[-1] > 75, angles


@claim
def batch_and_online_take_different_paths(n):
    b, o = n["batch_vs_online"]["batch"], n["batch_vs_online"]["online"]
    assert b["steps"] == b["epochs"]  # one step per epoch over the whole set
    assert o["steps"] == 10 * o["epochs"]  # one step per bill
    assert b["max_abs_error"] < 1.0 and o["max_abs_error"] < 1.0
    assert o["path_length"] > 1.5 * b["path_length"]  # online zig-zags


@claim
def logistic_slope_is_y_times_one_minus_y(n):
    d = n["logistic_derivative"]
    assert d["max_abs_error"] < 1e-8 and d["backprop_max_abs_error"] < 1e-8


@claim
def xor_needs_non_linear_hidden_units(n):
    x = n["xor"]
    assert x["logistic_hidden"] == 1.0
    assert x["no_hidden"] <= 0.75 and x["linear_hidden"] <= 0.75


@pytest.mark.parametrize("name", CLAIMS)
def test_lecture_command_shows(lecture, name):
    CLAIMS[name](lecture["numbers"])


def test_every_device_shows_every_claim(device, lecture):
    numbers, _ = measure(device)
    for check in CLAIMS.values():
        check(numbers)
    cpu = lecture["numbers"]  # the same seeds and steps give the same counts on every device
    assert _counts(numbers) == _counts(cpu)


def _counts(n):
    return {"correlation": [r["epochs"] for r in n["correlation"]],
            "diverged": [r["diverged"] for r in n["learning_rate"]],
            "batch_vs_online": [n["batch_vs_online"][k]["steps"] for k in ("batch", "online")],
            "xor": n["xor"]}


# -- what the command writes and prints ----------------------------------------------------

def test_figures_are_pngs_of_the_expected_size(lecture):
    from matplotlib.image import imread

    for name in FIGURES:
        path = lecture["out"] / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        height, width = imread(path).shape[:2]
        assert width >= 600 and height >= 400, (name, width, height)


def test_report_speaks_the_lectures_terms(lecture):
    report = lecture["report"]
    assert "residual 350 → -30, Δw = (+50, +20, +30)" in report
    assert "XOR accuracy: no hidden units 50%, linear hidden units 50%, logistic hidden units " \
           "100%" in report
    assert all(name in report for name in FIGURES) and "lecture.json" in report


def test_without_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    captured = _run_cli(["lecture", "--out", str(tmp_path / "out")])
    assert captured["rc"] == 2
    assert captured["err"].count("\n") == 1 and "pip install 'bpgpu[plot]'" in captured["err"]
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.parametrize("mistake, words", [("device", "nosuch"), ("out", "is a file")])
def test_user_mistakes_give_one_line_and_status_2(tmp_path, mistake, words):
    out = tmp_path / "out"
    argv = ["lecture", "--out", str(out), "--device", "nosuch"]
    if mistake == "out":
        out.write_text("")
        argv = argv[:3]
    captured = _run_cli(argv)
    assert captured["rc"] == 2
    assert captured["err"].count("\n") == 1 and words in captured["err"], captured["err"]
