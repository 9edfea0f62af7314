"""One group of measurements, the implementations of one (net, batch) on one piece of hardware,
turned into the JSON's records; and the GEMM ceilings the records are set against."""

from __future__ import annotations

import statistics
import sys

import numpy as np

from .accounting import min_bytes, step_flops
from .cases import CASES, Case
from .memory import probe, release
from .timing import ceiling_key, gemm_ceiling, median_or_none, spread, time_cases

RECORD_FIELDS = (
    "net", "sizes", "batch", "device", "hardware", "impl", "mode", "rows", "dtype",
    "step_s", "step_s_min", "step_s_max", "samples_per_s", "flops_per_step", "tflops",
    "ceiling_tflops", "pct_of_ceiling", "peak_bytes", "min_bytes", "peak_over_min",
    "repeats", "steps_per_repeat", "spread", "retried", "host_load_other", "samples_s", "loads",
    "speedup_vs", "max_abs_diff", "notes", "error",
)


def new_record(**fields):
    """A record with every field of :data:`RECORD_FIELDS` (None where not given) and ``fields``."""
    rec = dict.fromkeys(RECORD_FIELDS)
    rec.update(fields)
    return rec


def measure_ceilings(labels, dtype, n, method):
    """``{key: gemm_ceiling(...)}`` for the library-device of every label, each once; a failure
    is recorded as ``{"tflops": None, "error": ...}``."""
    out = {}
    for key in dict.fromkeys(ceiling_key(label) for label in labels):
        try:
            c = gemm_ceiling(key, dtype, n, method)
            print(f"bench: GEMM ceiling on {key} ({c['library']}, {c['n']}³ {dtype}): "
                  f"{c['tflops']:.3g} TFLOP/s", file=sys.stderr)
        except Exception as exc:
            c = {"tflops": None, "error": error_text(exc, 0, key)}
            print(f"bench: GEMM ceiling on {key} failed: {c['error']}", file=sys.stderr)
        out[key] = c
    return out


def measure_group(net, sizes, batch, data, specs, ceilings, method):
    """Every (impl, device) of one hardware for one (net, batch).

    Parameters
    ----------
    net : str
    sizes : list of int
    batch : int
    data : HostData
    specs : list of (impl, device label)
    ceilings : dict
        ``env["ceilings"]``.
    method : Method

    Returns
    -------
    list of dict
        One record per spec, in ``specs`` order; a failure is a record with its ``error``.
    """
    errors = {}
    cases = [_make_case(impl, label, data, errors) for impl, label in specs]
    peaks, diffs = _probe_all(cases, errors)
    timed = time_cases([c for c in cases if c not in errors], method, errors)
    itemsize = np.dtype(data.dtype).itemsize
    common = {"net": net, "sizes": list(sizes), "batch": batch, "dtype": data.dtype,
              "min_bytes": min_bytes(sizes, batch, itemsize)}
    tol = 1e-3 if itemsize == 4 else 1e-8
    out = []
    for case in cases:
        ceiling = ceilings.get(ceiling_key(case.label), {}).get("tflops")
        rec = new_record(**common, device=case.label, hardware=case.hardware, impl=case.impl,
                         mode=case.mode, rows=case.rows,
                         flops_per_step=step_flops(sizes, batch) * case.rows // batch,
                         ceiling_tflops=rounded(ceiling, 4), notes=case.note or None)
        if case in errors:
            rec["error"] = _failure(errors[case], batch, case.label)
        else:
            rec.update(_measured(timed[case], rec, ceiling, peaks[case]),
                       max_abs_diff=diffs.get(case), notes=_notes(case, diffs.get(case), tol))
        out.append(rec)
    _paired_speedups(out)
    return out


def _make_case(impl, label, data, errors):
    try:
        return CASES[impl](label, data)
    except Exception as exc:
        stub = Case(label, data)
        stub.impl = impl
        errors[stub] = exc
        return stub


def _probe_all(cases, errors):
    """Pass 1, a fresh build of each case and two steps: ``({case: peak bytes}, {case: largest
    weight difference to the first bpgpu case})``."""
    peaks, weights = {}, {}
    for case in cases:
        if case in errors:
            continue
        try:
            peaks[case], weights[case] = probe(case)
        except Exception as exc:
            errors[case] = exc
            release(case)
    weights = {case: w for case, w in weights.items() if case.mode == "step"}  # the same batch
    ref = next((w for case, w in weights.items() if case.impl == "bpgpu"), None)
    diffs = {} if ref is None else {case: weights_diff(w, ref) for case, w in weights.items()}
    return peaks, diffs


def weights_diff(weights, ref):
    """The largest absolute difference between two lists of (W, b), in float64."""
    return max(float(np.max(np.abs(np.asarray(a, np.float64) - b)))
               for pa, pb in zip(weights, ref, strict=True) for a, b in zip(pa, pb, strict=True))


def timing_fields(xs, batch, flops, ceiling=None):
    """The timing fields of a record from the repeats' seconds per step ``xs``."""
    med = statistics.median(xs)
    tflops = flops / med / 1e12
    return {"step_s": med, "step_s_min": min(xs), "step_s_max": max(xs),
            "samples_per_s": batch / med, "tflops": rounded(tflops, 6),
            "pct_of_ceiling": rounded(100 * tflops / ceiling, 3) if ceiling else None,
            "repeats": len(xs), "spread": rounded(spread(xs), 4),
            "samples_s": [rounded(x, 9) for x in xs]}


def _measured(timed, rec, ceiling, peak):
    need = rec["min_bytes"]
    return timing_fields(timed["samples"], rec["rows"], rec["flops_per_step"], ceiling) | {
        "peak_bytes": peak, "peak_over_min": rounded(peak / need, 4) if peak else None,
        "steps_per_repeat": timed["steps"], "retried": timed["retried"],
        "host_load_other": rounded(median_or_none(timed["loads"]), 3),
        "loads": [rounded(x, 3) for x in timed["loads"]]}


def _notes(case, diff, tol):
    """The case's note, and a warning when its weights went elsewhere than bpgpu's."""
    if diff is None or diff <= tol:
        return case.note or None
    note = (case.note + "; " if case.note else "") + (
        f"weights after two steps differ from bpgpu's by {diff:.3g}: not the same work?")
    print(f"bench: {case.impl} on {case.label}: {note}", file=sys.stderr)
    return note


def _failure(exc, batch, label):
    text = error_text(exc, batch, label)
    if is_oom(exc):
        print(f"bench: {text}", file=sys.stderr)
    return text


def _paired_speedups(records):
    """``speedup_vs`` of each bpgpu record: for each peer on the same hardware, the median over
    repeats of the peer's seconds per sample over bpgpu's (the two ran back to back in every
    repeat, so a slow spell of the machine cancels out better than in a ratio of medians).
    > 1: bpgpu is faster."""
    for rec in records:
        if rec["impl"] != "bpgpu" or not rec["samples_s"]:
            continue
        mine = rec["samples_s"]
        rec["speedup_vs"] = {
            p["impl"]: rounded(statistics.median(
                (a / p["rows"]) / (b / rec["rows"])
                for a, b in zip(p["samples_s"], mine, strict=True)), 4)
            for p in records
            if p["impl"] != "bpgpu" and p["samples_s"] and len(p["samples_s"]) == len(mine)}


def is_oom(exc):
    """Whether ``exc`` says the device ran out of memory (NumPy, CuPy or PyTorch)."""
    return (isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__
            or "out of memory" in str(exc).lower())


def error_text(exc, batch, label):
    """One line for a failed measurement; out of memory names a batch size to try instead."""
    msg = f"{type(exc).__name__}: {exc}".strip()[:300]
    if is_oom(exc):
        lower = max(1, batch // 2)
        return (f"out of memory at batch {batch} on {label}: lower the batch size "
                f"(e.g. --batch-sizes {lower}) — {msg}")
    return msg


def rounded(x, nd):
    """``round(float(x), nd)``, None for None."""
    return None if x is None else round(float(x), nd)
