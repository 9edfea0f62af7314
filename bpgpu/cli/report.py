"""Human-readable training summaries and loss/accuracy plots for the CLI."""

from __future__ import annotations

import math
import os


def summary_lines(s, args=None):
    """The end-of-training report: device, epochs, time, throughput, accuracies."""
    ranks = f"  × {s['ranks']} ranks ({s['allreduce']})" if "ranks" in s else ""
    lines = [f"device      {s['device']}{ranks}",
             f"data        {s['dataset']}  layers {'-'.join(map(str, s['layers']))}  "
             f"{s['optimizer']} lr={s['lr']:g} batch={s['batch_size']}",
             f"epochs      {s['epochs']}{_resumed(s)} in {s['seconds']:.2f} s "
             f"({(s['samples_per_s'] or 0):,.0f} samples/s)",
             _scores("train", s, "")]
    if "val_loss" in s:
        lines.append(_scores("held-out", s, "val_"))
    if s.get("saved"):
        lines.append(f"saved       {s['saved']}")
    return lines


def _scores(part, s, prefix):
    """One line of a part's scores: the loss (on the standardised scale when the targets are
    standardised, where the RMSE in the targets' units follows), and the accuracy."""
    if prefix + "loss" not in s:
        return f"{part:<12}no epoch run: the network as initialised"
    scale = " (standardised targets)" if s.get("standardized_targets") else ""
    rmse = f"  RMSE {_significant(s[prefix + 'rmse'])}" if prefix + "rmse" in s else ""
    return (f"{part:<12}loss {s[prefix + 'loss']:.4f}{scale}{rmse}"
            + _acc(s.get(prefix + "accuracy")))


def _significant(value, digits=4):
    """``value`` to ``digits`` significant digits in plain notation, thousands separated."""
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


def _resumed(s):
    """How the run went beside its epoch count: resumed, stopped early, a scheduled rate."""
    notes = []
    if s.get("resumed_from"):
        notes.append(f"{s['resumed_from']} from the checkpoint")
    if s.get("stopped_epoch"):
        notes.append(f"stopped early at epoch {s['stopped_epoch']}; the weights of epoch "
                     f"{s['best_epoch']}, the best held-out loss, are kept")
    elif s.get("best_epoch") and s["best_epoch"] != s["epochs"]:
        notes.append(f"the weights of epoch {s['best_epoch']}, the best, are kept")
    if s.get("final_lr") is not None and s["final_lr"] != s["lr"]:
        notes.append(f"last rate {s['final_lr']:.3g}")
    return f" ({'; '.join(notes)})" if notes else ""


def _acc(value):
    return "" if value is None else f"  accuracy {value:.2%}"


def check_plot(path):
    """Fail early, before training, when matplotlib is missing or cannot write ``path``'s
    format (its suffix; no suffix is PNG)."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise ValueError("--plot needs matplotlib; install it with: pip install 'bpgpu[plot]'") \
            from None
    fmt = _format(path)
    formats = FigureCanvasBase.get_supported_filetypes()
    if fmt not in formats:
        raise ValueError(f"--plot {path}: matplotlib cannot write '.{fmt}' files; use one of "
                         f"{', '.join('.' + f for f in sorted(formats))} (e.g. curves.png)")


def _format(path):
    return os.path.splitext(str(path))[1].lstrip(".").lower() or "png"


def plot_history(hist, path, title=""):
    """Loss (and accuracy, where there is one) against epoch, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .files import atomic_write

    has_acc = "accuracy" in hist
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5, 3.6),
                             squeeze=False)
    epochs = range(1, len(hist["loss"]) + 1)
    for ax, key in zip(axes[0], ["loss", "accuracy"]):
        ax.plot(epochs, hist[key], label="train")
        if "val_" + key in hist:
            ax.plot(epochs, hist["val_" + key], label="held-out")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format=_format(path), dpi=110))
    plt.close(fig)
