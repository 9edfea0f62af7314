"""``bpgpu bench --distributed``: the records of a tiny scaling run, the efficiency computed from
them, the message when MPI is missing, and a hung mpiexec ended by its timeout. No assertion here
depends on how fast anything ran."""

import json
import os
import sys
import time
import uuid

import pytest
from bpgpu.benchmarks import bench, envinfo, measure, scaling

TINY = ["--distributed", "--devices", "cpu", "--nets", "4,8,3", "--batch-sizes", "16",
        "--repeats", "2", "--target-s", "0.01", "--retries", "0", "--ranks", "2"]

needs_mpi = pytest.mark.skipif(scaling.mpi_missing() is not None,
                               reason="the mpi extra (mpi4py + mpiexec) is not installed")


def test_parse_ranks():
    assert scaling.parse_ranks("2") == [1, 2]
    assert scaling.parse_ranks("3") == [1, 2, 3]
    assert scaling.parse_ranks("4,2") == [1, 2, 4]  # 1 rank is the base of the efficiency
    for bad in ("0", "-1", "two", "", "1.5"):
        with pytest.raises(ValueError, match="bad --ranks"):
            scaling.parse_ranks(bad)


def test_bad_ranks_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main([*TINY, "--ranks", "0"])
    assert exc.value.code == 2
    assert "bad --ranks '0'" in capsys.readouterr().err


def test_missing_mpiexec_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setattr(scaling.shutil, "which", lambda *args, **kwargs: None)
    assert bench.main(TINY) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--distributed needs" in err and "pip install 'bpgpu[mpi]'" in err


@needs_mpi
def test_tiny_scaling_run_writes_records_with_the_efficiency(tmp_path, capsys):
    out = tmp_path / "dp.json"
    assert bench.main([*TINY, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    env, records = doc["env"], doc["records"]
    assert set(envinfo.ENV_KEYS) <= set(env)
    assert env["mpi"]["mpiexec"] and env["mpi"]["library"]
    assert [r["ranks"] for r in records] == [1, 2]
    for r in records:
        assert set(measure.RECORD_FIELDS) <= set(r) and set(scaling.DP_FIELDS) <= set(r)
        assert r["error"] is None, r["error"]
        assert r["impl"] == "bpgpu-dp" and r["net"] == "4-8-3" and r["batch"] == 16
        assert r["device"] == "cpu" and r["allreduce"] == "mpi-host"
        assert r["threads_per_rank"] >= 1 and r["retried"] == 0  # --retries 0
        assert r["step_s_min"] <= r["step_s"] <= r["step_s_max"]
        assert r["samples_per_s"] == pytest.approx(16 / r["step_s"])
        assert r["max_abs_diff"] < 1e-5  # the shards' averaged gradients are the batch's
    one, two = records
    assert one["speedup"] == 1.0 and one["efficiency"] == 1.0
    assert two["speedup"] == pytest.approx(two["samples_per_s"] / one["samples_per_s"])
    assert two["efficiency"] == pytest.approx(two["samples_per_s"] / (2 * one["samples_per_s"]))
    table = capsys.readouterr().out
    assert "efficiency" in table and "mpi-host" in table


@needs_mpi
def test_a_hung_mpiexec_is_ended_by_its_timeout(tmp_path, monkeypatch):
    marker = f"bpgpu-hang-{uuid.uuid4().hex}"

    def hang(k, *args):
        return [scaling.find_mpiexec(), "-n", str(k), sys.executable, "-c",
                "import time; time.sleep(60)", marker]

    monkeypatch.setattr(scaling, "worker_command", hang)
    out = tmp_path / "dp.json"
    assert bench.main([*TINY, "--ranks", "1", "--timeout-s", "2", "--json", str(out)]) == 1
    (rec,) = json.loads(out.read_text())["records"]
    assert rec["error"] == "mpiexec -n 1: did not finish within 2 s and was stopped"
    assert rec["samples_per_s"] is None and rec["efficiency"] is None
    if os.path.isdir("/proc"):  # no rank of the hung run is left behind (once reaped)
        deadline = time.monotonic() + 5
        while _left(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _left(marker)


def _left(marker):
    return [pid for pid in os.listdir("/proc") if pid.isdigit() and _runs(pid, marker)]


def _runs(pid, marker):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return marker.encode() in f.read()
    except OSError:
        return False
