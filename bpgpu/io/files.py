"""Files bpgpu writes: checked before the work that fills them, written so that an interrupted
write never leaves a broken file where a good one was.

A regular file (new, or behind symbolic links) is written to a temporary file in its own folder
and renamed over it. Anything else that already stands at the path - a device such as
``/dev/null``, a FIFO, a process's open file such as ``/dev/stdout`` - is written straight
through: renaming over it would destroy it.
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path

# A name ``.<file>.<random>.tmp`` beside the target; this many taken names in a row is no accident.
_TEMP_TRIES = 100

_FIXES = {
    errno.ENOSPC: "free space or write elsewhere",
    getattr(errno, "EDQUOT", -1): "free space within your quota or write elsewhere",
    errno.EFBIG: "the file system (or `ulimit -f`) caps file sizes; write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EPIPE: "what reads it stopped reading",
    errno.ELOOP: "a symbolic link on the way loops; fix the link or write elsewhere",
}


def check_writable(path):
    """Fail before training, not after the first epoch, when ``path`` cannot be written.

    Raises
    ------
    ValueError
        When ``path`` is a folder, a socket or in a folder that is missing or not writable, or
        when it is a device or FIFO this process may not write.
    """
    path = Path(path)
    try:
        through, real, _ = _plan(path)
    except OSError as exc:
        raise _named(exc, path, None) from exc
    where = path if through else real.parent
    mode = os.W_OK if through else os.W_OK | os.X_OK  # a file is made in a folder it can enter
    # The ids the write will use: they differ from the real ones under setuid or seteuid.
    if not os.access(where, mode, effective_ids=os.access in os.supports_effective_ids):
        raise ValueError(f"cannot write {path}: {where} is not writable; "
                         f"change its permissions or write elsewhere")


def atomic_write(path, write):
    """Call ``write(file)`` on a binary file and leave the result at ``path``.

    A regular file is written to a temporary file in its folder, flushed to disk and renamed
    over the old one, so that ``path`` holds the old content or the new, never part of it; it
    keeps the old file's mode (a new one gets ``0o666`` less the umask, as ``open`` gives). A
    symbolic link stays a link: the file it points to is the one replaced. A device, FIFO or
    open file (``/dev/null``, ``/dev/stdout``) is written straight through and left in place.

    Raises
    ------
    ValueError
        When ``path`` is a folder or a socket, or its folder does not exist.
    OSError
        The same kind of error, in one line naming ``path`` and what to do.
    """
    path = Path(path)
    folder = None  # where a permission error lies: the folder the temporary file goes in
    try:
        through, real, st = _plan(path)
        if through:
            _write_through(path, st, write)
        else:
            folder = real.parent
            _replace(real, st, write)
    except OSError as exc:
        raise _named(exc, path, folder) from exc


def _plan(path):
    """How to write ``path``: ``(through, real, st)``.

    ``through`` is true for what must be written where it stands; ``real`` is ``path`` with its
    links followed, the file a rename replaces; ``st`` is what stands there (None: nothing).
    """
    try:
        st = os.stat(path)  # follows links: /dev/stdout is decided by what fd 1 is
    except (FileNotFoundError, NotADirectoryError):
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{path} is a folder; give a file name such as "
                         f"{path / 'model.safetensors'}")
    if st is not None and stat.S_ISSOCK(st.st_mode):
        raise ValueError(f"cannot write {path}: it is a socket; give a file name")
    if _opened_file(path):
        if st is None:
            raise ValueError(f"cannot write {path}: it names no open file; give a file name")
        return True, path, st
    if st is not None and not stat.S_ISREG(st.st_mode):
        return True, path, st
    real = Path(os.path.realpath(path))
    if not real.parent.is_dir():
        state = "is not a folder" if real.parent.exists() else "does not exist"
        raise ValueError(f"cannot write {path}: the folder {real.parent} {state}")
    return False, real, st


def _opened_file(path):
    """Whether ``path``'s links lead into ``/proc``, as ``/dev/stdout`` does (``/proc/self/fd/1``).

    Such a link names a file some process holds open - a terminal, a pipe, or a regular file
    the shell's ``>`` opened - which must be written through even when it is a regular file:
    renaming over it would cut ``>>`` short and leave the shell's descriptor on a deleted file.
    """
    for _ in range(40):  # the kernel's own limit on links followed
        if os.path.realpath(os.path.dirname(path) or ".").startswith("/proc/"):
            return True
        if not os.path.islink(path):
            return False
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    return False


def _write_through(path, st, write):
    """Write into what stands at ``path``: opened, never created, renamed or truncated.

    The bytes are made in memory first, since writers may seek or ask their position
    (``np.save``, PDF plots) and a pipe allows neither; and a writer that fails leaves the
    device or FIFO unopened.
    """
    data = io.BytesIO()
    write(data)
    flags = os.O_WRONLY | getattr(os, "O_NOCTTY", 0)
    if stat.S_ISREG(st.st_mode):  # stdout sent to a file: after what `>>` kept, not over it
        flags |= os.O_APPEND
    with open(os.open(path, flags), "wb") as f:
        f.write(data.getbuffer())
        f.flush()  # no fsync: a pipe or terminal refuses it (EINVAL)


def _replace(real, st, write):
    """Write a temporary file beside ``real``, sync it and rename it over ``real``."""
    fd, tmp = _create_beside(real)
    try:
        with open(fd, "wb") as f:
            if st is not None:
                _keep_owner_and_mode(tmp, st)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, real)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def _create_beside(real):
    """A new empty file next to ``real``, opened for writing: ``(fd, name)``.

    Made with mode ``0o666`` for the kernel to apply the umask (or the folder's default ACL) as
    for any new file; ``tempfile.mkstemp`` would fix it at ``0o600``.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_TEMP_TRIES):
        tmp = real.with_name(f".{real.name}.{secrets.token_hex(4)}.tmp")
        with suppress(FileExistsError):
            return os.open(tmp, flags, 0o666), tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(real.parent))


def _keep_owner_and_mode(tmp, st):
    """Give the replacement the old file's mode, and its owner where allowed (root, or a
    group the user is in), so that a shared model stays readable to those it was shared with.
    Done before any byte is written: a 0600 file's content is never readable to others."""
    if hasattr(os, "chown"):
        with suppress(PermissionError):  # not root: only groups the user is in are allowed
            os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits


def _named(exc, path, folder):
    """``exc`` as the same kind of error in one line naming ``path`` (not the temporary file)
    and what to do about it."""
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM):
        where = folder if folder is not None else path
        fix = f"{where} is not writable for you; change its permissions or write elsewhere"
    else:
        fix = _FIXES.get(exc.errno, "check the path or write elsewhere")
    message = f"cannot write {path}: {reason}; {fix}"
    try:
        named = type(exc)(message)  # PermissionError stays one; BrokenPipeError too (cli.py)
    except TypeError:  # a subclass that wants other arguments
        named = OSError(message)
    named.errno = exc.errno  # for callers that test it; str() stays the message
    return named
