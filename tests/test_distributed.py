"""Data-parallel training over MPI: 2 ranks match 1, and a dying rank ends the run."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import bpgpu

pytest.importorskip("mpi4py", reason="the mpi extra (mpi4py + an MPI) is not installed")
MPIEXEC = shutil.which("mpiexec") or shutil.which(os.path.join(os.path.dirname(sys.executable),
                                                               "mpiexec"))
if MPIEXEC is None:
    pytest.skip("no mpiexec on PATH", allow_module_level=True)

TRAIN = textwrap.dedent("""
    import sys
    import numpy as np
    from mpi4py import MPI
    import bpgpu

    out, batch, optimizer, fail, device = sys.argv[1:6]
    batch = batch if batch == "full" else int(batch)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 6)), rng.integers(0, 3, 50)
    net = bpgpu.MLP([6, 7, 3], device=device, dtype="float64", seed=4)
    comm = MPI.COMM_WORLD

    def maybe_fail(net, epoch, logs):
        if fail == "raise" and comm.Get_rank() == 1 and epoch == 2:
            raise RuntimeError("simulated failure")
        if fail == "exit" and comm.Get_rank() == 1 and epoch == 2:
            import os
            os._exit(7)

    hist = net.fit(X, y, epochs=3, batch_size=batch, lr=0.1, optimizer=optimizer, comm=comm,
                   callbacks=[maybe_fail])
    if comm.Get_rank() == 0:
        np.savez(out, *[net.backend.to_host(w) for pair in net.weights for w in pair],
                 loss=hist["loss"], accuracy=hist["accuracy"])
""")


def _mpirun(n, *args, timeout=120):
    return subprocess.run([MPIEXEC, "-n", str(n), *args], capture_output=True, text=True,
                          timeout=timeout)


def _single(batch, optimizer):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 6)), rng.integers(0, 3, 50)
    net = bpgpu.MLP([6, 7, 3], device="cpu", dtype="float64", seed=4)
    hist = net.fit(X, y, epochs=3, batch_size=batch, lr=0.1, optimizer=optimizer)
    return [w for pair in net.weights for w in pair], hist


@pytest.mark.parametrize("batch,optimizer,device", [
    (8, "sgd", "cpu"), (7, "adam", "cpu"), (1, "momentum", "cpu"), ("full", "sgd", "cpu"),
    (7, "momentum", "torch:cpu"), (7, "adam", "strict"), (7, "adam", "jax:cpu")])
def test_two_ranks_match_one_rank(tmp_path, batch, optimizer, device):
    try:
        bpgpu.get_backend(device)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(str(exc))
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    out = tmp_path / "w.npz"
    r = _mpirun(2, sys.executable, str(script), str(out), str(batch), optimizer, "none", device)
    assert r.returncode == 0, r.stderr
    got = np.load(out)
    want, hist = _single(batch if batch == "full" else int(batch), optimizer)
    for i, w in enumerate(want):  # batch 1: one rank's shard is empty in every step
        np.testing.assert_allclose(got[f"arr_{i}"], w, rtol=1e-12, atol=1e-14)
    # The epoch logs are over all ranks' rows, not rank 0's shard alone.
    np.testing.assert_allclose(got["loss"], hist["loss"], rtol=1e-10)
    np.testing.assert_allclose(got["accuracy"], hist["accuracy"], rtol=1e-12)


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_rank_that_dies_ends_the_run(tmp_path, how):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    r = _mpirun(2, sys.executable, str(script), str(tmp_path / "w.npz"), "8", "sgd", how,
                "cpu", timeout=60)  # a hang would raise TimeoutExpired and fail the test
    assert r.returncode != 0
    assert not (tmp_path / "w.npz").exists()
    if how == "raise":
        assert "error on rank 1 of 2: simulated failure" in r.stderr


def test_cli_distributed_reports_ranks_and_path(tmp_path):
    model = tmp_path / "net.npz"
    bpgpu_cmd = [sys.executable, "-m", "bpgpu"]
    r = _mpirun(2, *bpgpu_cmd, "train", "--distributed", "--device", "cpu", "--epochs", "2",
                "--json", "--save", str(model))
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # rank 0 alone reports
    summary = json.loads(lines[0])
    assert summary["ranks"] == 2 and summary["allreduce"] == "mpi-host"
    assert bpgpu.load(model).sizes == [64, 32, 10]


# -- which GPU a rank takes, and when NCCL carries the all-reduce (no GPU needed) ---------------

class _Host:
    def __init__(self, rank):
        self.rank, self.freed = rank, False

    def Get_rank(self):
        return self.rank

    def Free(self):
        self.freed = True


class _Comm:
    """A stand-in communicator: its host split and the other ranks' allgather answers."""

    def __init__(self, local=0, others=()):
        self.local, self.others, self.hosts = local, list(others), []

    def Split_type(self, kind):
        self.hosts.append(_Host(self.local))
        return self.hosts[-1]

    def allgather(self, mine):
        return [mine, *self.others]


def test_local_rank_frees_the_host_communicator_it_makes():
    from bpgpu.distributed import local_rank

    comm = _Comm(local=1)
    assert local_rank(comm) == 1
    assert [h.freed for h in comm.hosts] == [True]


@pytest.mark.parametrize("local,first,visible,want", [
    (0, 0, 2, "cuda:0"), (1, 0, 2, "cuda:1"),
    (2, 0, 2, "cuda:0"),  # more ranks than GPUs: wrap around
    (1, 0, 1, "cuda:0"),  # one GPU, or CUDA_VISIBLE_DEVICES set per rank by the launcher
    (1, 1, 2, "cuda:0"),  # bench: from the GPU named, wrapping around
])
def test_rank_gpu_wraps_around_the_visible_gpus(monkeypatch, local, first, visible, want):
    from bpgpu import distributed

    monkeypatch.setattr(distributed, "_visible_gpus", lambda prefix: visible)
    assert distributed.rank_gpu(_Comm(local=local), "cuda", first=first) == want


def test_visible_gpus_counts_the_devices_a_spec_opens(monkeypatch):
    from bpgpu import distributed, registry

    def get_backend(spec):
        if int(spec.rsplit(":", 1)[1]) >= 3:
            raise bpgpu.DeviceUnavailableError("no such device")

    monkeypatch.setattr(registry, "get_backend", get_backend)
    assert distributed._visible_gpus("torch:cuda") == 3


NCCL_MISSING = """
import warnings
warnings.warn("nccl library could not be loaded.")  # what CuPy says when libnccl is missing
available = False
"""
NCCL_PRESENT = "available = True\n"


@pytest.fixture
def fake_cupy(tmp_path, monkeypatch):
    """A stand-in ``cupy`` package, with ``cupy.cuda.nccl`` from source; forgotten afterwards."""
    def make(nccl_source):
        (tmp_path / "cupy" / "cuda").mkdir(parents=True)
        (tmp_path / "cupy" / "__init__.py").write_text("")
        (tmp_path / "cupy" / "cuda" / "__init__.py").write_text(
            "from types import SimpleNamespace\n"
            "runtime = SimpleNamespace(deviceGetPCIBusId=lambda i: f'0000:{i:02x}:00.0')\n")
        (tmp_path / "cupy" / "cuda" / "nccl.py").write_text(nccl_source)
        monkeypatch.syspath_prepend(str(tmp_path))

    before = set(sys.modules)
    yield make
    for name in set(sys.modules) - before:
        if name.split(".")[0] == "cupy":
            del sys.modules[name]


class _CupyBackend:
    library = "cupy"

    def __init__(self, index=0):
        self.device = type("Device", (), {"id": index})()


def test_a_missing_libnccl_means_no_nccl_even_with_warnings_as_errors(fake_cupy):
    from bpgpu.distributed import _nccl_for

    fake_cupy(NCCL_MISSING)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as pyproject's filterwarnings does in the tests
        assert _nccl_for(_CupyBackend()) is None


def test_nccl_only_when_every_rank_has_it_and_a_gpu_of_its_own(fake_cupy):
    import socket

    from bpgpu.distributed import _nccl_for_all

    fake_cupy(NCCL_PRESENT)
    host = socket.gethostname()
    backend = _CupyBackend(0)
    assert _nccl_for_all(_Comm(others=[(True, host, "0000:01:00.0")]), backend) is not None
    assert _nccl_for_all(_Comm(others=[(True, host, "0000:00:00.0")]), backend) is None
    assert _nccl_for_all(_Comm(others=[(False, host, "0000:01:00.0")]), backend) is None
    assert _nccl_for_all(_Comm(others=[(True, "other-host", "0000:00:00.0")]),
                         backend) is not None
    assert _nccl_for_all(_Comm(), bpgpu.get_backend("cpu")) is None  # no collective at all


@pytest.mark.parametrize("spec,library,want", [
    ("cuda", "cupy", "cuda:R"), ("gpu", "cupy", "cuda:R"), (None, "cupy", "cuda:R"),
    ("torch", "torch", "torch:cuda:R"), ("torch:cuda", "torch", "torch:cuda:R"),
    ("jax", "jax", "jax:cuda:R"), ("jax:cuda", "jax", "jax:cuda:R"),
    ("jax:gpu", "jax", "jax:cuda:R"),
    ("cuda:1", "cupy", "cuda:1"), ("torch:cuda:1", "torch", "torch:cuda:1"),
    ("jax:cuda:1", "jax", "jax:cuda:1")])
def test_a_gpu_spec_without_an_index_means_the_ranks_gpu_of_its_library(monkeypatch, spec,
                                                                        library, want):
    from bpgpu import distributed
    from bpgpu.cli import train as command

    class Fake:
        is_gpu = True

        def __init__(self, name):
            self.name, self.library = name, library

    monkeypatch.setattr(command, "get_backend", lambda s: Fake(s))
    monkeypatch.setattr(distributed, "rank_gpu", lambda comm, prefix: f"{prefix}:R")
    assert command._rank_backend(spec, comm=object()).name == want
