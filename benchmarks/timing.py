"""How a step is timed: calibrated repeats, interleaved between the implementations, taken again
while other processes keep the CPU busy; and the device's GEMM rate, the ceiling of the step."""

from __future__ import annotations

import dataclasses
import os
import statistics
import time

import numpy as np

from .accounting import hardware_of
from .cases import Case
from .memory import release

GEMM_N = {"cpu": 2048, "gpu": 4096}


@dataclasses.dataclass
class Method:
    """How each measurement is taken (see README.md, "The method")."""

    repeats: int = 5
    target_s: float = 0.3  # one repeat lasts about this long
    retries: int = 3  # re-takes of a repeat during which other processes kept the CPU busy
    max_load: float = 0.10  # share of the machine's CPU used by others that counts as busy
    settle_s: float = 0.1  # pause before each CPU repeat: other libraries' spinning threads idle
    noise: float = 0.3  # a spread (max - min) / median above this asks for more repeats ...
    extra_rounds: int = 1  # ... up to this many more rounds of `repeats` each


def time_repeat(case, steps):
    """Seconds per step over ``steps`` back-to-back steps, the device synchronized at both ends."""
    case.sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        case.step()
    case.sync()
    return (time.perf_counter() - t0) / steps


def calibrate(case, target_s, clock=time_repeat):
    """Warm up, then the number of steps that makes one repeat last about ``target_s``.

    ``clock(case, steps)`` gives seconds per step; under MPI it must give every rank the same
    answer, since every rank has to take the same number of steps.
    """
    case.step()
    case.step()
    case.sync()
    n = 1
    while True:
        per = clock(case, n)
        if per * n >= target_s / 4 or n >= 1 << 22:
            break
        n = min(n * 16, max(n * 2, int(target_s / 4 / max(per, 1e-9)) + 1))
    return max(1, round(target_s / per))


def spread(xs):
    """``(max - min) / median`` of the samples ``xs``."""
    med = statistics.median(xs)
    return (max(xs) - min(xs)) / med if med > 0 else 0.0


def median_or_none(xs):
    """The median of the values in ``xs`` that are not None; None if there are none."""
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


class CpuMeter:
    """Share of the machine's CPU capacity used by *other* processes over a window (Linux).

    From ``/proc/stat`` (all CPUs' busy time, hypervisor steal included) minus this process's
    own CPU time (``getrusage``, every thread; a subclass may count more as its own).
    ``share()`` is None where that cannot be read, or for windows under 0.1 s, too short for
    the 10 ms ticks of ``/proc/stat``.
    """

    def __init__(self):
        self._a = None

    def _own_cpu(self):
        """CPU seconds used so far by what counts as ours: this process, every thread."""
        try:
            import resource
        except ImportError:
            return None
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime

    def _snap(self):
        own = self._own_cpu()
        try:
            with open("/proc/stat") as f:
                ticks = [int(x) for x in f.readline().split()[1:]]
            hz = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            return None
        if own is None:
            return None
        # user nice system idle iowait irq softirq steal (guest time is already in user)
        return (time.perf_counter(), sum(ticks[:8]) / hz, (ticks[3] + ticks[4]) / hz, own)

    def start(self):
        """Open the window."""
        self._a = self._snap()

    def share(self):
        """Others' share of the CPU since :meth:`start`, 0 to 1, or None."""
        b = self._snap()
        a = self._a
        if a is None or b is None or b[0] - a[0] < 0.1:
            return None
        total = b[1] - a[1]
        if total <= 0:
            return None
        busy = total - (b[2] - a[2])
        return min(1.0, max(0.0, (busy - (b[3] - a[3])) / total))


def _load_key(load):
    return -1.0 if load is None else load


def sample(case, steps, method, meter, per_step=0.0):
    """One timed repeat: ``(seconds per step, others' CPU share, re-takes)``.

    A repeat disturbed by other processes is taken again (:func:`least_disturbed`). On the CPU
    each take is preceded by a short pause and an untimed step (for steps under 0.25 s), so
    that the previous library's BLAS/OpenMP threads have stopped spinning and this one's are
    awake.
    """
    def take():
        if method.settle_s and case.hardware == "cpu":
            time.sleep(method.settle_s)
            if per_step < 0.25:
                case.step()
        meter.start()
        t = time_repeat(case, steps)
        return t, meter.share()

    return least_disturbed(take, method)


def least_disturbed(take, method):
    """``take()`` → ``(value, others' CPU share)``, taken again while the share is above
    ``method.max_load``, after a pause (0.25 s, doubling), up to ``method.retries`` times.

    Returns ``(value, share, re-takes)``, the value and share of the least disturbed take.
    """
    best = None
    for attempt in range(1 + method.retries):
        value, load = take()
        if best is None or _load_key(load) < _load_key(best[1]):
            best = (value, load)
        if load is None or load <= method.max_load:
            break
        time.sleep(min(2.0, 0.25 * 2**attempt))
    return best[0], best[1], attempt


def time_cases(cases, method, errors):
    """Interleaved timing of the ``cases``, each built afresh.

    Each repeat runs every case once in turn, so that a slow spell of a shared machine falls on
    all of them alike, and a repeat disturbed by other processes is taken again (:func:`sample`).
    When some case's samples still spread by more than ``method.noise``, every case gets another
    round of repeats (``method.extra_rounds``).

    Returns
    -------
    dict
        ``{case: {"samples", "loads", "steps", "retried", "per"}}``; a case that fails is left
        out, its exception put in the dict ``errors``.
    """
    live, out, meter = [], {}, CpuMeter()
    for case in cases:
        try:
            case.setup()
            steps = calibrate(case, method.target_s)
            out[case] = {"samples": [], "loads": [], "steps": steps, "retried": 0,
                         "per": method.target_s / steps}
            live.append(case)
        except Exception as exc:
            errors[case] = exc
            release(case)
    for rnd in range(1 + method.extra_rounds):
        if rnd and all(spread(out[c]["samples"]) <= method.noise for c in live):
            break
        _round_of_repeats(live, out, method, meter, errors)
    for case in live:
        release(case)
    return out


def _round_of_repeats(live, out, method, meter, errors):
    for _ in range(method.repeats):
        for case in list(live):
            try:
                t, load, retried = sample(case, out[case]["steps"], method, meter,
                                          out[case]["per"])
            except Exception as exc:
                errors[case] = exc
                live.remove(case)
                out.pop(case)
                release(case)
                continue
            out[case]["samples"].append(t)
            out[case]["loads"].append(load)
            out[case]["retried"] += retried


# -- the GEMM ceiling -------------------------------------------------------------------------


def gemm_ceiling(label, dtype, n=None, method=None):
    """The device's matrix-multiply rate: the best of 3 repeats of an n×n×n product.

    Each repeat lasts ~0.2 s and is taken again while other processes keep the CPU busy
    (:func:`sample`). ``label`` picks the library: ``cpu``/``strict`` NumPy, ``torch:cpu`` /
    ``torch:cuda:N`` PyTorch, ``jax:...`` JAX, ``cuda:N`` CuPy. n defaults to 2048 on the CPU and
    4096 on a GPU.

    Returns
    -------
    dict
        ``tflops``, ``n``, ``dtype``, ``host_load_other`` and ``library``.
    """
    hw = hardware_of(label)
    n = n or GEMM_N["cpu" if hw == "cpu" else "gpu"]
    rng = np.random.default_rng(1)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, n)).astype(dtype)
    gemm = Case(label, None)
    if label.startswith("torch"):
        library, (gemm.step, gemm.sync) = "torch", _torch_gemm(label, A, B)
    elif label.startswith("jax"):
        library, (gemm.step, gemm.sync) = "jax", _jax_gemm(label, A, B)
    elif hw != "cpu":
        library, (gemm.step, gemm.sync) = "cupy", _cupy_gemm(hw, A, B)
    else:
        C = np.empty_like(A)
        library, gemm.step = "numpy", lambda: np.matmul(A, B, out=C)
    method = method or Method()
    method = dataclasses.replace(method, target_s=min(0.2, 4 * method.target_s))
    steps = calibrate(gemm, method.target_s)
    meter = CpuMeter()
    takes = [sample(gemm, steps, method, meter, method.target_s / steps) for _ in range(3)]
    best = min(t for t, _, _ in takes)
    return {"tflops": 2 * n**3 / best / 1e12, "n": n, "dtype": dtype,
            "host_load_other": median_or_none([load for _, load, _ in takes]),
            "library": library}


def _torch_gemm(label, A, B):
    import torch

    dev = torch.device(label.split(":", 1)[1])
    a, b = torch.from_numpy(A).to(dev), torch.from_numpy(B).to(dev)
    c = torch.empty_like(a)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    return (lambda: torch.matmul(a, b, out=c)), sync


def _jax_gemm(label, A, B):
    import jax

    import bpgpu

    backend = bpgpu.get_backend(label)
    a, b = backend.asarray(A), backend.asarray(B)
    matmul = backend.compile(lambda x, y: x @ y)  # at full float32 precision, as bpgpu runs
    out = [matmul(a, b)]

    def run():
        out[0] = matmul(a, b)

    return run, lambda: jax.block_until_ready(out[0])


def _cupy_gemm(hw, A, B):
    import cupy

    dev = cupy.cuda.Device(int(hw.split(":")[1]))
    with dev:
        a, b = cupy.asarray(A), cupy.asarray(B)
        c = cupy.empty_like(a)

    def run():
        with dev:
            cupy.matmul(a, b, out=c)

    return run, dev.synchronize


def ceiling_key(label):
    """The library-device whose GEMM rate is ``label``'s ceiling (``strict`` runs on NumPy)."""
    return "cpu" if label == "strict" else label
