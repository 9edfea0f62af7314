"""
Reading a benchmark's results
=============================

``bpgpu bench --json FILE`` writes its measurements as JSON: one record per network, batch
size, implementation and device, with the training throughput in ``samples_per_s``. This example
reads one such file, measured on a 2-core AMD EPYC, and plots it.
"""

# %%
# Find and read the file
# ----------------------
# The results live in ``benchmarks/results`` beside the benchmark code (the package
# :mod:`bpgpu.benchmarks` in an editable install); from a checkout, it is also a sibling of this
# examples folder.
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from bpgpu import benchmarks

NAME = "cpu-epyc-2core-2026-11-30-quick-0.4-run2.json"
here = Path(globals().get("__file__", Path.cwd() / "plot_benchmark.py")).resolve().parent
candidates = [Path(p) / "results" / NAME for p in benchmarks.__path__]
candidates += [here.parent / "benchmarks" / "results" / NAME,
               Path.cwd().parent / "benchmarks" / "results" / NAME]
path = next(p for p in candidates if p.is_file())
results = json.loads(path.read_text(encoding="utf-8"))
records = [r for r in results["records"] if r["error"] is None]
print(f"{len(records)} records; CPU: {results['env']['cpu_model']}, "
      f"{results['env']['cpu_count']} cores")

# %%
# Draw
# ----
# One panel per network and batch size; one bar per implementation on a device (bpgpu's JAX
# runs once per compile mode: a step, or a whole epoch).
cases = list(dict.fromkeys((r["net"], r["batch"]) for r in records))
fig, axes = plt.subplots(1, len(cases), figsize=(4 * len(cases), 4.2), layout="constrained")
for ax, (net, batch) in zip(np.atleast_1d(axes), cases):
    rows = [r for r in records if (r["net"], r["batch"]) == (net, batch)]
    labels = [f"{r['impl']} {r['device']}" + ("" if r["mode"] == "step" else f" ({r['mode']})")
              for r in rows]
    ax.barh(labels, [r["samples_per_s"] for r in rows],
            color=["C0" if r["impl"] == "bpgpu" else "0.6" for r in rows])
    ax.invert_yaxis()
    ax.set(xlabel="samples / s (training)", title=f"{net} @ batch {batch}")
    ax.tick_params(axis="y", labelsize=8)
fig.suptitle(f"Training throughput, {results['env']['cpu_model']} "
             f"({results['env']['cpu_count']} cores)")
