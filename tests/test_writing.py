"""Writing files: devices, FIFOs and /dev/stdout written through, never replaced; links followed;
the usual file modes; errors that name the file asked for (bpgpu.io.files)."""

import errno
import io
import os
import socket
import stat
import subprocess
import sys
import threading
from contextlib import contextmanager, suppress

import numpy as np
import pytest

import bpgpu
from bpgpu.cli import main
from bpgpu.io import files
from bpgpu.io.files import atomic_write, check_writable


def _write(data):
    return lambda f: f.write(data)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def _null_twin(path):
    """A character device like /dev/null (1, 3) at ``path``; skips where none can be made."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.close(os.open(path, os.O_WRONLY))  # a nodev mount or a device cgroup refuses this
    except (OSError, AttributeError) as exc:
        pytest.skip(f"cannot make and open a device node here: {exc}")
    return path


@contextmanager
def _fifo_read(path):
    """A thread reading the FIFO at ``path`` while the block runs; yields the list it fills."""
    got = []
    reader = threading.Thread(target=lambda: got.append(path.read_bytes()), daemon=True)
    reader.start()
    try:
        yield got
    finally:
        reader.join(timeout=5)  # the writer came and went: the reader finishes by itself
        if reader.is_alive():  # the writer never came: open and close the write end to free it
            with suppress(OSError), os.fdopen(os.open(path, os.O_WRONLY | os.O_NONBLOCK), "wb"):
                pass
            reader.join(timeout=30)
    assert not reader.is_alive()


@pytest.fixture
def umask():
    """Set the process's umask in a test; the old one comes back afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


# -- what stands at the path is written through, never replaced ---------------------------------

def test_a_fifo_is_written_through_and_stays_a_fifo(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    check_writable(fifo)  # accepted, and without opening it (which would wait for a reader)
    with _fifo_read(fifo) as got:
        atomic_write(fifo, lambda f: np.save(f, np.arange(4.0), allow_pickle=False))
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got[0].startswith(b"\x93NUMPY")  # np.save, which seeks on files, reached a pipe
    assert _leftovers(tmp_path) == []


def test_a_device_is_written_through_and_stays_a_device(tmp_path):
    null = _null_twin(tmp_path / "null")
    check_writable(null)
    atomic_write(null, _write(b"into the void"))
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert os.stat(null).st_rdev == os.makedev(1, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_links_to_a_fifo_or_a_device_are_written_through(tmp_path):
    """``/dev/stdout`` is a link; what it leads to decides, and the link stays."""
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "to-pipe").symlink_to("pipe")
    with _fifo_read(tmp_path / "pipe") as got:
        atomic_write(tmp_path / "to-pipe", _write(b"a,b\n1,2\n"))
    assert got == [b"a,b\n1,2\n"]
    assert (tmp_path / "to-pipe").is_symlink()
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)
    null = _null_twin(tmp_path / "null")
    (tmp_path / "to-null").symlink_to(null)
    atomic_write(tmp_path / "to-null", _write(b"x"))
    assert (tmp_path / "to-null").is_symlink() and stat.S_ISCHR(os.stat(null).st_mode)
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="no /proc/self/fd here")
def test_an_open_file_behind_proc_fd_is_appended_to_not_replaced(tmp_path):
    """``--out /dev/stdout >> log``: the log the shell opened gains the output, same file."""
    log = tmp_path / "log.csv"
    log.write_bytes(b"before\n")
    inode = os.stat(log).st_ino
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        (tmp_path / "stdout").symlink_to(f"/proc/self/fd/{fd}")
        atomic_write(tmp_path / "stdout", _write(b"after\n"))
    finally:
        os.close(fd)
    assert log.read_bytes() == b"before\nafter\n" and os.stat(log).st_ino == inode
    assert (tmp_path / "stdout").is_symlink() and _leftovers(tmp_path) == []


def test_a_socket_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a short relative name: socket paths are limited to ~100 bytes
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind("sock")
        for call in (check_writable, lambda p: atomic_write(p, _write(b"x"))):
            with pytest.raises(ValueError, match="cannot write sock: it is a socket"):
                call("sock")
        assert stat.S_ISSOCK(os.stat("sock").st_mode)


# -- links to regular files: the file behind is replaced, the link stays -------------------------

def test_a_link_to_a_regular_file_replaces_the_file_and_stays_a_link(tmp_path):
    (tmp_path / "store").mkdir()
    real = tmp_path / "store" / "m.bin"
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = tmp_path / "m.bin"
    link.symlink_to("store/m.bin")
    check_writable(link)
    atomic_write(link, _write(b"new"))
    assert link.is_symlink() and os.readlink(link) == "store/m.bin"
    assert real.read_bytes() == b"new" and stat.S_IMODE(os.stat(real).st_mode) == 0o640
    assert _leftovers(tmp_path) == [] and _leftovers(tmp_path / "store") == []


def test_a_dangling_link_gets_its_file_made(tmp_path):
    (tmp_path / "store").mkdir()
    link = tmp_path / "m.bin"
    link.symlink_to(tmp_path / "store" / "m.bin")
    atomic_write(link, _write(b"new"))
    assert link.is_symlink() and (tmp_path / "store" / "m.bin").read_bytes() == b"new"


# -- modes ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_umasks_mode(tmp_path, umask, mask, mode):
    umask(mask)
    atomic_write(tmp_path / "m.bin", _write(b"new"))
    assert stat.S_IMODE(os.stat(tmp_path / "m.bin").st_mode) == mode


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o644, 0o444])
def test_an_overwritten_file_keeps_its_mode(tmp_path, umask, mode):
    umask(0o022)
    path = tmp_path / "m.bin"
    path.write_bytes(b"old")
    path.chmod(mode)
    atomic_write(path, _write(b"new"))
    assert path.read_bytes() == b"new" and stat.S_IMODE(os.stat(path).st_mode) == mode


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_root_overwriting_keeps_the_owner(tmp_path):
    path = tmp_path / "m.bin"
    path.write_bytes(b"old")
    os.chown(path, 65534, 65534)
    atomic_write(path, _write(b"new"))
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (65534, 65534)


# -- through the command line --------------------------------------------------------------------

@pytest.fixture
def model_and_csv(tmp_path):
    model, csv = tmp_path / "m.safetensors", tmp_path / "x.csv"
    bpgpu.MLP([3, 4, 2], seed=0).save(model)
    np.savetxt(csv, np.random.default_rng(0).uniform(0, 1, (5, 3)), delimiter=",")
    return str(model), str(csv)


def _predict_args(model_and_csv, out):
    model, csv = model_and_csv
    return ["predict", "--device", "cpu", "--model", model, "--input", csv, "--out", str(out)]


def test_predict_out_a_device_leaves_the_device(tmp_path, model_and_csv):
    null = _null_twin(tmp_path / "null")
    assert main(_predict_args(model_and_csv, null)) == 0
    assert stat.S_ISCHR(os.stat(null).st_mode) and _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["pipe", "pipe.npy"])
def test_predict_out_a_fifo_reaches_its_reader(tmp_path, model_and_csv, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    with _fifo_read(fifo) as got:
        assert main(_predict_args(model_and_csv, fifo)) == 0
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    if name.endswith(".npy"):
        assert np.load(io.BytesIO(got[0])).shape == (5, 2)
    else:
        assert got[0].startswith(b"label,") and got[0].count(b"\n") == 6


@pytest.mark.skipif(not os.path.exists("/dev/stdout"), reason="no /dev/stdout here")
def test_predict_out_dev_stdout_in_a_pipe_and_appended_to_a_file(tmp_path, model_and_csv):
    command = [sys.executable, "-m", "bpgpu", *_predict_args(model_and_csv, "/dev/stdout")]
    env = {**os.environ, "BPGPU_DEVICE": ""}
    r = subprocess.run(command, capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"label,") and r.stdout.count(b"\n") == 6
    log = tmp_path / "log.csv"
    log.write_bytes(b"before\n")
    with open(log, "ab") as out:  # the shell's `>> log.csv`
        r = subprocess.run(command, stdout=out, stderr=subprocess.PIPE, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert log.read_bytes().startswith(b"before\nlabel,") and _leftovers(tmp_path) == []


# -- errors name the file asked for, and leave no temporary file ---------------------------------

@pytest.mark.parametrize(("code", "fix"), [(errno.ENOSPC, "free space or write elsewhere"),
                                           (errno.EFBIG, "caps file sizes"),
                                           (errno.EROFS, "read-only; write elsewhere")])
def test_write_errors_name_the_target_and_what_to_do(tmp_path, code, fix):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"old")

    def full(f):
        f.write(b"partial")
        raise OSError(code, os.strerror(code))

    with pytest.raises(OSError) as caught:
        atomic_write(path, full)
    message = str(caught.value)
    assert message == f"cannot write {path}: {os.strerror(code)}; " + message.split("; ", 1)[1]
    assert fix in message and ".tmp" not in message and "\n" not in message
    assert caught.value.errno == code
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_a_folder_that_refuses_the_temporary_file_is_named(tmp_path, monkeypatch):
    def refuse(real):
        raise PermissionError(errno.EACCES, "Permission denied", str(real) + ".abc.tmp")

    monkeypatch.setattr(files, "_create_beside", refuse)
    with pytest.raises(PermissionError) as caught:
        atomic_write(tmp_path / "m.bin", _write(b"x"))
    assert str(caught.value) == (f"cannot write {tmp_path / 'm.bin'}: Permission denied; "
                                 f"{tmp_path} is not writable for you; change its permissions "
                                 f"or write elsewhere")


def test_a_read_only_folder_is_refused_before_and_named_during(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user (root) can write a 0o500 folder")
        with pytest.raises(ValueError, match=f"{folder} is not writable"):
            check_writable(folder / "m.bin")
        with pytest.raises(PermissionError, match=f"^cannot write {folder / 'm.bin'}: "):
            atomic_write(folder / "m.bin", _write(b"x"))
    finally:
        folder.chmod(0o700)


def test_check_writable_refuses_a_folder_not_writable(tmp_path, monkeypatch):
    """The check itself, for root too, who may write anywhere."""
    monkeypatch.setattr(files.os, "access", lambda path, mode, **how: False)
    with pytest.raises(ValueError, match=f"^cannot write {tmp_path / 'm.bin'}: {tmp_path} is"):
        check_writable(tmp_path / "m.bin")


# -- kept as they were ---------------------------------------------------------------------------

def test_a_folder_or_a_missing_folder_is_an_error(tmp_path):
    for call in (check_writable, lambda p: atomic_write(p, _write(b"x"))):
        with pytest.raises(ValueError, match="is a folder"):
            call(tmp_path)
        with pytest.raises(ValueError, match="does not exist"):
            call(tmp_path / "missing" / "m.bin")
        (tmp_path / "file").write_bytes(b"")
        with pytest.raises(ValueError, match="is not a folder"):
            call(tmp_path / "file" / "m.bin")


def test_an_interrupted_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "m.bin"
    path.write_bytes(b"old")

    def interrupted(f):
        f.write(b"half of the new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []
