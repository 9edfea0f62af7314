"""``bpgpu bench --distributed``: data-parallel scaling of bpgpu's training step over MPI ranks.

For every (net, batch, device) and every rank count k, ``mpiexec -n k python -m
bpgpu.benchmarks.dp_worker`` times bpgpu's step on the same global batch, cut into one shard per
rank, the gradients averaged by one all-reduce per step (:mod:`bpgpu.distributed`). Each rank's
BLAS and OpenMP pools get ``--threads`` threads, by default the cores divided by k, so every k
uses the whole machine. The efficiency is samples/s at k ranks over k times samples/s at 1 rank.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .accounting import hardware_of, step_flops
from .measure import new_record, rounded, timing_fields
from .report import fmt_rate, fmt_s
from .timing import median_or_none

MPI_HINT = "pip install 'bpgpu[mpi]'"
DP_FIELDS = ("ranks", "threads_per_rank", "allreduce", "speedup", "efficiency")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def parse_ranks(text):
    """Rank counts from ``--ranks``: ``N`` is 1…N, ``a,b,c`` those (1 always included, as the
    base of the efficiency). Raises ValueError."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise ValueError(f"bad --ranks {text!r}: a count such as 2 (for 1,2) or a list such as "
                         "1,2,4 of whole numbers ≥ 1")
    counts = [int(p) for p in parts]
    if len(counts) == 1:
        counts = list(range(1, counts[0] + 1))
    return sorted({1, *counts})


def find_mpiexec():
    """``mpiexec`` on PATH, or beside this Python (the mpich wheel in a virtual environment)."""
    return shutil.which("mpiexec") or shutil.which(
        os.path.join(os.path.dirname(sys.executable), "mpiexec"))


def mpi_missing():
    """Why ``--distributed`` cannot run here, in one line; None when it can."""
    if importlib.util.find_spec("mpi4py") is None:
        return f"--distributed needs mpi4py, which is not installed: {MPI_HINT}"
    if find_mpiexec() is None:
        return f"--distributed needs mpiexec, found neither on PATH nor beside python: {MPI_HINT}"
    return None


def default_threads(ranks):
    """BLAS threads per rank that fill the cores this process may use, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // ranks)


def measure_scaling(todo, devices, ranks, opts, mpi):
    """Every (net, batch, device) at every rank count, a progress line for each.

    Parameters
    ----------
    todo : list of (name, sizes, batch)
    devices : list of str
    ranks : list of int
        Rank counts, 1 first.
    opts : argparse.Namespace
        ``dtype``, ``threads`` per rank (None: :func:`default_threads`), ``timeout_s`` of one
        mpiexec run, and ``method`` (:class:`~bpgpu.benchmarks.timing.Method`: ``repeats``,
        ``target_s``, ``retries``, ``max_load``).
    mpi : dict
        :func:`mpi_env`; its ``library`` is filled in from the first run that reports one.

    Returns
    -------
    records : list of dict
        Every field of ``RECORD_FIELDS`` and of :data:`DP_FIELDS`.
    interrupted : bool
        Whether Ctrl-C ended the run early (``records`` holds what was measured).
    """
    records, group, t0 = [], [], time.perf_counter()
    total = len(todo) * len(devices) * len(ranks)
    try:
        for net, sizes, batch in todo:
            for device in devices:
                for k in ranks:
                    rec, library = _measure_ranks(net, sizes, batch, device, k, opts)
                    mpi["library"] = mpi["library"] or library
                    group.append(rec)
                    done = len(records) + len(group)
                    _progress(rec, done, total, (time.perf_counter() - t0) / done * (total - done))
                records += _with_efficiency(group)
                group = []
    except KeyboardInterrupt:
        print("bench: interrupted; writing what was measured", file=sys.stderr)
        return records + _with_efficiency(group), True
    return records, False


def _measure_ranks(net, sizes, batch, device, k, opts):
    """The record of one rank count, and the MPI library its ranks reported (or None)."""
    threads = opts.threads or default_threads(k)
    rec = new_record(net=net, sizes=list(sizes), batch=batch, device=device,
                     hardware=hardware_of(device), impl="bpgpu-dp", dtype=opts.dtype,
                     flops_per_step=step_flops(sizes, batch), ranks=k, threads_per_rank=threads,
                     allreduce=None, speedup=None, efficiency=None)
    with tempfile.TemporaryDirectory(prefix="bpgpu-dp-") as tmp:
        out = os.path.join(tmp, "rank0.json")
        try:
            _launch(worker_command(k, sizes, batch, device, opts, out), threads, opts.timeout_s)
            with open(out) as f:
                result = json.load(f)
        except (OSError, RuntimeError, ValueError) as exc:
            rec["error"] = f"mpiexec -n {k}: {exc}"
            return rec, None
    rec.update(timing_fields(result["samples"], batch, rec["flops_per_step"]),
               steps_per_repeat=result["steps"], retried=result["retried"],
               host_load_other=rounded(median_or_none(result["loads"]), 3),
               loads=[rounded(x, 3) for x in result["loads"]],
               max_abs_diff=result["max_abs_diff"], allreduce=result["allreduce"],
               notes=_thread_note(result["blas"], threads))
    return rec, result["mpi_library"]


def worker_command(k, sizes, batch, device, opts, out):
    """The ``mpiexec`` command line that runs :mod:`bpgpu.benchmarks.dp_worker` on k ranks."""
    method = opts.method
    return [find_mpiexec(), "-n", str(k), sys.executable, "-m", "bpgpu.benchmarks.dp_worker",
            "--sizes", ",".join(map(str, sizes)), "--batch", str(batch), "--device", device,
            "--dtype", opts.dtype, "--repeats", str(method.repeats),
            "--target-s", str(method.target_s), "--retries", str(method.retries),
            "--max-load", str(method.max_load), "--out", out]


def _launch(cmd, threads, timeout_s):
    """Run ``cmd`` in a process group of its own with ``threads`` BLAS/OpenMP threads per
    process; a failure, a hang past ``timeout_s`` or Ctrl-C ends the whole group."""
    env = os.environ | dict.fromkeys(THREAD_VARS, str(threads))
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise RuntimeError(f"did not finish within {timeout_s:g} s and was stopped") from None
    except BaseException:
        _kill_group(proc)
        raise
    if proc.returncode != 0:
        lines = [line for line in output.splitlines() if line.strip()]
        why = next((line for line in lines if "bench worker" in line), lines[-1] if lines else "")
        raise RuntimeError(f"failed (exit {proc.returncode}): {why[:300]}")


def _kill_group(proc):
    # mpiexec's ranks live on in the group after mpiexec itself is gone: end them all.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=5)


def _thread_note(blas, threads):
    """A note when rank 0's BLAS pools did not get the threads asked for."""
    seen = sorted({p.get("num_threads") for p in blas if p.get("num_threads") is not None})
    if not seen or seen == [threads]:
        return None
    return f"rank 0's BLAS pools ran {seen} threads, not the {threads} asked for"


def _with_efficiency(group):
    """``speedup`` (samples/s over the 1-rank record's) and ``efficiency`` (speedup / ranks)."""
    base = next((r["samples_per_s"] for r in group if r["ranks"] == 1 and not r["error"]), None)
    for rec in group:
        if base and rec["samples_per_s"]:
            rec["speedup"] = rec["samples_per_s"] / base
            rec["efficiency"] = rec["speedup"] / rec["ranks"]
    return group


def _progress(rec, done, total, left):
    what = (f"ERROR {rec['error'][:100]}" if rec["error"] else
            f"{fmt_rate(rec['samples_per_s'])} samples/s, {rec['step_s'] * 1e3:.3g} ms/step, "
            f"all-reduce {rec['allreduce']}")
    print(f"[{done:>3}/{total}] {rec['net']} b={rec['batch']} bpgpu-dp on {rec['device']}, "
          f"{rec['ranks']} rank(s) × {rec['threads_per_rank']} thread(s): {what}  "
          f"(~{fmt_s(left)} left)", file=sys.stderr, flush=True)


def scaling_table(records):
    """One row per record: ranks, threads per rank, step time, samples/s, speed-up, efficiency."""
    head = (f"{'net':<16}{'batch':>7}  {'device':<12}{'ranks':>6}{'threads/rank':>13}"
            f"{'step ms':>9}{'samples/s':>11}{'speed-up':>10}{'efficiency':>11}  all-reduce")
    lines = [head, "-" * len(head)]
    for r in records:
        if r["error"]:
            lines.append(f"ERROR {r['net']} batch {r['batch']} on {r['device']}, {r['ranks']} "
                         f"rank(s): {r['error'][:200]}")
            continue
        speedup = "-" if r["speedup"] is None else f"{r['speedup']:.2f}"
        eff = "-" if r["efficiency"] is None else f"{100 * r['efficiency']:.0f}%"
        lines.append(f"{r['net']:<16}{r['batch']:>7}  {r['device']:<12}{r['ranks']:>6}"
                     f"{r['threads_per_rank']:>13}{r['step_s'] * 1e3:>9.3g}"
                     f"{fmt_rate(r['samples_per_s']):>11}{speedup:>10}{eff:>11}  "
                     f"{r['allreduce']}")
    return "\n".join(lines)


def mpi_env():
    """``env["mpi"]``: the mpiexec and mpi4py that ran (``library`` is filled in by the run)."""
    from importlib import metadata

    return {"mpiexec": find_mpiexec(), "mpi4py": metadata.version("mpi4py"), "library": None,
            "thread_vars": list(THREAD_VARS)}
