"""Device backends: one module per array library, the same small surface in each.

Installed as ``bpgpu.backends``. Every backend module exposes

``make(arg)``
    a :class:`Backend` for the part of the device spec after the prefix (``None``, ``"1"``,
    ``"cuda:0"``, ...), or raise :class:`bpgpu.errors.DeviceUnavailableError` saying why not;
``status()``
    a list of :class:`DeviceStatus` rows for ``bpgpu.devices()``.

Third-party backends provide the same two functions in a module registered under the
entry-point group ``bpgpu.backends`` (the entry-point name is the spec prefix).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DeviceStatus:
    """One row of ``bpgpu.devices()``: a device spec and whether it can run here."""

    spec: str
    library: str
    available: bool
    reason: str = ""
    version: str | None = None
    device_name: str | None = None
    memory_bytes: int | None = None
    extra: dict = field(default_factory=dict)


class Backend:
    """What bpgpu needs from an array library on one device.

    Attributes
    ----------
    name : str
        Canonical device spec, e.g. ``"cpu"``, ``"cuda:0"``, ``"torch:cpu"``.
    library : str
        The array library's import name.
    xp : module
        The Array API namespace for this library.
    device : object
        The library's device object, passed as ``device=`` to creation functions.
    is_gpu : bool
        True when arrays live in GPU memory.
    """

    name = "abstract"
    library = "none"
    is_gpu = False

    def __init__(self, xp, device=None):
        self.xp = xp
        self.device = device

    def __repr__(self):
        return f"<bpgpu backend {self.name!r}>"

    def asarray(self, x, dtype=None):
        """Move host data (NumPy, lists, or this library's arrays) to the device, cast to dtype."""
        if isinstance(dtype, str):
            dtype = getattr(self.xp, dtype)
        if not self.owns(x):
            x = to_numpy(x)
        with self.context():
            return self.xp.asarray(x, dtype=dtype, device=self.device)

    def owns(self, x) -> bool:
        """Whether ``x`` is already an array of this backend's library."""
        return False

    def to_host(self, x) -> np.ndarray:
        """A NumPy copy (or view, on the CPU) of a device array."""
        return to_numpy(x)

    def synchronize(self):
        """Wait until queued device work has finished (a no-op on the CPU)."""

    def context(self):
        """A context manager that makes this device current (needed by CuPy for ``cuda:N``)."""
        return contextlib.nullcontext()

    def status(self) -> DeviceStatus:
        """This backend's row in ``bpgpu.devices()``."""
        raise NotImplementedError

    def is_out_of_memory(self, exc) -> bool:
        """Whether ``exc`` is this library's out-of-memory error."""
        return isinstance(exc, MemoryError)

    kernels = None
    """Optional fast paths (a :class:`bpgpu.kernels.Kernels` subclass); ``None`` means the
    Array API reference."""


def to_numpy(x) -> np.ndarray:
    """Any supported array (NumPy, CuPy, PyTorch, array-api-strict, lists) as a NumPy array."""
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "cupy":
        return x.get()
    if module == "torch":
        return x.detach().cpu().numpy()
    if hasattr(x, "__dlpack__") and not isinstance(x, np.generic):
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError):
            pass
    return np.asarray(x)
