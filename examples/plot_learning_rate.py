"""
The learning rate
=================

Batch learning of the cafeteria's three prices at ten learning rates: a small η converges
slowly, a larger one faster, and beyond 2/λmax (λmax the largest curvature of the error surface)
every step overshoots the minimum by more than it started from, and learning diverges.
"""

# %%
# Measure
# -------
# :func:`bpgpu.lecture.linear.learning_rate` trains one neuron per η for 200 epochs and
# measures the Hessian's largest eigenvalue.
import matplotlib.pyplot as plt

from bpgpu.lecture import linear

rows, curves = linear.learning_rate("cpu")
limit = curves["limit"]["eta_max"]
for row in rows:
    print(f"η = {row['lr']:<6g} final E = {row['final_error']:<12.4g} "
          f"{'diverged' if row['diverged'] else 'converged'}")
print(f"2 / λmax = {limit:.4f}")

# %%
# Draw
# ----
# Left: the error after training against η (a diverged run has no useful final error: it is
# drawn above the error at the first guess). Right: E per epoch for a slow rate, the largest
# rate that converges and the smallest that diverges.
good = [r["lr"] for r in rows if not r["diverged"]]
bad = [r["lr"] for r in rows if r["diverged"]]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
start = curves["errors"][rows[0]["lr"]][0]
for diverged, marker, label in ((False, "o", "converges"), (True, "^", "diverges (E → ∞)")):
    pick = [r for r in rows if r["diverged"] == diverged]
    left.plot([r["lr"] for r in pick], [30 * start if diverged else r["final_error"]
                                        for r in pick], marker,
              color="C3" if diverged else "C0", label=label)
left.axhline(start, color="0.5", ls=":", lw=1, label="E at the first guess")
left.axvline(limit, color="0.4", ls="--", lw=1, label=f"2/λmax = {limit:.4f}")
left.set(xscale="log", yscale="log", xlabel="learning rate η", ylabel="E at the end",
         title="Final error against the learning rate")
left.legend(fontsize=8)
for lr in (good[len(good) // 3], max(good), min(bad)):
    right.plot(curves["errors"][lr], label=f"η = {lr:g}")
right.set(yscale="log", ylim=(1e-6, 1e12), xlabel="epoch", ylabel="E",
          title="Too large an η overshoots and diverges")
right.legend(fontsize=8)
