"""The device registry: a device spec string to a backend.

Specs: ``"auto"`` (the default: a CUDA GPU when one is usable, else the CPU), ``"cpu"``
(NumPy), ``"cuda"`` / ``"cuda:N"`` / ``"gpu"`` (CuPy), ``"torch"`` (PyTorch on CUDA when usable,
else its CPU), ``"torch:cpu"``, ``"torch:cuda[:N]"``, ``"jax"`` (JAX's default device),
``"jax:cpu"``, ``"jax:cuda[:N]"`` (alias ``"jax:gpu[:N]"``), ``"jax:tpu[:N]"``, ``"strict"``
(array-api-strict). The environment variable ``BPGPU_DEVICE`` replaces the default ``"auto"``.
Other packages add backends through the entry-point group ``bpgpu.backends``: the entry-point name
is the spec prefix and its value a module with ``make(arg)`` and ``status()`` (see
:mod:`bpgpu.backends`).
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
from importlib.metadata import entry_points

from .backends import Backend, DeviceStatus
from .errors import DeviceUnavailableError

_BUILTIN = {
    "cpu": "bpgpu.backends.numpy_backend",
    "numpy": "bpgpu.backends.numpy_backend",
    "cuda": "bpgpu.backends.cupy_backend",
    "gpu": "bpgpu.backends.cupy_backend",
    "cupy": "bpgpu.backends.cupy_backend",
    "torch": "bpgpu.backends.torch_backend",
    "strict": "bpgpu.backends.strict_backend",
    "jax": "bpgpu.backends.jax_backend",
}
_LISTED = ["cpu", "strict", "torch", "jax", "cuda"]
COMPILING_DEVICES = "jax, jax:cpu, jax:cuda[:N], jax:tpu[:N]"
"""The built-in devices that compile steps and epochs (for error messages)."""


@functools.cache
def _plugins():
    return {ep.name: ep for ep in entry_points(group="bpgpu.backends")}


def _module(prefix):
    if prefix in _BUILTIN:
        return importlib.import_module(_BUILTIN[prefix])
    ep = _plugins().get(prefix)
    if ep is None:
        known = ", ".join(["auto", "cpu", "cuda[:N]", "gpu", "torch[:cpu|:cuda[:N]]",
                           "jax[:cpu|:cuda[:N]|:tpu[:N]]", "strict"]
                          + sorted(_plugins()))
        raise DeviceUnavailableError(f"unknown device {prefix!r}; known devices: {known}")
    try:
        return ep.load()
    except Exception as exc:
        raise DeviceUnavailableError(
            f"the backend plugin {prefix!r} failed to load: {exc}") from exc


def default_spec() -> str:
    """The device used when none is given: ``$BPGPU_DEVICE`` or ``"auto"``."""
    return os.environ.get("BPGPU_DEVICE", "").strip() or "auto"


def get_backend(spec=None) -> Backend:
    """The backend for a device spec (or a Backend, returned as is).

    Raises
    ------
    DeviceUnavailableError
        The spec is unknown, or its library or device is not usable here; the message says why
        and how to fix it.
    """
    if isinstance(spec, Backend):
        return spec
    if spec is None:
        spec = default_spec()
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {spec!r}")
    return _resolve(spec.strip().lower())


@functools.cache
def _resolve(spec):
    if spec in ("", "auto"):
        return _auto()
    prefix, _, arg = spec.partition(":")
    return _module(prefix).make(arg or None)


def _auto():
    if not _nvidia_driver_present():
        return _resolve("cpu")
    for spec in ("cuda", "torch:cuda"):
        try:
            return _resolve(spec)
        except DeviceUnavailableError:
            pass
    return _resolve("cpu")


def _nvidia_driver_present():
    """A cheap look for an NVIDIA driver, so ``auto`` on a CPU-only host imports no GPU library."""
    if os.name == "nt":
        return shutil.which("nvidia-smi") is not None
    return os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")


def devices() -> list[DeviceStatus]:
    """Every known backend, usable or not, with the reason, version and device where known."""
    rows = []
    for prefix in _LISTED + sorted(set(_plugins()) - set(_BUILTIN)):
        try:
            rows.extend(_module(prefix).status())
        except Exception as exc:  # a broken plugin must not hide the others
            rows.append(DeviceStatus(prefix, prefix, False, f"status failed: {exc}"))
    return rows
