"""Hostile model and data files, each made here: bombs, lying headers, absurd metadata values and
non-finite weights behind correct checksums. Each ends in one line naming the file and what is
wrong, quickly and in little memory (the largest are measured in a subprocess)."""

import gzip
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from safetensors import safe_open

import bpgpu
from bpgpu.datasets import load as load_dataset
from bpgpu.datasets import read_npy
from bpgpu.datasets._mnist import read_idx
from bpgpu.errors import DatasetError

from .test_reliability import DATA, _legacy_write

X4 = np.random.default_rng(0).standard_normal((10, 4))
Y3 = np.arange(10) % 3
GiB = 1 << 30


def _refused(path, phrase, exc=bpgpu.ModelFileError, call=None):
    """``call(path)`` (default :func:`bpgpu.load`) raises one line naming the file and
    ``phrase``; returns the message."""
    with pytest.raises(exc) as info:
        (call or bpgpu.load)(path)
    message = str(info.value)
    assert str(path) in message and phrase in message, message
    assert "\n" not in message
    return message


# -- makers ---------------------------------------------------------------------------------------

def _deflate_spaces(total, chunk=1 << 20):
    """A raw DEFLATE stream of ``total`` spaces, ~1 KB per MiB: one compressed chunk repeated
    (a full flush resets the compressor, so each chunk compresses to the same bytes)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(b" " * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(b" " * chunk) + c.flush(zlib.Z_FULL_FLUSH) == block
    return block * (total // chunk) + c.flush()


def _zip_one(path, name, data, size, crc=0):
    """A zip archive of one DEFLATE member ``name`` whose headers state ``size`` bytes (true or
    not) and ``crc``, written by hand: zipfile would inflate-check nothing but also write no lie."""
    name = name.encode()
    sizes = (crc, len(data), size, len(name))
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, *sizes, 0) + name
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, *sizes, 0, 0, 0, 0,
                          0, 0) + name
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(central),
                      len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)


def _checkpoint(path):
    """A checkpoint with every metadata entry: Adam's state, history, input transform, split."""
    net = bpgpu.MLP([4, 5, 3], seed=0)
    net.split = {"dataset": "test", "rows": 10, "fraction": 0.2, "seed": 0, "fingerprint": "ab"}
    net.fit(X4, Y3, epochs=2, batch_size=4, optimizer="adam", standardize=True, checkpoint=path)
    return path


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("ck") / "ck.safetensors").read_bytes()


@pytest.fixture
def ck(tmp_path, checkpoint_bytes):
    path = tmp_path / "ck.safetensors"
    path.write_bytes(checkpoint_bytes)
    return path


def _tensors_and_meta(path):
    with safe_open(str(path), framework="numpy") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118


def _edit_meta(path, key, change):
    """Rewrite metadata entry ``key`` (JSON) through ``change(value) -> value``, keeping the
    tensors and so the checksums."""
    tensors, meta = _tensors_and_meta(path)
    meta[key] = json.dumps(change(json.loads(meta[key])))
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))


def _raw_meta(path, key, text):
    tensors, meta = _tensors_and_meta(path)
    meta[key] = text
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))


def _edit_tensors(path, change):
    """Change the tensors, with their CRC-32s recomputed: damage no checksum can see."""
    tensors, meta = _tensors_and_meta(path)
    change(tensors)
    meta["checksums"] = json.dumps({k: zlib.crc32(np.ascontiguousarray(t))
                                    for k, t in tensors.items()})
    path.write_bytes(safetensors.numpy.save(tensors, metadata=meta))


def _idx_header(type_code, dims):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


# -- 1. a 0.1.0 zip whose meta.json inflates to gigabytes -----------------------------------------

@pytest.mark.parametrize("claim", ["true size", "small lie", "limit lie"])
def test_a_zip_bomb_meta_json_is_refused_without_inflating_it(tmp_path, claim):
    path = tmp_path / "net.npz"
    bomb = _deflate_spaces(GiB)  # 1 MB that inflates to 1 GiB
    size = {"true size": GiB, "small lie": 100, "limit lie": 1 << 26}[claim]
    _zip_one(path, "meta.json", bomb, size)
    phrase = ("claims 1,073,741,824 bytes, more than bpgpu reads (67,108,864)"
              if claim == "true size" else "damaged")
    _refused(path, phrase)


def test_a_zip_member_may_not_claim_more_than_the_archive(tmp_path):
    path = tmp_path / "net.npz"
    _legacy_write(path, bpgpu.state.capture(bpgpu.MLP([4, 5, 3])))
    raw = bytearray(path.read_bytes())
    at = raw.index(b"W0.npy", raw.index(b"PK\x01\x02")) - 46  # W0.npy's central directory entry
    assert raw[at:at + 4] == b"PK\x01\x02"
    raw[at + 20:at + 28] = struct.pack("<2I", GiB, GiB)  # its sizes: 1 GiB, stored
    path.write_bytes(bytes(raw))
    _refused(path, "array 'W0' is stored compressed or oversized")  # never a 1 GiB read


# -- 2. MNIST IDX headers that claim gigabytes ---------------------------------------------------

def test_a_gzipped_idx_claiming_3_million_images_is_truncated(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_header(0x08, (3_000_000, 28, 28)) + b"\x00" * 12))
    message = _refused(path, "is truncated: header shape (3000000, 28, 28) needs "
                             "2,352,000,000 data bytes, found 12", DatasetError, read_idx)
    assert "replace it with an intact copy" in message


@pytest.mark.parametrize("gz", [False, True])
def test_an_idx_header_past_any_sane_size_is_refused(tmp_path, gz):
    path = tmp_path / ("images.gz" if gz else "images")
    raw = _idx_header(0x0E, (2**32 - 1,) * 4)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    claim = f"claims {(2**32 - 1) ** 4 * 8:,} data bytes, more than bpgpu reads (17,179,869,184)"
    _refused(path, claim, DatasetError, read_idx)  # Python ints: no int64 overflow


def test_a_raw_idx_with_a_lying_header_is_refused_before_reading(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_idx_header(0x08, (3_000_000, 28, 28)) + b"\x00" * 12)
    _refused(path, "is truncated: header shape (3000000, 28, 28) needs 2,352,000,000 data "
                   "bytes, found 12", DatasetError, read_idx)


def test_a_gzip_bomb_after_the_claimed_images_is_trailing_bytes(tmp_path, mnist_dir):
    path = mnist_dir / "train-images-idx3-ubyte.gz"
    good = path.read_bytes()
    # A second gzip member (its CRC unread: reading stops one byte past the claimed data).
    bomb = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + _deflate_spaces(GiB) + b"\x00" * 8
    path.write_bytes(good + bomb)
    _refused(mnist_dir, "malformed (trailing bytes)", DatasetError,
             lambda d: load_dataset(f"mnist:{d}"))


@pytest.fixture
def mnist_dir(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(_idx_header(0x08, images.shape) + images.tobytes()))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_header(0x08, (5,)) + bytes([7, 2, 1, 0, 9])))
    assert load_dataset(f"mnist:{tmp_path}").X.shape == (5, 784)
    return tmp_path


# -- 3. .npy files: read_npy checks the header before loading -----------------------------------

def _npy_header_only(path, shape, descr="<f8"):
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": descr, "fortran_order": False, "shape": shape})


def test_a_128_byte_npy_claiming_6_billion_rows_is_refused(tmp_path):
    path = tmp_path / "x.npy"
    _npy_header_only(path, (100_000_000_000, 64))
    assert path.stat().st_size == 128
    _refused(path, "is truncated: its header claims shape (100000000000, 64) of float64 "
                   "(51,200,000,000,000 bytes) but only 0 bytes follow", DatasetError, read_npy)


NPY_FILES = [
    ("empty", lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    ("csv text", lambda p: p.write_text("1,2,3\n4,5,6\n"), "is not a NumPy .npy file"),
    ("short", lambda p: p.write_bytes(b"\x93NU"), "is not a NumPy .npy file"),
    ("pickled objects", lambda p: np.save(p, np.array([{}, []], dtype=object), allow_pickle=True),
     "holds object values, not numbers"),
    ("text", lambda p: np.save(p, np.array(["a", "b"])), "holds <U1 values"),
    ("3-D", lambda p: np.save(p, np.zeros((2, 2, 2))), "holds an array of shape (2, 2, 2)"),
    ("0-D", lambda p: np.save(p, np.float64(3)), "holds an array of shape ()"),
    ("one byte short", lambda p: p.write_bytes(_npy(np.zeros((3, 4)))[:-1]), "is truncated"),
]


def _npy(a):
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.mark.parametrize("make,phrase", [c[1:] for c in NPY_FILES], ids=[c[0] for c in NPY_FILES])
def test_bad_npy_files_are_one_clear_error(tmp_path, make, phrase):
    path = tmp_path / "x.npy"
    make(path)
    message = _refused(path, phrase, DatasetError, read_npy)
    assert "np.save(path, X)" in message


@pytest.mark.parametrize("a", [np.arange(6.0), np.arange(12, dtype=np.int32).reshape(3, 4),
                               np.asfortranarray(np.ones((3, 2), np.float32))])
def test_good_npy_files_read_as_saved(tmp_path, a):
    np.save(tmp_path / "x.npy", a)
    got = read_npy(tmp_path / "x.npy")
    assert got.dtype == a.dtype and np.array_equal(got, a)


def test_a_missing_npy_file_is_named(tmp_path):
    _refused(tmp_path / "none.npy", "does not exist", DatasetError, read_npy)


# -- 4. metadata JSON bounded in size, entries and depth -------------------------------------------

@pytest.mark.parametrize("history,phrase", [
    ('{"loss": [' + "{}," * 2_000_000 + "{}]}", "holds 2,000,003 objects and lists"),
    ('{"loss": [' + "0," * 5_000_000 + "0]}", "and 5,000,001 values"),
    ('{"loss": ' + "[" * 500 + "]" * 500 + "}", "its history 'loss' must be a list of numbers"),
    ('{"loss": ' + "[" * 50_000 + "]" * 50_000 + "}", "is nested too deeply"),
    ('[1, 2]', "its history must be an object of lists of numbers"),
    ('{"loss": [1, "2"]}', "its history 'loss' must be a list of numbers"),
    ('{"loss": [true]}', "its history 'loss' must be a list of numbers"),
], ids=["2M empty objects", "5M numbers", "500 deep", "50,000 deep", "a list", "text", "bool"])
def test_history_metadata_is_bounded_and_checked(ck, history, phrase):
    _raw_meta(ck, "history", history)
    _refused(ck, phrase)


def test_histories_of_unequal_lengths_and_infinite_validation_loss_load(ck):
    _edit_meta(ck, "history", lambda h: {**h, "val_loss": [float("inf")]})
    assert bpgpu.load(ck).history["val_loss"] == [float("inf")]


# -- 5. metadata values edited, checksums correct ------------------------------------------------

def _rng(**inner):
    def change(r):
        r["state"].update(inner)
        return r
    return change


def _set(*keys, value):
    def change(d):
        target = d
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
        return d
    return change


INVALID = "the metadata and arrays do not describe a valid network: its "
EDITS = [
    ("rng state -1", "rng", _rng(state=-1),
     "rng 'state.state' must be a whole number in [0, 2**128), got -1"),
    ("rng inc 2**300", "rng", _rng(inc=2**300), "rng 'state.inc' must be a whole number in [0, "
                                                "2**128), got 203703597633448608..."),
    ("rng uinteger", "rng", _set("uinteger", value=2**32), "rng 'uinteger' must be"),
    ("rng has_uint32", "rng", _set("has_uint32", value=True),
     "rng 'has_uint32' must be a whole number in [0, 2), got True"),
    ("rng not PCG64", "rng", _set("bit_generator", value="MT19937"),
     "rng (the shuffling generator's state) must be a PCG64 state"),
    ("epoch Infinity", "checkpoint", _set("epoch", value=float("inf")),
     "checkpoint 'epoch' must be a whole number ≥ 0, got inf"),
    ("epoch -3", "checkpoint", _set("epoch", value=-3), "got -3"),
    ("epoch 1.5", "checkpoint", _set("epoch", value=1.5), "got 1.5"),
    ("settings nested", "checkpoint", _set("settings", value={"a": [[]]}),
     "checkpoint 'settings' must be an object of plain values"),
    ("step -1", "optimizer", _set("scalars", "step", value=-1),
     "optimizer 'scalars' must be ['step'] as whole numbers in [0, 2**62), got {'step': -1}"),
    ("step float", "optimizer", _set("scalars", "step", value=6.0), "got {'step': 6.0}"),
    ("step bool", "optimizer", _set("scalars", "step", value=True), "got {'step': True}"),
    ("no step", "optimizer", _set("scalars", value={}), "optimizer 'scalars' must be ['step']"),
    ("lr -1", "optimizer", _set("hyper", "lr", value=-1),
     "optimizer 'hyper' is wrong (lr (the learning rate η) must be a finite number > 0, got -1)"),
    ("beta2 2", "optimizer", _set("hyper", "beta2", value=2),
     "beta2 must be a number in [0, 1), got 2"),
    ("lr text", "optimizer", _set("hyper", "lr", value="x"),
     "optimizer 'hyper' must map settings to numbers"),
    ("unknown hyper", "optimizer", _set("hyper", "evil", value=1), "'adam' takes lr, beta1"),
    ("unknown optimizer", "optimizer", _set("name", value="os.system"),
     "optimizer 'name' must be one of ['adam', 'adamw', 'momentum', 'sgd']"),
    ("lists of other keys", "optimizer", _set("lists", value={"velocity": 4}),
     "bad optimizer state in the metadata"),
    ("seed text", "config", _set("seed", value="x"),
     "config 'seed' must be a whole number ≥ 0 or null, got 'x'"),
    ("seed negative", "config", _set("seed", value=-1), "config 'seed'"),
    ("sizes with a float", "config", _set("sizes", value=[4, 5.0, 3]), "bad layer sizes"),
    ("dtype float16", "config", _set("dtype", value="float16"), "bad dtype or bias"),
    ("bias text", "config", _set("bias", value="yes"), "bad dtype or bias"),
    ("duplicate classes", "config", _set("classes", value=["a", "a", "b"]),
     "config 'classes' are wrong (classes must not repeat a label"),
    ("classes count", "config", _set("classes", value=["a", "b"]), "2 classes for 3 outputs"),
    ("activation list", "config", _set("activation", value=["relu", "relu"]),
     "config 'activation' must be a name"),
    ("fused text", "config", _set("fused", value="no"), "config 'fused' must be true or false"),
    ("unknown config key", "config", _set("evil", value=1), "config has unknown entries"),
    ("transform NaN", "data", _set("transform", "mean", 0, value=float("nan")),
     "data 'transform' is wrong (the transform's mean must be a non-empty list of finite"),
    ("transform scale 0", "data", _set("transform", "scale", 1, value=0.0),
     "scale must be > 0"),
    ("transform length", "data", _set("transform", "mean", value=[0.0] * 3),
     "the transform's mean has 3 entries and its scale 4"),
    ("transform width", "data", _set("transform", value={"kind": "standardize",
                                                         "mean": [0.0] * 3, "scale": [1.0] * 3}),
     "data 'transform' has 3 columns for a layer of 4"),
    ("transform kind", "data", _set("transform", "kind", value="eval"), "unknown input transform"),
    ("split text", "data", _set("split", value="x"), "data 'split' must be an object"),
    ("split nested", "data", _set("split", "rows", value={"a": 1}), "data 'split' must be"),
    ("data list", "data", lambda d: [d], "its data must hold transform"),
]


@pytest.mark.parametrize("key,change,phrase", [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_edited_metadata_values_are_refused_naming_the_field(ck, key, change, phrase):
    _edit_meta(ck, key, change)
    message = _refused(ck, phrase)
    if not phrase.startswith("bad "):  # those kept the messages they had
        assert INVALID in message and "use an intact copy of the file" in message


def test_the_checkpoint_loads_and_resumes_before_any_edit(ck):
    net = bpgpu.load(ck)
    assert net.input_transform is not None and net.split["rows"] == 10
    net = bpgpu.MLP([4, 5, 3], seed=0)
    assert len(net.fit(X4, Y3, epochs=3, batch_size=4, optimizer="adam", resume=ck)["loss"]) == 3


@pytest.mark.parametrize("edit", [EDITS[0], EDITS[3], EDITS[7]], ids=["rng", "epoch", "step"])
def test_resuming_from_an_edited_checkpoint_is_the_same_clear_error(ck, edit):
    _edit_meta(ck, edit[1], edit[2])
    net = bpgpu.MLP([4, 5, 3], seed=0)
    _refused(ck, edit[3], call=lambda p: net.fit(X4, Y3, epochs=3, batch_size=4,
                                                 optimizer="adam", resume=p))


def test_a_zip_checkpoint_with_a_negative_step_is_refused(tmp_path):
    path = tmp_path / "ck.npz"
    path.write_bytes((DATA / "legacy-checkpoint.npz").read_bytes())
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["meta.json"])
    meta["checkpoint"]["state_scalars"]["step"] = -1
    members["meta.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    _refused(path, "optimizer 'scalars' must be ['step'] as whole numbers")


# -- 6. NaN or infinite arrays behind correct checksums --------------------------------------------

@pytest.mark.parametrize("name,value", [("W0", np.nan), ("b1", -np.inf), ("opt.v.2", np.inf)])
def test_non_finite_arrays_are_refused_naming_the_array(ck, name, value):
    def poison(tensors):
        tensors[name] = tensors[name].copy()
        tensors[name].flat[0] = value
    _edit_tensors(ck, poison)
    _refused(ck, f"array {name!r} holds NaN or infinity; the file was written by a diverged run "
                 "or edited")


def test_a_zip_model_with_nan_weights_is_refused(tmp_path):
    st = bpgpu.state.capture(bpgpu.MLP([4, 5, 3]))
    st["arrays"]["W1"][2, 1] = np.nan
    _legacy_write(tmp_path / "net.npz", st)
    _refused(tmp_path / "net.npz", "array 'W1' holds NaN or infinity")


def test_predict_never_prints_nan_rows_from_such_a_file(tmp_path):
    model = tmp_path / "net.safetensors"
    bpgpu.MLP([4, 5, 3]).save(model)
    _edit_tensors(model, lambda t: t.update(W0=np.full_like(t["W0"], np.nan)))
    np.savetxt(tmp_path / "x.csv", X4, delimiter=",")
    r = subprocess.run([sys.executable, "-m", "bpgpu", "predict", "--model", str(model),
                        "--input", str(tmp_path / "x.csv")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "nan" not in r.stdout.lower()
    assert "array 'W0' holds NaN or infinity" in r.stderr and "Traceback" not in r.stderr


# -- the largest, measured: time and peak memory in a fresh process --------------------------------

MEASURE = """
import sys, time, bpgpu
from bpgpu.datasets._mnist import read_idx
from bpgpu.datasets import read_npy
from pathlib import Path
for path in map(Path, sys.argv[1:]):
    read = {".gz": read_idx, ".npy": read_npy}.get(path.suffix, bpgpu.load)
    t0 = time.perf_counter()
    try:
        read(path)
    except ValueError as exc:
        print(f"{time.perf_counter() - t0:.2f} s {str(exc)[:60]}")
    else:
        raise SystemExit(f"{path} loaded")
# This process's own peak (VmHWM): ru_maxrss would include the pytest process it was spawned from.
print(next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:")))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_the_issues_files_cost_little_time_and_memory(tmp_path, checkpoint_bytes):
    paths = [tmp_path / n for n in ("bomb.npz", "lie.npz", "idx.gz", "x.npy", "history.st",
                                    "deep.st")]
    _zip_one(paths[0], "meta.json", _deflate_spaces(GiB), GiB)
    _zip_one(paths[1], "meta.json", _deflate_spaces(GiB), 1 << 26)
    paths[2].write_bytes(gzip.compress(_idx_header(0x08, (3_000_000, 28, 28)) + b"\0" * 12))
    _npy_header_only(paths[3], (100_000_000_000, 64))
    for p in paths[4:]:
        p.write_bytes(checkpoint_bytes)
    _raw_meta(paths[4], "history", '{"loss": [' + "{}," * 20_000_000 + "{}]}")  # 60 MB
    _raw_meta(paths[5], "history", '{"loss": ' + "[" * 500 + "]" * 500 + "}")
    r = subprocess.run([sys.executable, "-c", MEASURE, *map(str, paths)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    *times, peak_kb = r.stdout.split("\n")[:-1]
    assert all(float(t.split()[0]) < 5 for t in times), times
    assert int(peak_kb) < 1 << 20, f"peak {int(peak_kb) >> 10} MiB"  # 1 GiB
