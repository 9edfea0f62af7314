"""Ending a run early: StopTraining from any callback, EarlyStopping with the best weights
restored, and validation_fraction — on every backend, in every compile mode a device has."""

import numpy as np
import pytest

import bpgpu
from bpgpu.training.callbacks import EarlyStopping, StopTraining

from .conftest import to_np

rng = np.random.default_rng(0)
X = rng.standard_normal((120, 5))
Y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)


def _modes(device):
    return bpgpu.get_backend(device).compile_modes


def test_a_callback_ends_the_run_cleanly_with_a_final_checkpoint(device, tmp_path):
    def stop_at_three(net, epoch, logs):
        if epoch == 3:
            raise StopTraining("enough")

    net = bpgpu.MLP([5, 8, 3], device=device, seed=1)
    path = tmp_path / "run.ckpt"
    hist = net.fit(X, Y, epochs=20, batch_size=16, callbacks=[stop_at_three], checkpoint=path,
                   checkpoint_every=10)
    assert len(hist["loss"]) == 3 and net.history is hist
    saved = bpgpu.load(path)  # written at the stopping epoch, though not a multiple of 10
    assert len(saved.history["loss"]) == 3
    np.testing.assert_array_equal(to_np(saved.weights[0][0]), to_np(net.weights[0][0]))


@pytest.mark.parametrize("mode", ["none", "step", "epoch"])
def test_early_stopping_restores_the_best_epochs_weights(device, mode):
    if mode not in _modes(device):
        pytest.skip(f"{device} does not compile ({mode!r})")
    net = bpgpu.MLP([5, 16, 3], device=device, dtype="float64", seed=2)
    stop = EarlyStopping(monitor="val_loss", patience=2)
    hist = net.fit(X, Y, epochs=200, batch_size=8, lr=0.2, validation_fraction=0.25,
                   callbacks=[stop], compile=mode)
    assert stop.stopped_epoch == len(hist["val_loss"]) < 200  # stopped by it, early
    assert stop.best == min(hist["val_loss"]) == hist["val_loss"][stop.best_epoch - 1]
    assert stop.stopped_epoch - stop.best_epoch == 2
    from bpgpu.datasets import held_out_rows

    _, val = held_out_rows(Y, 0.25, seed=2)  # the rows fit held out, with the net's seed
    assert net.evaluate(X[val], Y[val])["loss"] == pytest.approx(stop.best, rel=1e-9)


def test_early_stopping_on_accuracy_waits_for_a_larger_value():
    stop = EarlyStopping(monitor="accuracy", patience=2, restore_best=False)
    net = bpgpu.MLP([5, 3], device="cpu")
    for epoch, acc in enumerate([0.5, 0.6, 0.6, 0.55], start=1):
        if epoch < 4:
            stop(net, epoch, {"accuracy": acc})
        else:
            with pytest.raises(StopTraining):
                stop(net, epoch, {"accuracy": acc})
    assert (stop.best, stop.best_epoch, stop.stopped_epoch) == (0.6, 2, 4)


def test_a_second_fit_starts_the_callback_afresh():
    stop = EarlyStopping(monitor="loss", patience=50)
    net = bpgpu.MLP([5, 8, 3], device="cpu", seed=0)
    net.fit(X, Y, epochs=3, callbacks=[stop])
    first = stop.best_epoch
    net.fit(X, Y, epochs=2, callbacks=[stop])
    assert first <= 3 and 4 <= stop.best_epoch <= 5  # epochs count over every fit


def test_validation_fraction_holds_out_a_stratified_seeded_share():
    from bpgpu.datasets import held_out_rows

    train, val = held_out_rows(Y, 0.25, seed=5)
    assert len(val) == 30 and sorted([*train, *val]) == list(range(120))
    shares = [np.mean(Y[val] == k) for k in range(3)]
    np.testing.assert_allclose(shares, [np.mean(k == Y) for k in range(3)], atol=0.02)
    assert np.array_equal(held_out_rows(Y, 0.25, seed=5)[1], val)
    text = np.array(["a", "b", "c"])[Y]  # text labels stratify the same way
    assert np.array_equal(held_out_rows(text, 0.25, seed=5)[1], val)
    net = bpgpu.MLP([5, 8, 3], device="cpu", seed=5)
    hist = net.fit(X, Y, epochs=2, validation_fraction=0.25)
    assert len(hist["val_loss"]) == 2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"validation_fraction": 1.5}, r"validation_fraction must be a number in \(0, 1\)"),
    ({"validation_fraction": 0.2, "validation_data": (X, Y)},
     "give validation_data or validation_fraction, not both"),
    ({"callbacks": [EarlyStopping()]}, "EarlyStopping monitors 'val_loss', which this fit does "
                                       "not record .pass validation_data or validation_fraction"),
])
def test_bad_stopping_settings_are_one_line(kwargs, message):
    net = bpgpu.MLP([5, 8, 3], device="cpu")
    with pytest.raises(ValueError, match=message) as info:
        net.fit(X, Y, epochs=2, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"patience": 0}, "patience must be a whole number ≥ 1"),
    ({"mode": "up"}, "mode must be 'auto', 'min' or 'max'"),
    ({"min_delta": -1}, "min_delta"),
])
def test_bad_early_stopping_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**kwargs)
