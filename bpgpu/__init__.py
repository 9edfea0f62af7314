"""bpgpu: the backpropagation algorithm written once against the Python Array API standard,
run on NumPy (CPU), CuPy (CUDA), PyTorch (CPU or CUDA), JAX (CPU, CUDA, TPU) or array-api-strict,
chosen at run time.

>>> import bpgpu
>>> net = bpgpu.MLP([64, 32, 10], device="cpu", seed=0)
>>> history = net.fit(X, y, epochs=10, batch_size=32, lr=0.01)     # doctest: +SKIP
"""

from . import schedules
from .errors import (
    BpgpuError,
    DatasetError,
    DeviceOutOfMemory,
    DeviceUnavailableError,
    ModelFileError,
    TrainingDiverged,
)
from .gradcheck import check_gradients
from .mlp import MLP, load
from .registry import default_spec, devices, get_backend
from .rules import register
from .training import EarlyStopping, StopTraining, Trainer, evaluate, fit

__version__ = "0.4.0"

__all__ = [
    "MLP",
    "BpgpuError",
    "DatasetError",
    "DeviceOutOfMemory",
    "DeviceUnavailableError",
    "EarlyStopping",
    "ModelFileError",
    "StopTraining",
    "Trainer",
    "TrainingDiverged",
    "check_gradients",
    "default_spec",
    "devices",
    "evaluate",
    "fit",
    "get_backend",
    "load",
    "register",
    "schedules",
]

