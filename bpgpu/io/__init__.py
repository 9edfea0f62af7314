"""Model state in and out: safetensors model files and checkpoints, the 0.1.0 zip reader, and the
files bpgpu writes.

:mod:`~bpgpu.io.modelfile` writes and reads model files (:func:`save`, :func:`load`,
:func:`read`, :func:`write`), :mod:`~bpgpu.io.metadata` checks what a file says before anything
uses it, :mod:`~bpgpu.io.zipformat` reads bpgpu 0.1.0's files, :mod:`~bpgpu.io.checkpoint` writes
and resumes checkpoints, and :mod:`~bpgpu.io.files` writes any file safely.
"""

from .files import atomic_write, check_writable
from .modelfile import FORMAT, MAX_HEADER_BYTES, VERSION, load, read, save, write

__all__ = ["FORMAT", "MAX_HEADER_BYTES", "VERSION", "atomic_write", "check_writable", "load",
           "read", "save", "write"]
