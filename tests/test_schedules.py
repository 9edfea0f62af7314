"""Learning-rate schedules: their rates, their command-line forms and errors, their saved state,
and the Trainer's per-epoch use of them, which compiles no more often than a constant rate."""

import json
import math

import numpy as np
import pytest

import bpgpu
from bpgpu import schedules
from bpgpu.schedules import (
    Cosine,
    Exponential,
    InverseScaling,
    ReduceOnPlateau,
    StepDecay,
    from_spec,
    rate_at,
)
from bpgpu.training import EpochRunner, Trainer, compiled

from .conftest import to_np
from .test_optim_controls import _count_traces


def _rates(schedule, epochs, lr0=0.1):
    return [schedule.rate(e, lr0) for e in range(epochs)]


def test_the_decays_follow_their_formulas():
    assert _rates(StepDecay(2, 0.5), 5) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    assert _rates(Exponential(0.9), 3) == pytest.approx([0.1, 0.09, 0.081])
    # scikit-learn's invscaling, η0 / t^power_t, with t counting epochs from 1
    invscaling = [0.1 / math.sqrt(t) for t in (1, 2, 3, 4)]
    assert _rates(InverseScaling(0.5), 4) == pytest.approx(invscaling)
    assert _rates(InverseScaling(0.0), 3) == [0.1] * 3


def test_inverse_scaling_is_scikit_learns_with_epochs_for_samples():
    pytest.importorskip("sklearn")
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    theirs = SGDOptimizer([], learning_rate_init=0.1, lr_schedule="invscaling", power_t=0.3)
    for t in range(5):  # scikit-learn is told the samples seen; hand it the epoch instead
        theirs.iteration_ends(t)
        assert InverseScaling(0.3).rate(t, 0.1) == pytest.approx(theirs.learning_rate, rel=1e-15)


def test_the_cosine_warms_up_linearly_then_falls_to_min_lr():
    rates = _rates(Cosine(10, min_lr=0.01, warmup=3), 12)
    assert rates[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # η0 (e + 1) / (warmup + 1)
    assert rates[3] == 0.1 and all(a > b for a, b in zip(rates[3:10], rates[4:10]))
    assert rates[6] == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi * 3 / 7)) / 2)
    assert rates[9] > 0.01 and rates[10:] == [0.01, 0.01]
    assert _rates(Cosine(4), 4) == pytest.approx([0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2,
                                                  0.05, 0.1 * (1 - math.cos(math.pi / 4)) / 2])


def test_a_rate_that_is_not_positive_and_finite_is_an_error_naming_the_epoch():
    with pytest.raises(ValueError, match=r"Cosine\(epochs=4.*gives 0.0 at epoch 4; a rate must"):
        rate_at(Cosine(4), 4, 0.1)
    with pytest.raises(ValueError, match="gives nan at epoch 2"):
        rate_at(schedules.get(lambda e: float("nan") if e == 2 else 0.1), 2, 0.1)
    with pytest.raises(ValueError, match="gives -1 at epoch 0"):
        rate_at(schedules.get(lambda e: -1), 0, 0.1)
    assert rate_at(schedules.get(lambda e: 0.5 / (e + 1)), 1, 0.1) == 0.25


def test_reduce_on_plateau_divides_after_patience_epochs_without_improvement():
    s = ReduceOnPlateau(factor=5.0, patience=2, tol=0.01)
    seen = []
    for e, loss in enumerate([1.0, 0.9, 0.895, 0.894, 0.893, 0.5, 0.6, 0.7]):
        seen.append(s.rate(e, 0.1))
        s.observe(e, {"loss": loss})
    # 0.895 and 0.894 improve by ≤ tol: the rate falls after them; again after 0.893, 0.5 (reset)
    assert seen == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.02, 0.02, 0.02, 0.02])
    assert s.rate(8, 0.1) == pytest.approx(0.004)  # 0.6 and 0.7: two more without improvement
    acc = ReduceOnPlateau(patience=1, monitor="val_accuracy", min_lr=0.05)
    for e, value in enumerate([0.5, 0.6, 0.6]):
        acc.rate(e, 0.1)
        acc.observe(e, {"val_accuracy": value})
    assert acc.rate(3, 0.1) == 0.05  # accuracy improves upwards; never below min_lr


def test_plateau_state_is_json_and_resumes_the_same_rates():
    a = ReduceOnPlateau(patience=1)
    losses = [1.0, 1.0, 0.5, 0.5, 0.5]
    for e, loss in enumerate(losses[:3]):
        a.rate(e, 0.1)
        a.observe(e, {"loss": loss})
    saved = json.loads(json.dumps(a.state_dict()))
    assert saved == {"name": "plateau", "best": 0.5, "wait": 0, "lr": pytest.approx(0.02)}
    b = ReduceOnPlateau(patience=1)
    b.load_state_dict(saved)
    for s in (a, b):
        for e, loss in enumerate(losses[3:], start=3):
            s.rate(e, 0.1)
            s.observe(e, {"loss": loss})
    assert a.state_dict() == b.state_dict() and b.rate(5, 0.1) == pytest.approx(0.0008)
    for bad in ({"name": "cosine"}, {"name": "plateau", "best": None, "wait": -1, "lr": None},
                {"name": "plateau", "best": "x", "wait": 0, "lr": None}):
        with pytest.raises(ValueError, match="schedule|ReduceOnPlateau state"):
            ReduceOnPlateau().load_state_dict(bad)
    assert Cosine(5).state_dict() == {"name": "cosine"}


def test_plateau_names_a_metric_the_run_does_not_record():
    with pytest.raises(ValueError, match="monitors 'val_loss', which epoch 0's logs lack "
                                         r"\(they have loss, accuracy\)"):
        ReduceOnPlateau(monitor="val_loss").observe(0, {"loss": 1.0, "accuracy": 0.5})


@pytest.mark.parametrize("spec,want", [
    ("constant", schedules.Constant()), ("cosine", Cosine(30)),
    ("cosine:5", Cosine(30, warmup=5)), ("step:10", StepDecay(10)),
    ("step:10:0.5", StepDecay(10, 0.5)), ("exp:0.95", Exponential(0.95)),
    ("invscaling", InverseScaling()), ("invscaling:0.25", InverseScaling(0.25)),
    ("plateau", ReduceOnPlateau()), ("plateau:3", ReduceOnPlateau(patience=3)),
    (" Step:2:1e-1 ", StepDecay(2, 0.1))])
def test_the_command_line_forms(spec, want):
    got = from_spec(spec, epochs=30)
    assert type(got) is type(want) and repr(got) == repr(want)


@pytest.mark.parametrize("spec,phrase", [
    ("cosine:x", "unknown learning-rate schedule 'cosine:x'; use one of constant, cosine[:WARMUP]"),
    ("linear", "unknown learning-rate schedule 'linear'"),
    ("exp", "unknown learning-rate schedule 'exp'"),
    ("step:1:2:3", "unknown learning-rate schedule"),
    ("cosine:30", "warmup (30) must be fewer than the cosine schedule's epochs (30)"),
    ("step:0", "step_size must be a whole number ≥ 1, got 0"),
    ("step:2.5", "step_size must be a whole number ≥ 1, got 2.5"),
    ("exp:0", "gamma must be a finite number > 0, got 0"),
    ("invscaling:-1", "power_t must be a number in [0, inf), got -1"),
    ("plateau:0", "patience must be a whole number ≥ 1, got 0")])
def test_bad_forms_and_settings_are_one_line_errors(spec, phrase):
    with pytest.raises(ValueError) as info:
        from_spec(spec, epochs=30)
    assert phrase in str(info.value) and "\n" not in str(info.value)


def test_settings_given_in_python_are_checked_too():
    for make, phrase in [
            (lambda: ReduceOnPlateau(factor=1.0), "factor must be a finite number > 1"),
            (lambda: ReduceOnPlateau(monitor=""), "monitor must name a metric"),
            (lambda: Cosine(0), "epochs (of the cosine schedule) must be a whole"),
            (lambda: Cosine(5, min_lr=-1), "min_lr must be a number in [0, inf)"),
            (lambda: from_spec("cosine"), "the cosine schedule needs the run's ep"),
            (lambda: schedules.get(3), "a learning-rate schedule is a Schedule")]:
        with pytest.raises((ValueError, TypeError)) as info:
            make()
        assert phrase in str(info.value) and "\n" not in str(info.value)


def test_lr_may_be_a_number_a_schedule_or_a_callable():
    base, s = schedules.resolve(0.1)
    assert base == 0.1 and type(s) is schedules.Constant and s.rate(7, 0.1) == 0.1
    base, s = schedules.resolve(0.1, "exp:0.5")
    assert base == 0.1 and isinstance(s, Exponential)
    base, s = schedules.resolve(Cosine(5))
    assert base is None and isinstance(s, Cosine)
    base, s = schedules.resolve(lambda e: 0.01 * (e + 1))
    assert base is None and s.rate(2, 0.5) == pytest.approx(0.03)
    with pytest.raises(TypeError, match="is already a schedule; give lr a number"):
        schedules.resolve(Cosine(5), "exp:0.5")
    assert schedules.split(0.1, "cosine") == (0.1, "cosine")  # built once the length is known
    assert schedules.split("cosine:2") == (None, "cosine:2")
    tr = Trainer(bpgpu.MLP([2, 2]), "sgd", lr=Cosine(10))
    assert tr.opt.lr == bpgpu.defaults.LR["sgd"] and isinstance(tr.schedule, Cosine)
    tr = Trainer(bpgpu.MLP([2, 2]), "sgd", lr=0.3, schedule="cosine:2", epochs=10)
    assert tr.opt.lr == 0.3 and tr.schedule.warmup == 2 and tr.schedule.epochs == 10


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((90, 5)), rng.integers(0, 3, 90)


def run_epochs(device, mode, lr, epochs, schedule=None, optimizer="sgd", **options):
    """What fit does with a schedule: begin_epoch, the epoch, end_epoch; returns the net and the
    rates."""
    X, y = _data()
    net = bpgpu.MLP([5, 16, 3], device=device, seed=1, dtype="float64")
    tr = Trainer(net, optimizer, lr=lr, schedule=schedule, epochs=epochs,
                 compile="none" if mode == "none" else "step", **options)
    run = EpochRunner(tr, net.device_inputs(X), net.device_targets(y, len(y)), 16, True, True,
                      mode)
    rates = []
    for epoch in range(epochs):
        rates.append(tr.begin_epoch(epoch))
        tr.end_epoch(epoch, run.epoch())
    return net, rates


def test_a_schedule_trains_alike_on_every_device(device):
    nets = [run_epochs(d, "none", 0.5, 4, "step:2:0.5", "momentum", nesterov=True)
            for d in ("cpu", device)]
    assert nets[0][1] == [0.5, 0.5, 0.25, 0.25]
    for a, b in zip(nets[0][0].params, nets[1][0].params):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-10, atol=1e-12)
    constant = run_epochs("cpu", "none", 0.5, 4, None, "momentum", nesterov=True)[0]
    assert not np.allclose(to_np(constant.params[0]), to_np(nets[0][0].params[0]))


@pytest.mark.parametrize("schedule", [
    lambda: "cosine:2", lambda: "invscaling",
    lambda: ReduceOnPlateau(patience=1, tol=10.0)],  # no epoch improves by 10: down every epoch
    ids=["cosine", "invscaling", "plateau"])
def test_every_compile_mode_follows_the_schedule(schedule):
    try:
        bpgpu.get_backend("jax:cpu")
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    ref, ref_rates = run_epochs("cpu", "none", 0.3, 6, schedule(), "adamw")
    for mode in ("none", "step", "epoch"):
        net, rates = run_epochs("jax:cpu", mode, 0.3, 6, schedule(), "adamw")
        assert rates == pytest.approx(ref_rates, rel=1e-12)
        for a, b in zip(net.params, ref.params):
            np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-10, atol=1e-12)
    assert len(set(ref_rates)) > 1


def test_a_cosine_schedule_compiles_no_more_often_than_a_constant_rate(monkeypatch):
    try:
        be = bpgpu.get_backend("jax:cpu")
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    counts = {}
    for lr, schedule in ((0.1, None), (0.1, "cosine:2")):
        compiled.clear()  # each run compiles for itself, not from the other's shared code
        traces = _count_traces(monkeypatch, be)
        rates = run_epochs("jax:cpu", "epoch", lr, 30, schedule)[1]
        counts[schedule] = sum(traces)
        monkeypatch.undo()
    assert len(set(rates)) == 30  # a new rate every epoch...
    assert counts["cosine:2"] == counts[None] == 1  # ...and one compilation all the same


def test_the_learning_rate_enters_the_history_it_is_returned_for():
    net, rates = run_epochs("cpu", "none", 0.2, 3, lambda e: 0.2 / 2**e)
    assert rates == [0.2, 0.1, 0.05]
    with pytest.raises(ValueError, match="gives 0 at epoch 1"):
        run_epochs("cpu", "none", 0.2, 2, lambda e: 0.2 if e == 0 else 0)


def test_a_checkpoint_may_hold_a_schedules_state(tmp_path):
    from bpgpu import state as states
    from bpgpu.io import modelfile

    net = bpgpu.MLP([3, 2], dtype="float64")
    tr = Trainer(net, "adam", lr=ReduceOnPlateau(patience=1))
    tr.begin_epoch(0)
    tr.end_epoch(0, {"loss": 0.7})
    st = states.capture(net, tr)
    st["checkpoint"] = {"epoch": 1, "settings": {"batch_size": 4, "shuffle": True},
                        "schedule": tr.schedule.state_dict()}
    modelfile.write(tmp_path / "ck.safetensors", st)
    back = ReduceOnPlateau(patience=1)
    back.load_state_dict(modelfile.read(tmp_path / "ck.safetensors")["checkpoint"]["schedule"])
    assert back.state_dict() == tr.schedule.state_dict() == {
        "name": "plateau", "best": 0.7, "wait": 0, "lr": 0.01}
    st["checkpoint"]["schedule"] = {"name": "plateau", "best": [0.7]}
    modelfile.write(tmp_path / "bad.safetensors", st)
    with pytest.raises(bpgpu.ModelFileError, match="checkpoint 'schedule' must be an object of "
                                                   "plain values"):
        modelfile.read(tmp_path / "bad.safetensors")
