"""The figures of ``bpgpu lecture``: one PNG per claim, drawn from what bpgpu measured.

The error surfaces are drawn from bpgpu's own E, ∂E/∂w and Hessian at one point: E of a linear
neuron is exactly ``E0 + g·d + ½ dᵀHd``, so no second implementation of E is needed.
"""

from __future__ import annotations

import numpy as np

PRODUCTS = ("coffee", "juice", "toast")
COLORS = ("#8c564b", "#ff7f0e", "#d4a017")  # coffee brown, juice orange, toast gold


def draw_all(numbers, curves, out):
    """Write every figure into the folder ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, and none opened
    import matplotlib.pyplot as plt

    figures = {"1_cafeteria.png": _cafeteria, "2_error_surface.png": _error_surface,
               "3_learning_rate.png": _learning_rate, "4_correlation.png": _correlation,
               "5_batch_vs_online.png": _batch_vs_online, "6_logistic.png": _logistic,
               "7_xor.png": _xor}
    paths = []
    for name, draw in figures.items():
        fig = draw(plt, numbers, curves)
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        paths.append(out / name)
    return paths


def quadratic(w0, E0, g, H, W1, W2):
    """E on a grid of weights, from E, ∂E/∂w and the Hessian measured at ``w0``."""
    d = np.stack([W1 - w0[0], W2 - w0[1]])
    return E0 + np.einsum("i,i...->...", g, d) + 0.5 * np.einsum("i...,ij,j...->...", d, H, d)


def _grid(xlim, ylim, n=121):
    return np.meshgrid(np.linspace(*xlim, n), np.linspace(*ylim, n))


def _contours(ax, surface, center, xlim, ylim, through=None, top=None):
    """Contours of E round ``center``, up to E = ``top`` (default: all of the box); the one
    through the point ``through`` is drawn in red."""
    W1, W2 = _grid(xlim, ylim)
    E = quadratic(surface["w0"], surface["E0"], surface["g"], surface["H"], W1, W2)
    top = E.max() if top is None else top
    # Levels evenly spaced in √E are evenly spaced ellipses, E being quadratic.
    levels = np.linspace(np.sqrt(max(E.min(), 0)), np.sqrt(top), 12)[1:] ** 2
    ax.contour(W1, W2, E, levels=levels, colors="0.6", linewidths=0.8)
    if through is not None:
        level = quadratic(surface["w0"], surface["E0"], surface["g"], surface["H"], *through)
        ax.contour(W1, W2, E, levels=[level], colors="C3", linewidths=1, linestyles=":")
    ax.plot(*center, "k*", ms=12, label="minimum")
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")


def _cafeteria(plt, numbers, curves):
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    _cafeteria_step(left, numbers["cafeteria_step"], numbers["cafeteria_prices"]["true"])
    _cafeteria_prices(right, numbers["cafeteria_prices"], curves["cafeteria_prices"]["prices"])
    return fig


def _cafeteria_step(ax, step, true):
    x = np.arange(3)
    for k, (label, w) in enumerate([("first guess", step["w_before"]),
                                    ("after one step", step["w_after"]), ("true price", true)]):
        ax.bar(x + (k - 1) * 0.27, w, 0.27, label=label, color=("0.75", "C0", "k")[k])
    ax.set_xticks(x, [f"{p}\nx = {v:g}" for p, v in zip(PRODUCTS, step["x"])])
    ax.set(ylabel="price w (cents)", ylim=(0, 185))
    ax.annotate("coffee got worse", (0, 102), (0.25, 125), arrowprops={"arrowstyle": "->"})
    ax.set_title(f"One delta-rule step Δw = η x (t − y), η = 1/35:\n"
                 f"residual t − y = {step['residual_before']:g} → {step['residual_after']:g}, "
                 f"Δw = ({', '.join(f'{v:+g}' for v in step['delta_w'])})")
    ax.legend(loc="upper left", fontsize=8)


def _cafeteria_prices(ax, n, prices):
    for i, name in enumerate(PRODUCTS):
        ax.plot(prices[:, i], color=COLORS[i], label=f"w_{name}")
        ax.axhline(n["true"][i], color=COLORS[i], ls=":", lw=1)
    ax.set_xscale("symlog", linthresh=10)
    ax.set(xlim=(0, len(prices) - 1), xlabel="epoch (every bill once, online learning)",
           ylabel="price w (cents)")
    ax.set_title(f"{n['weeks']} weekly bills, η = {n['lr']:g}: the prices reach\n"
                 f"the true ones (dotted) within {n['max_abs_error']:.0e} cents")
    ax.legend(fontsize=8)


def _error_surface(plt, numbers, curves):
    s, n = curves["error_surface"], numbers["error_surface"]
    center = np.array(n["minimum"])
    box = (center[0] - 120, center[0] + 120), (center[1] - 120, center[1] + 120)
    fig = plt.figure(figsize=(11, 4.6), layout="constrained")
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    W1, W2 = _grid(*box, 41)
    ax3.plot_surface(W1, W2, quadratic(s["w0"], s["E0"], s["g"], s["H"], W1, W2) / 1000,
                     cmap="viridis", alpha=0.85, linewidth=0)
    ax3.set(xlabel="w_juice", ylabel="w_toast", zlabel="E (thousands)")
    ax3.set_title("E = ½ Σ (t − y)²: a quadratic bowl (coffee fixed at 50)")
    ax = fig.add_subplot(1, 2, 2)
    _contours(ax, s, center, *box)
    ax.set(xlabel="w_juice (cents)", ylabel="w_toast (cents)")
    ax.set_title(f"Its cross-sections are ellipses (axes {n['axis_ratio']:.1f} : 1)")
    ax.legend(fontsize=8)
    return fig


def _learning_rate(plt, numbers, curves):
    c = curves["learning_rate"]
    show = _three_rates(numbers["learning_rate"])
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), layout="constrained")
    _final_errors(axes[0], numbers["learning_rate"], c, numbers["learning_rate_limit"])
    true = np.array(numbers["cafeteria_prices"]["true"])
    for lr in show:
        axes[1].plot(c["errors"][lr], label=f"η = {lr:g}")
        axes[2].plot((c["paths"][lr][:31] - true) @ c["steepest"], ".-", label=f"η = {lr:g}")
    axes[2].axhline(0, color="k", lw=0.8)
    axes[1].set(yscale="log", xlabel="epoch", ylabel="E", ylim=(1e-6, 1e12),
                title="Too large an η overshoots and diverges")
    axes[2].set(xlabel="epoch", ylabel="w − w* along the steepest axis of the bowl (cents)",
                title="Overshooting: each step jumps past the minimum")
    for ax in axes[1:]:
        ax.legend(fontsize=8)
    return fig


def _final_errors(ax, rows, c, limit):
    start = c["errors"][rows[0]["lr"]][0]
    top = 30 * start  # diverged runs are drawn here: their E has no useful value to show
    for diverged, style, label in ((False, "o", "converges"), (True, "^", "diverges (E → ∞)")):
        pick = [r for r in rows if r["diverged"] == diverged]
        ax.plot([r["lr"] for r in pick], [top if diverged else r["final_error"] for r in pick],
                style, color="C3" if diverged else "C0", label=label)
    ax.axhline(start, color="0.5", ls=":", lw=1, label="E at the first guess")
    ax.axvline(limit["eta_max"], color="0.4", ls="--", lw=1,
               label=f"2/λmax = {limit['eta_max']:.4f}")
    ax.set(xscale="log", yscale="log", xlabel="learning rate η",
           ylabel=f"E after {rows[0]['epochs_run']} epochs",
           title="Final error against learning rate\n(batch learning of the 3 prices)")
    ax.legend(fontsize=8, loc="lower left")


def _three_rates(rows):
    """A slow rate, the largest that converges, and the smallest that diverges."""
    good = [r["lr"] for r in rows if not r["diverged"]]
    bad = [r["lr"] for r in rows if r["diverged"]]
    return [good[len(good) // 3], max(good), min(bad)]


def _correlation(plt, numbers, curves):
    rows = numbers["correlation"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.4), layout="constrained")
    rho = [r["rho"] for r in rows]
    axes[0].plot(rho, [r["epochs"] for r in rows], "o-", label="epochs to within a cent")
    axes[0].set(yscale="log", xlabel="correlation ρ of the juice and toast portions",
                ylabel=f"epochs (batch, η = {rows[0]['lr']:g})",
                title="Correlated inputs learn slowly")
    twin = axes[0].twinx()
    twin.plot(rho, [r["max_angle_deg"] for r in rows], "s--", color="C1",
              label="widest angle of −∂E/∂w\nto the way to the minimum (°)")
    twin.set(ylim=(0, 90), ylabel="degrees")
    handles = axes[0].get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    axes[0].legend(handles=handles, loc="upper left", fontsize=8)
    for ax, r in zip(axes[1:], (rho[0], rho[len(rho) // 2], rho[-1])):
        _correlation_panel(ax, curves["correlation"][r], r)
    return fig


def _correlation_panel(ax, c, rho):
    target = np.array([150.0, 100.0])
    w, g = c["worst"]
    _contours(ax, c, target, (40, 260), (-10, 210), through=w)
    path = c["path"]
    ax.plot(path[:, 0], path[:, 1], ".-", color="C0", ms=3, lw=0.8,
            label=f"batch path, {len(path) - 1} epochs")
    ax.annotate("", w - 45 * g / np.linalg.norm(g), w,
                arrowprops={"arrowstyle": "->", "color": "C3", "lw": 1.5})
    ax.annotate("", target, w, arrowprops={"arrowstyle": "->", "color": "C2", "ls": "--"})
    ax.plot([], [], color="C3", label="−∂E/∂w (across the ellipse)")
    ax.plot([], [], color="C2", ls="--", label="way to the minimum")
    ax.set(xlabel="w_juice", ylabel="w_toast", title=f"ρ = {rho:g}")
    ax.legend(fontsize=7, loc="upper right")


def _batch_vs_online(plt, numbers, curves):
    paths, n = curves["batch_vs_online"], numbers["batch_vs_online"]
    target = np.array(numbers["error_surface"]["minimum"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    _contours(left, curves["error_surface"], target, (40, 170), (35, 145),
              top=curves["error_surface"]["E0"])  # the last ellipse passes through (50, 50)
    for kind, color in (("batch", "C0"), ("online", "C3")):
        p, per_epoch = paths[kind], n[kind]["steps"] / n[kind]["epochs"]
        left.plot(p[:, 0], p[:, 1], ".-", color=color, ms=4, lw=0.8,
                  label=f"{kind}, η = {n[kind]['lr']:g}: {n[kind]['steps']} steps")
        right.plot(np.arange(len(p)) / per_epoch, np.max(np.abs(p - target), axis=1),
                   color=color, label=f"{kind}: {n[kind]['epochs']} epochs")
    left.set(xlabel="w_juice (cents)", ylabel="w_toast (cents)",
             title="Batch follows −∂E/∂w; online zig-zags bill by bill")
    left.legend(fontsize=8, loc="lower right")
    right.axhline(1.0, color="0.5", ls=":", lw=1)
    right.set(yscale="log", xlabel="epoch", ylabel="largest price error (cents)",
              title="Both reach the minimum (to within a cent)")
    right.legend(fontsize=8)
    return fig


def _logistic(plt, numbers, curves):
    c, n = curves["logistic_derivative"], numbers["logistic_derivative"]
    fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
    ax.plot(c["z"], c["y"], label="y = 1 / (1 + e^(−z))")
    ax.plot(c["z"], c["dydz"], label="dy/dz = y(1 − y)")
    ax.plot(c["z"][::8], c["central"][::8], "k.", label="central difference of y")
    ax.set(xlabel="z", title=f"The logistic neuron: y(1 − y) within "
                             f"{n['max_abs_error']:.0e} of the numerical slope")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _xor(plt, numbers, curves):
    c = curves["xor"]
    side = int(round(np.sqrt(len(c["grid"]))))
    X1, X2 = (c["grid"][:, k].reshape(side, side) for k in (0, 1))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.3), layout="constrained")
    titles = {"no_hidden": "no hidden units", "linear_hidden": "2 linear hidden units",
              "logistic_hidden": "2 logistic hidden units"}
    for ax, (name, title) in zip(axes, titles.items()):
        y = c[name].reshape(side, side)
        shading = ax.contourf(X1, X2, y, levels=np.linspace(0, 1, 11), cmap="coolwarm",
                              alpha=0.8)
        ax.contour(X1, X2, y, levels=[0.5], colors="k", linewidths=1.5)
        ax.scatter(c["X"][:, 0], c["X"][:, 1], c=c["y"], cmap="coolwarm", edgecolors="k",
                   s=120)
        ax.set(xlabel="x1", ylabel="x2", aspect="equal",
               title=f"{title}: accuracy {numbers['xor'][name]:.0%}")
    fig.colorbar(shading, ax=axes, label="network output y", shrink=0.8)
    fig.suptitle("XOR: only non-linear hidden units solve it (black line: y = 0.5)")
    return fig
