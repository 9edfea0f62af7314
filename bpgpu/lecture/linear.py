"""The lecture's linear neuron, measured with bpgpu: the cafeteria delta rule, the error surface,
the learning rate, correlated inputs, and batch versus online learning.

All training is :meth:`bpgpu.MLP.fit` (or, to see every online step, :meth:`bpgpu.Trainer.step`);
gradients are :meth:`bpgpu.MLP.gradients`. The NumPy here draws data, reads weights back and
summarizes them. Each experiment returns ``(numbers, curves)``:
JSON-ready numbers for ``lecture.json`` and host arrays for the figures.
"""

from __future__ import annotations

import math

import numpy as np

from .. import MLP, Trainer, TrainingDiverged, datasets
from ..datasets._builtin import CAFETERIA_PRICES as TRUE_PRICES

START = 50.0  # the lecture's first guess: 50 cents for everything
ETA_STEP = 1 / 35  # the lecture's learning rate for the single worked step
WEEKS = 10  # bills in bpgpu's cafeteria data set (its largest)
CENT = 1.0  # the tolerance: every price within a cent
PRICES_LR, PRICES_EPOCHS = 0.01, 200  # online learning, stable below 2 / max |x|² = 0.026
LRS = [0.001, 0.003, 0.01, 0.02, 0.03, 0.04, 0.045, 0.05, 0.1, 0.3]
LR_EPOCHS = 200
RHOS = [0.0, 0.5, 0.8, 0.9, 0.95, 0.99]
CORR_LR, CORR_ROWS = 0.5, 50  # 0.5 < 2 / (1 + ρ): stable at every ρ, so only the speed differs
BATCH_LR, ONLINE_LR = 0.03, 0.02
MAX_EPOCHS = 5000


def bills():
    """The weekly bills of :mod:`bpgpu.datasets`: portions (WEEKS, 3) and cents (WEEKS, 1)."""
    data = datasets.load(f"cafeteria:{WEEKS}", seed=0)
    return data.X, data.y


def juice_and_toast(X, T):
    """The bills with coffee's price fixed at its true 50 cents: a neuron with two free prices."""
    return X[:, 1:], T - X[:, :1] * TRUE_PRICES[0]


def linear_neuron(start, device):
    """The lecture's linear neuron ``y = Σ wᵢxᵢ`` (no bias, SSE error) with weights ``start``."""
    start = np.asarray(start, dtype=np.float64).reshape(-1, 1)
    net = MLP([start.shape[0], 1], "identity", "identity", "sse", device=device,
              dtype="float64", bias=False)
    net.set_weights([(start, None)])
    return net


def host_weights(net):
    """The neuron's weights as a NumPy copy, shape (n_inputs,) (training may reuse the arrays)."""
    W, _ = net.weights[0]
    return np.array(net.backend.to_host(W), dtype=np.float64).reshape(-1)


def host_gradient(net, X, T):
    """bpgpu's ∂E/∂w on (X, T) at the current weights, as a NumPy vector."""
    ((dW, _),) = net.gradients(X, T)
    return np.array(net.backend.to_host(dW), dtype=np.float64).reshape(-1)


def curvature(net, X, T, w):
    """E, ∂E/∂w and the Hessian at ``w``, from bpgpu's gradients; leaves the weights at ``w``.

    E of a linear neuron is quadratic in w, so its gradient changes linearly: a unit step in
    each weight gives that Hessian column exactly, with no finite-difference error.
    """
    columns = []
    for step in np.eye(len(w)):
        net.set_weights([((w + step).reshape(-1, 1), None)])
        columns.append(host_gradient(net, X, T))
    net.set_weights([(w.reshape(-1, 1), None)])
    g = host_gradient(net, X, T)
    return net.loss_value(X, T), g, np.column_stack(columns) - g[:, None]


def cafeteria_step(device):
    """The lecture's one step of the delta rule on its single bill, with η = 1/35."""
    X, T = bills()
    x, t = X[:1], float(T[0, 0])  # week 1 is the lecture's bill: 5, 2, 3 portions, 850 cents
    net = linear_neuron([START] * 3, device)
    w0, y0 = host_weights(net), float(net.predict(x, host=True)[0, 0])
    net.fit(x, T[:1], epochs=1, batch_size="full", lr=ETA_STEP, optimizer="sgd")
    w1, y1 = host_weights(net), float(net.predict(x, host=True)[0, 0])
    return {"x": x[0].tolist(), "t": t, "eta": ETA_STEP, "w_before": w0.tolist(),
            "residual_before": t - y0, "delta_w": (w1 - w0).tolist(),
            "residual_after": t - y1, "w_after": w1.tolist()}, None


def cafeteria_prices(device):
    """Online learning over all the weeks' bills until the prices settle."""
    X, T = bills()
    net = linear_neuron([START] * 3, device)
    path = [host_weights(net)]
    net.fit(X, T, epochs=PRICES_EPOCHS, batch_size=1, lr=PRICES_LR, optimizer="sgd",
            callbacks=[lambda net, epoch, logs: path.append(host_weights(net))])
    learned = path[-1]
    return {"learned": learned.tolist(), "true": TRUE_PRICES.tolist(), "weeks": len(X),
            "epochs": PRICES_EPOCHS, "lr": PRICES_LR, "learning": "online",
            "max_abs_error": float(np.max(np.abs(learned - TRUE_PRICES)))}, \
        {"prices": np.array(path)}


def error_surface(device):
    """The bowl E(w_juice, w_toast): its curvature measured at two far-apart points."""
    X, T = juice_and_toast(*bills())
    net = linear_neuron([START] * 2, device)
    w0 = np.full(2, START)
    E0, g, H = curvature(net, X, T, w0)
    _, _, H_far = curvature(net, X, T, np.array([400.0, -200.0]))
    eig = np.linalg.eigvalsh(H)
    return {"free": ["juice", "toast"], "fixed": {"coffee": float(TRUE_PRICES[0])},
            "hessian": H.tolist(), "hessian_change": float(np.max(np.abs(H_far - H))),
            "eigenvalues": eig.tolist(), "axis_ratio": math.sqrt(eig[-1] / eig[0]),
            "minimum": (w0 - np.linalg.solve(H, g)).tolist()}, \
        {"w0": w0, "E0": E0, "g": g, "H": H}


def learning_rate(device):
    """Batch learning of all three prices at each η in LRS, for LR_EPOCHS epochs."""
    X, T = bills()
    rows, errors, paths = [], {}, {}
    for lr in LRS:
        row, errors[lr], paths[lr] = _train_at_rate(linear_neuron([START] * 3, device), X, T, lr)
        rows.append(row)
    _, _, H = curvature(linear_neuron([START] * 3, device), X, T, np.full(3, START))
    eig, vec = np.linalg.eigh(H)
    limit = {"lambda_max": float(eig[-1]), "eta_max": float(2 / eig[-1])}
    return rows, {"errors": errors, "paths": paths, "limit": limit, "steepest": vec[:, -1]}


def _train_at_rate(net, X, T, lr):
    """Train at one η; E and the weights at the start of every epoch and at the end, until
    done or E overflows."""
    errors, path = [], [host_weights(net)]

    def record(net, epoch, logs):
        errors.append(logs["loss"])  # one full batch: E at the weights the epoch started from
        path.append(host_weights(net))

    try:
        net.fit(X, T, epochs=LR_EPOCHS, batch_size="full", lr=lr, optimizer="sgd",
                callbacks=[record])
        non_finite = False
    except TrainingDiverged:  # E overflowed; fit kept the last finite weights
        non_finite = True
    errors.append(net.loss_value(X, T))
    final = [e for e in errors if math.isfinite(e)][-1]
    row = {"lr": lr, "final_error": final, "epochs_run": len(errors) - 1,
           "diverged": non_finite or final > errors[0], "non_finite": non_finite}
    return row, np.array(errors), np.array(path)


def correlated_bills(rho, rows=CORR_ROWS, seed=0):
    """Standardized juice and toast portions with correlation exactly ρ, and their bills.

    Centring and orthonormalizing the draws first makes the sample covariance exactly
    [[1, ρ], [ρ, 1]], so every ρ differs only in how the two inputs go together.
    """
    z = np.random.default_rng(seed).standard_normal((rows, 2))
    q, _ = np.linalg.qr(z - z.mean(axis=0))
    X = math.sqrt(rows) * q @ np.linalg.cholesky([[1.0, rho], [rho, 1.0]]).T
    return X, X @ TRUE_PRICES[1:, None]


def correlation(device):
    """Batch learning of (w_juice, w_toast) from (50, 50) at each ρ in RHOS, to within a cent.

    ``max_angle_deg`` is the largest angle, all round the minimum, between the way downhill
    (−∂E/∂w) and the way to the minimum: how far the gradient can point away from where to go.
    """
    rows, curves, target = [], {}, TRUE_PRICES[1:]
    for rho in RHOS:
        X, T = correlated_bills(rho)
        net = linear_neuron([START] * 2, device)
        angle, worst = _widest_angle(net, X, T, target)
        E0, g, H = curvature(net, X, T, np.full(2, START))
        epochs, path = batch_until_within_a_cent(net, X, T, CORR_LR, target)
        rows.append({"rho": rho, "epochs": epochs, "lr": CORR_LR, "max_angle_deg": angle})
        curves[rho] = {"w0": np.full(2, START), "E0": E0, "g": g, "H": H, "path": path,
                       "worst": worst}
    return rows, curves


def _widest_angle(net, X, T, target, radius=60.0, points=90):
    """The largest angle between −∂E/∂w and ``target − w`` over a circle of weights round
    ``target``, and the point where it is widest, with its gradient."""
    best = (-1.0, None)
    # E is even about the minimum, so half a circle will do; this half keeps the point off the
    # path from (50, 50) in the figure.
    for theta in np.linspace(np.pi, 2 * np.pi, points, endpoint=False):
        w = target + radius * np.array([np.cos(theta), np.sin(theta)])
        net.set_weights([(w.reshape(-1, 1), None)])
        g = host_gradient(net, X, T)
        best = max(best, (_angle(-g, target - w), (w, g)), key=lambda pair: pair[0])
    return best


def _angle(u, v):
    """The angle in degrees between two vectors."""
    cos = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def batch_until_within_a_cent(net, X, T, lr, target):
    """Batch learning until every weight is within a cent of ``target``; returns the epochs
    that took and the weights after each of them, start first.

    ``fit`` runs in doubling chunks of epochs rather than one call per epoch: a compiling
    device compiles once per call. The net is left at the first weights within a cent.
    """
    path, chunk = [host_weights(net)], 8
    record = [lambda net, epoch, logs: path.append(host_weights(net))]
    while len(path) <= MAX_EPOCHS:
        net.fit(X, T, epochs=chunk, batch_size="full", lr=lr, optimizer="sgd",
                callbacks=record)
        close = np.flatnonzero(np.max(np.abs(np.array(path) - target), axis=1) < CENT)
        if close.size:
            net.set_weights([(path[close[0]].reshape(-1, 1), None)])
            return int(close[0]), np.array(path[:close[0] + 1])
        chunk *= 2
    raise RuntimeError(f"batch learning did not come within a cent of {target} in "
                       f"{len(path) - 1} epochs")


def online_until_within_a_cent(net, X, T, lr, target):
    """Online learning (one delta-rule step per bill, in the order they came) until every
    weight is within a cent of ``target`` at the end of an epoch; returns the epochs that
    took and the weights after every step, start first."""
    # Trainer.step is the step fit takes per batch; calling it here shows every one of them.
    trainer = Trainer(net, "sgd", lr=lr)
    rows = [(net.backend.asarray(X[i:i + 1], net.dtype), net.backend.asarray(T[i:i + 1], net.dtype))
            for i in range(X.shape[0])]
    path = [host_weights(net)]
    for epoch in range(1, MAX_EPOCHS + 1):
        for x, t in rows:
            trainer.step(x, t)
            path.append(host_weights(net))
        if np.max(np.abs(path[-1] - target)) < CENT:
            return epoch, np.array(path)
    raise RuntimeError(f"online learning did not come within a cent of {target} in "
                       f"{MAX_EPOCHS} epochs")


def batch_vs_online(device):
    """Batch and online learning of (w_juice, w_toast) from (50, 50) to within a cent."""
    X, T = juice_and_toast(*bills())
    target, numbers, curves = TRUE_PRICES[1:], {}, {}
    for kind, lr, learn in (("batch", BATCH_LR, batch_until_within_a_cent),
                            ("online", ONLINE_LR, online_until_within_a_cent)):
        net = linear_neuron([START] * 2, device)
        epochs, path = learn(net, X, T, lr, target)
        numbers[kind] = {"lr": lr, "epochs": epochs, "steps": len(path) - 1,
                         "final_error": net.loss_value(X, T),
                         "max_abs_error": float(np.max(np.abs(path[-1] - target))),
                         "path_length": float(np.sum(np.linalg.norm(np.diff(path, axis=0),
                                                                    axis=1)))}
        curves[kind] = path
    return numbers, curves
