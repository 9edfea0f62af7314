"""The exceptions bpgpu raises on purpose; each message says what is wrong and how to fix it."""


class BpgpuError(Exception):
    """Base class of bpgpu's own errors."""


class DeviceUnavailableError(BpgpuError, RuntimeError):
    """The requested device spec names a backend that cannot run here."""


class DatasetError(BpgpuError, ValueError):
    """A dataset spec is unknown or its files are missing or malformed."""


class ModelFileError(BpgpuError, ValueError):
    """A model or checkpoint file is missing, truncated, corrupted or not a bpgpu file."""


class TrainingDiverged(BpgpuError, RuntimeError):
    """The loss became NaN or infinite; the network keeps its last finite weights.

    ``lr`` is the learning rate that diverged (or ``None``).
    """

    def __init__(self, message, lr=None):
        super().__init__(message)
        self.lr = lr


class DeviceOutOfMemory(BpgpuError, MemoryError):
    """The data or a batch did not fit in the device's memory; the message names the batch size."""
