"""Reading the model files of bpgpu 0.1.0 (a zip of ``.npy`` arrays plus ``meta.json``), so that
they still load and resume. bpgpu writes safetensors now (:mod:`bpgpu.io`); nothing here writes.

Reading never unpickles or evaluates anything: the metadata is JSON, read as a stream that stops at
a stated size (a member's header may lie about its size, and a small DEFLATE stream can inflate
to gigabytes), then bounded as :func:`bpgpu.io.metadata.parse_json` bounds safetensors metadata;
each array header is checked against it (name, shape, dtype, size) before the array is allocated,
and no array may claim more bytes than the archive holds. Every problem is a
:class:`ModelFileError` without the file name, which :func:`bpgpu.io.read` adds.
"""

from __future__ import annotations

import math
import os
import zipfile

import numpy as np

from ..errors import ModelFileError
from .metadata import parse_json

FORMAT = "bpgpu-mlp"
VERSION = 1
MAX_ARRAY_BYTES = 1 << 34  # 16 GiB: a larger claim is a damaged or hostile file
MAX_META_BYTES = 1 << 26  # 64 MiB, as for safetensors headers: 0.1.0 wrote a few KiB


def read_state(path):
    """A file of the zip format as a state dict (see :mod:`bpgpu.state`)."""
    try:
        with zipfile.ZipFile(path) as zf:
            meta = _read_meta(zf)
            _check_architecture(meta)
            size = os.path.getsize(path)
            arrays = {name: _read_array(zf, name, spec, size)
                      for name, spec in meta["arrays"].items()}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"damaged or not a bpgpu model file "
                             f"({type(exc).__name__}: {exc})") from None
    return _as_state(meta, arrays)


def _as_state(meta, arrays):
    keys = ("sizes", "activation", "output", "loss", "bias", "dtype")
    st = {"config": {**{k: meta.get(k) for k in keys}, "seed": meta.get("seed", 0)},
          "arrays": arrays}
    ckpt = meta.get("checkpoint")
    if isinstance(ckpt, dict):
        st.update(rng=ckpt.get("rng"), history=ckpt.get("history"),
                  checkpoint={"epoch": ckpt.get("epoch"), "settings": ckpt.get("settings")},
                  optimizer={"name": ckpt.get("optimizer"), "hyper": ckpt.get("hyper"),
                             "scalars": ckpt.get("state_scalars"),
                             "lists": ckpt.get("state_lists")})
    return st


def _read_meta(zf):

    try:
        info = zf.getinfo("meta.json")
    except KeyError:
        raise ModelFileError("not a bpgpu model file (no meta.json inside)") from None
    raw = _read_member(zf, info, MAX_META_BYTES)
    try:
        meta = parse_json(raw.decode("utf-8"), "meta.json")
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"its metadata is not valid JSON (not UTF-8: {exc.reason})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError("not a bpgpu model file (wrong format tag)")
    if not isinstance(meta.get("version"), int) or meta["version"] > VERSION:
        raise ModelFileError(f"format version {meta.get('version')!r} is newer than this bpgpu "
                             f"reads ({VERSION}); upgrade bpgpu")
    if not isinstance(meta.get("arrays"), dict):
        raise ModelFileError("its metadata lists no arrays")
    return meta


def _read_member(zf, info, limit):
    """The bytes of member ``info``, refused past ``limit``: first by the size its header states,
    then while inflating (in 1 MiB steps), in case the header lies."""
    if info.file_size > limit:
        raise ModelFileError(f"its {info.filename} claims {info.file_size:,} bytes, more than "
                             f"bpgpu reads ({limit:,}): the file is damaged or hostile")
    raw = bytearray()
    with zf.open(info) as member:
        while len(raw) <= info.file_size:
            chunk = member.read(min(1 << 20, info.file_size + 1 - len(raw)))
            if not chunk:
                break
            raw += chunk
    if len(raw) > info.file_size:
        raise ModelFileError(f"its {info.filename} holds more than the {info.file_size:,} bytes "
                             "its header states: the file is damaged or hostile")
    return bytes(raw)


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


def _read_array(zf, name, spec, archive_size):
    try:
        shape, dtype = tuple(int(s) for s in spec["shape"]), np.dtype(spec["dtype"])
    except (TypeError, ValueError, KeyError):
        raise ModelFileError(f"bad metadata for array {name!r}") from None
    if dtype.kind not in "fiub" or dtype.hasobject:
        raise ModelFileError(f"array {name!r} has a non-numeric dtype {dtype}")
    if min(shape, default=1) < 0 or math.prod(shape) * dtype.itemsize > MAX_ARRAY_BYTES:
        raise ModelFileError(f"array {name!r} claims an impossible size {shape}")
    try:
        info = zf.getinfo(f"{name}.npy")
    except KeyError:
        raise ModelFileError(f"array {name!r} listed in the metadata is missing") from None
    # A stored member lies within the archive: a larger claimed size is a lie that would make
    # the read below ask for (and allocate) that many bytes.
    if (info.compress_type != zipfile.ZIP_STORED
            or max(info.file_size, info.compress_size) > min(MAX_ARRAY_BYTES, archive_size)):
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
