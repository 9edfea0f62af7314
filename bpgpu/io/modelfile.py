"""Model files and checkpoints as safetensors: the arrays as tensors, everything else as metadata.

The tensors are the parameters ``W0``, ``b0``, ``W1``, ... (``W{l}`` of shape (n_in, n_out), the
layout of :attr:`MLP.weights`) and, in a checkpoint, the optimizer's ``opt.<key>.<i>``; so
``safetensors.numpy.load_file`` or ``safetensors.torch.load_file`` gives the network's arrays. The
safetensors metadata (string to string) holds the format tag and version, and JSON strings for the
``config``, the shuffling RNG state, the history, a CRC-32 of each tensor and, in a checkpoint, the
optimizer state and epoch (see :mod:`bpgpu.state`); the checks are :mod:`bpgpu.io.metadata`.

Writes are atomic (a temporary file beside the target, flushed, then renamed over it), so an
interrupted save never leaves a broken file where a good one was. Reading runs no code: the header
is JSON, its size is bounded, each metadata entry is bounded in objects, values and depth before it
is parsed, and every value (config, RNG state, history, optimizer, checkpoint, data record) is
checked for type and range, and the tensor names, shapes, dtypes, checksums and finiteness, before
a network is built; any damage is one :class:`ModelFileError` naming the file and the problem.
Files of bpgpu 0.1.0's zip format still load (:mod:`bpgpu.io.zipformat`) and are checked the same
way; ``bpgpu.load(old).save(new)`` converts one.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from .. import state as states
from ..errors import ModelFileError
from . import zipformat
from .files import atomic_write
from .metadata import (
    check_finite,
    check_metadata,
    check_sums,
    check_tensors,
    clip,
    parse_json,
    short,
)

FORMAT = "bpgpu-mlp"
VERSION = 2
MAX_HEADER_BYTES = 1 << 26  # 64 MiB of JSON: far beyond any real history; a larger claim is damage
_JSON_KEYS = ("config", "rng", "history", "optimizer", "checkpoint", "data")


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
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"{path}: the metadata and arrays do not describe a valid network "
                             f"({clip(exc)})") from None


def read(path):
    """The state (see :mod:`bpgpu.state`) in a model file or checkpoint, checked; raises
    :class:`ModelFileError` naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        st = _read_zip(path) if head[:4] == b"PK\x03\x04" else _read_safetensors(path, head)
        check_finite(st["arrays"])
        return st
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: damaged or not a bpgpu model file "
                             f"({type(exc).__name__}: {clip(exc)})") from None


def _read_zip(path):
    st = zipformat.read_state(path)
    check_metadata(st)
    codes = {("f", 4): "F32", ("f", 8): "F64"}
    check_tensors(st, {k: (a.shape, codes.get((a.dtype.kind, a.dtype.itemsize), str(a.dtype)))
                        for k, a in st["arrays"].items()})
    return st


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
        check_tensors(st, specs)
        st["arrays"] = {k: f.get_tensor(k) for k in specs}
    check_sums(st["arrays"], st.pop("checksums"))
    return st


def _metadata(meta):
    if meta.get("format") != FORMAT:
        raise ModelFileError("not a bpgpu model file (wrong format tag, or no bpgpu metadata in "
                             "its safetensors header)")
    version = meta.get("version", "")
    if not version.isdigit():
        raise ModelFileError(f"bad format version {short(version)}")
    if int(version) > VERSION:
        raise ModelFileError(f"format version {version} is newer than this bpgpu reads "
                             f"({VERSION}); upgrade bpgpu")
    st = {key: parse_json(meta[key], repr(key)) for key in (*_JSON_KEYS, "checksums")
          if key in meta}
    for key in ("config", "checksums"):
        if not isinstance(st.get(key), dict):
            raise ModelFileError(f"its metadata has no {key}")
    check_metadata(st)
    return st
