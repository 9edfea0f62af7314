"""Model files: a zip archive of ``.npy`` arrays plus ``meta.json`` — no pickle anywhere.

Writes are atomic (a temporary file in the same folder, flushed, then renamed over the target), so
an interrupted save never leaves a broken file where a good one was. Reading never unpickles or
evaluates anything: the metadata is JSON, each array header is checked against it (name, shape,
dtype, size) before the array is allocated, and any damage becomes one :class:`ModelFileError`
naming the file and the problem.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelFileError

FORMAT = "bpgpu-mlp"
VERSION = 1
_MAX_ARRAY_BYTES = 1 << 34  # 16 GiB: a larger claim is a damaged or hostile file


def save(net, path, extra_arrays=None, extra_meta=None):
    """Write ``net`` (and optional extra arrays and metadata, e.g. a checkpoint) to ``path``."""
    arrays = {}
    for i, (W, b) in enumerate(net.weights):
        arrays[f"W{i}"] = net.backend.to_host(W)
        if b is not None:
            arrays[f"b{i}"] = net.backend.to_host(b)
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise ValueError(f"not saving {path}: {name} contains NaN or infinity "
                             "(training diverged?); lower the learning rate and retrain")
    arrays.update(extra_arrays or {})
    meta = {"format": FORMAT, "version": VERSION, **model_config(net), **(extra_meta or {}),
            "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype.str}
                       for k, a in arrays.items()}}
    atomic_write(path, lambda f: _write_zip(f, meta, arrays))


def model_config(net):
    """The settings that rebuild ``net``'s architecture (JSON-serialisable)."""
    return {"sizes": net.sizes, "activation": net.activation.name, "output": net.output.name,
            "loss": net.loss.name, "bias": net.bias, "dtype": net.dtype_name, "seed": net.seed}


def _write_zip(f, meta, arrays):
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("meta.json", json.dumps(meta, indent=1))
        for name, a in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(a), allow_pickle=False)


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name such as {path / 'model.npz'}")
    if not path.parent.exists():
        raise ValueError(f"cannot write {path}: the folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress_os_error():
            os.unlink(tmp)
        raise


class _suppress_os_error:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, OSError)


def read(path):
    """The metadata dict and the arrays of a bpgpu file, checked; raises :class:`ModelFileError`.

    The architecture in the metadata is checked against the arrays it lists, and each array's
    header against the metadata, before any array is read.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            meta = _read_meta(zf)
            _check_architecture(meta)
            return meta, {name: _read_array(zf, name, spec)
                          for name, spec in meta["arrays"].items()}
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{path}: damaged or not a bpgpu model file "
                             f"({type(exc).__name__}: {exc})") from None


def _read_meta(zf):
    try:
        raw = zf.read("meta.json")
    except KeyError:
        raise ModelFileError("not a bpgpu model file (no meta.json inside)") from None
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"its metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError("not a bpgpu model file (wrong format tag)")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise ModelFileError(f"format version {meta.get('version')!r} is newer than this bpgpu "
                             f"reads ({VERSION}); upgrade bpgpu")
    if not isinstance(meta.get("arrays"), dict):
        raise ModelFileError("its metadata lists no arrays")
    return meta


def _check_architecture(meta):
    sizes = meta.get("sizes")
    if (not isinstance(sizes, list) or not 2 <= len(sizes) <= 1000
            or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= 2**31
                       for s in sizes)):
        raise ModelFileError(f"bad layer sizes in the metadata: {sizes!r}")
    arrays = meta["arrays"]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        for name, shape, required in ((f"W{i}", [n_in, n_out], True),
                                      (f"b{i}", [n_out], bool(meta.get("bias")))):
            spec = arrays.get(name)
            if spec is None and required:
                raise ModelFileError(f"array {name!r} is missing from the metadata")
            if spec is not None and (not isinstance(spec, dict) or spec.get("shape") != shape):
                raise ModelFileError(f"array {name!r} should have shape {shape} for layer sizes "
                                     f"{sizes}, the metadata says {spec!r}")


def _read_array(zf, name, spec):
    try:
        shape, dtype = tuple(int(s) for s in spec["shape"]), np.dtype(spec["dtype"])
    except (TypeError, ValueError, KeyError):
        raise ModelFileError(f"bad metadata for array {name!r}") from None
    if dtype.kind not in "fiub" or dtype.hasobject:
        raise ModelFileError(f"array {name!r} has a non-numeric dtype {dtype}")
    if min(shape, default=1) < 0 or math.prod(shape) * dtype.itemsize > _MAX_ARRAY_BYTES:
        raise ModelFileError(f"array {name!r} claims an impossible size {shape}")
    try:
        info = zf.getinfo(f"{name}.npy")
    except KeyError:
        raise ModelFileError(f"array {name!r} listed in the metadata is missing") from None
    if info.compress_type != zipfile.ZIP_STORED or info.file_size > _MAX_ARRAY_BYTES:
        raise ModelFileError(f"array {name!r} is stored compressed or oversized; bpgpu writes "
                             "plain stored arrays")
    with zf.open(info) as member:
        hshape, fortran, hdtype = _header(member)
        if tuple(hshape) != shape or hdtype != dtype:
            raise ModelFileError(f"array {name!r} is {hshape} {hdtype}, the metadata says "
                                 f"{shape} {dtype}")
        data = member.read(math.prod(shape) * dtype.itemsize + 1)
    if len(data) != math.prod(shape) * dtype.itemsize:
        raise ModelFileError(f"array {name!r} is truncated or has trailing bytes")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _header(f):
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f"unsupported .npy version {version}")


def load(path, cls, device=None):
    """Rebuild a network of class ``cls`` saved by :func:`save`, on ``device``."""
    meta, arrays = read(path)
    try:
        net = cls(meta["sizes"], meta["activation"], meta["output"], meta["loss"],
                  device=device, dtype=meta["dtype"], seed=meta.get("seed", 0),
                  bias=meta["bias"])
        pairs = [(arrays[f"W{i}"], arrays.get(f"b{i}")) for i in range(len(meta["sizes"]) - 1)]
        net.set_weights(pairs)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the metadata and arrays do not describe a valid network "
                             f"({exc})") from None
    return net
