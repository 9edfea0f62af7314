"""Peak memory of one training step, read the way each library allows (memory in use, on every
library), and freeing a case."""

from __future__ import annotations

import contextlib
import gc
import tracemalloc

import numpy as np


class PeakMeter:
    """High-water mark above a baseline: tracemalloc (NumPy), PyTorch CUDA, or CuPy.

    On a GPU the mark is of memory *in use* (allocated to arrays), as PyTorch's
    ``max_memory_allocated`` gives it; CuPy's pool keeps no such mark, so a memory hook counts
    its allocations and frees. (The pool's ``total_bytes`` would include the free blocks it keeps
    cached, which PyTorch's figure leaves out.) ``kind`` is the case's ``memory``; for None every
    reading is None.
    """

    def __init__(self, case):
        self.kind, self.base = case.memory, 0
        if self.kind == "torch-cuda":
            import torch

            self.torch, self.dev = torch, torch.device(case.hardware)
        elif self.kind == "cupy":
            import cupy

            self.cupy, self.index = cupy, int(case.hardware.split(":")[1])
            self.hook = _cupy_in_use_hook(cupy, self.index)
        self._started = False

    def start(self):
        """Take the baseline: what is allocated before the case is built does not count."""
        if self.kind == "tracemalloc":
            gc.collect()
            if not tracemalloc.is_tracing():
                tracemalloc.start()
                self._started = True
            self.base = tracemalloc.get_traced_memory()[0]
        elif self.kind == "torch-cuda":
            self.torch.cuda.synchronize(self.dev)
            self.base = self.torch.cuda.memory_allocated(self.dev)
        elif self.kind == "cupy":
            with self.cupy.cuda.Device(self.index):
                self.cupy.cuda.Device(self.index).synchronize()
                self.base = self.cupy.get_default_memory_pool().used_bytes()
            self.hook.start(self.base)

    def reset(self):
        """Forget the peak so far: called between the warm-up step and the measured step."""
        if self.kind == "tracemalloc":
            tracemalloc.reset_peak()
        elif self.kind == "torch-cuda":
            self.torch.cuda.reset_peak_memory_stats(self.dev)
        elif self.kind == "cupy":
            self.hook.peak = self.hook.in_use

    def peak(self):
        """Bytes above the baseline at the high-water mark since :meth:`reset`, or None."""
        if self.kind == "tracemalloc":
            return tracemalloc.get_traced_memory()[1] - self.base
        if self.kind == "torch-cuda":
            return self.torch.cuda.max_memory_allocated(self.dev) - self.base
        if self.kind == "cupy":
            return self.hook.peak - self.base
        return None

    def stop(self):
        """Stop tracemalloc if :meth:`start` started it, and CuPy's hook."""
        if self._started:
            tracemalloc.stop()
            self._started = False
        if self.kind == "cupy":
            self.hook.stop()


def _cupy_in_use_hook(cupy, index):
    """A CuPy memory hook that keeps the bytes in use on device ``index`` and their peak."""

    class InUse(cupy.cuda.MemoryHook):
        entered = False

        def start(self, in_use):
            self.name = f"bpgpu-bench-in-use-{id(self)}"  # hooks are kept by name
            self.in_use = self.peak = in_use
            self.__enter__()
            self.entered = True

        def stop(self):
            if self.entered:
                self.__exit__(None, None, None)
                self.entered = False

        def malloc_postprocess(self, **kw):
            if kw["device_id"] == index and kw["mem_ptr"]:
                self.in_use += kw["mem_size"]
                self.peak = max(self.peak, self.in_use)

        def free_postprocess(self, **kw):
            if kw["device_id"] == index:
                self.in_use -= kw["mem_size"]

    return InUse()


_WARMED = set()


def probe(case):
    """A fresh build and two steps: (peak bytes of the second step, weights after both).

    Under tracemalloc, memory that stays allocated counts in the peak, so the first probe of an
    implementation in this process is preceded by an untraced build and step: lazy imports and
    caches filled on first use are then not charged to the step.

    Returns
    -------
    peak : int or None
    weights : list of (W, b)
        Host copies, for comparing the implementations' arithmetic.
    """
    if case.memory == "tracemalloc" and (case.impl, case.label) not in _WARMED:
        case.setup()
        case.step()
        case.free()
        _WARMED.add((case.impl, case.label))
    meter = PeakMeter(case)
    meter.start()
    try:
        case.setup()
        case.step()
        case.sync()
        meter.reset()
        case.step()
        case.sync()
        peak = meter.peak()
    finally:
        meter.stop()
    weights = [(np.array(W, copy=True), np.array(b, copy=True)) for W, b in case.host_weights()]
    case.free()
    return peak, weights


def release(case):
    """Free the case's state and hand its memory back to the device's allocator."""
    with contextlib.suppress(Exception):
        case.free()
    gc.collect()
    if case.memory == "torch-cuda":
        with contextlib.suppress(Exception):
            import torch

            torch.cuda.empty_cache()
    elif case.memory == "cupy":
        with contextlib.suppress(Exception):
            import cupy

            cupy.get_default_memory_pool().free_all_blocks()
