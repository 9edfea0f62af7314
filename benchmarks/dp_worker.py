"""One rank of ``bpgpu bench --distributed``; :mod:`bpgpu.benchmarks.scaling` starts it as
``mpiexec -n K python -m bpgpu.benchmarks.dp_worker ...``.

Every rank builds the same net from the same weights and takes its shard of the same global batch
(:meth:`bpgpu.distributed.DataParallel.shard`); each step all-reduces the gradients, so the ranks
step in lockstep. Rank 0 writes the timings as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys

from .accounting import LR, hardware_of
from .cases import BpgpuCase, HostData, reference_weights
from .envinfo import blas_info
from .measure import weights_diff
from .timing import CpuMeter, Method, calibrate, least_disturbed, time_repeat


class DataParallelCase(BpgpuCase):
    """bpgpu's training step on this rank's shard of the batch, gradients averaged over ranks."""

    impl = "bpgpu-dp"

    def __init__(self, label, data, comm):
        self.comm = comm
        super().__init__(label, data)

    def build(self):
        from bpgpu.distributed import DataParallel
        from bpgpu.training import Trainer

        super().build()
        self.parallel = DataParallel(self.comm, self.net.backend)
        self.trainer = Trainer(self.net, "sgd", lr=LR, parallel=self.parallel)
        lo, hi = self.parallel.shard(0, self.data.batch)
        self.X, self.T = self.X[lo:hi, ...], self.T[lo:hi, ...]  # array-api-strict: every axis


def collective_clock(comm):
    """:func:`~bpgpu.benchmarks.timing.time_repeat` on every rank at once: the slowest rank's
    seconds per step, the same number on every rank (so they all take the same steps)."""
    from mpi4py import MPI

    def clock(case, steps):
        comm.Barrier()
        return comm.allreduce(time_repeat(case, steps), op=MPI.MAX)

    return clock


class RanksMeter(CpuMeter):
    """Other processes' share of rank 0's host, this host's ranks counted as ours; every rank
    gets rank 0's reading, so that all take a disturbed repeat again together."""

    def __init__(self, comm):
        from mpi4py import MPI

        super().__init__()
        self.comm, self.host = comm, comm.Split_type(MPI.COMM_TYPE_SHARED)

    def _own_cpu(self):
        own = super()._own_cpu()
        return self.host.allreduce(0.0 if own is None else own)

    def share(self):
        return self.comm.bcast(super().share(), root=0)


def rank_device(label, comm):
    """This rank's device: the CPU is shared; on GPUs rank r of a host takes the r-th GPU from
    the one named, wrapping around the GPUs it sees (``cuda:0`` → ``cuda:0``, ``cuda:1``, …;
    see :func:`bpgpu.distributed.rank_gpu`)."""
    hw = hardware_of(label)
    if hw == "cpu":
        return label
    from bpgpu.distributed import rank_gpu

    prefix = "torch:cuda" if label.startswith("torch") else "cuda"
    return rank_gpu(comm, prefix, first=int(hw.split(":")[1]))


def measure(args, comm):
    """Time the data-parallel step on this rank, each repeat as :func:`timing.sample` takes it.

    Returns
    -------
    dict
        ``ranks``, ``device`` (rank 0's), ``allreduce`` (``par.path``), ``steps``, ``samples``
        (seconds per step of each repeat, the slowest rank's), ``loads`` (other processes'
        share of the CPU in each), ``retried``, ``max_abs_diff`` (rank 0: its weights after two
        steps against one process's two steps on the whole batch) and ``blas`` (this rank's
        BLAS pools).
    """
    sizes = [int(s) for s in args.sizes.split(",")]
    data = HostData(sizes, args.batch, args.dtype, reference_weights(sizes, args.dtype))
    case = DataParallelCase(rank_device(args.device, comm), data, comm)
    case.setup()
    case.step()
    case.step()
    diff = _diff_to_one_process(case, data) if comm.Get_rank() == 0 else None
    clock, meter = collective_clock(comm), RanksMeter(comm)
    steps = calibrate(case, args.target_s, clock)
    method = Method(repeats=args.repeats, target_s=args.target_s, retries=args.retries,
                    max_load=args.max_load)

    def take():
        meter.start()
        t = clock(case, steps)
        return t, meter.share()

    takes = [least_disturbed(take, method) for _ in range(method.repeats)]
    return {"ranks": comm.Get_size(), "device": case.label, "allreduce": case.parallel.path,
            "steps": steps, "samples": [t for t, _, _ in takes],
            "loads": [load for _, load, _ in takes], "retried": sum(n for _, _, n in takes),
            "max_abs_diff": diff, "blas": blas_info()}


def _diff_to_one_process(case, data):
    one = BpgpuCase(case.label, data)
    one.setup()
    one.step()
    one.step()
    return weights_diff(case.host_weights(), one.host_weights())


def build_parser():
    """The worker's options; :func:`bpgpu.benchmarks.scaling.worker_command` fills them in."""
    p = argparse.ArgumentParser(prog="python -m bpgpu.benchmarks.dp_worker")
    p.add_argument("--sizes", required=True, help="layer widths, e.g. 784,1024,1024,10")
    p.add_argument("--batch", type=int, required=True, help="the global batch, over all ranks")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--repeats", type=int, default=Method.repeats)
    p.add_argument("--target-s", type=float, default=Method.target_s)
    p.add_argument("--retries", type=int, default=Method.retries)
    p.add_argument("--max-load", type=float, default=Method.max_load)
    p.add_argument("--out", required=True, help="rank 0 writes its JSON here")
    return p


def main(argv=None) -> int:
    """Run this rank; an error on any rank ends them all (an MPI collective would wait forever)."""
    from mpi4py import MPI

    args = build_parser().parse_args(argv)
    comm = MPI.COMM_WORLD
    try:
        result = measure(args, comm)
    except Exception as exc:
        print(f"bench worker, rank {comm.Get_rank()}: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)
        comm.Abort(1)
    if comm.Get_rank() == 0:
        result["mpi_library"] = MPI.Get_library_version().splitlines()[0].strip()
        with open(args.out, "w") as f:
            json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
