"""Data-parallel training over MPI: 2 ranks match 1, and a dying rank ends the run."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

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
    (7, "momentum", "torch:cpu"), (7, "adam", "strict")])
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
