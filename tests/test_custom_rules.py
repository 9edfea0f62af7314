"""Custom rules known by name (``bpgpu.register``) and a different activation per hidden layer:
they train on every backend, and save, load, pickle and move as names, never as code."""

import copy
import json
import pickle

import numpy as np
import pytest
from array_api_compat import array_namespace
from safetensors import safe_open

import bpgpu
from bpgpu import activations, losses, optim, state
from bpgpu.activations import Activation
from bpgpu.losses import Loss

from .conftest import to_np

RNG = np.random.default_rng(0)
X = RNG.standard_normal((24, 6))
Y = np.arange(24) % 3


class Softplus(Activation):
    """``y = log(1 + exp(z))``, ``dy/dz = logistic(z) = 1 - exp(-y)``."""

    name = "softplus"

    def forward(self, z):
        xp = array_namespace(z)
        # max(z, 0) + log1p(exp(-|z|)): exp never overflows, in float32 either
        return xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))

    def derivative(self, y):
        return 1 - array_namespace(y).exp(-y)


class LogCosh(Loss):
    """``E = Σ_k log cosh(y_k - t_k)`` per example, batch mean; ``dE/dy = tanh(y - t) / n``."""

    name = "log_cosh"

    def value(self, y, t):
        xp = array_namespace(y)
        d = y - t
        return xp.sum(xp.abs(d) + xp.log1p(xp.exp(-2 * xp.abs(d))) - np.log(2.0)) / y.shape[0]

    def grad(self, y, t):
        return array_namespace(y).tanh(y - t) / y.shape[0]


class HalfSGD(optim.SGD):
    """Plain SGD at half the learning rate: a custom optimizer."""

    name = "half_sgd"

    def step(self, params, grads, state):
        return [p - (self.lr / 2) * g for p, g in zip(params, grads)], state


@pytest.fixture
def registry(monkeypatch):
    """The rule tables as copies, so that what a test registers is gone after it."""
    for module, table in ((activations, "ACTIVATIONS"), (losses, "LOSSES"),
                          (optim, "OPTIMIZERS")):
        monkeypatch.setattr(module, table, dict(getattr(module, table)))


def _one_line(exc_info, *phrases):
    text = str(exc_info.value)
    assert "\n" not in text
    for phrase in phrases:
        assert phrase in text, text


def _names(net):
    return [a.name for a in net.activations]


def _file_config(path):
    with safe_open(str(path), framework="numpy") as f:
        return json.loads(f.metadata()["config"])


# -- custom rules: registered, they train, save and load on every backend -------------------------

def test_a_registered_softplus_trains_saves_and_loads_on_every_backend(device, registry,
                                                                       tmp_path):
    bpgpu.register(Softplus())
    net = bpgpu.MLP([6, 5, 3], activation="softplus", device=device, seed=0)
    history = net.fit(X, Y, epochs=4, batch_size=8, lr=0.05)
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0]
    path = tmp_path / "softplus.safetensors"
    net.save(path)
    assert _file_config(path)["activation"] == "softplus"
    back = bpgpu.load(path, device=device)
    assert back.activation is activations.get("softplus")  # found anew in the registry
    np.testing.assert_allclose(to_np(back.predict(X)), to_np(net.predict(X)), rtol=1e-6)


def test_softplus_gradients_pass_the_finite_difference_check(device, registry):
    bpgpu.register(Softplus())
    net = bpgpu.MLP([6, 5, 3], activation="softplus", device=device, seed=0)
    assert max(bpgpu.check_gradients(net, X[:8], Y[:8])) < 1e-6


def test_a_custom_loss_and_optimizer_save_in_a_checkpoint_and_load(registry, tmp_path):
    bpgpu.register(LogCosh())
    bpgpu.register(HalfSGD)
    net = bpgpu.MLP([6, 4, 2], activation="tanh", loss="log_cosh", device="cpu", seed=1,
                    dtype="float64")
    T = RNG.standard_normal((24, 2))
    ck = tmp_path / "ck.safetensors"
    net.fit(X, T, epochs=2, batch_size=8, lr=0.1, optimizer="half_sgd", checkpoint=ck)
    back = bpgpu.load(ck)
    assert back.loss is losses.get("log_cosh") and back.output.name == "identity"
    assert isinstance(back.optimizer_state[0], HalfSGD)
    np.testing.assert_array_equal(back.predict(X, host=True), net.predict(X, host=True))


def test_register_decorates_a_class_and_takes_an_equal_rule_again(registry):
    @bpgpu.register
    class Square(Activation):
        name = "square"

        def forward(self, z):
            return z * z

        def derivative(self, y):
            return 2 * array_namespace(y).sqrt(y)

    assert isinstance(activations.get("square"), Square)
    assert bpgpu.register(Square()) is not None  # an equal rule: nothing changes
    assert bpgpu.register(activations.Tanh()) is not None  # the built-in itself, as well


@pytest.mark.parametrize("rule,phrase", [
    (type("Tanh2", (Softplus,), {"name": "tanh"}), "activation 'tanh' is built in"),
    (type("Sig", (Softplus,), {"name": "sigmoid"}), "activation 'sigmoid' is built in"),
    (type("Mse2", (LogCosh,), {"name": "mse"}), "loss 'mse' is built in"),
    (type("Adam2", (HalfSGD,), {"name": "adam"}), "optimizer 'adam' is built in"),
    (type("Nameless", (Softplus,), {"name": "abstract"}), "needs a name of its own"),
    (type("Comma", (Softplus,), {"name": "soft,plus"}), "needs a name of its own"),
])
def test_register_refuses_built_in_and_bad_names(registry, rule, phrase):
    with pytest.raises(ValueError) as info:
        bpgpu.register(rule)
    _one_line(info, phrase)


@pytest.mark.parametrize("rule,phrase", [
    (3, "bpgpu.register takes an Activation or Loss"),
    (type("NoMath", (Activation,), {"name": "nomath"}), "does not define forward"),
    (type("NoGrad", (Loss,), {"name": "nograd", "value": lambda s, y, t: y}), "define grad"),
    (type("Needs", (Softplus,), {"name": "needs", "__init__": lambda s, a: None}),
     "register an instance instead"),
])
def test_register_refuses_what_is_not_a_rule(registry, rule, phrase):
    with pytest.raises(TypeError) as info:
        bpgpu.register(rule)
    _one_line(info, phrase)


def test_another_rule_under_a_registered_name_needs_replace(registry):
    bpgpu.register(Softplus())
    other = type("Softplus2", (Softplus,), {})
    with pytest.raises(ValueError) as info:
        bpgpu.register(other())
    _one_line(info, "already registered", "replace=True")
    bpgpu.register(other(), replace=True)
    assert type(activations.get("softplus")) is other


# -- what cannot be read back is refused: at save, and at load -----------------------------------

def test_saving_an_unregistered_rule_fails_before_writing(registry, tmp_path):
    net = bpgpu.MLP([6, 5, 3], activation=Softplus(), seed=0)
    path = tmp_path / "never.safetensors"
    with pytest.raises(ValueError) as info:
        net.save(path)
    _one_line(info, "activation 'softplus'", "not registered", "bpgpu.register(Softplus())")
    assert not path.exists()
    for copy_of in (lambda n: pickle.dumps(n), lambda n: n.to("cpu"), copy.deepcopy):
        with pytest.raises(ValueError, match="bpgpu.register"):
            copy_of(net)


def test_a_different_rule_under_a_registered_name_is_not_saved(registry, tmp_path):
    bpgpu.register(Softplus())
    impostor = type("Impostor", (Softplus,), {})()  # the name, but not the registered rule
    net = bpgpu.MLP([6, 5, 3], activation=["softplus"], output=impostor, seed=0, loss="sse")
    with pytest.raises(ValueError) as info:
        net.save(tmp_path / "x.safetensors")
    _one_line(info, "registered to Softplus()", "a name of its own")


@pytest.mark.parametrize("kind,table,name", [
    ("activation", "ACTIVATIONS", "softplus"),
    ("loss", "LOSSES", "log_cosh"),
])
def test_loading_a_rule_this_process_does_not_know_names_it(registry, monkeypatch, tmp_path,
                                                            kind, table, name):
    bpgpu.register(Softplus())
    bpgpu.register(LogCosh())
    net = bpgpu.MLP([6, 5, 3], activation="softplus", loss="log_cosh", seed=0)
    path = tmp_path / "custom.safetensors"
    net.save(path)
    blob = pickle.dumps(net)
    module = activations if kind == "activation" else losses
    monkeypatch.delitem(getattr(module, table), name)  # as in a process that never registered
    with pytest.raises(bpgpu.ModelFileError) as info:
        bpgpu.load(path)
    _one_line(info, str(path), f"{kind} '{name}'", "does not know", "bpgpu.register")
    with pytest.raises(ValueError, match=f"unknown {kind} '{name}'.*bpgpu.register"):
        pickle.loads(blob)


# -- a different activation per hidden layer -------------------------------------------------------

def test_mixed_activations_forward_as_computed_by_hand(device):
    net = bpgpu.MLP([6, 5, 4, 3], activation=["tanh", "relu"], device=device, dtype="float64",
                    seed=2)
    (W1, b1), (W2, b2), (W3, b3) = [(to_np(W), to_np(b)) for W, b in net.weights]
    h1 = np.tanh(X @ W1 + b1)
    h2 = np.maximum(h1 @ W2 + b2, 0)
    z = h2 @ W3 + b3
    y = np.exp(z - z.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    acts = [to_np(a) for a in net.forward(X)]
    for got, want in zip(acts[1:], (h1, h2, y)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_mixed_activations_pass_the_gradient_check(device, fused):
    net = bpgpu.MLP([6, 5, 4, 4, 3], activation=["tanh", "relu", "logistic"], device=device,
                    dtype="float64", seed=3, fused=fused)
    assert max(bpgpu.check_gradients(net, X[:8], Y[:8])) < 1e-6


def test_mixed_activations_survive_save_load_pickle_and_to(device, tmp_path):
    net = bpgpu.MLP([6, 5, 4, 3], activation=["tanh", "relu"], device=device, seed=0)
    net.fit(X, Y, epochs=2, batch_size=8, lr=0.05)
    path = tmp_path / "mixed.safetensors"
    net.save(path)
    assert _file_config(path)["activation"] == ["tanh", "relu"]
    for twin in (bpgpu.load(path, device=device), pickle.loads(pickle.dumps(net)),
                 net.to("cpu")):
        assert _names(twin) == ["tanh", "relu"]
        np.testing.assert_allclose(to_np(twin.predict(X)), to_np(net.predict(X)), rtol=1e-6,
                                   atol=1e-6)


def test_one_activation_is_saved_as_a_name_as_it_always_was(tmp_path):
    net = bpgpu.MLP([6, 5, 4, 3], activation=["tanh", "tanh"], seed=0)
    assert net.activation.name == "tanh" and _names(net) == ["tanh", "tanh"]
    assert state.config(net)["activation"] == "tanh"
    assert repr(net).startswith("MLP([6, 5, 4, 3], activation='tanh',")
    single = bpgpu.MLP([6, 5, 4, 3], activation="tanh", seed=0)
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(net.weights, single.weights))


def test_the_shared_activation_is_an_attribute_error_when_the_layers_differ():
    net = bpgpu.MLP([6, 5, 4, 3], activation=["tanh", "relu"], seed=0)
    assert "activation=['tanh', 'relu']" in repr(net)
    with pytest.raises(AttributeError, match="read net.activations"):
        net.activation  # noqa: B018


def test_initial_weights_follow_each_layers_activation():
    mixed = bpgpu.MLP([40, 30, 20, 3], activation=["relu", "tanh"], seed=0)
    relu = bpgpu.MLP([40, 30, 20, 3], activation="relu", seed=0)
    np.testing.assert_array_equal(mixed.weights[0][0], relu.weights[0][0])  # He, one stream
    assert np.abs(mixed.weights[1][0]).max() <= np.sqrt(6 / (30 + 20))  # Glorot before tanh
    assert np.abs(relu.weights[1][0]).max() > np.sqrt(6 / (30 + 20))  # He is wider


@pytest.mark.parametrize("activation,exc,phrase", [
    (["tanh"], ValueError, "activation lists 1 rules for 2 hidden layers"),
    (["tanh", "relu", "tanh"], ValueError, "activation lists 3 rules for 2 hidden layers"),
    (["tanh", "swish"], ValueError, "unknown activation 'swish'"),
    ([["tanh"], "relu"], TypeError, "an activation is a name"),
    ({"tanh": 1}, TypeError, "an activation is a name"),
])
def test_wrong_lengths_and_unknown_names_are_one_line_errors(activation, exc, phrase):
    with pytest.raises(exc) as info:
        bpgpu.MLP([6, 5, 4, 3], activation=activation)
    _one_line(info, phrase)


@pytest.mark.parametrize("activation,phrase", [
    (["tanh"], "must be a name or a list of 2 names"),
    (["tanh", 3], "must be a name or a list of 2 names"),
    (["tanh", "os.system"], "activation 'os.system', which this process does not know"),
])
def test_a_file_with_a_bad_activation_list_is_refused(tmp_path, activation, phrase):
    import safetensors.numpy

    path = tmp_path / "net.safetensors"
    bpgpu.MLP([6, 5, 4, 3], activation=["tanh", "relu"], seed=0).save(path)
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    meta["config"] = json.dumps({**json.loads(meta["config"]), "activation": activation})
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))
    with pytest.raises(bpgpu.ModelFileError) as info:
        bpgpu.load(path)
    _one_line(info, phrase)


# -- the estimators and the command line ---------------------------------------------------------

@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # a few epochs
def test_the_estimators_take_a_list_of_activations(registry):
    sk = pytest.importorskip("sklearn")
    from bpgpu.sklearn import BPClassifier, BPRegressor

    bpgpu.register(Softplus())
    clf = BPClassifier(hidden_layer_sizes=(5, 4), activation=["tanh", "softplus"], max_iter=2,
                       device="cpu", random_state=0).fit(X, Y)
    assert _names(clf.net_) == ["tanh", "softplus"]
    twin = sk.base.clone(clf)
    assert twin.get_params()["activation"] == ["tanh", "softplus"]
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    # a rule object as the parameter: clone deep-copies it, an equal rule to the registered one
    obj = sk.base.clone(BPClassifier(hidden_layer_sizes=(4,), activation=Softplus(), max_iter=1,
                                     device="cpu", random_state=0)).fit(X, Y)
    assert pickle.loads(pickle.dumps(obj)).net_.activation is activations.get("softplus")
    reg = BPRegressor(hidden_layer_sizes=(5,), activation=("tanh", "relu"), max_iter=1,
                      device="cpu")
    with pytest.raises(ValueError) as info:
        reg.fit(X, X[:, 0])
    _one_line(info, "activation lists 2 activations, but hidden_layer_sizes has 1 layer;")


def test_the_command_line_takes_one_activation_per_hidden_layer(tmp_path, capsys):
    from bpgpu.cli import main

    path = tmp_path / "mixed.safetensors"
    common = ["train", "--epochs", "1", "--device", "cpu", "--quiet"]
    assert main([*common, "--layers", "64,16,8,10", "--activation", "tanh,relu",
                 "--save", str(path)]) == 0
    assert _names(bpgpu.load(path)) == ["tanh", "relu"]
    assert main([*common, "--layers", "64,16,10", "--activation", "tanh,relu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("--activation names 2 activations, but layers 64,16,10 "
                                     "have 1 hidden layer") in err
    assert main([*common, "--layers", "64,16,8,10", "--activation", "tanh,swish"]) == 2
    assert "unknown activation 'swish'" in capsys.readouterr().err
