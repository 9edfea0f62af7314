"""Invariants that a plausible bug would break: epoch logs, fresh permutations, Adam over several
steps, saturated outputs, model-file damage inside the data, non-finite weights with a finite loss.
"""

import zipfile

import array_api_compat
import numpy as np
import pytest

import bpgpu
import bpgpu.optim
import bpgpu.training
from bpgpu import _host

from .conftest import to_np
from .test_reliability import X4, Y3, _legacy_save, _net, _npy_bytes, _rewrite


class Frozen(bpgpu.optim.SGD):
    """An optimizer that changes nothing (the fast paths must call a subclass's own step)."""

    def step(self, params, grads, state):
        return params, state


def test_epoch_logs_are_means_over_every_row(device):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 6)), rng.integers(0, 3, 50)
    net = bpgpu.MLP([6, 5, 3], device=device, dtype="float64", seed=0)
    net.fit(X, y, epochs=30, batch_size=10, lr=0.5)  # so that the predictions differ by row
    assert len(set(net.predict_labels(X).tolist())) > 1
    hist = net.fit(X, y, epochs=1, batch_size=7, optimizer=Frozen())  # shuffled, last batch of 1
    assert len(hist["loss"]) == 31  # the history of every fit
    assert hist["loss"][-1] == pytest.approx(net.loss_value(X, y), rel=1e-12)
    assert hist["accuracy"][-1] == np.mean(net.predict_labels(X) == y)


def test_each_epoch_draws_a_fresh_permutation(monkeypatch):
    seen, real = [], _host.permutation
    monkeypatch.setattr(_host, "permutation", lambda rng, n: seen.append(real(rng, n)) or seen[-1])
    X, y = np.random.default_rng(0).standard_normal((24, 6)), np.arange(24) % 3
    bpgpu.MLP([6, 3], seed=0).fit(X, y, epochs=3, batch_size=8)
    assert len(seen) == 3
    assert not np.array_equal(seen[0], seen[1]) and not np.array_equal(seen[1], seen[2])


def test_adam_matches_the_textbook_for_three_steps():
    X, t = np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([[1.0], [0.0]])
    net = bpgpu.MLP([2, 1], activation="identity", loss="sse", bias=False, dtype="float64")
    net.set_weights([(np.zeros((2, 1)), None)])
    net.fit(X, t, epochs=3, batch_size="full", lr=0.01, optimizer="adam")
    w, m, v = np.zeros(2), np.zeros(2), np.zeros(2)
    for k in range(1, 4):
        g = X.T @ (X @ w - t[:, 0]) / 2
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w -= 0.01 * (m / (1 - 0.9**k)) / (np.sqrt(v / (1 - 0.999**k)) + 1e-8)
    np.testing.assert_allclose(to_np(net.weights[0][0])[:, 0], w, rtol=1e-10)


def test_cross_entropy_stays_finite_when_an_output_saturates():
    net = bpgpu.MLP([1, 3], dtype="float64")
    net.set_weights([(np.array([[1000.0, 0.0, -1000.0]]), np.zeros(3))])  # p = (1, 0, 0)
    assert net.loss_value([[1.0]], [0]) == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(net.loss_value([[1.0]], [2]))


def test_to_carries_the_shuffle_stream(device):
    X, y = np.random.default_rng(0).standard_normal((24, 6)), np.arange(24) % 3
    net = bpgpu.MLP([6, 3], dtype="float64", seed=0)
    net.fit(X, y, epochs=1, batch_size=8)
    moved = net.to(device)
    for n in (net, moved):
        n.fit(X, y, epochs=1, batch_size=8)
    np.testing.assert_allclose(to_np(moved.weights[0][0]), to_np(net.weights[0][0]), rtol=1e-12)


def test_resume_with_other_optimizer_settings_warns(tmp_path):
    ck = tmp_path / "ck.npz"
    _net().fit(X4, Y3, epochs=1, lr=0.05, checkpoint=ck)
    with pytest.warns(UserWarning, match="resuming .* with optimizer settings"):
        _net().fit(X4, Y3, epochs=2, lr=0.1, resume=ck)


def test_nan_inputs_are_refused_on_every_device(device):
    X = X4.copy()
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 2"):
        _net(device=device).fit(X, Y3)


def test_out_of_range_inputs_get_the_range_message_on_every_device(device):
    with pytest.raises(ValueError, match="beyond float32's range"):
        _net(device=device).fit(X4 * 1e300, Y3)
    X = bpgpu.get_backend(device).asarray(X4 * 1e300, "float64")  # already on the device
    with pytest.raises(ValueError, match="beyond float32's range"):
        _net(device=device).fit(X, Y3)


def test_cross_entropy_targets_outside_0_1_are_refused():
    with pytest.raises(ValueError, match=r"cross_entropy needs probabilities in \[0, 1\]"):
        _net().fit(X4, np.full((10, 3), 2.0))


def test_a_flipped_weight_byte_is_caught_by_the_crc(tmp_path):
    path = tmp_path / "net.npz"
    _legacy_save(_net(), path)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("W0.npy")
    raw = bytearray(path.read_bytes())
    lh = info.header_offset
    start = lh + 30 + int.from_bytes(raw[lh + 26:lh + 28], "little") + \
        int.from_bytes(raw[lh + 28:lh + 30], "little")
    raw[start + info.compress_size - 1] ^= 0x01  # last byte of W0's data
    path.write_bytes(bytes(raw))
    with pytest.raises(bpgpu.ModelFileError, match="damaged"):
        bpgpu.load(path)


@pytest.mark.parametrize("cut", [slice(None, -4), slice(None, None)])
def test_short_or_long_array_data_is_named(tmp_path, cut):
    path = tmp_path / "net.npz"
    _legacy_save(_net(), path)
    data = _npy_bytes(np.zeros((4, 5), np.float32))
    data = data[cut] if cut.stop else data + b"\0" * 4
    _rewrite(path, add={"W0.npy": data})
    with pytest.raises(bpgpu.ModelFileError, match="truncated or has trailing bytes"):
        bpgpu.load(path)


def test_fortran_ordered_arrays_load_in_the_right_order(tmp_path):
    path = tmp_path / "net.npz"
    net = _net(dtype="float64")
    _legacy_save(net, path)
    W0 = to_np(net.weights[0][0])
    _rewrite(path, add={"W0.npy": _npy_bytes(np.asfortranarray(W0))})
    np.testing.assert_array_equal(to_np(bpgpu.load(path).weights[0][0]), W0)


class PoisonDeadUnit(bpgpu.optim.SGD):

    def step(self, params, grads, state):
        params, state = super().step(params, grads, state)
        W = params[0]
        xp = array_api_compat.array_namespace(W)
        poison = np.zeros(W.shape)
        poison[0, 0] = -np.inf  # x ≥ 0 → z = -inf → relu 0: the loss stays finite
        W = W + xp.asarray(poison, dtype=W.dtype, device=array_api_compat.device(W))
        return [W, *params[1:]], state


def test_an_infinite_weight_with_a_finite_loss_still_stops_training():
    X, y = np.abs(X4[:, :1]) + 0.1, Y3
    net = bpgpu.MLP([1, 2, 3], activation="relu", dtype="float64", seed=0)
    with pytest.raises(bpgpu.TrainingDiverged, match="a weight became NaN or infinite"):
        net.fit(X, y, epochs=1, optimizer=PoisonDeadUnit(lr=0.1))
    assert np.all(np.isfinite(to_np(net.weights[0][0])))


@pytest.mark.parametrize("compile", ["none", "auto"])
def test_a_rollback_restores_the_optimizer_state_too(device, compile):
    X, y = np.abs(X4[:, :1]) + 0.1, Y3
    net = bpgpu.MLP([1, 2, 3], activation="relu", dtype="float32", seed=0, device=device)
    tr = bpgpu.Trainer(net, "momentum", lr=0.1)
    run = bpgpu.training.EpochRunner(tr, net.device_inputs(X), net.device_targets(y, len(y)), 2,
                                     shuffle=True, classify=True,
                                     mode=bpgpu.training.resolve_mode(net.backend, compile))
    run.epoch()
    good = [to_np(v).copy() for v in tr.state["velocity"]]
    tr.opt = PoisonDeadUnitMomentum(lr=0.1)  # the next epoch leaves an infinite weight behind
    with pytest.raises(bpgpu.TrainingDiverged, match="epoch 2; the weights are those after ep"):
        run.epoch()
    for v, g in zip(tr.state["velocity"], good):
        np.testing.assert_array_equal(to_np(v), g)


class PoisonDeadUnitMomentum(bpgpu.optim.Momentum):

    def step(self, params, grads, state):
        params, state = super().step(params, grads, state)
        return PoisonDeadUnit(lr=self.lr).step(params, [g * 0 for g in grads], {})[0], state


def test_an_optimizer_refuses_settings_out_of_range():
    for name, bad in [("sgd", {"lr": -1.0}), ("sgd", {"lr": float("nan")}),
                      ("momentum", {"momentum": 1.0}), ("adam", {"beta2": -0.1}),
                      ("adam", {"eps": 0})]:
        message = f"{next(iter(bad))}.* must be a (number in|finite number >)"
        with pytest.raises(ValueError, match=message):
            bpgpu.optim.get(name, **bad)


def test_a_networks_compiled_evaluation_does_not_keep_it_alive():
    import gc
    import weakref

    pytest.importorskip("jax")
    net = bpgpu.MLP([2, 3, 2], device="jax:cpu")
    net.evaluate(np.ones((4, 2)), [0, 1, 0, 1])
    ref = weakref.ref(net)
    del net
    gc.collect()
    assert ref() is None
