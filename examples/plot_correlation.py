"""
Correlated inputs slow learning down
====================================

When two inputs go together, the ellipses of the error surface stretch along a diagonal and the
gradient −∂E/∂w points across them rather than towards the minimum: batch learning at the same
rate needs many more epochs to come within a cent of the true prices.
"""

# %%
# Measure
# -------
# :func:`bpgpu.lecture.linear.correlation` learns juice and toast prices from bills whose
# portions have correlation exactly ρ, each run to within a cent.
import matplotlib.pyplot as plt

from bpgpu.lecture import linear

rows, curves = linear.correlation("cpu")
for row in rows:
    print(f"ρ = {row['rho']:<5g} {row['epochs']:>5} epochs, "
          f"gradient up to {row['max_angle_deg']:.0f}° off the way to the minimum")

# %%
# Draw
# ----
# Left: epochs against ρ. Right: the batch paths across the weight plane for an uncorrelated
# and a strongly correlated pair of inputs.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
rho = [r["rho"] for r in rows]
left.plot(rho, [r["epochs"] for r in rows], "o-")
left.set(yscale="log", xlabel="correlation ρ of the two inputs",
         ylabel=f"epochs to within a cent (η = {rows[0]['lr']:g})",
         title="Correlated inputs learn slowly")
for r in (rho[0], rho[-1]):
    path = curves[r]["path"]
    right.plot(path[:, 0], path[:, 1], ".-", ms=3, lw=0.8,
               label=f"ρ = {r:g}: {len(path) - 1} epochs")
right.plot(*linear.TRUE_PRICES[1:], "k*", ms=12, label="true prices")
right.set(xlabel="w_juice (cents)", ylabel="w_toast (cents)", aspect="equal",
          title="Batch paths from (50, 50)")
right.legend(fontsize=8)
