"""The network API on every backend: initial weights, training modes, cross-backend agreement."""

import ast
import pathlib

import numpy as np
import pytest

import bpgpu
import bpgpu.optim

from .conftest import TOL, to_np

MATH_MODULES = ["activations", "losses", "network", "optim", "mlp", "training/__init__",
                "training/step", "training/epoch", "training/fit", "training/evaluate"]


@pytest.mark.parametrize("module", MATH_MODULES)
def test_math_modules_never_import_numpy(module):
    src = pathlib.Path(bpgpu.__file__).parent / f"{module}.py"
    for node in ast.walk(ast.parse(src.read_text())):
        if isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] != "numpy" for a in node.names), module
        if isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] != "numpy", module


def _data(n=48, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, k, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_same_initial_weights_everywhere(device, dtype):
    ref = bpgpu.MLP([6, 5, 3], device="cpu", dtype=dtype, seed=7)
    net = bpgpu.MLP([6, 5, 3], device=device, dtype=dtype, seed=7)
    for (W0, b0), (W1, b1) in zip(ref.weights, net.weights):
        assert np.array_equal(to_np(W0), to_np(W1)) and np.array_equal(to_np(b0), to_np(b1))
    other = bpgpu.MLP([6, 5, 3], device=device, dtype=dtype, seed=8)
    assert not np.array_equal(to_np(other.weights[0][0]), to_np(net.weights[0][0]))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_five_steps_agree_across_backends(device, dtype, optimizer):
    X, y = _data(n=40)
    nets = [bpgpu.MLP([6, 5, 3], device=d, dtype=dtype, seed=1) for d in ("cpu", device)]
    for net in nets:
        net.fit(X, y, epochs=1, batch_size=8, lr=0.05, optimizer=optimizer)  # 5 steps
    for (W0, b0), (W1, b1) in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(to_np(W1), to_np(W0), **TOL[dtype])
        np.testing.assert_allclose(to_np(b1), to_np(b0), **TOL[dtype])
    assert not np.allclose(to_np(nets[0].weights[0][0]),
                           to_np(bpgpu.MLP([6, 5, 3], dtype=dtype, seed=1).weights[0][0]))


def test_two_devices_side_by_side_in_one_process():
    X, y = _data()
    a = bpgpu.MLP([6, 5, 3], device="cpu", dtype="float64", seed=2)
    b = bpgpu.MLP([6, 5, 3], device="strict", dtype="float64", seed=2)
    for _ in range(3):  # interleaved: no global backend state may leak between them
        ha = a.fit(X, y, epochs=1, batch_size=16, lr=0.1)
        hb = b.fit(X, y, epochs=1, batch_size=16, lr=0.1)
        assert ha["loss"] == pytest.approx(hb["loss"], rel=1e-12)
    assert type(a.weights[0][0]).__module__.startswith("numpy")
    assert type(b.weights[0][0]).__module__.startswith("array_api_strict")
    np.testing.assert_allclose(to_np(a.weights[0][0]), to_np(b.weights[0][0]), rtol=1e-12)


class CountingSGD(bpgpu.optim.SGD):
    def __init__(self):
        super().__init__(lr=0.1)
        self.batch_rows = []

    def step(self, params, grads, state):
        self.batch_rows.append(None)
        return super().step(params, grads, state)


def test_batch_minibatch_online_step_counts(device):
    X, y = _data(n=12)
    steps, epochs_seen = {}, []
    for bs in ("full", 5, 1):
        net = bpgpu.MLP([6, 3], device=device, seed=0, fused=False)
        opt = CountingSGD()
        net.fit(X, y, epochs=2, batch_size=bs, optimizer=opt, compile="none",  # count each call
                callbacks=[lambda net, epoch, logs: epochs_seen.append(epoch)])
        steps[bs] = len(opt.batch_rows)
    assert steps == {"full": 2, 5: 6, 1: 24}  # per epoch: 1, ceil(12 / 5) = 3, 12
    assert epochs_seen == [1, 2] * 3


def test_history_and_validation(device):
    X, y = _data(n=60)
    net = bpgpu.MLP([6, 8, 3], device=device, seed=0)
    hist = net.fit(X[:40], y[:40], epochs=4, batch_size=10, lr=0.05, optimizer="adam",
                   validation_data=(X[40:], y[40:]))
    assert set(hist) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert all(len(v) == 4 for v in hist.values()) and hist["lr"] == [0.05] * 4
    assert hist["loss"][-1] < hist["loss"][0]
    assert net.history is hist
    ev = bpgpu.evaluate(net, X[40:], y[40:])
    assert ev["loss"] == pytest.approx(hist["val_loss"][-1], rel=1e-5)
    assert ev["accuracy"] == hist["val_accuracy"][-1]


def test_regression_history_has_no_accuracy(device):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    t = X @ np.array([[1.0], [-2.0], [0.5]])
    net = bpgpu.MLP([3, 1], activation="identity", loss="sse", device=device, seed=0)
    hist = net.fit(X, t, epochs=30, batch_size=10, lr=0.1)
    assert "accuracy" not in hist and hist["loss"][-1] < 1e-3


def test_shuffle_is_seeded_and_changes_the_path():
    X, y = _data()
    runs = []
    for shuffle, seed in ((True, 0), (True, 0), (False, 0), (True, 1)):
        net = bpgpu.MLP([6, 3], device="cpu", seed=0)
        net.shuffle_rng = bpgpu.MLP([6, 3], seed=seed).shuffle_rng
        net.fit(X, y, epochs=2, batch_size=8, lr=0.1, shuffle=shuffle)
        runs.append(to_np(net.weights[0][0]))
    assert np.array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2]) and not np.array_equal(runs[0], runs[3])


def test_to_moves_weights_and_keeps_settings(device):
    net = bpgpu.MLP([4, 3, 2], activation="tanh", device="cpu", dtype="float64", seed=5)
    moved = net.to(device)
    assert moved.device == bpgpu.get_backend(device).name
    assert (moved.sizes, moved.activation.name, moved.dtype_name) == ([4, 3, 2], "tanh",
                                                                       "float64")
    X = np.random.default_rng(0).standard_normal((3, 4))
    np.testing.assert_allclose(to_np(moved.predict(X)), net.predict(X, host=True), rtol=1e-12)


def test_inputs_in_the_nets_own_library_stay_put(device):
    net = bpgpu.MLP([4, 2], device=device, seed=0)
    X = net.backend.asarray(np.ones((3, 4)), "float32")
    out = net.predict(X)
    assert type(out) is type(X)
    assert to_np(net.predict([[1.0, 1.0, 1.0, 1.0]])).shape == (1, 2)


def test_set_weights_checks_shapes():
    net = bpgpu.MLP([4, 3, 2])
    with pytest.raises(ValueError, match=r"W\[0\] has shape \(3, 4\), expected \(4, 3\)"):
        net.set_weights([(np.zeros((3, 4)), np.zeros(3)), (np.zeros((3, 2)), np.zeros(2))])
    with pytest.raises(ValueError, match="needs 2"):
        net.set_weights([(np.zeros((4, 3)), np.zeros(3))])


def test_set_weights_copies_the_input():
    W = np.ones((2, 1))
    net = bpgpu.MLP([2, 1], activation="identity", loss="sse", bias=False, dtype="float64")
    net.set_weights([(W, None)])
    W[0, 0] = 5
    assert to_np(net.weights[0][0])[0, 0] == 1.0


def test_momentum_and_adam_follow_their_equations():
    X = np.array([[1.0, 2.0]])
    t = np.array([[1.0]])

    def net():
        n = bpgpu.MLP([2, 1], activation="identity", loss="sse", bias=False,
                      dtype="float64")
        n.set_weights([(np.zeros((2, 1)), None)])
        return n

    g = -X[0] * 1.0  # ∂E/∂w at w = 0: x (y − t)
    m = net()
    m.fit(X, t, epochs=2, batch_size="full", lr=0.1, optimizer="momentum", momentum=0.9)
    v1 = -0.1 * g
    w1 = v1
    g2 = X[0] * (X[0] @ w1 - 1.0)
    v2 = 0.9 * v1 - 0.1 * g2
    np.testing.assert_allclose(to_np(m.weights[0][0])[:, 0], w1 + v2, rtol=1e-12)
    a = net()
    a.fit(X, t, epochs=1, batch_size="full", lr=0.01, optimizer="adam")
    # Adam's first step is η · sign(g), up to ε.
    np.testing.assert_allclose(to_np(a.weights[0][0])[:, 0], -0.01 * np.sign(g), rtol=1e-6)


def test_a_trainer_keeps_training_the_net_after_set_weights():
    net = bpgpu.MLP([2, 1], activation="identity", loss="sse", bias=False, dtype="float64")
    tr = bpgpu.Trainer(net, "sgd", lr=0.1)
    net.set_weights([(np.zeros((2, 1)), None)])
    X, T = net.backend.asarray([[1.0, 1.0]], net.dtype), net.backend.asarray([[1.0]], net.dtype)
    tr.step(X, T)
    np.testing.assert_allclose(to_np(net.weights[0][0])[:, 0], [0.1, 0.1])


def test_softmax_over_one_output_is_refused():
    with pytest.raises(ValueError, match="softmax over one output is always 1"):
        bpgpu.MLP([2, 1], output="softmax")


def test_optimizer_object_with_options_beside_it_is_refused():
    with pytest.raises(TypeError, match="to the optimizer object itself"):
        bpgpu.MLP([2, 2]).fit([[0.0, 1.0]], [1], optimizer=bpgpu.optim.SGD(), lr=0.5)


def test_numpy_scalar_hyperparameters_work_on_every_backend(device):
    X, y = _data(n=10)
    net = bpgpu.MLP([6, 3], device=device, seed=0)
    net.fit(X, y, epochs=1, optimizer="momentum", lr=np.float32(0.1), momentum=np.float64(0.9))
    net.fit(X, y, epochs=1, optimizer="adam", beta1=np.float32(0.8))


def test_matched_deltas_equal_the_general_chain_rule(device):
    """Why δ = (y − t)/n at the output: f'(z)·∂E/∂y collapses to it for the matched pairs."""
    from bpgpu import activations, losses

    be = bpgpu.get_backend(device)
    rng = np.random.default_rng(0)
    for output in ("softmax", "logistic"):
        act = activations.get(output)
        loss = losses.for_output(losses.get("cross_entropy"), output)
        with be.context():
            y = act.forward(be.asarray(rng.standard_normal((5, 3)), "float64"))
            t = be.asarray(np.eye(3)[[0, 1, 2, 0, 1]], "float64")
            general = act.backward(y, loss.grad(y, t))
            np.testing.assert_allclose(to_np(general), to_np((y - t) / 5), rtol=1e-10,
                                       atol=1e-12)
