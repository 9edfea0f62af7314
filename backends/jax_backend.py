"""JAX on its CPU, a CUDA GPU or a TPU (``jax``, ``jax:cpu``, ``jax:cuda[:N]``, ``jax:gpu[:N]``,
``jax:tpu[:N]``).

JAX arrays cannot be written into, so this backend has no in-place primitives: every step is the
pure Array API reference, which JAX compiles — one call per step (``jax.jit``, the parameters and
optimizer state donated so their buffers are reused) or one call per epoch (``lax.scan`` over the
batches). Float32 matrix products run at full float32 precision (JAX's default on GPUs and TPUs is
lower, TF32 or bfloat16 passes); a precision set by the user in JAX's own configuration
(``jax_default_matmul_precision``) is respected instead.
"""

from __future__ import annotations

import contextlib

import numpy as np

from . import Backend, DeviceStatus

_INSTALL_HINT = "install bpgpu[jax] (CPU) or bpgpu[jax-cuda12] (NVIDIA GPUs)"
_PLATFORMS = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "tpu": "tpu"}
_SPEC_KIND = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}


class JaxBackend(Backend):
    library = "jax"
    compile_modes = ("none", "step", "epoch")

    def __init__(self, jax, device, index):
        super().__init__(jax.numpy, device)
        self._jax = jax
        kind = _SPEC_KIND.get(device.platform, device.platform)
        self.is_gpu = kind == "cuda"
        self.name = "jax:cpu" if kind == "cpu" else f"jax:{kind}:{index}"

    def owns(self, x):
        return isinstance(x, self._jax.Array)

    def asarray(self, x, dtype=None):
        if isinstance(dtype, str):
            dtype = getattr(self.xp, dtype)
        if dtype is not None:  # int64 is int32 unless 64-bit mode is on (no warning, no copy)
            dtype = self._jax.dtypes.canonicalize_dtype(dtype)
        if not self.owns(x):
            from . import to_numpy

            x = np.asarray(to_numpy(x), dtype=dtype)
        elif dtype is not None:
            x = x.astype(dtype)
        return self._jax.device_put(x, self.device)

    def to_host(self, x):
        return np.asarray(self._jax.device_get(x))

    def synchronize(self, *arrays):
        self._jax.block_until_ready(arrays)

    def context(self):
        return self._full_precision() if self.device.platform != "cpu" else contextlib.nullcontext()

    def is_out_of_memory(self, exc):
        # XLA reports a failed allocation as a runtime error with this status
        return isinstance(exc, MemoryError) or "RESOURCE_EXHAUSTED" in str(exc)

    def check_dtype(self, dtype_name):
        if dtype_name == "float64" and not self._jax.config.jax_enable_x64:
            from bpgpu.errors import DeviceUnavailableError

            raise DeviceUnavailableError(
                "float64 on JAX needs its 64-bit mode: set JAX_ENABLE_X64=1 before starting "
                "Python (or call jax.config.update('jax_enable_x64', True) first)")

    def compile(self, fn, donate=()):
        def precise(*args):
            with self._full_precision():  # read while tracing; costs nothing per call
                return fn(*args)

        return self._jax.jit(precise, donate_argnums=tuple(donate))

    def scan(self, body, carry, xs):
        return self._jax.lax.scan(lambda c, x: (body(c, x), None), carry, xs)[0]

    def _full_precision(self):
        if self._jax.config.jax_default_matmul_precision is not None:
            return contextlib.nullcontext()  # the user chose a precision in JAX's config
        return self._jax.default_matmul_precision("highest")

    def status(self):
        d = self.device
        memory = None
        with contextlib.suppress(Exception):  # not every platform reports memory
            memory = int(d.memory_stats()["bytes_limit"])
        return DeviceStatus(self.name, "jax", True, version=self._jax.__version__,
                            device_name=getattr(d, "device_kind", str(d)), memory_bytes=memory,
                            extra={"compile": list(self.compile_modes)})


def _import():
    try:
        import jax
    except ImportError:
        return None
    return jax


def _devices(jax, platform):
    try:
        return jax.devices(platform)
    except RuntimeError:  # no such backend in this jaxlib, or no device of it
        return []


def make(arg=None):
    from bpgpu.errors import DeviceUnavailableError

    jax = _import()
    if jax is None:
        raise DeviceUnavailableError(f"JAX is not installed; {_INSTALL_HINT}")
    if arg is None:
        device = jax.devices()[0]
        return JaxBackend(jax, device, _devices(jax, device.platform).index(device))
    kind, _, index = arg.partition(":")
    platform = _PLATFORMS.get(kind)
    if platform is None or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise DeviceUnavailableError(
            f"bad JAX device 'jax:{arg}'; use 'jax', 'jax:cpu', 'jax:cuda[:N]' or 'jax:tpu[:N]'")
    found, what = _devices(jax, platform), _SPEC_KIND[platform].upper()
    if not found:
        hint = _INSTALL_HINT if platform == "gpu" else "use 'jax:cpu'"
        raise DeviceUnavailableError(f"JAX {jax.__version__} sees no {what} device; {hint}")
    i = int(index or 0)
    if i >= len(found):
        raise DeviceUnavailableError(
            f"{what} device {i} does not exist: JAX sees {len(found)}, 0..{len(found) - 1}")
    return JaxBackend(jax, found[i], i)


def status():
    jax = _import()
    if jax is None:
        return [DeviceStatus("jax", "jax", False, f"not installed; {_INSTALL_HINT}")]
    rows = [make("cpu").status()]
    for kind, platform in (("cuda", "gpu"), ("tpu", "tpu")):
        rows += [make(f"{kind}:{i}").status() for i in range(len(_devices(jax, platform)))]
    if not _devices(jax, "gpu"):
        rows.append(DeviceStatus("jax:cuda", "jax", False,
                                 f"JAX sees no CUDA device (a CPU-only jaxlib, or no GPU); "
                                 f"{_INSTALL_HINT}", version=jax.__version__))
    return rows
