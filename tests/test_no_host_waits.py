"""No host wait inside an epoch: training takes no data-dependent path on any backend.

A data-dependent path — boolean-mask indexing, ``nonzero``, ``unique``, a device value read as a
Python number — makes a GPU library wait for the device: CuPy reads a mask's count back to the
host (``int(mask_scanned[-1])``), ``float(loss)`` copies the loss back. Each backend here is
wrapped so that its arrays refuse all of these while a network is built and trained through the
public API (``bpgpu.MLP(..., device=<backend>)``, ``net.fit``), except inside the backend's own
moves: ``backend.to_host`` (the one read per epoch) and ``backend.asarray`` of host data.

``numpy-cupy-routing`` runs NumPy through the functions array-api-compat's CuPy namespace takes
from its generic aliases (``clip`` among them, which assigns through boolean masks), so the CuPy
routing is held on the CPU too; ``cupy`` and ``torch-cuda`` make the libraries themselves refuse
to synchronize (``cupyx.allow_synchronize(False)``, ``torch.cuda.set_sync_debug_mode``).
"""

import contextlib
import copy
import importlib.util
import inspect
import math
import re
from pathlib import Path

import numpy as np
import pytest

import bpgpu


class HostWait(AssertionError):
    """A data-dependent operation or a host read of a device value during training."""


class Guard:
    """What the wrapped arrays refuse, and the backend moves through which reads are allowed."""

    def __init__(self):
        self.open = 0
        self.refused = []
        self.moves = {"to_host": 0, "to_device": 0}
        self.windows = []  # context managers that a library's own sync check needs lifted

    def refuse(self, what):
        if self.open:
            return
        self.refused.append(what)  # recorded too, in case some caller swallows the exception
        raise HostWait(f"{what} during training: a host wait inside the epoch")

    @contextlib.contextmanager
    def edge(self, kind):
        self.moves[kind] += 1
        self.open += 1
        try:
            with contextlib.ExitStack() as stack:
                for window in self.windows:
                    stack.enter_context(window())
                yield
        finally:
            self.open -= 1


GUARD = Guard()


def watched(backend, device_type=None):
    """A copy of ``backend`` whose host moves open the guard (and are counted); with
    ``device_type``, only arrays of that type are its device arrays (all others host data)."""
    base = type(backend)

    class Watched(base):
        def owns(self, x):
            return isinstance(x, device_type) if device_type else base.owns(self, x)

        def to_host(self, x):
            with GUARD.edge("to_host"):
                host = np.asarray(base.to_host(self, x))
            return host.view(np.ndarray) if type(host) is not np.ndarray else host

        def asarray(self, x, dtype=None):
            if self.owns(x):
                return base.asarray(self, x, dtype)
            with GUARD.edge("to_device"):
                return base.asarray(self, x, dtype)

    out = copy.copy(backend)
    out.__class__ = Watched
    return out


# -- NumPy: an ndarray subclass that refuses, and a namespace that returns it -------------------

def _is_mask(key):
    if isinstance(key, (bool, np.bool_)):
        return True
    if isinstance(key, np.ndarray):
        return key.dtype == np.bool_
    return isinstance(key, list) and any(_is_mask(k) for k in key)


def _check_index(key, what):
    if any(_is_mask(k) for k in (key if isinstance(key, tuple) else (key,))):
        GUARD.refuse(what)


class GuardedArray(np.ndarray):
    """NumPy data that behaves like device data: masks and Python-number reads are refused."""

    def __getitem__(self, key):
        _check_index(key, "boolean-mask indexing")
        out = super().__getitem__(key)
        return out if isinstance(out, np.ndarray) else np.asarray(out).view(GuardedArray)

    def __setitem__(self, key, value):
        _check_index(key, "boolean-mask assignment")
        super().__setitem__(key, value)

    def __array_function__(self, func, types, args, kwargs):
        one_arg_where = func is np.where and len(args) + len(kwargs) == 1
        if func in _NUMPY_DATA_DEPENDENT or one_arg_where:
            GUARD.refuse(f"numpy.{func.__name__}")
        return super().__array_function__(func, types, args, kwargs)


_NUMPY_DATA_DEPENDENT = {np.nonzero, np.flatnonzero, np.argwhere, np.extract, np.compress,
                         np.unique, np.unique_all, np.unique_counts, np.unique_inverse,
                         np.unique_values, np.repeat}
_READS = ("__float__", "__int__", "__bool__", "__index__", "__complex__", "__format__",
          "__str__", "__contains__", "item", "tolist", "tobytes", "nonzero")


def _refusing(name, method):
    def refused(self, *args, **kwargs):
        GUARD.refuse(f"{name}() of a device array")
        return method(self, *args, **kwargs)

    return refused


for _name in _READS:
    setattr(GuardedArray, _name, _refusing(_name, getattr(np.ndarray, _name)))


def _guarded(x):
    if isinstance(x, np.ndarray) and not isinstance(x, GuardedArray):
        return x.view(GuardedArray)
    if isinstance(x, np.generic):
        return np.asarray(x).view(GuardedArray)
    if isinstance(x, (tuple, list)) and not hasattr(x, "_fields"):
        return type(x)(_guarded(v) for v in x)
    return x


def _returning_guarded(fn):
    def call(*args, **kwargs):
        return _guarded(fn(*args, **kwargs))

    return call


def _cupy_routing():
    """``{name: function}`` that array-api-compat's CuPy namespace takes from its generic aliases
    (``name = get_xp(cp)(_aliases.name)`` in its source), bound to NumPy instead of CuPy."""
    from array_api_compat._internal import get_xp  # private: the binding compat itself uses
    from array_api_compat.common import _aliases

    folder = importlib.util.find_spec("array_api_compat").submodule_search_locations[0]
    source = Path(folder, "cupy", "_aliases.py").read_text()
    pairs = re.findall(r"^(\w+) = get_xp\(cp\)\(_aliases\.(\w+)\)$", source, re.M)
    return {name: get_xp(np)(getattr(_aliases, generic)) for name, generic in pairs
            if inspect.isfunction(getattr(_aliases, generic, None))}


@contextlib.contextmanager
def numpy_backend(cupy_routing=False):
    import array_api_compat.numpy as xp

    with pytest.MonkeyPatch.context() as mp:
        replaced = _cupy_routing() if cupy_routing else {}
        for name, fn in replaced.items():
            mp.setattr(xp, name, fn)
        for name, obj in list(vars(xp).items()):
            if callable(obj) and not isinstance(obj, type) and not inspect.ismodule(obj):
                mp.setattr(xp, name, _returning_guarded(obj))
        yield watched(bpgpu.get_backend("cpu"), GuardedArray), replaced


# -- array-api-strict: its own flags, and the Python-number reads refused ------------------------

@contextlib.contextmanager
def strict_backend():
    xp = pytest.importorskip("array_api_strict")
    array = type(xp.asarray(0.0))
    flags = xp.ArrayAPIStrictFlags(boolean_indexing=False, data_dependent_shapes=False)
    with flags, pytest.MonkeyPatch.context() as mp:
        for name in ("__float__", "__int__", "__bool__", "__index__", "__complex__",
                     "__dlpack__", "__array__"):
            if hasattr(array, name):
                mp.setattr(array, name, _refusing(name, getattr(array, name)))
        yield watched(bpgpu.get_backend("strict")), {}


# -- PyTorch: the ATen operations that depend on the data, and the host reads -------------------

@contextlib.contextmanager
def torch_backend(spec):
    torch = pytest.importorskip("torch")
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    backend = _usable(spec)
    aten = torch.ops.aten
    refused = {getattr(aten, n) for n in (
        "nonzero", "argwhere", "masked_select", "_local_scalar_dense", "is_nonzero", "_unique",
        "_unique2", "unique_dim", "unique_consecutive", "unique_dim_consecutive")
        if hasattr(aten, n)}
    indexing = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}
    reads = {torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.__array__}

    def by_mask(indices):
        return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8)
                   for i in indices)

    class Refusals(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            packet = func.overloadpacket
            if packet in refused or (packet is aten.repeat_interleave and
                                     isinstance(args[0], torch.Tensor) and len(args) > 1 and
                                     isinstance(args[1], torch.Tensor)):
                GUARD.refuse(f"aten.{packet.__name__}")
            if packet in indexing and by_mask(args[1]):
                GUARD.refuse(f"aten.{packet.__name__} with a boolean mask")
            return func(*args, **(kwargs or {}))

    class Reads(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in reads:
                GUARD.refuse(f"Tensor.{func.__name__}")
            return func(*args, **(kwargs or {}))

    with contextlib.ExitStack() as stack:
        if backend.is_gpu:
            stack.enter_context(_torch_sync_mode(torch, "error"))
            GUARD.windows.append(lambda: _torch_sync_mode(torch, "default"))
        stack.enter_context(Refusals())
        stack.enter_context(Reads())
        yield watched(backend), {}


@contextlib.contextmanager
def _torch_sync_mode(torch, mode):
    old = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode(mode)
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(old)


# -- CuPy: the library's own check for synchronization -------------------------------------------

@contextlib.contextmanager
def cupy_backend():
    backend = _usable("cuda")
    import cupyx

    GUARD.windows.append(lambda: cupyx.allow_synchronize(True))
    with cupyx.allow_synchronize(False):
        yield watched(backend), {}


def _usable(spec):
    try:
        return bpgpu.get_backend(spec)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(f"{spec} unavailable: {exc}")


BACKENDS = {
    "numpy": numpy_backend,
    "numpy-cupy-routing": lambda: numpy_backend(cupy_routing=True),
    "strict": strict_backend,
    "torch-cpu": lambda: torch_backend("torch:cpu"),
    "cupy": cupy_backend,
    "torch-cuda": lambda: torch_backend("torch:cuda"),
}
BACKEND_PARAMS = [pytest.param(name, id=name, marks=[pytest.mark.gpu] if name in
                               ("cupy", "torch-cuda") else []) for name in BACKENDS]


@pytest.fixture(params=BACKEND_PARAMS)
def guarded(request):
    """``(backend, functions replaced in its namespace)``, with the guard armed."""
    GUARD.__init__()
    with BACKENDS[request.param]() as pair:
        yield pair


# (hidden activation, output, loss, outputs, optimizer)
PAIRS = [
    pytest.param("logistic", "softmax", "cross_entropy", 3, "sgd", id="softmax-cross_entropy"),
    pytest.param("tanh", "logistic", "cross_entropy", 1, "momentum",
                 id="logistic-binary_cross_entropy"),
    pytest.param("relu", "identity", "sse", 2, "adam", id="identity-sse"),
    pytest.param("logistic", "identity", "mse", 2, "sgd", id="identity-mse"),
]


@pytest.mark.parametrize("hidden,output,loss,n_out,optimizer", PAIRS)
def test_training_takes_no_data_dependent_path(guarded, hidden, output, loss, n_out, optimizer):
    backend, _ = guarded
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5))
    y = rng.integers(0, max(n_out, 2), 64) if loss == "cross_entropy" else \
        rng.standard_normal((64, n_out))
    seen = []
    net = bpgpu.MLP([5, 6, n_out], hidden, output, loss, device=backend, seed=0)
    hist = net.fit(X, y, epochs=3, batch_size=16, lr=0.05, optimizer=optimizer,
                   callbacks=[lambda net, epoch, logs: seen.append(dict(GUARD.moves))])
    assert GUARD.refused == []
    assert len(seen) == 3 and all(math.isfinite(v) for v in hist["loss"])
    # Four steps an epoch; after the first epoch (which also moved the data), each epoch reads
    # the device once and moves at most its permutation to it.
    for before, after in zip(seen, seen[1:]):
        assert after["to_host"] - before["to_host"] == 1
        assert after["to_device"] - before["to_device"] <= 1


def test_the_guard_refuses_what_it_should(guarded):
    """The guard is not vacuous: each data-dependent operation is refused on its backend."""
    backend, replaced = guarded
    xp = backend.xp
    x = backend.asarray(np.array([[0.5, -1.0], [2.0, 0.0]]), "float32")
    refused = {
        "mask": lambda: x[x > 0],
        "mask assignment": lambda: x.__setitem__(x > 0, xp.zeros((), dtype=x.dtype)),
        "float": lambda: float(xp.sum(x)),
        "bool": lambda: bool(xp.all(x > 0)),
        "nonzero": lambda: xp.nonzero(x > 0),
        "unique": lambda: xp.unique_values(x),
    }
    if "clip" in replaced:  # the CuPy routing of clip, the old _floor's path
        refused["clip"] = lambda: xp.clip(x, 0.1, None)
    let_through = []
    for what, call in refused.items():
        try:
            call()
        except Exception:  # HostWait, or the library's own refusal
            continue
        let_through.append(what)
    assert let_through == []
    assert backend.to_host(xp.sum(x)).tolist() == pytest.approx(1.5)  # the allowed way to read
