"""array-api-strict on the CPU: the conformance backend (proof bpgpu uses only the standard)."""

from __future__ import annotations

from . import Backend, DeviceStatus


class StrictBackend(Backend):
    name = "strict"
    library = "array_api_strict"

    def __init__(self, xp):
        super().__init__(xp, None)

    def owns(self, x):
        return type(x).__module__.startswith("array_api_strict")

    def status(self):
        return DeviceStatus("strict", "array_api_strict", True, version=self.xp.__version__,
                            device_name="CPU (conformance checking)")

    def context(self):
        import numpy as np

        # array-api-strict computes with NumPy: overflow is detected explicitly, not by warnings.
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def _import():
    import array_api_strict

    return array_api_strict


def make(arg=None):
    from bpgpu.errors import DeviceUnavailableError

    if arg is not None:
        raise DeviceUnavailableError(f"device 'strict:{arg}' does not exist; use 'strict'")
    try:
        return StrictBackend(_import())
    except ImportError:
        raise DeviceUnavailableError(
            "array-api-strict is not installed; install bpgpu[test] or array-api-strict"
        ) from None


def status():
    try:
        xp = _import()
    except ImportError:
        return [DeviceStatus("strict", "array_api_strict", False,
                             "not installed; install bpgpu[test]")]
    return [StrictBackend(xp).status()]
