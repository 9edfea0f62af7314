"""PyTorch on the CPU or a CUDA GPU (``torch``, ``torch:cpu``, ``torch:cuda``, ``torch:cuda:N``)."""

from __future__ import annotations

from . import Backend, DeviceStatus
from .torch_ops import TorchOps

_ALLOCATION_FAILED = ("CUBLAS_STATUS_ALLOC_FAILED", "CUSOLVER_STATUS_ALLOC_FAILED",
                      "CUDA error: out of memory", "DefaultCPUAllocator: can't allocate memory")


class TorchBackend(Backend):
    library = "torch"

    def __init__(self, torch, device):
        import array_api_compat.torch as xp_torch

        super().__init__(xp_torch, torch.device(device))
        self._torch = torch
        self.ops = TorchOps(xp_torch, torch)
        self.is_gpu = self.device.type == "cuda"
        self.name = f"torch:{self.device.type}"
        if self.is_gpu:
            self.name += f":{self.device.index or 0}"
            self.device = torch.device("cuda", self.device.index or 0)

    def owns(self, x):
        return isinstance(x, self._torch.Tensor)

    def asarray(self, x, dtype=None):
        if isinstance(dtype, str):
            dtype = getattr(self._torch, dtype)
        if self.owns(x):
            return x.detach().to(device=self.device, dtype=dtype or x.dtype)
        from . import to_numpy

        host = to_numpy(x)
        if not host.flags.writeable:  # torch refuses to share read-only memory (memmaps)
            host = host.copy()
        return self._torch.as_tensor(host, dtype=dtype, device=self.device)

    def is_out_of_memory(self, exc):
        # The caching allocator raises torch.cuda.OutOfMemoryError; cuBLAS and other CUDA
        # libraries report a failed allocation of their own as a RuntimeError naming the status.
        return (isinstance(exc, (MemoryError, self._torch.cuda.OutOfMemoryError))
                or any(s in str(exc) for s in _ALLOCATION_FAILED))

    def synchronize(self, *arrays):
        if self.is_gpu:
            self._torch.cuda.synchronize(self.device)

    def status(self):
        torch = self._torch
        if not self.is_gpu:
            return DeviceStatus(self.name, "torch", True, version=torch.__version__,
                                device_name="CPU",
                                extra={"threads": torch.get_num_threads()})
        props = torch.cuda.get_device_properties(self.device)
        return DeviceStatus(self.name, "torch", True, version=torch.__version__,
                            device_name=props.name, memory_bytes=int(props.total_memory))


def _import():
    try:
        import torch
    except ImportError:
        return None
    return torch


def make(arg=None):
    from bpgpu.errors import DeviceUnavailableError

    torch = _import()
    if torch is None:
        raise DeviceUnavailableError("PyTorch is not installed; install bpgpu[torch]")
    if arg is None:
        arg = "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = arg.partition(":")
    if kind == "cpu" and not index:
        return TorchBackend(torch, "cpu")
    if kind != "cuda" or (index and not index.isdigit()):
        raise DeviceUnavailableError(
            f"bad torch device 'torch:{arg}'; use 'torch:cpu', 'torch:cuda' or 'torch:cuda:N'"
        )
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"PyTorch {torch.__version__} sees no CUDA device (a CPU-only build, or no GPU); "
            "use 'torch:cpu', or install a CUDA build of PyTorch"
        )
    n = torch.cuda.device_count()
    if int(index or 0) >= n:
        raise DeviceUnavailableError(
            f"CUDA device {index} does not exist: PyTorch sees {n} device(s), 0..{n - 1}"
        )
    return TorchBackend(torch, f"cuda:{index or 0}")


def status():
    torch = _import()
    if torch is None:
        return [DeviceStatus("torch:cpu", "torch", False, "not installed; install bpgpu[torch]"),
                DeviceStatus("torch:cuda", "torch", False, "not installed; install bpgpu[torch]")]
    rows = [make("cpu").status()]
    if torch.cuda.is_available():
        rows += [make(f"cuda:{i}").status() for i in range(torch.cuda.device_count())]
    else:
        rows.append(DeviceStatus("torch:cuda", "torch", False,
                                 "PyTorch sees no CUDA device (CPU-only build, or no GPU)",
                                 version=torch.__version__))
    return rows
