"""The eager step over buffers (bpgpu.packed): parameters, gradients and optimizer state as views
into one flat buffer each on backends that write in place, the optimizer's and the all-reduce's
calls per step independent of the network's depth, the same numbers as the per-array step, and
the public API (params, weights, set_weights, rollbacks, pickling) unchanged."""

import collections
import pickle
import sys
import types

import numpy as np
import pytest

import bpgpu
from bpgpu import optim, packed
from bpgpu.distributed import DataParallel
from bpgpu.training import Trainer

from .conftest import to_np

IN_PLACE = [pytest.param("cpu", id="numpy"), pytest.param("torch:cpu", id="torch-cpu"),
            pytest.param("torch:cuda", id="torch-cuda", marks=pytest.mark.gpu)]
SHALLOW, DEEP = [8, 6, 3], [8, 6, 5, 6, 5, 6, 3]  # 2 and 6 layers
OPTIMIZERS = [("sgd", {}), ("sgd", {"weight_decay": 1e-2}), ("momentum", {}),
              ("momentum", {"nesterov": True, "weight_decay": 1e-2}), ("adam", {}),
              ("adam", {"weight_decay": 1e-2}), ("adamw", {})]
UPDATE_PRIMITIVES = {"add_", "axpy_", "scale_axpy_", "scale_addcmul_", "addcdiv_sqrt_",
                     "add_scaled_", "scale_"}


def _backend(spec):
    try:
        return bpgpu.get_backend(spec)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(f"{spec} unavailable: {exc}")


def _batch(net, n=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, net.sizes[0]))
    return net.device_inputs(X), net.device_targets(rng.integers(0, net.sizes[-1], n), n)


class _Counting:
    """A backend's in-place primitives, counting every call by name."""

    def __init__(self, ops):
        self._ops, self.calls = ops, collections.Counter()

    def __getattr__(self, name):
        fn = getattr(self._ops, name)

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return fn(*args, **kwargs)

        return counted


def _update_calls(device, sizes, optimizer, options, plain=False):
    """How many calls of each update primitive one step makes (after a first step)."""
    net = bpgpu.MLP(sizes, device=device, seed=0)
    tr = Trainer(net, optimizer, lr=0.01, **options)
    X, T = _batch(net)
    tr.step(X, T)
    net.ops = counting = _Counting(net.ops)
    if plain:  # the per-array step, for contrast: a plain list is not a buffer
        tr.pure_step(list(net.params), tr.state, X, T)
    else:
        tr.step(X, T)
    return {k: v for k, v in counting.calls.items() if k in UPDATE_PRIMITIVES}


@pytest.mark.parametrize("device", IN_PLACE)
@pytest.mark.parametrize("optimizer,options", OPTIMIZERS)
def test_the_update_makes_as_many_calls_for_six_layers_as_for_two(device, optimizer, options):
    _backend(device)
    shallow = _update_calls(device, SHALLOW, optimizer, options)
    deep = _update_calls(device, DEEP, optimizer, options)
    assert shallow == deep
    # a few calls over the whole buffer, or over its two parts (weights, biases) where a decay
    # tells them apart: Nesterov with decay, the most, makes 9
    assert 1 <= sum(shallow.values()) <= 9
    # the per-array step, by contrast, grows with the layers: the count above means something
    assert sum(_update_calls(device, DEEP, optimizer, options, plain=True).values()) > \
        3 * sum(_update_calls(device, SHALLOW, optimizer, options, plain=True).values()) // 2


class _Comm:
    """One rank of a communicator: Allreduce records the buffers it is given."""

    def __init__(self):
        self.buffers = []

    def Allreduce(self, where, buf, op):
        self.buffers.append(buf)


def _data_parallel(backend):
    par = object.__new__(DataParallel)
    par.comm, par.backend, par.rank, par.size = _Comm(), backend, 0, 1
    par._nccl, par.path = None, "mpi-host"
    return par


@pytest.mark.parametrize("sizes", [SHALLOW, DEEP])
def test_the_all_reduce_sums_the_gradient_buffer_as_it_stands(sizes, monkeypatch):
    mpi4py = types.ModuleType("mpi4py")  # what the host path reads of it; no MPI needed
    mpi4py.MPI = types.SimpleNamespace(IN_PLACE=object(), SUM=object())
    monkeypatch.setitem(sys.modules, "mpi4py", mpi4py)
    net = bpgpu.MLP(sizes, device="cpu", seed=0)
    par = _data_parallel(net.backend)
    tr = Trainer(net, "sgd", lr=0.1, parallel=par)
    ref = bpgpu.MLP(sizes, device="cpu", seed=0)
    X, T = _batch(net)
    for _ in range(3):
        tr.step(X, T)
        Trainer(ref, "sgd", lr=0.1).step(X, T)
    assert len(par.comm.buffers) == 3  # one all-reduce per step, whatever the depth
    n_params = sum(p.size for p in net.params)
    for buf in par.comm.buffers:  # the trainer's own buffer (and the row count), not a copy
        assert buf.shape == (n_params + 1,) and np.shares_memory(buf, tr._grads.flat)
    for a, b in zip(net.params, ref.params):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", IN_PLACE)
@pytest.mark.parametrize("optimizer,options", OPTIMIZERS)
def test_the_buffered_step_gives_the_per_array_steps_numbers(device, optimizer, options):
    _backend(device)
    nets = [bpgpu.MLP(DEEP, "tanh", device=device, seed=3) for _ in range(2)]
    trainers = [Trainer(n, optimizer, lr=0.05, **options) for n in nets]
    for k in range(4):
        X, T = _batch(nets[0], seed=k)
        trainers[0].step(X, T)
        params, trainers[1].state, _ = trainers[1].pure_step(list(nets[1].params),
                                                            trainers[1].state, X, T)
        nets[1].replace_params(params)
    assert packed.is_packed(nets[0].params)
    assert all(not packed.is_packed(v) for v in trainers[1].state.values())
    # NumPy's elementwise loops round the same wherever an element sits: the same numbers. Some
    # of PyTorch's fuse a multiply-add in their vector lanes but not in the remainder, so an
    # element's last bit may depend on where it sits in the array.
    same = (np.testing.assert_array_equal if device == "cpu" else  # (and cuBLAS its own way)
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8))
    for a, b in zip(nets[0].params, nets[1].params):
        same(to_np(a), to_np(b))
    for key, value in trainers[0].state.items():
        if isinstance(value, list):
            assert packed.is_packed(value)
            for a, b in zip(value, trainers[1].state[key]):
                same(to_np(a), to_np(b))


@pytest.mark.parametrize("device", IN_PLACE)
def test_parameters_are_views_into_one_buffer_weights_first(device):
    _backend(device)
    net = bpgpu.MLP([4, 3, 2], device=device, seed=0)
    params = net.params
    assert packed.is_packed(params) and params is not net.params  # a new list each time
    assert [tuple(p.shape) for p in params] == [(4, 3), (3,), (3, 2), (2,)]
    flat = to_np(params.flat)
    want = np.concatenate([to_np(p).ravel() for p in (params[0], params[2], params[1],
                                                      params[3])])
    np.testing.assert_array_equal(flat, want)
    assert params.n_weights == 12 + 6
    X, T = _batch(net)
    before = to_np(params[0]).copy()
    Trainer(net, "sgd", lr=0.5).step(X, T)
    assert not np.array_equal(to_np(params[0]), before)  # trained in place, through the views
    np.testing.assert_array_equal(to_np(net.weights[0][0]), to_np(params[0]))


@pytest.mark.parametrize("device", ["strict", "jax:cpu"])
def test_devices_that_do_not_write_in_place_keep_plain_lists(device):
    _backend(device)
    net = bpgpu.MLP([4, 3, 2], device=device)
    assert type(net.params) is list
    assert type(bpgpu.MLP([4, 3, 2], device="cpu", fused=False).params) is list


def test_a_changed_list_is_no_longer_a_buffer_and_pickles_as_a_list():
    net = bpgpu.MLP([4, 3, 2], device="cpu")  # (the default device may be another)
    for change in (lambda p: p.__setitem__(0, p[0] * 2), lambda p: p.append(p[0]),
                   lambda p: p.pop(), lambda p: p.reverse(), lambda p: p.extend([]),
                   lambda p: p.__delitem__(0), lambda p: p.sort(key=id)):
        params = net.params
        change(params)
        assert not packed.is_packed(params)
    params = net.params
    again = pickle.loads(pickle.dumps(params))
    assert type(again) is list and all(np.array_equal(a, b) for a, b in zip(again, params))
    # a changed list given to the step is stepped as the per-array list it now is
    X, T = _batch(net)
    tr = Trainer(net, "momentum", lr=0.1)
    changed = net.params
    changed[0] = changed[0].copy()
    params, state, _ = tr.pure_step(changed, tr.state, X, T)
    assert not packed.is_packed(params) and not packed.is_packed(state["velocity"])


def test_foreign_arrays_are_copied_into_a_new_buffer():
    net = bpgpu.MLP([4, 3, 2], device="cpu")  # (the default device may be another)
    mine = [p.copy() * 0 + 0.25 for p in net.params]
    net.replace_params(mine)
    assert packed.is_packed(net.params)
    X, T = _batch(net)
    Trainer(net, "sgd", lr=0.5).step(X, T)
    assert all(np.all(p == 0.25) for p in mine)  # trained in the network's buffer, not in these
    net.set_weights([(np.ones((4, 3)), np.zeros(3)), (np.ones((3, 2)), np.zeros(2))])
    assert packed.is_packed(net.params) and np.all(net.params[0] == 1)


def test_a_rolled_back_epoch_trains_on_in_its_buffers():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 4)) * 50, rng.integers(0, 2, 40)
    net = bpgpu.MLP([4, 8, 2], "relu", loss="sse", device="cpu", seed=0)
    net.fit(X, y, epochs=1, lr=1e-4, optimizer="momentum")
    good = [p.copy() for p in net.params]
    with pytest.raises(bpgpu.TrainingDiverged):
        net.fit(X, y, epochs=3, lr=1e6, optimizer="momentum")
    for a, b in zip(net.params, good):
        np.testing.assert_array_equal(a, b)
    assert packed.is_packed(net.params)
    net.fit(X, y, epochs=1, lr=1e-4, optimizer="momentum")
    assert packed.is_packed(net.params) and all(np.isfinite(p).all() for p in net.params)


def test_a_custom_optimizer_sees_one_array_per_parameter():
    seen = []

    class Clipped(optim.SGD):
        def step_(self, params, grads, state, ops):
            seen.append([tuple(p.shape) for p in params])
            return super().step_(params, grads, state, ops)

    net = bpgpu.MLP([4, 3, 2], device="cpu")  # (the default device may be another)
    X, T = _batch(net)
    Trainer(net, Clipped(lr=0.1)).step(X, T)
    assert seen == [[(4, 3), (3,), (3, 2), (2,)]]
    assert not optim.updates_buffers(Clipped) and optim.updates_buffers(optim.AdamW)


@pytest.mark.parametrize("device", IN_PLACE)
def test_a_trainer_pickles_and_copies_and_steps_on(device):
    import copy

    _backend(device)
    net = bpgpu.MLP([4, 3, 2], device=device, seed=0)
    tr = Trainer(net, "adam", lr=0.01)
    X, T = _batch(net)
    tr.step(X, T)
    for other in (pickle.loads(pickle.dumps(tr)), copy.deepcopy(tr)):
        Xo, To = _batch(other.net)
        other.step(Xo, To)
        tr_copy = copy.deepcopy(tr)  # the original, one step behind, then the same step
        tr_copy.step(*_batch(tr_copy.net))
        for a, b in zip(other.net.params, tr_copy.net.params):
            np.testing.assert_array_equal(to_np(a), to_np(b))
        assert packed.is_packed(other.net.params)


def test_a_custom_optimizer_may_keep_last_steps_gradients():
    class Previous(optim.SGD):  # steps on the mean of this step's and the last step's gradients
        def init_state(self, params):
            return {"lr": self.lr, "last": None}

        def step(self, params, grads, state):
            last = state["last"] or grads
            new = [p - self.lr * (g + h) / 2 for p, g, h in zip(params, grads, last)]
            return new, {**state, "last": grads}

    nets = [bpgpu.MLP([4, 3, 2], device="cpu", seed=0, fused=f) for f in (True, False)]
    for net in nets:
        tr = Trainer(net, Previous(lr=0.3))
        for k in range(4):
            tr.step(*_batch(net, seed=k))
    for a, b in zip(*(n.params for n in nets)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_an_optimizer_subclass_with_its_own_decay_steps_per_array():
    class FirstLayerOnly(optim.SGD):  # decays the first weight matrix alone
        def decay_(self, params, grads, lr, ops):
            return params, [ops.add_scaled_(grads[0], self.weight_decay, params[0]), *grads[1:]]

        def decay(self, params, grads, lr):
            return params, [grads[0] + self.weight_decay * params[0], *grads[1:]]

    nets = [bpgpu.MLP([4, 3, 3, 2], device="cpu", seed=0, fused=f) for f in (True, False)]
    for net in nets:
        tr = Trainer(net, FirstLayerOnly(lr=0.3, weight_decay=0.5))
        for k in range(3):
            tr.step(*_batch(net, seed=k))
    assert not optim.updates_buffers(FirstLayerOnly)
    for a, b in zip(*(n.params for n in nets)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
