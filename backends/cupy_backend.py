"""CuPy on a CUDA GPU (``cuda``, ``cuda:N``, ``gpu``)."""

from __future__ import annotations

from . import Backend, DeviceStatus

_INSTALL_HINT = "install bpgpu[cuda12] or bpgpu[cuda13]"
_ALLOCATION_FAILED = ("CUBLAS_STATUS_ALLOC_FAILED", "CUSOLVER_STATUS_ALLOC_FAILED",
                      "cudaErrorMemoryAllocation")


class CupyBackend(Backend):
    library = "cupy"
    is_gpu = True

    def __init__(self, cupy, index):
        import array_api_compat.cupy as xp_cupy

        super().__init__(xp_cupy, cupy.cuda.Device(index))
        self._cupy = cupy
        self.index = index
        self.name = f"cuda:{index}"

    def owns(self, x):
        return isinstance(x, self._cupy.ndarray)

    def asarray(self, x, dtype=None):
        # CuPy ignores device= in creation functions; the current device decides.
        if isinstance(dtype, str):
            dtype = getattr(self.xp, dtype)
        with self.context():
            if self.owns(x):
                return self._cupy.asarray(x, dtype=dtype)
            from . import to_numpy

            return self._cupy.asarray(to_numpy(x), dtype=dtype)

    def to_host(self, x):
        return self._cupy.asnumpy(x)

    def is_out_of_memory(self, exc):
        # The pool raises cupy.cuda.memory.OutOfMemoryError (a MemoryError); cuBLAS, cuSOLVER
        # and the CUDA runtime report a failed allocation of their own as an error status.
        return isinstance(exc, MemoryError) or any(s in str(exc) for s in _ALLOCATION_FAILED)

    def synchronize(self, *arrays):
        self.device.synchronize()

    def context(self):
        return self.device

    def status(self):
        rt = self._cupy.cuda.runtime
        props = rt.getDeviceProperties(self.index)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else name
        return DeviceStatus(self.name, "cupy", True, version=self._cupy.__version__,
                            device_name=name, memory_bytes=int(props["totalGlobalMem"]))


def _cupy_or_reason():
    """(cupy module, None) when a CUDA device is usable, else (None, reason with a fix)."""
    try:
        import cupy
    except ImportError:
        return None, f"CuPy is not installed; {_INSTALL_HINT}"
    except Exception as exc:  # a broken CUDA install raises many things at import
        return None, f"CuPy failed to import ({exc}); check the CUDA driver, or {_INSTALL_HINT}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return None, f"CuPy found no usable CUDA driver or device ({exc})"
    if count == 0:
        return None, "CuPy found no CUDA device"
    return cupy, None


def make(arg=None):
    from bpgpu.errors import DeviceUnavailableError

    cupy, reason = _cupy_or_reason()
    if cupy is None:
        raise DeviceUnavailableError(reason)
    index = _parse_index(arg)
    count = cupy.cuda.runtime.getDeviceCount()
    if index >= count:
        raise DeviceUnavailableError(
            f"CUDA device {index} does not exist: CuPy sees {count} device(s), 0..{count - 1}"
        )
    return CupyBackend(cupy, index)


def _parse_index(arg):
    from bpgpu.errors import DeviceUnavailableError

    if arg is None:
        return 0
    if not arg.isdigit():
        raise DeviceUnavailableError(f"bad CUDA device index {arg!r}; use 'cuda' or 'cuda:N'")
    return int(arg)


def status():
    cupy, reason = _cupy_or_reason()
    if cupy is None:
        return [DeviceStatus("cuda", "cupy", False, reason)]
    return [make(str(i)).status() for i in range(cupy.cuda.runtime.getDeviceCount())]
