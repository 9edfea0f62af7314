"""Compiled steps, epochs and evaluations are shared between networks of one structure: a second
network of the same shape compiles nothing, a different structure or optimizer setting compiles
anew, the cache stays bounded and keeps no network alive, and the shared code trains each network
exactly as its own compilation did."""

import gc
import weakref

import numpy as np
import pytest

import bpgpu
from bpgpu.training import compiled

from .conftest import to_np


@pytest.fixture
def jax_cpu():
    try:
        bpgpu.get_backend("jax:cpu")
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(f"jax:cpu unavailable: {exc}")
    import jax

    compiled.clear()
    return jax


def _data(n=50, features=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)), rng.integers(0, classes, n)


class _Compilations:
    """Counts XLA compilations through JAX's own monitoring events."""

    def __init__(self, jax):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event == "/jax/compilation_time_sec" or event.endswith("backend_compile_duration"):
            self.count += 1


@pytest.mark.parametrize("mode", ["step", "epoch"])
def test_a_second_network_of_the_same_shape_compiles_nothing(jax_cpu, mode):
    X, y = _data()
    seen = _Compilations(jax_cpu)
    first = bpgpu.MLP([6, 5, 3], device="jax:cpu", seed=0)
    first.fit(X, y, epochs=2, batch_size=8, compile=mode, validation_data=(X, y))
    assert seen.count > 0  # the listener hears compilations at all
    before, misses = seen.count, compiled.stats()["misses"]
    second = bpgpu.MLP([6, 5, 3], device="jax:cpu", seed=1)
    second.fit(X, y, epochs=2, batch_size=8, compile=mode, validation_data=(X, y))
    second.evaluate(X, y)
    assert seen.count == before
    assert compiled.stats()["misses"] == misses
    # and the shared code trained the second network as its own compilation would have
    compiled.clear()
    alone = bpgpu.MLP([6, 5, 3], device="jax:cpu", seed=1)
    alone.fit(X, y, epochs=2, batch_size=8, compile=mode, validation_data=(X, y))
    for a, b in zip(second.params, alone.params):
        np.testing.assert_array_equal(to_np(a), to_np(b))
    assert second.history["val_loss"] == alone.history["val_loss"]


@pytest.mark.parametrize("change", [
    dict(sizes=[6, 4, 3]), dict(activation="tanh"), dict(bias=False), dict(batch_size=5),
    dict(optimizer="sgd", momentum=None), dict(momentum=0.5), dict(nesterov=True),
    dict(weight_decay=1e-3),
])
def test_another_structure_or_setting_compiles_its_own(jax_cpu, change):
    X, y = _data()
    net_args = {"sizes": [6, 5, 3], "activation": "logistic", "bias": True}
    fit_args = {"epochs": 1, "batch_size": 8, "optimizer": "momentum", "momentum": 0.9}
    bpgpu.MLP(**net_args, device="jax:cpu").fit(X, y, **fit_args)
    misses = compiled.stats()["misses"]
    for k, v in change.items():
        args = net_args if k in net_args else fit_args
        if v is None:
            del args[k]
        else:
            args[k] = v
    other = bpgpu.MLP(**net_args, device="jax:cpu")
    other.fit(X, y, **fit_args)
    assert compiled.stats()["misses"] > misses
    # its result is that of the same run on the CPU
    cpu = bpgpu.MLP(**net_args, device="cpu")
    cpu.fit(X, y, **fit_args)
    for a, b in zip(other.params, cpu.params):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-4, atol=1e-5)


def test_a_new_learning_rate_shares_the_compilation(jax_cpu):
    X, y = _data()
    bpgpu.MLP([6, 5, 3], device="jax:cpu").fit(X, y, epochs=1, lr=0.1)
    misses = compiled.stats()["misses"]
    bpgpu.MLP([6, 5, 3], device="jax:cpu").fit(X, y, epochs=1, lr=0.02)
    assert compiled.stats()["misses"] == misses


def test_the_cache_keeps_no_network_alive_and_stays_bounded(jax_cpu, monkeypatch):
    X, y = _data()
    net = bpgpu.MLP([6, 5, 3], device="jax:cpu")
    net.fit(X, y, epochs=1, validation_data=(X, y))
    ref = weakref.ref(net)
    del net
    gc.collect()
    assert ref() is None
    monkeypatch.setattr(compiled, "LIMIT", 3)
    for width in range(2, 8):
        bpgpu.MLP([6, width, 3], device="jax:cpu").fit(X, y, epochs=1)
    assert compiled.stats()["size"] == 3


def test_a_custom_rule_is_keyed_by_identity():
    class Scaled(bpgpu.activations.Activation):
        name = "scaled"

        def __init__(self, c):
            self.c = c

        def forward(self, z):
            return self.c * z

        def backward(self, y, g):
            return self.c * g

        def __eq__(self, other):  # unhashable, and equal to any other of its kind
            return isinstance(other, Scaled)

    a, b = Scaled(1.0), Scaled(2.0)
    assert compiled.rule_key(a) == compiled.rule_key(a)
    assert compiled.rule_key(a) != compiled.rule_key(b)
    hash(compiled.rule_key(a))
    builtin = bpgpu.losses.for_output(bpgpu.losses.get("cross_entropy"), "logistic")
    again = bpgpu.losses.for_output(bpgpu.losses.get("cross_entropy"), "logistic")
    assert builtin is not again and compiled.rule_key(builtin) == compiled.rule_key(again)


def test_the_shell_holds_no_parameters_or_data():
    net = bpgpu.MLP([4, 3, 2], device="cpu")
    net.fit(*_data(20, 4, 2), epochs=1)
    sh = compiled.shell(net)
    assert sh._params is None
    assert not {"history", "input_transform", "split", "optimizer_state", "shuffle_rng"} & set(
        vars(sh))
    X = net.device_inputs(_data(5, 4, 2)[0])
    np.testing.assert_array_equal(sh.forward_pass(X, net.params)[-1], net.forward_pass(X)[-1])


class _HalvedInputs(bpgpu.MLP):
    """A subclass that changes the forward pass: its code must not be another class's."""

    def forward_pass(self, X, params=None):
        return super().forward_pass(X / 2, params)

    def backward_pass(self, acts, T, params=None, into=None):
        return super().backward_pass([acts[0] / 2, *acts[1:]], T, params, into)


@pytest.mark.parametrize("mode", ["step", "epoch"])
def test_a_network_subclass_runs_its_own_passes_compiled(jax_cpu, mode):
    X, y = _data()
    bpgpu.MLP([6, 5, 3], device="jax:cpu").fit(X, y, epochs=2, batch_size=8, compile=mode)
    runs = {}
    for m in (mode, "none"):
        net = _HalvedInputs([6, 5, 3], device="jax:cpu")
        net.fit(X, y, epochs=2, batch_size=8, compile=m)
        runs[m] = net
    for a, b in zip(runs[mode].params, runs["none"].params):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-5, atol=1e-6)
    net = runs["none"]
    assert net.evaluate(X, y)["loss"] == pytest.approx(net.loss_value(X, y), rel=1e-5)


def test_a_trainer_subclass_runs_its_own_step_compiled(jax_cpu):
    class Scaled(bpgpu.Trainer):
        factor = None

        def pure_step(self, params, state, X, T):
            return super().pure_step(params, state, X * self.factor, T)

    X, y = _data()
    plain = bpgpu.MLP([6, 5, 3], device="jax:cpu")
    bpgpu.Trainer(plain, "sgd", lr=0.1).step(plain.device_inputs(X), plain.device_targets(y, 50))
    out = {}
    for device in ("jax:cpu", "cpu"):
        net = bpgpu.MLP([6, 5, 3], device=device)
        tr = Scaled(net, "sgd", lr=0.1)
        tr.factor = 3.0
        tr.step(net.device_inputs(X), net.device_targets(y, 50))
        out[device] = [to_np(p) for p in net.params]
    for a, b in zip(out["jax:cpu"], out["cpu"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_setting_changed_to_a_numpy_number_compiles_anew(jax_cpu):
    X, y = _data()
    results = []
    for decay in (np.float32(0.0), np.float32(0.5)):
        net = bpgpu.MLP([6, 5, 3], device="jax:cpu", seed=0)
        tr = bpgpu.Trainer(net, "sgd", lr=0.1)
        tr.opt.weight_decay = decay
        tr.step(net.device_inputs(X), net.device_targets(y, 50))
        results.append(to_np(net.params[0]))
    assert not np.allclose(results[0], results[1])


def test_a_custom_optimizer_that_holds_its_network_does_not_keep_it_alive(jax_cpu):
    class Holding(bpgpu.optim.SGD):
        def step(self, params, grads, state):
            return [p - self.lr * g for p, g in zip(params, grads)], state

    X, y = _data()
    net = bpgpu.MLP([6, 5, 3], device="jax:cpu")
    opt = Holding(lr=0.1)
    opt.net = net  # a reference back, as a custom rule may keep
    net.fit(X, y, epochs=1, optimizer=opt)
    ref = weakref.ref(net)
    del net, opt
    gc.collect()
    assert ref() is None


def test_the_old_call_form_of_compiled_names_the_new_one(jax_cpu):
    import functools

    net = bpgpu.MLP([6, 5, 3], device="jax:cpu")
    tr = bpgpu.Trainer(net, "sgd", lr=0.1, compile="step")
    for old in (tr.pure_step, functools.partial(bpgpu.training.epoch_function, tr, 8)):
        with pytest.raises(TypeError, match=r"compiled\(name, lambda t: t.pure_step\)"):
            tr.compiled("step", old)
