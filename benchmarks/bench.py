"""``bpgpu bench``: training throughput of bpgpu on each device, side by side with its peers.

One training step of an MLP (sigmoid hidden layers, softmax output, cross-entropy loss, plain SGD
with lr 0.1) is timed for every (net, batch size, device), for bpgpu and, on the same hardware,
the same data and the same initial weights, for its peers (:mod:`.cases`); on a device that
compiles whole epochs (JAX), one epoch of ``fit`` is timed too (records with ``mode`` "epoch").
Each record gives samples/s, TFLOP/s, the share of the device's own GEMM rate measured in the same
run, the peak memory of the step and the memory it cannot do without (:mod:`.accounting`). With
``--distributed``, the data-parallel scaling of bpgpu's step over MPI ranks (:mod:`.scaling`).
The method is described in ``benchmarks/README.md`` and design.md §6.

This module is the command line; run ``bpgpu bench --help`` (or ``python -m
bpgpu.benchmarks.bench --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
import time

from .accounting import (
    DTYPES,
    LR,
    SEED,
    hardware_of,
    parse_nets,
    parse_peers,
    plan,
    resolve_devices,
)
from .cases import HostData, bpgpu_specs, reference_weights
from .envinfo import collect_env, limit_threads, loadavg, peer_labels
from .measure import measure_ceilings, measure_group
from .report import plot, progress, table, write_json
from .scaling import measure_scaling, mpi_env, mpi_missing, parse_ranks, scaling_table
from .tf32 import tf32_mode
from .timing import Method

TIMING = ("warm-up, then interleaved repeats of ~target_s each (every impl in turn), device "
          "synchronized before each clock read; step_s is the median; a repeat during which "
          "other processes used more than max_load of the CPU is taken again (up to retries "
          "times)")
DP_TIMING = ("one mpiexec -n ranks run per rank count: warm-up, then repeats of ~target_s "
             "each between barriers, the slowest rank's time; step_s is the median; a run "
             "during which other processes used more than max_load of the CPU is taken again "
             "(up to retries times)")


def build_parser():
    """The options of ``bpgpu bench`` (see ``benchmarks/README.md``)."""
    p = argparse.ArgumentParser(
        prog="bpgpu bench",
        description="Training-step throughput of bpgpu on each device, side by side with "
                    "PyTorch, scikit-learn and a hand-written NumPy/CuPy step, with FLOP and "
                    "memory accounting. Progress goes to stderr, the table to stdout.")
    _add_what_to_measure(p)
    p.add_argument("--json", metavar="PATH", help="write {env, records} as JSON to PATH")
    p.add_argument("--plot", metavar="PATH", help="write samples/s vs batch size (PNG) to PATH")
    p.add_argument("--quick", action="store_true",
                   help="a short run: mnist-mlp at 64 and 512, digits-mlp at 32 and 2048, "
                        "3 repeats of ~0.15 s")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 matrix products on PyTorch CUDA and CuPy (off by default)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel scaling over MPI ranks (mpiexec): samples/s of bpgpu's "
                        "step at each rank count and the efficiency against one rank (default "
                        "net mnist-mlp at batch 512; peers, --plot and --tf32 do not apply)")
    p.add_argument("--ranks", metavar="N|LIST",
                   help="with --distributed: rank counts, N for 1..N or a list such as 1,2,4 "
                        "(default: 2, i.e. 1,2)")
    # Undocumented knobs, for the tests and for tuning the method.
    p.add_argument("--target-s", type=float, help=argparse.SUPPRESS)
    p.add_argument("--ceiling-n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--retries", type=int, help=argparse.SUPPRESS)
    p.add_argument("--max-load", type=float, default=Method.max_load, help=argparse.SUPPRESS)
    p.add_argument("--settle-s", type=float, default=Method.settle_s, help=argparse.SUPPRESS)
    p.add_argument("--timeout-s", type=float, help=argparse.SUPPRESS)
    return p


def _add_what_to_measure(p):
    """Devices, nets, batch sizes, dtype, peers, repeats and threads."""
    p.add_argument("--devices", metavar="LIST",
                   help="comma-separated device specs, e.g. cpu,cuda,torch:cuda (default: every "
                        "usable device of `bpgpu devices` except the conformance backend strict)")
    p.add_argument("--nets", action="append", metavar="NETS",
                   help="presets mnist-mlp (784-1024-1024-10) and digits-mlp (64-32-10), or layer "
                        "widths such as 784,256,10; separate several with ';' or repeat the "
                        "option; NET@B1,B2 gives a net its own batch sizes, e.g. "
                        "'mnist-mlp@64,512;digits-mlp@32,2048' (default: mnist-mlp;digits-mlp)")
    p.add_argument("--batch-sizes", metavar="LIST",
                   help="comma-separated batch sizes for every net (default per net: mnist-mlp "
                        "64,512,4096,32768; digits-mlp 32,256,2048; others 64,512,4096)")
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--peers", default="torch,sklearn,raw,jax", metavar="LIST",
                   help="peers to time beside bpgpu, each where installed: torch, sklearn (CPU "
                        "only), raw (hand-written NumPy/CuPy), jax (jax.grad + jax.jit); 'none' "
                        "for none (default: torch,sklearn,raw,jax)")
    p.add_argument("--repeats", type=int, metavar="N",
                   help="timed repeats per measurement, the median is reported (default 5; 3 "
                        "with --quick)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads: BLAS/OpenMP pools via threadpoolctl and "
                        "torch.set_num_threads (default: leave as they are); with --distributed, "
                        "per rank (default: cores // ranks)")


def main(argv=None) -> int:
    """``bpgpu bench ARGS``.

    Returns
    -------
    int
        0; 1 when every measurement failed; 2 when ``--distributed`` finds no MPI; 130 when
        interrupted. Bad options exit with status 2 and a one-line message.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        todo, peers, ranks = _checked_options(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.distributed:
        missing = mpi_missing()
        if missing:
            print(f"bpgpu bench: {missing}", file=sys.stderr)
            return 2
        with _stop_on_signals():
            return _run_distributed(args, todo, _devices(parser, args.devices), ranks)
    with _stop_on_signals(), tf32_mode(args.tf32) as tf32_note:
        devices = _devices(parser, args.devices)
        with limit_threads(args.threads):
            return _run(args, todo, devices, peers, tf32_note)


@contextlib.contextmanager
def _stop_on_signals():
    """SIGTERM (what ``timeout`` sends) stops the run as Ctrl-C does: what was measured is
    printed and written. Signals after the first are ignored, so that the writing finishes."""
    caught = []

    def stop(signum, frame):
        if not caught:
            caught.append(signum)
            raise KeyboardInterrupt

    try:
        old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: the signals stay as they are
        old = {}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _checked_options(args):
    """``(plan, peers, ranks)`` from the options; raises ValueError naming a bad one."""
    nets = parse_nets(args.nets or ["mnist-mlp" if args.distributed else "mnist-mlp;digits-mlp"])
    peers = parse_peers(args.peers)
    todo = plan(nets, args.batch_sizes, args.quick, default=[512] if args.distributed else None)
    for opt in ("repeats", "threads", "ceiling_n", "retries"):
        value = getattr(args, opt)
        if value is not None and value < (0 if opt == "retries" else 1):
            raise ValueError(f"--{opt.replace('_', '-')} must be ≥ 1, got {value}")
    for opt in ("target_s", "timeout_s"):
        value = getattr(args, opt)
        if value is not None and not value > 0:
            raise ValueError(f"--{opt.replace('_', '-')} must be > 0, got {value}")
    return todo, peers, parse_ranks(args.ranks or "2")


def _devices(parser, text):
    try:
        return resolve_devices(text)
    except ValueError as exc:
        parser.error(str(exc))


def _method(args):
    """How each measurement is taken, from the options (``--quick``: fewer and shorter)."""
    return Method(repeats=args.repeats or (3 if args.quick else 5),
                  target_s=args.target_s or (0.15 if args.quick else 0.3),
                  retries=args.retries if args.retries is not None else (1 if args.quick else 3),
                  max_load=args.max_load, settle_s=args.settle_s,
                  extra_rounds=0 if args.quick else 1)


def _run(args, todo, devices, peers, tf32_note):
    """Measure every (net, batch) on every hardware, bpgpu and its peers; print and write."""
    method = _method(args)
    by_hw = {}
    for d in devices:
        by_hw.setdefault(hardware_of(d), []).append(d)
    skipped = set()
    groups = [[spec for d in by_hw[hw] for spec in bpgpu_specs(d)]
              + peer_labels(hw, peers, skipped)
              for hw in sorted(by_hw, key=lambda h: (h != "cpu", h))]
    for note in sorted(skipped):
        print(f"bench: {note}", file=sys.stderr)
    env = collect_env(args, devices, dataclasses.asdict(method)
                      | {"lr": LR, "seed": SEED, "timing": TIMING}, skipped, tf32_note)
    save = _saver(args, env)
    t0 = time.perf_counter()
    try:
        env["ceilings"] = measure_ceilings([label for specs in groups for _, label in specs],
                                           args.dtype, args.ceiling_n, method)
        save([])
    except KeyboardInterrupt:
        print("bench: interrupted while measuring the GEMM ceilings", file=sys.stderr)
        records, interrupted = [], True
    else:
        records, interrupted = _measure_all(todo, groups, env["ceilings"], method, args.dtype,
                                            save)
    env["interrupted"] = interrupted
    _finish(args, env, records, table(records), time.perf_counter() - t0)
    if args.plot:
        title = (f"bpgpu bench, {args.dtype}, {env['cpu_model']}, {env['cpu_count']} cores, "
                 f"{env['date'][:10]}")
        if plot(records, args.plot, title):
            print(f"bench: wrote {args.plot}", file=sys.stderr)
    return _exit_code(records, interrupted)


def _saver(args, env):
    """``save(records)``: the JSON as measured so far (``env["complete"]`` false), where
    ``--json`` asks for one; a run cut short still leaves every finished measurement."""

    def save(records):
        if args.json:
            write_json(args.json, env | {"complete": False}, records, quiet=True)

    return save


def _measure_all(todo, groups, ceilings, method, dtype, save=lambda records: None):
    """:func:`measure_group` for every (net, batch) and group of (impl, device) specs, with a
    progress line per record and ``save(records)`` after each group. Returns ``(records,
    interrupted)``: Ctrl-C or SIGTERM ends the loop early."""
    records, weights, t0 = [], {}, time.perf_counter()
    total, n_groups, done_groups = sum(map(len, groups)) * len(todo), len(todo) * len(groups), 0
    try:
        for net, sizes, batch in todo:
            if tuple(sizes) not in weights:
                weights[tuple(sizes)] = reference_weights(sizes, dtype)
            data = HostData(sizes, batch, dtype, weights[tuple(sizes)])
            for specs in groups:
                new = measure_group(net, sizes, batch, data, specs, ceilings, method)
                done_groups += 1
                left = (time.perf_counter() - t0) / done_groups * (n_groups - done_groups)
                for rec in new:
                    records.append(rec)
                    progress(rec, len(records), total, left)
                save(records)
    except KeyboardInterrupt:
        print("bench: interrupted; writing what was measured", file=sys.stderr)
        return records, True
    return records, False


def _run_distributed(args, todo, devices, ranks):
    """Data-parallel scaling of bpgpu's step at every rank count; print and write."""
    method = _method(args)
    opts = argparse.Namespace(dtype=args.dtype, threads=args.threads, method=method,
                              timeout_s=args.timeout_s or 120 + 10 * method.repeats
                              * method.target_s)
    env = collect_env(args, devices, {
        "ranks": ranks, "threads_per_rank": args.threads or "cores // ranks",
        "repeats": method.repeats, "target_s": method.target_s, "retries": method.retries,
        "max_load": method.max_load, "timeout_s": opts.timeout_s, "lr": LR, "seed": SEED,
        "timing": DP_TIMING}, [])
    env["mpi"] = mpi_env()
    t0 = time.perf_counter()
    records, interrupted = measure_scaling(todo, devices, ranks, opts, env["mpi"])
    env["interrupted"] = interrupted
    _finish(args, env, records, scaling_table(records), time.perf_counter() - t0)
    return _exit_code(records, interrupted)


def _finish(args, env, records, text, wall_s):
    """Print the table ``text``; write the JSON where ``--json`` asks for it."""
    env["loadavg"]["end"] = loadavg()
    env["wall_s"] = round(wall_s, 1)
    env["complete"] = not env.get("interrupted", False)
    print(text)
    if args.json:
        write_json(args.json, env, records)


def _exit_code(records, interrupted):
    if interrupted:
        return 130
    return 0 if any(r["error"] is None for r in records) or not records else 1


if __name__ == "__main__":
    sys.exit(main())
