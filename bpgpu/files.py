"""Files bpgpu writes: checked before the work that fills them, written so that an interrupted
write never leaves a broken file where a good one was."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def check_writable(path):
    """Fail before training, not after the first epoch, when ``path`` cannot be written."""
    path = Path(path)
    if path.is_dir() or not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: give a file name in an existing folder")


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name such as "
                         f"{path / 'model.safetensors'}")
    if not path.parent.exists():
        raise ValueError(f"cannot write {path}: the folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress_os_error():
            os.unlink(tmp)
        raise


class _suppress_os_error:
    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        return kind is not None and issubclass(kind, OSError)


