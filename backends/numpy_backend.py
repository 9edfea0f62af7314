"""NumPy on the CPU: the default backend and the reference for speed on the host."""

from __future__ import annotations

import array_api_compat.numpy as xp_numpy
import numpy as np

from . import Backend, DeviceStatus
from .numpy_ops import NumpyOps

_QUIET = {"over": "ignore", "invalid": "ignore", "divide": "ignore"}


class NumpyBackend(Backend):
    name = "cpu"
    library = "numpy"
    ops = NumpyOps(xp_numpy)

    def __init__(self):
        super().__init__(xp_numpy, "cpu")

    def owns(self, x):
        return isinstance(x, np.ndarray)

    def context(self):
        # Overflow to inf/NaN is detected explicitly (TrainingDiverged), not by warnings.
        return np.errstate(**_QUIET)

    def in_context(self, fn):
        return np.errstate(**_QUIET)(fn)  # as a decorator: half the cost of a with-block

    def status(self):
        return DeviceStatus("cpu", "numpy", True, version=np.__version__,
                            device_name=_cpu_name())


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def make(arg=None):
    from bpgpu.errors import DeviceUnavailableError

    if arg not in (None, "0"):
        raise DeviceUnavailableError(f"device 'cpu:{arg}' does not exist; use 'cpu'")
    return NumpyBackend()


def status():
    return [NumpyBackend().status()]
