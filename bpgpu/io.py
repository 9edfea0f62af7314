"""Model files and checkpoints as safetensors: the arrays as tensors, everything else as metadata.

The tensors are the parameters ``W0``, ``b0``, ``W1``, ... (``W{l}`` of shape (n_in, n_out), the
layout of :attr:`MLP.weights`) and, in a checkpoint, the optimizer's ``opt.<key>.<i>``; so
``safetensors.numpy.load_file`` or ``safetensors.torch.load_file`` gives the network's arrays. The
safetensors metadata (string to string) holds the format tag and version, and JSON strings for the
``config``, the shuffling RNG state, the history, a CRC-32 of each tensor and, in a checkpoint, the
optimizer state and epoch (see :mod:`bpgpu.state`).

Writes are atomic (a temporary file beside the target, flushed, then renamed over it), so an
interrupted save never leaves a broken file where a good one was. Reading runs no code: the header
is JSON, its size is bounded, and its config, tensor names, shapes, dtypes and checksums are
checked before a network is built; any damage is one :class:`ModelFileError` naming the file and
the problem. Files of bpgpu 0.1.0's zip format still load (:mod:`bpgpu._zipformat`);
``bpgpu.load(old).save(new)`` converts one.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from . import _zipformat
from . import state as states
from .errors import ModelFileError
from .files import atomic_write
from .validation import check_sizes

FORMAT = "bpgpu-mlp"
VERSION = 2
MAX_HEADER_BYTES = 1 << 26  # 64 MiB of JSON: far beyond any real history; a larger claim is damage
_JSON_KEYS = ("config", "rng", "history", "optimizer", "checkpoint", "data")
_DTYPES = {"float32": "F32", "float64": "F64"}


def save(net, path):
    """Write ``net`` to ``path`` (safetensors, whatever the suffix), atomically."""
    write(path, states.capture(net))


def write(path, st):
    """Write state ``st`` (see :mod:`bpgpu.state`) to ``path`` as safetensors, atomically."""
    for name in states.param_names(st["config"]):
        if not np.all(np.isfinite(st["arrays"][name])):
            raise ValueError(f"not saving {path}: {name} contains NaN or infinity "
                             "(training diverged?); lower the learning rate and retrain")
    tensors = {k: np.ascontiguousarray(a) for k, a in st["arrays"].items()}
    meta = {"format": FORMAT, "version": str(VERSION),
            "checksums": json.dumps({k: zlib.crc32(t) for k, t in tensors.items()})}
    meta.update({k: json.dumps(st[k]) for k in _JSON_KEYS if st.get(k) is not None})
    atomic_write(path, lambda f: f.write(safetensors.numpy.save(tensors, metadata=meta)))


def load(path, cls, device=None):
    """Rebuild a network of class ``cls`` from a model file or checkpoint, on ``device``."""
    st = read(path)
    try:
        return states.build(cls, st, device)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: the metadata and arrays do not describe a valid network "
                             f"({exc})") from None


def read(path):
    """The state (see :mod:`bpgpu.state`) in a model file or checkpoint, checked; raises
    :class:`ModelFileError` naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        if head[:4] == b"PK\x03\x04":
            return _zipformat.read_state(path)
        return _read_safetensors(path, head)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: damaged or not a bpgpu model file "
                             f"({type(exc).__name__}: {exc})") from None


def _read_safetensors(path, head):
    size = path.stat().st_size
    if len(head) < 8:
        raise ModelFileError(f"damaged or not a bpgpu model file (only {size} bytes)")
    n = int.from_bytes(head, "little")
    if not 0 < n <= min(MAX_HEADER_BYTES, size - 8):
        raise ModelFileError(f"damaged or not a bpgpu model file (its header claims {n:,} bytes; "
                             f"the file has {size:,}, and bpgpu reads at most "
                             f"{MAX_HEADER_BYTES:,})")
    with safe_open(str(path), framework="numpy") as f:
        st = _metadata(f.metadata() or {})
        names = f.keys()
        specs = {k: (f.get_slice(k).get_shape(), f.get_slice(k).get_dtype()) for k in names}
        _check_tensors(st, specs)
        st["arrays"] = {k: f.get_tensor(k) for k in specs}
    _check_sums(st["arrays"], st.pop("checksums"))
    return st


def _metadata(meta):
    if meta.get("format") != FORMAT:
        raise ModelFileError("not a bpgpu model file (wrong format tag, or no bpgpu metadata in "
                             "its safetensors header)")
    version = meta.get("version", "")
    if not version.isdigit():
        raise ModelFileError(f"bad format version {version!r}")
    if int(version) > VERSION:
        raise ModelFileError(f"format version {version} is newer than this bpgpu reads "
                             f"({VERSION}); upgrade bpgpu")
    st = {}
    for key in (*_JSON_KEYS, "checksums"):
        if key in meta:
            try:
                st[key] = json.loads(meta[key])
            except ValueError as exc:
                raise ModelFileError(f"its metadata {key!r} is not valid JSON ({exc})") from None
    for key in ("config", "checksums"):
        if not isinstance(st.get(key), dict):
            raise ModelFileError(f"its metadata has no {key}")
    return st


def _check_tensors(st, specs):
    """Every tensor the config (and optimizer state) implies, of the right shape and dtype, and
    no other."""
    want = _expected(st)
    for name, shape in want.items():
        if name not in specs:
            raise ModelFileError(f"array {name!r} is missing")
        dtype = _DTYPES[st["config"]["dtype"]]
        if list(specs[name][0]) != shape or specs[name][1] != dtype:
            raise ModelFileError(
                f"array {name!r} is {list(specs[name][0])} {specs[name][1]}, but layer sizes "
                f"{st['config']['sizes']} in {st['config']['dtype']} need {shape} {dtype}")
    extra = sorted(set(specs) - set(want))
    if extra:
        raise ModelFileError(f"unexpected arrays {extra} (not parameters of this network)")


def _expected(st):
    """{name: shape} of the tensors state ``st`` needs."""
    cfg = st["config"]
    try:
        cfg["sizes"] = check_sizes(cfg.get("sizes"), "layer sizes")
    except ValueError:
        raise ModelFileError(f"bad layer sizes in the metadata: {cfg.get('sizes')!r}") from None
    missing = sorted({"activation", "output", "loss", "bias", "dtype"} - set(cfg))
    if missing:
        raise ModelFileError(f"its config lacks {missing}")
    if cfg["dtype"] not in _DTYPES or not isinstance(cfg["bias"], bool):
        raise ModelFileError(f"bad dtype or bias in the config: {cfg['dtype']!r}, {cfg['bias']!r}")
    sizes = cfg["sizes"]
    shapes = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"W{i}"] = [n_in, n_out]
        if cfg["bias"]:
            shapes[f"b{i}"] = [n_out]
    params = list(shapes.values())
    for key, count in _optimizer_lists(st, len(params)).items():
        shapes.update({f"opt.{key}.{i}": params[i] for i in range(count)})
    return shapes


def _optimizer_lists(st, n_params):
    opt = st.get("optimizer")
    if opt is None:
        return {}
    lists = opt.get("lists") if isinstance(opt, dict) else None
    if not isinstance(lists, dict) or any(c != n_params for c in lists.values()):
        raise ModelFileError(f"bad optimizer state in the metadata: {opt!r}")
    return lists


def _check_sums(arrays, sums):
    for name, a in arrays.items():
        if sums.get(name) != zlib.crc32(np.ascontiguousarray(a)):
            raise ModelFileError(f"array {name!r} is damaged (its CRC-32 does not match)")
