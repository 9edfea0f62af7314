"""Data-parallel training over MPI ranks (and NCCL between GPUs).

Every rank holds the whole data set and the same network (same seed, so the same initial weights
and the same permutation every epoch). Each global batch is cut into one contiguous shard per rank;
each rank computes the gradients of its shard's mean loss, and one all-reduce per step — all
gradients flattened into a single buffer, with the shard's row count appended — turns them into
the gradient of the global batch's mean loss. Every rank then applies the same update, so the
weights stay identical on all ranks. MPI (mpi4py) carries control and, by default, the all-reduce
on host buffers; on CuPy devices the all-reduce goes through NCCL when CuPy has it.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from array_api_compat import device


class DataParallel:
    """Gradient averaging over the ranks of an mpi4py communicator.

    Attributes
    ----------
    rank, size : int
    path : {"mpi-host", "nccl"}
        How gradients travel: through MPI on host buffers, or NCCL on the GPU.
    """

    def __init__(self, comm, backend):
        self.comm, self.backend = comm, backend
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        nccl = _nccl_for(backend)
        self._nccl = _nccl_communicator(comm, backend, nccl) if nccl is not None else None
        self.path = "nccl" if self._nccl is not None else "mpi-host"

    @staticmethod
    def path_for(backend):
        """Which all-reduce path a backend would take: ``"nccl"`` or ``"mpi-host"``."""
        return "nccl" if _nccl_for(backend) is not None else "mpi-host"

    def shard(self, start, stop):
        """This rank's contiguous part of the global rows ``[start, stop)``."""
        n = stop - start
        lo = start + n * self.rank // self.size
        hi = start + n * (self.rank + 1) // self.size
        return lo, hi

    def average(self, xp, grads, n_local):
        """The global batch's mean-loss gradients from each rank's shard gradients (one call)."""
        one = xp.ones((1,), dtype=grads[0].dtype, device=device(grads[0]))
        flat = xp.concat([xp.reshape(g, (-1,)) for g in grads] + [one])  # the only copy
        flat *= n_local  # shard mean → shard sum; the last slot becomes the shard's row count
        flat = self._allreduce(flat)
        # global sum → global mean; the divisor is copied, since flat[-1] may be a view of flat
        flat /= xp.asarray(flat[-1], copy=True)
        out, offset = [], 0
        for g in grads:
            size = math.prod(g.shape)
            out.append(xp.reshape(flat[offset:offset + size], g.shape))
            offset += size
        return out

    def _allreduce(self, flat):
        if self._nccl is not None:
            return _nccl_allreduce(self._nccl, flat)
        from mpi4py import MPI

        host = np.ascontiguousarray(self.backend.to_host(flat))
        self.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        return self.backend.asarray(host)

    def sum_scalars(self, values):
        """Sum a few Python numbers over the ranks (the epoch's loss and accuracy counts)."""
        from mpi4py import MPI

        buf = np.asarray(values, dtype=np.float64)
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        return buf.tolist()

    def abort(self, exc):
        """End every rank: an error on one rank must not leave the others waiting forever."""
        print(f"bpgpu: error on rank {self.rank} of {self.size}: {exc}", file=sys.stderr,
              flush=True)
        self.comm.Abort(1)


def local_rank(comm):
    """This process's index among the ranks on its own host (to pick ``cuda:{local_rank}``)."""
    from mpi4py import MPI

    return comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()


def _nccl_for(backend):
    """CuPy's NCCL module for a CuPy backend where CuPy was built with NCCL, else ``None``."""
    if backend.library != "cupy":
        return None
    try:
        from cupy.cuda import nccl
    except ImportError:
        return None
    return nccl if nccl.available else None


def _nccl_communicator(comm, backend, nccl):
    """A NCCL communicator over the MPI ranks. Untested: it has not run on two GPUs."""
    uid = nccl.get_unique_id() if comm.Get_rank() == 0 else None
    uid = comm.bcast(uid, root=0)
    with backend.context():
        return nccl.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())


def _nccl_allreduce(nccl_comm, flat):
    """In-place sum over the ranks on the GPU (untested without two GPUs)."""
    import cupy
    from cupy.cuda import nccl

    kind = nccl.NCCL_FLOAT32 if flat.dtype == cupy.float32 else nccl.NCCL_FLOAT64
    stream = cupy.cuda.get_current_stream()
    nccl_comm.allReduce(flat.data.ptr, flat.data.ptr, flat.size, kind, nccl.NCCL_SUM, stream.ptr)
    return flat
