"""``bpgpu lecture``: each claim of the seed lecture, measured with bpgpu and drawn as a figure.

1. the cafeteria's delta rule (one exact step; the true prices found after weeks of bills);
2. the linear neuron's error surface is a quadratic bowl with elliptic cross-sections;
3. too large a learning rate diverges, a small enough one converges;
4. correlated inputs stretch the ellipses and slow learning down;
5. batch and online learning take different paths across the same surface;
6. the logistic neuron's dy/dz = y(1 − y);
7. XOR needs hidden units, and they must be non-linear.

Every network here is a :class:`bpgpu.MLP` trained by its own ``fit``; nothing re-implements
the algorithm. The NumPy in these modules only makes data and summarizes what bpgpu returns.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .. import MLP, get_backend
from . import linear
from .plots import draw_all

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0, 1, 1, 0])
XOR_NETS = {  # hidden activation, or None for no hidden layer; one seed and one recipe for all
    "no_hidden": None,
    "linear_hidden": "identity",
    "logistic_hidden": "logistic",
}
XOR_GRID = np.stack(np.meshgrid(np.linspace(-0.5, 1.5, 161), np.linspace(-0.5, 1.5, 161)),
                    axis=-1).reshape(-1, 2)  # where the figure shows each network's output
LOGISTIC_Z = np.linspace(-8.0, 8.0, 161)
CENTRAL_H = 1e-5  # rounding (~1e-16 / h) and truncation (~h² / 48) both stay near 1e-11


def logistic_derivative(device):
    """bpgpu's logistic y(z) and its dy/dz, against a central difference of that same y(z).

    The unit ``y = logistic(1 · x)`` has z = x exactly. With targets ``t = y − 1`` the SSE
    gives ∂E/∂y = (y − t) / n = 1 / n for every example, so n · δ is the dy/dz bpgpu uses in
    backpropagation.
    """
    net = MLP([1, 1], "identity", "logistic", "sse", device=device, dtype="float64", bias=False)
    net.set_weights([(np.ones((1, 1)), None)])
    z = LOGISTIC_Z[:, None]
    y = net.predict(z, host=True)
    central = (net.predict(z + CENTRAL_H, host=True)
               - net.predict(z - CENTRAL_H, host=True)) / (2 * CENTRAL_H)
    (delta,) = net.deltas(z, y - 1.0)
    backprop = len(z) * np.asarray(net.backend.to_host(delta))
    formula = y * (1 - y)
    return {"max_abs_error": float(np.max(np.abs(formula - central))),
            "backprop_max_abs_error": float(np.max(np.abs(backprop - central))),
            "z": [float(LOGISTIC_Z[0]), float(LOGISTIC_Z[-1])], "points": len(z),
            "h": CENTRAL_H}, \
        {"z": LOGISTIC_Z, "y": y[:, 0], "dydz": formula[:, 0], "central": central[:, 0]}


def xor(device):
    """XOR learned by three networks: no hidden layer, linear hidden units, logistic ones.

    All three train alike (Adam, η = 0.1, 300 full-batch epochs, seed 1), so only the hidden
    units differ. Seed 1 avoids the 2-2-1 network's local minima on XOR.
    """
    numbers, curves = {}, {"X": XOR_X, "y": XOR_Y, "grid": XOR_GRID}
    for name, hidden in XOR_NETS.items():
        sizes = [2, 1] if hidden is None else [2, 2, 1]
        net = MLP(sizes, hidden or "logistic", loss="cross_entropy", device=device,
                  dtype="float64", seed=1)
        net.fit(XOR_X, XOR_Y, epochs=300, batch_size="full", lr=0.1, optimizer="adam")
        numbers[name] = float(np.mean(net.predict_labels(XOR_X) == XOR_Y))
        curves[name] = net.predict(XOR_GRID, host=True)[:, 0]
    return numbers, curves


EXPERIMENTS = {
    "cafeteria_step": linear.cafeteria_step,
    "cafeteria_prices": linear.cafeteria_prices,
    "error_surface": linear.error_surface,
    "learning_rate": linear.learning_rate,
    "correlation": linear.correlation,
    "batch_vs_online": linear.batch_vs_online,
    "logistic_derivative": logistic_derivative,
    "xor": xor,
}


def measure(device=None):
    """Run every experiment on one device.

    Parameters
    ----------
    device : str or backend, optional
        Any device spec (``"cpu"``, ``"torch:cpu"``, ``"cuda:0"``, ...); default
        ``$BPGPU_DEVICE`` or ``"auto"``.

    Returns
    -------
    numbers : dict
        The measured numbers, keyed as in ``lecture.json`` (see :func:`run`).
    curves : dict
        Host arrays (and the XOR networks) for the figures, under the same keys.
    """
    backend = get_backend(device)  # resolved once, so that a bad spec fails before any work
    numbers, curves = {"device": backend.name}, {}
    for key, experiment in EXPERIMENTS.items():
        numbers[key], curves[key] = experiment(backend)
    numbers["learning_rate_limit"] = curves["learning_rate"]["limit"]
    return numbers, curves


def check_matplotlib():
    """Fail before any training when matplotlib, which draws the figures, is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError("bpgpu lecture draws its figures with matplotlib; install it with: "
                         "pip install 'bpgpu[plot]'") from None


def run(out="lecture", device=None, stream=None):
    """Measure every claim, write ``out/lecture.json`` and one PNG per claim, print a report.

    Parameters
    ----------
    out : path
        The folder for the figures and ``lecture.json`` (created if missing).
    device : str, optional
        The device spec for every network.
    stream : file, optional
        Where the report goes (default standard output).

    Returns
    -------
    dict
        The numbers written to ``lecture.json``.
    """
    check_matplotlib()
    get_backend(device).check_dtype("float64")  # the lecture's numbers are float64: fail first
    out = _folder(out)
    t0 = time.perf_counter()
    numbers, curves = measure(device)
    figures = draw_all(numbers, curves, out)
    numbers["seconds"] = time.perf_counter() - t0
    (out / "lecture.json").write_text(_json(numbers), encoding="utf-8")
    stream = stream or sys.stdout
    for line in report_lines(numbers):
        print(line, file=stream)
    print(f"wrote {', '.join(p.name for p in figures)} and lecture.json to {out} "
          f"({numbers['seconds']:.1f} s)", file=stream)
    return numbers


def _folder(out):
    """``out`` as a folder that exists, made now so that a bad path fails before any work."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a folder for the figures")
    out.mkdir(parents=True, exist_ok=True)
    return out


def command(args):
    """``bpgpu lecture [--out DIR] [--device SPEC]``; returns the exit status."""
    run(args.out, device=args.device)
    return 0


def report_lines(n):
    """The report, one or two lines per claim, in the lecture's terms."""
    step, prices = n["cafeteria_step"], n["cafeteria_prices"]
    surface = n["error_surface"]
    return [
        f"lecture on {n['device']}",
        f"1 cafeteria, one delta-rule step (η = 1/35): residual {step['residual_before']:g} → "
        f"{step['residual_after']:g}, Δw = ({_signed(step['delta_w'])}); coffee "
        f"{step['w_before'][0]:g} → {step['w_after'][0]:g}, worse (true price 50)",
        f"  {prices['weeks']} weeks of bills, online, {prices['epochs']} epochs: prices "
        f"({_cents(prices['learned'])}), within {prices['max_abs_error']:.1g} cents",
        f"2 error surface E(w_juice, w_toast): a quadratic bowl, elliptic contours with axes "
        f"{surface['axis_ratio']:.1f} : 1, minimum at ({_cents(surface['minimum'])})",
        *_learning_lines(n),
        f"6 logistic: dy/dz = y(1 − y) within {n['logistic_derivative']['max_abs_error']:.1g} "
        "of a central difference",
        f"7 XOR accuracy: no hidden units {n['xor']['no_hidden']:.0%}, linear hidden units "
        f"{n['xor']['linear_hidden']:.0%}, logistic hidden units "
        f"{n['xor']['logistic_hidden']:.0%}",
    ]


def _learning_lines(n):
    """Claims 3 to 5: the learning rate, correlated inputs, batch and online learning."""
    lrs, corr, bo = n["learning_rate"], n["correlation"], n["batch_vs_online"]
    good = max(r["lr"] for r in lrs if not r["diverged"])
    bad = min(r["lr"] for r in lrs if r["diverged"])
    return [
        f"3 learning rate: η = {good:g} converges, η = {bad:g} diverges (limit 2/λmax = "
        f"{n['learning_rate_limit']['eta_max']:.4f})",
        f"4 correlation ρ = {corr[0]['rho']:g} → {corr[-1]['rho']:g}: epochs to a cent "
        f"{corr[0]['epochs']} → {corr[-1]['epochs']}; −∂E/∂w up to "
        f"{corr[-1]['max_angle_deg']:.0f}° off the way to the minimum",
        f"5 batch: {bo['batch']['steps']} steps, path {bo['batch']['path_length']:.0f} cents; "
        f"online: {bo['online']['steps']} steps, path {bo['online']['path_length']:.0f} cents",
    ]


def _json(numbers):
    """JSON with one claim per line: short enough to read, and still plain JSON."""
    rows = [f" {json.dumps(key)}: {json.dumps(value)}" for key, value in numbers.items()]
    return "{\n" + ",\n".join(rows) + "\n}\n"


def _signed(values):
    return ", ".join(f"{v:+g}" for v in values)


def _cents(values):
    return ", ".join(f"{v:.2f}" for v in values)
