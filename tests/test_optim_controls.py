"""Weight decay (coupled L2 on the weights only), AdamW, Nesterov momentum and the learning rate
as optimizer state: each rule's fast path equals its reference, both equal ``torch.optim`` step
for step, every compile mode gives the step-by-step weights, and the state (with its rate) saves
and loads."""

import numpy as np
import pytest

import bpgpu
from bpgpu import optim
from bpgpu import state as states
from bpgpu.io import modelfile
from bpgpu.training import EpochRunner, Trainer

from .conftest import to_np

# (bpgpu name, settings) of every new control, and whether the rate may change between steps
# and still match torch (bpgpu's plain momentum keeps η inside its velocity; PyTorch's does not).
RULES = [
    ("sgd", {"weight_decay": 0.1}, True),
    ("momentum", {"weight_decay": 0.1}, False),
    ("momentum", {"nesterov": True}, True),
    ("momentum", {"nesterov": True, "weight_decay": 0.05, "momentum": 0.8}, True),
    ("adam", {"weight_decay": 0.1}, True),
    ("adamw", {}, True),
    ("adamw", {"weight_decay": 0.2, "beta1": 0.8}, True),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in s.items()) or 'defaults'}" for n, s, _ in RULES]
RATES = [0.05, 0.02, 0.08, 0.03]


def _host_problem(seed=0):
    """A layer's weight and bias, and four steps of gradients for them."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in RATES]
    return params, grads


def _bpgpu_steps(device, name, settings, varying, fast=None):
    """bpgpu's parameters after the four steps; ``fast``: force (True) or forbid (False) the
    in-place path, else the Trainer's choice (``apply``)."""
    be = bpgpu.get_backend(device)
    host, grads = _host_problem()
    opt = optim.get(name, lr=RATES[0], **settings)
    with be.context():
        params = [be.asarray(np.array(h), "float64") for h in host]
        state = opt.init_state(params)
        for k, gs in enumerate(grads):
            state["lr"] = RATES[k] if varying else RATES[0]
            g = [be.asarray(np.array(h), "float64") for h in gs]
            if fast is None:
                params, state = opt.apply(params, g, state, be.ops)
            elif fast:
                params, state = opt.step_(params, g, state, be.ops)
            else:
                params, state = opt.step(params, g, state)
    return [to_np(p) for p in params]


def _torch_steps(name, settings, varying):
    """The same four steps by torch.optim, the bias in a group of its own without decay."""
    torch = pytest.importorskip("torch")
    host, grads = _host_problem()
    params = [torch.tensor(h, dtype=torch.float64, requires_grad=True) for h in host]
    wd = settings.get("weight_decay", 0.01 if name == "adamw" else 0.0)
    groups = [{"params": params[:1], "weight_decay": wd}, {"params": params[1:],
                                                          "weight_decay": 0.0}]
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=RATES[0], betas=(settings.get("beta1", 0.9), 0.999), eps=1e-8)
    else:
        mu = settings.get("momentum", 0.9) if name == "momentum" else 0.0
        opt = torch.optim.SGD(groups, lr=RATES[0], momentum=mu,
                              nesterov=settings.get("nesterov", False))
    for k, gs in enumerate(grads):
        for group in opt.param_groups:
            group["lr"] = RATES[k] if varying else RATES[0]
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("name,settings,varying", RULES, ids=IDS)
def test_every_control_matches_torch_optim_step_for_step(device, name, settings, varying):
    got, want = _bpgpu_steps(device, name, settings, varying), _torch_steps(name, settings, varying)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
    if settings.get("weight_decay", name == "adamw"):
        plain = _torch_steps(name, {**settings, "weight_decay": 0.0}, varying)
        assert not np.allclose(got[0], plain[0], rtol=1e-6)  # the decay did something to W
        np.testing.assert_allclose(got[1], plain[1], rtol=1e-11)  # and nothing to the bias


@pytest.mark.parametrize("name,settings,varying", RULES, ids=IDS)
def test_every_controls_fast_path_matches_its_reference(device, name, settings, varying):
    if bpgpu.get_backend(device).ops is None:
        pytest.skip(f"{device} has no in-place primitives; it runs the reference itself")
    fast = _bpgpu_steps(device, name, settings, True, fast=True)
    ref = _bpgpu_steps(device, name, settings, True, fast=False)
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,settings,varying", RULES, ids=IDS)
def test_the_new_references_never_write_into_their_arrays(name, settings, varying):
    be = bpgpu.get_backend("cpu")
    opt = optim.get(name, lr=0.1, **settings)
    params = [be.asarray(np.ones((3, 2)), "float64"), be.asarray(np.ones(2), "float64")]
    state = opt.init_state(params)
    arrays = params + [a for v in state.values() if isinstance(v, list) for a in v]
    for a in arrays:
        a.flags.writeable = False  # a write would raise
    new, _ = opt.step(params, [be.asarray(np.ones(p.shape), "float64") for p in params], state)
    assert not np.array_equal(new[0], params[0])


@pytest.mark.parametrize("bias", [True, False])
def test_weight_decay_reaches_exactly_the_weights_of_the_layout(bias):
    net = bpgpu.MLP([4, 5, 3, 2], bias=bias)
    names = states.param_names(states.config(net))
    assert [optim.decays(p) for p in net.params] == [n.startswith("W") for n in names]


def _fit(device, mode, name, settings, dtype="float64", epochs=3):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((45, 5)), rng.integers(0, 3, 45)  # 45 = 6 × 7 + 3: ragged
    net = bpgpu.MLP([5, 8, 3], device=device, dtype=dtype, seed=2)
    net.fit(X, y, epochs=epochs, batch_size=7, lr=0.05, optimizer=name, compile=mode, **settings)
    return [to_np(p) for p in net.params]


@pytest.mark.parametrize("name,settings,varying", RULES, ids=IDS)
def test_every_compile_mode_gives_the_stepwise_weights(name, settings, varying):
    try:
        bpgpu.get_backend("jax:cpu")
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    ref, cpu = _fit("jax:cpu", "none", name, settings), _fit("cpu", "none", name, settings)
    for mode in ("step", "epoch"):
        for a, b, c in zip(_fit("jax:cpu", mode, name, settings), ref, cpu):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-13)


def test_the_rate_is_state_of_the_right_type_for_each_mode():
    net = bpgpu.MLP([3, 2], dtype="float32")
    tr = Trainer(net, "adamw", lr=0.1)
    assert tr.state["lr"] == 0.1 and isinstance(tr.state["lr"], float)
    assert tr.set_lr(0.25) == 0.25 and tr.state["lr"] == 0.25 and tr.rate == 0.25
    with pytest.raises(ValueError, match=r"lr \(the learning rate η\) must be a finite number"):
        tr.set_lr(float("nan"))
    try:
        jnet = bpgpu.MLP([3, 2], device="jax:cpu", dtype="float32")
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    jtr = Trainer(jnet, "sgd", compile="step")
    jtr.set_lr(0.25)
    assert jtr.state["lr"].shape == () and jtr.state["lr"].dtype == jnet.dtype
    jtr.step(jnet.device_inputs(np.ones((2, 3))), jnet.device_targets([0, 1], 2))
    assert states.capture(jnet, jtr)["optimizer"]["scalars"] == {"lr": 0.25}  # a float in JSON


def test_a_new_rate_is_new_data_not_a_new_compilation(monkeypatch):
    try:
        net = bpgpu.MLP([4, 3, 2], device="jax:cpu", seed=0)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    traces = _count_traces(monkeypatch, net.backend)
    cpu = bpgpu.MLP([4, 3, 2], device="cpu", seed=0)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((20, 4)), rng.integers(0, 2, 20)
    for n in (net, cpu):
        tr = Trainer(n, "momentum", lr=0.1, nesterov=True, weight_decay=0.01)
        Xd, Td = n.device_inputs(X), n.device_targets(y, 20)
        for rate in (0.1, 0.3, 0.05):
            tr.set_lr(rate)
            tr.step(Xd, Td)
        tr.opt.lr = 0.2  # a base rate set on the optimizer is taken up too
        tr.step(Xd, Td)
    assert traces == [1]
    for a, b in zip(net.params, cpu.params):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-5, atol=1e-6)


def test_a_custom_step_that_reads_self_lr_is_compiled_again_for_a_new_one(monkeypatch):
    class Halved(optim.SGD):
        def step(self, params, grads, state):
            return [p - self.lr / 2 * g for p, g in zip(params, grads)], state

    try:
        net = bpgpu.MLP([4, 2], device="jax:cpu", seed=0)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    traces = _count_traces(monkeypatch, net.backend)
    cpu = bpgpu.MLP([4, 2], device="cpu", seed=0)
    X, y = np.random.default_rng(1).standard_normal((6, 4)), [0, 1] * 3
    for n in (net, cpu):
        tr = Trainer(n, Halved(lr=0.1))
        Xd, Td = n.device_inputs(X), n.device_targets(y, 6)
        tr.step(Xd, Td)
        tr.opt.lr = 0.4
        tr.step(Xd, Td)
    assert traces == [1, 1] and not optim.rate_is_data(Halved)
    assert optim.rate_is_data(optim.AdamW) and optim.rate_is_data(type(optim.get("momentum")))
    for a, b in zip(net.params, cpu.params):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-5, atol=1e-6)


def _count_traces(monkeypatch, backend):
    """Count how often functions compiled by ``backend`` are traced (their Python body runs);
    what earlier tests compiled for networks of the same structure is forgotten first."""
    from bpgpu.training import compiled

    compiled.clear()
    traces, compile = [], backend.compile

    def counting(fn, donate=()):
        index = len(traces)
        traces.append(0)

        def traced(*args):
            traces[index] += 1
            return fn(*args)
        return compile(traced, donate=donate)

    monkeypatch.setattr(backend, "compile", counting)
    return traces


def test_a_custom_step_keeps_working_and_may_read_the_rate():
    class Halved(optim.SGD):
        def step(self, params, grads, state):
            return [p - state["lr"] / 2 * g for p, g in zip(params, grads)], {}

    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((12, 3)), rng.integers(0, 2, 12)
    nets = [bpgpu.MLP([3, 2], dtype="float64", seed=0) for _ in range(2)]
    nets[0].fit(X, y, epochs=2, batch_size=4, optimizer=Halved(lr=0.2))
    tr = Trainer(nets[1], "sgd", lr=0.2)
    tr.set_lr(0.1)  # Halved's rate: the trainer keeps it in the state its step dropped
    run = EpochRunner(tr, nets[1].device_inputs(X), nets[1].device_targets(y, 12), 4,
                      shuffle=True, classify=True)
    run.epoch(), run.epoch()
    for a, b in zip(nets[0].params, nets[1].params):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-12)


@pytest.mark.parametrize("name,settings", [("adamw", {}), ("momentum", {"nesterov": True})])
def test_the_state_with_its_rate_saves_loads_and_carries_on(tmp_path, name, settings):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    net = bpgpu.MLP([3, 4, 2], dtype="float64", seed=0)
    net.fit(X, y, epochs=2, batch_size=4, optimizer=name, lr=0.05, **settings)
    net.save(tmp_path / "m.safetensors")
    loaded, fresh = bpgpu.load(tmp_path / "m.safetensors"), bpgpu.load(tmp_path / "m.safetensors")
    opt, st = loaded.optimizer_state
    assert opt.name == name and vars(opt) == vars(optim.get(name, lr=0.05, **settings))
    assert st["lr"] == 0.05
    fresh.optimizer_state = None
    for n in (net, loaded, fresh):
        n.fit(X, y, epochs=1, batch_size=4, optimizer=name, lr=0.05, **settings)
    np.testing.assert_array_equal(to_np(net.params[0]), to_np(loaded.params[0]))
    assert not np.array_equal(to_np(fresh.params[0]), to_np(net.params[0]))  # state mattered


def test_an_older_file_without_a_rate_loads_and_uses_the_optimizers(tmp_path):
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((16, 3)), rng.integers(0, 2, 16)
    net = bpgpu.MLP([3, 2], dtype="float64", seed=0)
    net.fit(X, y, epochs=1, batch_size=4, optimizer="adam", lr=0.05)
    st = states.capture(net)
    assert st["optimizer"]["scalars"] == {"lr": 0.05, "step": 4}
    del st["optimizer"]["scalars"]["lr"]
    modelfile.write(tmp_path / "old.safetensors", st)
    old = bpgpu.load(tmp_path / "old.safetensors")
    assert "lr" not in old.optimizer_state[1]
    tr = Trainer(old, "adam", lr=0.05)
    assert tr.carry_on() and tr.state["lr"] == 0.05 and tr.state["step"] == 4
    st["optimizer"]["scalars"]["lr"] = -1.0
    modelfile.write(tmp_path / "bad.safetensors", st)
    with pytest.raises(bpgpu.ModelFileError, match="optimizer 'scalars' 'lr' .* must be a finite"):
        bpgpu.load(tmp_path / "bad.safetensors")


def test_the_new_settings_are_refused_out_of_range_in_one_line():
    for name, bad, phrase in [
            ("sgd", {"weight_decay": -0.1}, "weight_decay (λ) must be a number in [0, inf)"),
            ("adamw", {"weight_decay": float("inf")}, "weight_decay (λ) must be a number in"),
            ("momentum", {"nesterov": "yes"}, "nesterov must be True or False, got 'yes'"),
            ("adam", {"nesterov": True}, "optimizer 'adam' takes lr, beta1, beta2, eps, "
                                         "weight_decay; got nesterov")]:
        with pytest.raises((ValueError, TypeError)) as info:
            optim.get(name, **bad)
        assert phrase in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name,settings", [("adamw", {"weight_decay": 0.1}),
                                           ("momentum", {"nesterov": True, "weight_decay": 0.01})])
def test_a_resumed_run_of_a_new_control_ends_bit_for_bit_like_an_uninterrupted_one(
        tmp_path, name, settings):
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((30, 4)), rng.integers(0, 3, 30)
    kw = dict(batch_size=8, optimizer=name, lr=0.05, **settings)
    whole = bpgpu.MLP([4, 6, 3], seed=0, dtype="float64")
    whole.fit(X, y, epochs=4, **kw)
    ck = tmp_path / "ck.safetensors"
    bpgpu.MLP([4, 6, 3], seed=0, dtype="float64").fit(X, y, epochs=2, checkpoint=ck, **kw)
    resumed = bpgpu.MLP([4, 6, 3], seed=0, dtype="float64")
    resumed.fit(X, y, epochs=4, resume=ck, **kw)
    for a, b in zip(whole.params, resumed.params):
        np.testing.assert_array_equal(to_np(a), to_np(b))
