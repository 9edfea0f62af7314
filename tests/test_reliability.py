"""Bad input, divergence, interrupted runs and hostile model files: clear errors, nothing lost."""

import copy
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import safetensors.numpy
from safetensors import safe_open

import bpgpu
import bpgpu.state

from .conftest import to_np

X4 = np.random.default_rng(0).standard_normal((10, 4))
Y3 = np.arange(10) % 3


def _net(**kw):
    return bpgpu.MLP([4, 5, 3], **{"seed": 0, **kw})


def _with(a, idx, value):
    a = a.astype(float).copy()
    a[idx] = value
    return a


# (what is called, expected exception, a phrase the message must contain)
BAD_INPUTS = [
    ("fit NaN in X", lambda: _net().fit(_with(X4, (2, 1), np.nan), Y3), ValueError,
     "X contains NaN or infinity (first at row 2, column 1)"),
    ("fit inf in X", lambda: _net().fit(_with(X4, (0, 0), np.inf), Y3), ValueError,
     "X contains NaN or infinity"),
    ("fit NaN in targets", lambda: _net().fit(X4, np.full((10, 3), np.nan)), ValueError,
     "y contains NaN or infinity"),
    ("rows differ", lambda: _net().fit(X4, Y3[:7]), ValueError, "y has 7 rows but X has 10"),
    ("feature count", lambda: _net().fit(X4[:, :3], Y3), ValueError,
     "X has 3 features per row, but the network's first layer expects 4"),
    ("label too large", lambda: _net().fit(X4, Y3 + 1), ValueError,
     "labels in [1, 3] but the network has 3 outputs"),
    ("negative label", lambda: _net().fit(X4, Y3 - 1), ValueError, "labels must lie in [0, 3)"),
    ("fractional labels", lambda: _net().fit(X4, Y3 + 0.5), ValueError, "holds fractions"),
    ("empty data", lambda: _net().fit(X4[:0], Y3[:0]), ValueError, "X is empty (0 samples)"),
    ("text data", lambda: _net().fit(np.array([["a"] * 4] * 10), Y3), TypeError,
     "X must hold numbers, found dtype <U1"),
    ("object data", lambda: _net().fit(np.array([[{}] * 4] * 10, dtype=object), Y3), TypeError,
     "X must hold numbers"),
    ("3-D X", lambda: _net().fit(X4[None], Y3), ValueError, "X must be 2-D"),
    ("targets width", lambda: _net().fit(X4, np.zeros((10, 2))), ValueError,
     "y has 2 columns but the network has 3 outputs"),
    ("batch size 0", lambda: _net().fit(X4, Y3, batch_size=0), ValueError,
     "batch_size must be a whole number ≥ 1 or 'full', got 0"),
    ("batch size -3", lambda: _net().fit(X4, Y3, batch_size=-3), ValueError, "batch_size"),
    ("lr zero", lambda: _net().fit(X4, Y3, lr=0), ValueError,
     "lr (the learning rate η) must be a finite number > 0, got 0"),
    ("lr negative", lambda: _net().fit(X4, Y3, lr=-0.1), ValueError, "learning rate"),
    ("lr nan", lambda: _net().fit(X4, Y3, lr=float("nan")), ValueError, "finite number > 0"),
    ("lr inf", lambda: _net().fit(X4, Y3, lr=float("inf")), ValueError, "finite number > 0"),
    ("epochs negative", lambda: _net().fit(X4, Y3, epochs=-1), ValueError, "epochs"),
    ("checkpoint_every 0", lambda: _net().fit(X4, Y3, checkpoint_every=0), ValueError,
     "checkpoint_every"),
    ("bad validation_data", lambda: _net().fit(X4, Y3, validation_data=X4), ValueError,
     "validation_data must be a pair"),
    ("validation width", lambda: _net().fit(X4, Y3, validation_data=(X4[:, :2], Y3)), ValueError,
     "X_val has 2 features"),
    ("layer size 0", lambda: bpgpu.MLP([4, 0, 3]), ValueError, "each ≥ 1"),
    ("one layer only", lambda: bpgpu.MLP([4]), ValueError, "at least an input and an output"),
    ("sizes not numbers", lambda: bpgpu.MLP(["a", 3]), ValueError, "list of layer widths"),
    ("unknown activation", lambda: bpgpu.MLP([4, 3], activation="swish"), ValueError,
     "unknown activation 'swish'; choose one of: identity, logistic, relu, softmax, tanh"),
    ("unknown loss", lambda: bpgpu.MLP([4, 3], loss="hinge"), ValueError,
     "unknown loss 'hinge'; choose one of: cross_entropy, mse, sse"),
    ("unknown optimizer", lambda: _net().fit(X4, Y3, optimizer="rmsprop"), ValueError,
     "unknown optimizer 'rmsprop'; choose one of: sgd, momentum, adam"),
    ("unknown optimizer option", lambda: _net().fit(X4, Y3, optimizer="sgd", momentum=0.9),
     TypeError, "optimizer 'sgd' takes lr, weight_decay; got momentum"),
    ("cross-entropy on identity", lambda: bpgpu.MLP([4, 3], output="identity",
                                                    loss="cross_entropy"), ValueError,
     "loss 'cross_entropy' needs a probability output"),
    ("bad dtype", lambda: bpgpu.MLP([4, 3], dtype="float16"), ValueError,
     "dtype must be one of ('float32', 'float64')"),
    ("predict NaN", lambda: _net().predict(_with(X4, (1, 1), np.nan)), ValueError,
     "X contains NaN"),
    ("predict width", lambda: _net().predict(np.ones((2, 5))), ValueError,
     "X has 5 features per row"),
    ("gradients rows", lambda: _net().gradients(X4, Y3[:3]), ValueError,
     "y has 3 rows but X has 10"),
    ("gradients NaN target", lambda: _net().gradients(X4, _with(Y3, 0, np.nan)), ValueError,
     "y contains NaN"),
]


@pytest.mark.parametrize("call,exc,phrase", [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_a_clear_error(call, exc, phrase):
    with pytest.raises(exc) as info:
        call()
    assert phrase in str(info.value)
    assert "\n" not in str(info.value)


def test_numpy_scalars_are_accepted_as_settings(tmp_path):
    hist = _net().fit(X4, Y3, epochs=np.int64(2), batch_size=np.int32(4), lr=np.float32(0.1),
                      checkpoint=tmp_path / "ck.safetensors", checkpoint_every=np.int64(1))
    assert len(hist["loss"]) == 2


def test_softmax_with_sse_is_allowed_but_warns():
    with pytest.warns(UserWarning, match="cross_entropy' is the matched loss"):
        bpgpu.MLP([4, 3], output="softmax", loss="sse")


# -- divergence ---------------------------------------------------------------------------------

def _diverging():
    rng = np.random.default_rng(0)
    X = rng.integers(1, 7, (20, 3)).astype(float)
    return X, X @ np.array([50.0, 150.0, 100.0])


def test_divergence_stops_with_the_last_finite_weights(device, tmp_path):
    X, t = _diverging()
    net = bpgpu.MLP([3, 1], activation="identity", loss="sse", bias=False, device=device,
                    dtype="float64")
    seen = []
    with pytest.raises(bpgpu.TrainingDiverged, match="lower the learning rate") as info:
        net.fit(X, t, epochs=100, batch_size=4, lr=1.0, optimizer="sgd",
                callbacks=[lambda n, e, logs: seen.append(to_np(n.weights[0][0]).copy())])
    assert info.value.lr == 1.0
    W = to_np(net.weights[0][0])
    assert np.all(np.isfinite(W))
    assert np.array_equal(W, seen[-1])  # the weights after the last good epoch
    net.save(tmp_path / "ok.safetensors")  # finite weights save fine


def test_nan_weights_are_never_saved(tmp_path):
    net = bpgpu.MLP([3, 2], dtype="float64")
    good = tmp_path / "net.safetensors"
    net.save(good)
    before = good.read_bytes()
    W = to_np(net.weights[0][0]).copy()
    W[0, 0] = np.nan
    net.set_weights([(W, to_np(net.weights[0][1]))])
    with pytest.raises(ValueError, match="W0 contains NaN"):
        net.save(good)
    assert good.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.safetensors"]  # no temporary


# -- out of memory ------------------------------------------------------------------------------

def test_out_of_memory_names_the_batch_size(monkeypatch):
    net = _net()

    def no_memory(*args, **kwargs):
        raise MemoryError("mocked allocation failure")

    monkeypatch.setattr(net, "forward_pass", no_memory)
    with pytest.raises(bpgpu.DeviceOutOfMemory, match="batch_size=8: lower the batch size"):
        net.fit(X4, Y3, batch_size=8)


@pytest.mark.gpu
@pytest.mark.parametrize("spec", ["cuda", "torch:cuda"])
def test_absurd_batch_on_the_gpu_is_a_clear_error(spec):
    try:
        net = bpgpu.MLP([4096, 4096, 10], device=spec)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    # Rows enough that the first layer's output alone (rows × 4096 float32) is 1.5 times the
    # card: no allocator retry or cache release can make room for it, on a card of any size.
    rows = int(1.5 * net.backend.status().memory_bytes) // (4096 * 4) + 1
    X = net.xp.broadcast_to(net.backend.asarray(np.ones((1, 4096)), "float32"), (rows, 4096))
    try:
        with pytest.raises(bpgpu.DeviceOutOfMemory, match="the whole set"):
            net.fit(X, np.zeros(rows, dtype=np.int64), epochs=1, batch_size="full")
    finally:
        del X, net
        _release_gpu_memory(spec)


def _release_gpu_memory(spec):
    """Hand what the allocators keep cached back to the device, for the tests that follow."""
    import gc

    gc.collect()
    if spec.startswith("torch"):
        import torch

        torch.cuda.empty_cache()
    else:
        import cupy

        cupy.get_default_memory_pool().free_all_blocks()


LIBRARY_ALLOCATION_FAILURES = [
    # CuPy's CUBLASError: its message is the status name (cupy_backends/cuda/libs/cublas.pyx).
    ("cuda", type("CUBLASError", (RuntimeError,), {})("CUBLAS_STATUS_ALLOC_FAILED")),
    ("cuda", RuntimeError("cudaErrorMemoryAllocation: out of memory")),
    ("torch:cpu", RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling "
                               "`cublasCreate(handle)`")),
    ("torch:cpu", RuntimeError("CUDA error: out of memory")),
]


@pytest.mark.parametrize("spec,exc", LIBRARY_ALLOCATION_FAILURES)
def test_a_cuda_library_that_cannot_allocate_is_out_of_memory(spec, exc):
    backend = _backend_class(spec)
    assert backend.is_out_of_memory(exc)
    assert backend.is_out_of_memory(MemoryError("pool exhausted"))
    assert not backend.is_out_of_memory(RuntimeError("CUBLAS_STATUS_INVALID_VALUE"))
    assert not backend.is_out_of_memory(ValueError("bad shape"))


def _backend_class(spec):
    """A backend for ``spec``, or (CuPy, without a GPU) an instance of its class unconstructed:
    ``is_out_of_memory`` reads nothing from the device."""
    if spec == "cuda":
        from bpgpu.backends.cupy_backend import CupyBackend

        return object.__new__(CupyBackend)
    try:
        return bpgpu.get_backend(spec)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))


def test_a_cublas_allocation_failure_in_fit_names_the_batch_size():
    backend = _backend_class("torch:cpu")

    class NoWorkspace(type(backend)):
        failing = False

        def asarray(self, x, dtype=None):
            if self.failing:
                raise RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling "
                                   "`cublasCreate(handle)`")
            return super().asarray(x, dtype)

    failing = copy.copy(backend)
    failing.__class__ = NoWorkspace
    net = bpgpu.MLP([4, 5, 3], device=failing)
    failing.failing = True
    with pytest.raises(bpgpu.DeviceOutOfMemory, match="batch_size=8: lower the batch size"):
        net.fit(X4, Y3, batch_size=8)


# -- checkpoints and resume ---------------------------------------------------------------------

@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_resume_gives_bit_identical_weights_on_the_cpu(tmp_path, optimizer):
    X, y = np.random.default_rng(3).standard_normal((50, 4)), np.arange(50) % 3
    kw = dict(batch_size=7, lr=0.05, optimizer=optimizer)
    full = _net()
    h_full = full.fit(X, y, epochs=6, **kw)
    ck = tmp_path / "ck.safetensors"
    first = _net()
    first.fit(X, y, epochs=4, checkpoint=ck, checkpoint_every=2, **kw)  # "killed" after 4
    resumed = _net(seed=0)
    h_res = resumed.fit(X, y, epochs=6, resume=ck, **kw)
    for (Wa, ba), (Wb, bb) in zip(full.weights, resumed.weights):
        assert np.array_equal(Wa, Wb) and np.array_equal(ba, bb)
    assert h_res["loss"] == h_full["loss"]
    assert bpgpu.load(ck).sizes == [4, 5, 3]  # a checkpoint is also a model file


def test_resume_refuses_a_different_network_or_optimizer(tmp_path):
    ck = tmp_path / "ck.safetensors"
    _net().fit(X4, Y3, epochs=1, checkpoint=ck, optimizer="sgd")
    with pytest.raises(ValueError, match="checkpoint of a different network"):
        bpgpu.MLP([4, 6, 3]).fit(X4, Y3, epochs=2, resume=ck)
    with pytest.raises(ValueError, match="optimizer 'sgd', not 'adam'"):
        _net().fit(X4, Y3, epochs=2, resume=ck, optimizer="adam")
    with pytest.raises(ValueError, match="same batch size"):
        _net().fit(X4, Y3, epochs=2, resume=ck, batch_size=5, optimizer="sgd")
    model = tmp_path / "model.safetensors"
    _net().save(model)
    with pytest.raises(bpgpu.ModelFileError, match="not a checkpoint"):
        _net().fit(X4, Y3, epochs=2, resume=model)


SAVER = """
import sys, bpgpu
net = bpgpu.MLP([1500, 1500, 10], dtype="float64", seed=int(sys.argv[2]))
print("ready", flush=True)
while True:
    net.save(sys.argv[1])
"""


def test_sigkill_during_save_leaves_the_previous_file_intact(tmp_path):
    path = tmp_path / "net.safetensors"
    bpgpu.MLP([1500, 1500, 10], dtype="float64", seed=1).save(path)
    interrupted = 0
    for delay in (0.15, 0.3, 0.45, 0.6, 0.75):
        with subprocess.Popen([sys.executable, "-c", SAVER, str(path), "2"],
                              stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        net = bpgpu.load(path)  # the old model or a complete new one, never a broken file
        assert net.sizes == [1500, 1500, 10]
        for leftover in tmp_path.glob(".net.safetensors.*.tmp"):  # a save cut off midway
            interrupted += 1
            os.unlink(leftover)
    assert interrupted >= 1  # at least one kill landed inside a save


# -- model files from strangers: safetensors, the format bpgpu writes ---------------------------

def _st_rewrite(path, meta_change=None, tensors_change=None):
    """Rewrite a bpgpu safetensors file with its metadata and/or tensors changed."""
    with safe_open(str(path), framework="numpy") as f:
        meta = f.metadata()
        names = f.keys()
        tensors = {k: f.get_tensor(k) for k in names}
    if meta_change:
        meta_change(meta)
    if tensors_change:
        tensors_change(tensors)
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))


def _config(**changes):
    def change(meta):
        meta["config"] = json.dumps({**json.loads(meta["config"]), **changes})
    return change


def _flip_last_byte(path):
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01  # the last byte of the last tensor's data
    path.write_bytes(bytes(raw))


HOSTILE_SAFETENSORS = [
    ("zeros", lambda p: p.write_bytes(b"\x00" * 300), "damaged or not a bpgpu model file"),
    ("empty file", lambda p: p.write_bytes(b""), "damaged or not a bpgpu model file"),
    ("truncated data", lambda p: p.write_bytes(p.read_bytes()[:-8]), "damaged"),
    ("truncated header", lambda p: p.write_bytes(p.read_bytes()[:100]), "header claims"),
    ("huge header claim", lambda p: p.write_bytes((2**40).to_bytes(8, "little") + b"{}"),
     "header claims 1,099,511,627,776 bytes"),
    ("plain safetensors", lambda p: p.write_bytes(safetensors.numpy.save(
        {"W0": np.zeros((4, 5), np.float32)})), "no bpgpu metadata"),
    ("foreign format", lambda p: _st_rewrite(p, lambda m: m.update(format="keras")),
     "wrong format tag"),
    ("future version", lambda p: _st_rewrite(p, lambda m: m.update(version="99")),
     "format version 99 is newer"),
    ("no config", lambda p: _st_rewrite(p, lambda m: m.pop("config")), "has no config"),
    ("bad json", lambda p: _st_rewrite(p, lambda m: m.update(config="{not json")),
     "not valid JSON"),
    ("missing array", lambda p: _st_rewrite(p, tensors_change=lambda t: t.pop("W1")),
     "array 'W1' is missing"),
    ("extra array", lambda p: _st_rewrite(p, tensors_change=lambda t: t.update(
        evil=np.zeros(3, np.float32))), "unexpected arrays ['evil']"),
    ("shape lie", lambda p: _st_rewrite(p, tensors_change=lambda t: t.update(
        W0=np.zeros((5, 5), np.float32))), "need [4, 5] F32"),
    ("dtype lie", lambda p: _st_rewrite(p, tensors_change=lambda t: t.update(
        W0=np.zeros((4, 5), np.float64))), "array 'W0' is [4, 5] F64"),
    ("sizes lie", lambda p: _st_rewrite(p, _config(sizes=[4, 6, 3])), "need [4, 6]"),
    ("bad sizes", lambda p: _st_rewrite(p, _config(sizes="big")), "bad layer sizes"),
    ("oversized sizes", lambda p: _st_rewrite(p, _config(sizes=[4, 2**40, 3])),
     "bad layer sizes"),
    ("bad activation", lambda p: _st_rewrite(p, _config(activation="os.system")),
     "unknown activation"),
    ("flipped weight byte", _flip_last_byte, "CRC-32 does not match"),
    ("bad rng state", lambda p: _st_rewrite(p, lambda m: m.update(rng='{"bit_generator": 1}')),
     "do not describe a valid network"),
]


@pytest.mark.parametrize("damage,phrase", [h[1:] for h in HOSTILE_SAFETENSORS],
                         ids=[h[0] for h in HOSTILE_SAFETENSORS])
def test_hostile_safetensors_files_give_one_clear_error(tmp_path, damage, phrase):
    path = tmp_path / "net.safetensors"
    _net().save(path)
    damage(path)
    with pytest.raises(bpgpu.ModelFileError) as info:
        bpgpu.load(path)
    assert phrase in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_a_damaged_checkpoint_is_one_clear_error_on_resume(tmp_path):
    ck = tmp_path / "ck.safetensors"
    _net().fit(X4, Y3, epochs=1, checkpoint=ck, optimizer="adam")

    def lie(meta):
        opt = json.loads(meta["optimizer"])
        opt["lists"]["m"] = 1  # one moment for four parameters
        meta["optimizer"] = json.dumps(opt)
    _st_rewrite(ck, lie)
    with pytest.raises(bpgpu.ModelFileError, match="bad optimizer state") as info:
        _net().fit(X4, Y3, epochs=2, resume=ck, optimizer="adam")
    assert str(ck) in str(info.value)


def test_the_file_is_safetensors_whatever_the_suffix(tmp_path):
    net = _net(dtype="float64")
    net.save(tmp_path / "net.npz")
    arrays = safetensors.numpy.load_file(tmp_path / "net.npz")
    assert sorted(arrays) == ["W0", "W1", "b0", "b1"]
    for i, (W, b) in enumerate(net.weights):
        assert np.array_equal(arrays[f"W{i}"], to_np(W)) and np.array_equal(arrays[f"b{i}"],
                                                                            to_np(b))


# -- model files of bpgpu 0.1.0 (a zip of .npy plus meta.json): still read, and checked ----------

DATA = pathlib.Path(__file__).parent / "data"


def test_a_model_file_of_the_zip_format_predicts_what_it_did():
    """tests/data/legacy-*: written by bpgpu 0.1.0 itself (MLP([4, 5, 3], seed=0), two epochs of
    Adam on X4, Y3, batch 4, lr 0.1), with its predictions for X4."""
    net = bpgpu.load(DATA / "legacy-model.npz", device="cpu")
    assert np.array_equal(net.predict(X4, host=True), np.load(DATA / "legacy-predictions.npy"))


def test_a_checkpoint_of_the_zip_format_resumes_where_it_stopped(tmp_path):
    kw = dict(batch_size=4, lr=0.1, optimizer="adam")
    full = _net(device="cpu")  # where bpgpu 0.1.0 wrote the checkpoint
    h_full = full.fit(X4, Y3, epochs=4, **kw)
    resumed = _net(device="cpu")
    h_res = resumed.fit(X4, Y3, epochs=4, resume=DATA / "legacy-checkpoint.npz", **kw)
    # Since 0.4.0 NumPy's sums (the bias gradients, the softmax) run through BLAS and round
    # differently in the last bit from 0.1.0's, which wrote the checkpoint's first two epochs; a
    # state read wrongly (moments, step count, shuffling) would differ by far more.
    np.testing.assert_allclose(h_res["loss"], h_full["loss"], rtol=1e-6)
    for (Wa, ba), (Wb, bb) in zip(full.weights, resumed.weights):
        np.testing.assert_allclose(Wa, Wb, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ba, bb, rtol=1e-6, atol=1e-7)
    resumed.save(tmp_path / "converted.safetensors")  # converting is loading and saving
    converted = bpgpu.load(tmp_path / "converted.safetensors", device="cpu")
    assert np.array_equal(converted.predict(X4, host=True), resumed.predict(X4, host=True))


def _legacy_write(path, st):
    """Write state ``st`` in bpgpu 0.1.0's zip format (that release's writer, kept for tests)."""
    meta = {"format": "bpgpu-mlp", "version": 1,
            **{k: v for k, v in st["config"].items() if k != "fused"}}
    meta["arrays"] = {k: {"shape": list(a.shape), "dtype": a.dtype.str}
                      for k, a in st["arrays"].items()}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("meta.json", json.dumps(meta, indent=1))
        for name, a in st["arrays"].items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(a), allow_pickle=False)


def _legacy_save(net, path):
    _legacy_write(path, bpgpu.state.capture(net))


def _rewrite(path, meta_change=None, drop=None, add=None, compress=False):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["meta.json"])
    if meta_change:
        meta_change(meta)
    members["meta.json"] = json.dumps(meta).encode()
    for n in drop or ():
        members.pop(n)
    members.update(add or {})
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=mode) as zf:
        for n, data in members.items():
            zf.writestr(n, data)


def _npy_bytes(a, **kw):
    import io as _io

    buf = _io.BytesIO()
    np.save(buf, a, **kw)
    return buf.getvalue()


HOSTILE = [
    ("not a zip", lambda p: p.write_bytes(b"\x00" * 300), "damaged or not a bpgpu model file"),
    ("empty file", lambda p: p.write_bytes(b""), "damaged or not a bpgpu model file"),
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[:-500]), "damaged"),
    ("no metadata", lambda p: _rewrite(p, drop=["meta.json"]), "no meta.json inside"),
    ("foreign format", lambda p: _rewrite(p, lambda m: m.update(format="keras")),
     "wrong format tag"),
    ("future version", lambda p: _rewrite(p, lambda m: m.update(version=99)),
     "format version 99 is newer"),
    ("missing array", lambda p: _rewrite(p, drop=["W1.npy"]), "'W1' listed in the metadata is "
                                                              "missing"),
    ("shape lie", lambda p: _rewrite(p, lambda m: m["arrays"]["W0"].update(shape=[5, 5])),
     "'W0' should have shape [4, 5]"),
    ("sizes lie", lambda p: _rewrite(p, lambda m: m.update(sizes=[4, 6, 3])),
     "should have shape [4, 6]"),
    ("bad sizes", lambda p: _rewrite(p, lambda m: m.update(sizes="big")), "bad layer sizes"),
    ("oversized claim", lambda p: _rewrite(p, lambda m: m.update(sizes=[4, 2**31, 3]) or
                                           m["arrays"]["W0"].update(shape=[4, 2**31]) or
                                           m["arrays"]["b0"].update(shape=[2**31]) or
                                           m["arrays"]["W1"].update(shape=[2**31, 3])),
     "impossible size"),
    ("header disagrees", lambda p: _rewrite(p, add={"W0.npy": _npy_bytes(np.zeros((4, 5),
                                                                                np.float64))}),
     "the metadata says"),
    ("pickled object array", lambda p: _rewrite(p, lambda m: m["arrays"]["W0"].update(
        dtype="|O"), add={"W0.npy": _npy_bytes(np.array([[{}] * 5] * 4, dtype=object),
                                              allow_pickle=True)}), "non-numeric dtype"),
    ("compressed member", lambda p: _rewrite(p, compress=True), "stored compressed"),
    ("bad json", lambda p: _rewrite_raw_meta(p, b"{not json"), "not valid JSON"),
    ("bad activation", lambda p: _rewrite(p, lambda m: m.update(activation="os.system")),
     "unknown activation"),
]


def _rewrite_raw_meta(path, raw):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["meta.json"] = raw
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


@pytest.mark.parametrize("damage,phrase", [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_model_files_give_one_clear_error(tmp_path, damage, phrase):
    path = tmp_path / "net.npz"
    _legacy_save(_net(), path)
    damage(path)
    with pytest.raises(bpgpu.ModelFileError) as info:
        bpgpu.load(path)
    assert phrase in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_model_file():
    with pytest.raises(bpgpu.ModelFileError, match="no such file"):
        bpgpu.load("/no/such/model.safetensors")
