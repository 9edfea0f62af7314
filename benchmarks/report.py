"""What a run shows and writes: the progress line, the summary table, the plot and the JSON."""

from __future__ import annotations

import json
import os
import sys

from .accounting import PEERS

_HEAD = (f"{'net':<16}{'batch':>7}  {'device':<14}{'bpgpu/s':>9}{'torch/s':>9}{'raw/s':>9}"
         f"{'sklearn/s':>10}{'jax/s':>9}{'TFLOP/s':>9}{'%ceil':>7}{'×torch':>8}{'×raw':>7}"
         f"{'×sklearn':>9}{'×jax':>7}{'GPU/CPU':>8}{'peak/min':>9}")
_RATIO_COLUMNS = (("torch", 8), ("raw", 7), ("sklearn", 9), ("jax", 7))


def fmt_rate(x):
    """A rate in 3 significant digits with a k/M/G suffix (``12.3k``); ``-`` for None."""
    if x is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            v = x / scale
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return f"{x:.3g}"


def fmt_s(s):
    """A duration for the progress line: ``42s`` or ``3m05s``."""
    if s >= 90:
        return f"{s / 60:.0f}m{s % 60:02.0f}s"
    return f"{s:.0f}s"


def per(rec):
    """What one timed call of a record is, for its units: ``"epoch"`` (one epoch of ``fit``,
    ``mode`` "epoch") or ``"step"`` (one training step on a fixed batch)."""
    return "epoch" if rec.get("mode") == "epoch" else "step"


def _ratio(a, b):
    return None if not a or not b else a / b


def _fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}"


def table(records):
    """The summary, one row per (net, batch, bpgpu device).

    Each row gives samples/s of bpgpu and of each peer on the same hardware, TFLOP/s, % of
    ceiling, bpgpu's speed-up over each peer (the paired ``speedup_vs`` where recorded, else the
    ratio of samples/s), GPU/CPU for bpgpu (ratio of samples/s) and peak_bytes / min_bytes; then
    one line per failed measurement.
    """
    groups = {}
    for r in records:
        if r.get("error") is None:
            groups.setdefault((r["net"], r["batch"], r["hardware"], r["impl"]), []).append(r)
    lines = [_HEAD, "-" * len(_HEAD)]
    for net, batch, hw in dict.fromkeys((r["net"], r["batch"], r["hardware"]) for r in records):
        peers = {p: _first_rate(groups.get((net, batch, hw, p), [])) for p in PEERS}
        on_cpu = sorted((r for r in groups.get((net, batch, "cpu", "bpgpu"), [])
                         if r.get("mode") != "epoch"),
                        key=lambda r: r["device"] != "cpu")  # NumPy first
        cpu_rate = _first_rate(on_cpu) if hw != "cpu" else None
        for r in groups.get((net, batch, hw, "bpgpu"), [None]):
            lines.append(_row(net, batch, r, peers, cpu_rate))
    lines += [f"ERROR {r['net']} batch {r['batch']} {r['impl']} on {r['device']}: "
              f"{r['error'][:200]}" for r in records if r.get("error")]
    return "\n".join(lines)


def _first_rate(records):
    return records[0]["samples_per_s"] if records else None


def _row(net, batch, r, peers, cpu_rate):
    """One table row for bpgpu's record ``r`` (None: bpgpu has none for this hardware)."""
    r = r or {}
    sps = r.get("samples_per_s")
    tfl = f"{r['tflops']:.3g}" if r.get("tflops") is not None else "-"
    pct = f"{r['pct_of_ceiling']:.1f}%" if r.get("pct_of_ceiling") is not None else "-"
    paired = r.get("speedup_vs") or {}
    ratios = "".join(f"{_fmt_ratio(paired.get(p, _ratio(sps, peers[p]))):>{width}}"
                     for p, width in _RATIO_COLUMNS)
    device = r.get("device", "-") + (" epoch" if r.get("mode") == "epoch" else "")
    return (f"{net:<16}{batch:>7}  {device:<14}{fmt_rate(sps):>9}"
            f"{fmt_rate(peers['torch']):>9}{fmt_rate(peers['raw']):>9}"
            f"{fmt_rate(peers['sklearn']):>10}{fmt_rate(peers['jax']):>9}{tfl:>9}{pct:>7}{ratios}"
            f"{_fmt_ratio(_ratio(sps, cpu_rate)):>8}{_fmt_ratio(r.get('peak_over_min')):>9}")


def progress(rec, done, total, left):
    """The stderr line for one finished measurement, with the time the run has left."""
    if rec.get("error"):
        what = "ERROR " + rec["error"][:100]
    else:
        what = (f"{fmt_rate(rec['samples_per_s'])} samples/s, "
                f"{rec['step_s'] * 1e3:.3g} ms/{per(rec)}, {rec['tflops']:.3g} TFLOP/s"
                + (f" ({rec['pct_of_ceiling']:.1f}% of ceiling)"
                   if rec["pct_of_ceiling"] is not None else "")
                + (f", spread {100 * rec['spread']:.0f}%" if rec["spread"] else "")
                + (f", {rec['retried']} re-take(s)" if rec["retried"] else "")
                + (f", other processes {100 * rec['host_load_other']:.0f}% CPU"
                   if (rec["host_load_other"] or 0) > 0.05 else ""))
    impl = rec["impl"] + (" epoch" if rec.get("mode") == "epoch" else "")
    print(f"[{done:>3}/{total}] {rec['net']} b={rec['batch']} {impl:<7} on "
          f"{rec['device']:<12} {what}  (~{fmt_s(left)} left)", file=sys.stderr, flush=True)


def write_json(path, env, records, quiet=False):
    """Write ``{"env": env, "records": records}`` to ``path``, making its folder if need be.

    The file is replaced in one step (written beside it, then renamed), so a run stopped while
    writing leaves the previous complete file, never half of one.
    """
    mkdir_for(path)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"env": env, "records": records}, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)
    if not quiet:
        print(f"bench: wrote {path}", file=sys.stderr)


def mkdir_for(path):
    """Make the folder that ``path`` will be written into."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def plot(records, path, title=""):
    """samples/s against batch size, log axes, one panel per net, one line per device + impl.

    Returns False, with a line on stderr, when matplotlib is missing or nothing succeeded.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        print("--plot: matplotlib is not installed, no plot written (pip install matplotlib)",
              file=sys.stderr)
        return False
    ok = [r for r in records if r.get("error") is None]
    nets = list(dict.fromkeys(r["net"] for r in ok))
    if not nets:
        print("--plot: no successful measurement to plot", file=sys.stderr)
        return False
    fig = Figure(figsize=(6.0 * len(nets), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(nets), squeeze=False)[0]
    for ax, net in zip(axes, nets, strict=True):
        _plot_net(ax, [r for r in ok if r["net"] == net])
    if title:
        fig.suptitle(title, fontsize=10)
    mkdir_for(path)
    fig.savefig(path, dpi=110)
    return True


def _plot_net(ax, records):
    """One panel: the records of one net, a line per (impl, device)."""
    from matplotlib.ticker import NullLocator

    styles = {"bpgpu": "-", "torch": "--", "raw": ":", "sklearn": "-."}
    lines = {}
    for r in records:
        impl = r["impl"] + (" epoch" if r.get("mode") == "epoch" else "")
        lines.setdefault((impl, r["device"]), []).append((r["batch"], r["samples_per_s"]))
    for (impl, device), pts in sorted(lines.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], styles.get(impl, "-"),
                marker="o", label=f"{impl} on {device}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    batches = sorted({r["batch"] for r in records})
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_title(f"{records[0]['net']} ({'-'.join(map(str, records[0]['sizes']))})")
    ax.set_xlabel("batch size")
    ylabel = "samples / s (one SGD step"
    if any(per(r) == "epoch" for r in records):
        ylabel += "; 'epoch' lines: one epoch of fit"
    ax.set_ylabel(ylabel + ")")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
