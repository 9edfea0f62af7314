"""One path for a network's state: pickling, copying, ``to``, and safetensors files read by the
ecosystem's own readers, on every backend the run has."""

import copy
import pickle
import warnings

import numpy as np
import pytest
import safetensors.numpy

import bpgpu
from bpgpu import state

from .conftest import to_np

X = np.random.default_rng(0).standard_normal((24, 6))
Y = np.arange(24) % 3


def _trained(device, dtype="float64", **kw):
    net = bpgpu.MLP([6, 5, 3], device=device, dtype=dtype, seed=4, **kw)
    net.fit(X, Y, epochs=2, batch_size=8, lr=0.05, optimizer="momentum")
    return net


def _same_weights(a, b):
    return all(np.array_equal(to_np(Wa), to_np(Wb)) and np.array_equal(to_np(ba), to_np(bb))
               for (Wa, ba), (Wb, bb) in zip(a.weights, b.weights))


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_network_pickles_and_copies_onto_its_device(device, how):
    net = _trained(device, fused=False)
    twin = pickle.loads(pickle.dumps(net)) if how == "pickle" else copy.deepcopy(net)
    assert type(twin) is bpgpu.MLP and twin.device == net.device and twin.fused is False
    assert type(twin.weights[0][0]) is type(net.weights[0][0])
    assert _same_weights(twin, net)
    assert twin.history == net.history and twin.history is not net.history
    np.testing.assert_array_equal(to_np(twin.predict(X)), to_np(net.predict(X)))


@pytest.mark.parametrize("how", [copy.deepcopy, lambda n: pickle.loads(pickle.dumps(n))])
def test_a_copy_trains_independently_and_like_the_original(device, how):
    net = _trained(device)
    before = [to_np(W).copy() for W, _ in net.weights]
    twin = how(net)
    twin.fit(X, Y, epochs=3, batch_size=8, lr=0.05, optimizer="adam")  # on JAX: donated buffers
    assert all(np.array_equal(to_np(W), w) for (W, _), w in zip(net.weights, before))
    net.fit(X, Y, epochs=3, batch_size=8, lr=0.05, optimizer="adam")  # the same shuffling stream
    assert _same_weights(twin, net)


def test_the_pickle_holds_host_arrays_and_the_device_spec():
    net = _trained("cpu")
    rebuild, (cls, st, device) = net.__reduce__()
    assert rebuild is state.rebuild and cls is bpgpu.MLP and device == "cpu"
    assert all(type(a) is np.ndarray for a in st["arrays"].values())
    velocities = [f"opt.velocity.{i}" for i in range(4)]  # the fit's optimizer state
    assert sorted(st["arrays"]) == ["W0", "W1", "b0", "b1", *velocities]
    assert st["config"] == {"sizes": [6, 5, 3], "activation": "logistic", "output": "softmax",
                            "loss": "cross_entropy", "bias": True, "dtype": "float64",
                            "seed": 4, "fused": True, "classes": None}
    assert st["optimizer"]["name"] == "momentum"
    assert st["data"] == {"transform": None, "target_transform": None, "split": None}
    st["arrays"]["W0"][0, 0] = 99.0  # host copies: writing into them leaves the network alone
    assert to_np(net.weights[0][0])[0, 0] != 99.0


def test_unpickling_where_the_device_is_missing_falls_back_to_cpu():
    net = _trained("cpu")
    rebuild, (cls, st, _) = net.__reduce__()
    with pytest.warns(UserWarning, match="'cuda:99', which is not usable here"):
        moved = rebuild(cls, st, "cuda:99")
    assert moved.device == "cpu" and _same_weights(moved, net)


def test_to_is_the_same_state_on_another_device(device):
    net = _trained("cpu")
    moved = net.to(device)
    assert moved.device == bpgpu.get_backend(device).name and moved.history == net.history
    np.testing.assert_allclose(to_np(moved.predict(X)), net.predict(X, host=True), rtol=1e-12)


def test_a_saved_model_is_the_networks_arrays_for_safetensors_readers(device, tmp_path):
    net = _trained(device, dtype="float32")
    path = tmp_path / "m.safetensors"
    net.save(path)
    arrays = safetensors.numpy.load_file(path)
    # The parameters, and the optimizer state that a later fit continues.
    assert sorted(arrays) == ["W0", "W1", "b0", "b1", *(f"opt.velocity.{i}" for i in range(4))]
    for i, (W, b) in enumerate(net.weights):
        assert arrays[f"W{i}"].dtype == np.float32
        np.testing.assert_array_equal(arrays[f"W{i}"], to_np(W))
        np.testing.assert_array_equal(arrays[f"b{i}"], to_np(b))
    loaded = bpgpu.load(path, device=device)
    np.testing.assert_array_equal(to_np(loaded.predict(X)), to_np(net.predict(X)))
    assert loaded.history == net.history


def test_pytorch_reads_a_saved_model_with_one_call(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    net = _trained("cpu", dtype="float32")
    net.save(tmp_path / "m.safetensors")
    tensors = load_file(tmp_path / "m.safetensors")
    layer = torch.nn.Linear(6, 5)  # a PyTorch layer holds W transposed: weight is (out, in)
    with torch.no_grad():
        layer.weight.copy_(tensors["W0"].T)
        layer.bias.copy_(tensors["b0"])
    hidden = torch.sigmoid(layer(torch.asarray(X, dtype=torch.float32)))
    np.testing.assert_allclose(hidden.detach().numpy(), to_np(net.forward(X)[1]), rtol=1e-6,
                               atol=1e-7)


def test_a_checkpoint_holds_the_optimizer_state_for_any_reader(tmp_path):
    net = bpgpu.MLP([6, 5, 3], dtype="float64", seed=1)
    net.fit(X, Y, epochs=2, batch_size=8, optimizer="adam", checkpoint=tmp_path / "ck.safetensors")
    arrays = safetensors.numpy.load_file(tmp_path / "ck.safetensors")
    assert sorted(arrays) == sorted(["W0", "W1", "b0", "b1", *(f"opt.{k}.{i}" for k in "mv"
                                                               for i in range(4))])
    assert arrays["opt.m.0"].shape == (6, 5) and np.any(arrays["opt.v.3"] > 0)


def test_a_jax_network_pickles_after_compiled_training():
    try:
        net = bpgpu.MLP([6, 5, 3], device="jax:cpu", seed=0)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    net.fit(X, Y, epochs=2, batch_size=8, compile="epoch")  # parameters donated every epoch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin = pickle.loads(pickle.dumps(net))
    twin.fit(X, Y, epochs=1, batch_size=8, compile="epoch")
    net.fit(X, Y, epochs=1, batch_size=8, compile="epoch")
    np.testing.assert_allclose(to_np(twin.weights[0][0]), to_np(net.weights[0][0]), rtol=1e-6)
