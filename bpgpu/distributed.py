"""Data-parallel training over MPI ranks (and NCCL between GPUs).

Every rank holds the whole data set and the same network (same seed, so the same initial weights
and the same permutation every epoch). Each global batch is cut into one contiguous shard per rank;
each rank computes the gradients of its shard's mean loss, and one all-reduce per step — all
gradients flattened into a single buffer, with the shard's row count appended — turns them into
the gradient of the global batch's mean loss. Every rank then applies the same update, so the
weights stay identical on all ranks. MPI (mpi4py) carries control and, by default, the all-reduce
on host buffers; on CuPy devices the all-reduce goes through NCCL when every rank has CuPy's NCCL
and a GPU of its own (NCCL refuses two ranks on one device).
"""

from __future__ import annotations

import math
import socket
import sys
import time
import warnings

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
        nccl = _nccl_for_all(comm, backend)
        self._nccl = _nccl_communicator(comm, backend, nccl) if nccl is not None else None
        self.path = "nccl" if self._nccl is not None else "mpi-host"

    @staticmethod
    def path_for(backend):
        """Which all-reduce path a backend would take when every rank has a GPU of its own:
        ``"nccl"`` or ``"mpi-host"``."""
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

    def average_packed(self, grads, n_local):
        """:meth:`average` in place on a gradient buffer (a :class:`bpgpu.packed.Packed` with
        one spare element after the gradients, which carries the row count): the same few calls
        however many layers the network has, and no gather copy."""
        flat = grads.flat
        flat[-1] = 1
        flat *= n_local  # shard mean → shard sum; the spare slot becomes the shard's row count
        out = self._allreduce(flat)
        out /= self.backend.xp.asarray(out[-1], copy=True)
        if out is not flat:  # summed through host memory: back into the buffer
            flat[...] = out

    def _allreduce(self, flat):
        if self._nccl is not None:
            return _nccl_allreduce(self._nccl, flat)
        from mpi4py import MPI

        host = np.ascontiguousarray(self.backend.to_host(flat))
        if not host.flags.writeable:  # JAX hands out read-only host views
            host = host.copy()
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
        # The launcher forwards each rank's stderr on its own time, and Abort may end the
        # forwarding before that line is through: give it a moment, once, on the way out.
        time.sleep(0.5)
        self.comm.Abort(1)


def local_rank(comm):
    """This process's index among the ranks on its own host."""
    from mpi4py import MPI

    host = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return host.Get_rank()
    finally:
        host.Free()


def rank_gpu(comm, prefix, first=0):
    """The GPU spec for this rank: ``f"{prefix}:{(first + local rank) % visible GPUs}"``.

    The ranks of a host take the GPUs this process sees in turn, wrapping around: with more
    ranks than GPUs some ranks share one (their all-reduce then goes through MPI, since NCCL
    refuses two ranks on one device), and under a launcher that gives each rank its own
    ``CUDA_VISIBLE_DEVICES``, each rank sees one GPU and takes ``f"{prefix}:0"``.

    Parameters
    ----------
    comm : mpi4py communicator
    prefix : {"cuda", "torch:cuda", "jax:cuda"}
    first : int
        The GPU the host's first rank takes.
    """
    return f"{prefix}:{(first + local_rank(comm)) % max(_visible_gpus(prefix), 1)}"


def _visible_gpus(prefix, most=1024):
    """How many devices ``f"{prefix}:N"`` this process can open (N = 0, 1, ...)."""
    from .errors import DeviceUnavailableError
    from .registry import get_backend

    for n in range(most):
        try:
            get_backend(f"{prefix}:{n}")
        except DeviceUnavailableError:
            return n
    return most


def _nccl_for(backend):
    """CuPy's NCCL module for a CuPy backend where CuPy was built with NCCL, else ``None``."""
    if backend.library != "cupy":
        return None
    try:
        with warnings.catch_warnings():
            # CuPy warns when libnccl cannot be loaded; under warnings-as-errors that warning
            # would be raised from the import, and it only means that NCCL is not there.
            warnings.simplefilter("ignore")
            from cupy.cuda import nccl
    except Exception:  # ImportError, or a broken CUDA or NCCL install
        return None
    return nccl if getattr(nccl, "available", False) else None


def _nccl_for_all(comm, backend):
    """NCCL when every rank has it and a GPU of its own, else ``None`` (MPI on host buffers).

    Collective for CuPy backends: every rank states its host, its GPU and whether it has NCCL.
    """
    if backend.library != "cupy":
        return None
    nccl = _nccl_for(backend)
    mine = (nccl is not None, socket.gethostname(), _gpu_id(backend))
    everyone = comm.allgather(mine)
    if not all(has for has, *_ in everyone):
        return None
    if len({tuple(where) for _, *where in everyone}) < len(everyone):
        return None  # two ranks on one GPU: NCCL would refuse to start
    return nccl


def _gpu_id(backend):
    """The PCI bus id of a CuPy backend's GPU: the same GPU has the same id in every process on
    a host, whatever ``CUDA_VISIBLE_DEVICES`` each process was given."""
    import cupy

    try:
        return cupy.cuda.runtime.deviceGetPCIBusId(backend.device.id)
    except Exception:
        return f"device {backend.device.id}"


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
