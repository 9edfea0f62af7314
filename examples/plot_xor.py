"""
XOR needs non-linear hidden units
=================================

No single-layer network separates XOR's two classes, and neither does one whose hidden units are
linear (a linear function of a linear function is linear). Two logistic hidden units solve it.
"""

# %%
# Measure
# -------
# :func:`bpgpu.lecture.xor` trains the three networks alike (Adam, 300 epochs, one seed) and
# returns their accuracy and their output over a grid of inputs.
import matplotlib.pyplot as plt
import numpy as np

from bpgpu.lecture import xor

accuracy, curves = xor("cpu")
for name, value in accuracy.items():
    print(f"{name:>15}: accuracy {value:.0%}")

# %%
# Draw
# ----
# Each panel shades a network's output y over the plane; the black line is y = 0.5.
side = int(round(np.sqrt(len(curves["grid"]))))
X1, X2 = (curves["grid"][:, k].reshape(side, side) for k in (0, 1))
titles = {"no_hidden": "no hidden units", "linear_hidden": "2 linear hidden units",
          "logistic_hidden": "2 logistic hidden units"}
fig, axes = plt.subplots(1, 3, figsize=(13, 4.3), layout="constrained")
for ax, (name, title) in zip(axes, titles.items()):
    y = curves[name].reshape(side, side)
    shading = ax.contourf(X1, X2, y, levels=np.linspace(0, 1, 11), cmap="coolwarm")
    ax.contour(X1, X2, y, levels=[0.5], colors="k")
    ax.scatter(curves["X"][:, 0], curves["X"][:, 1], c=curves["y"], cmap="coolwarm",
               edgecolors="k", s=120)
    ax.set(xlabel="x1", ylabel="x2", aspect="equal", title=f"{title}: {accuracy[name]:.0%}")
fig.colorbar(shading, ax=axes, label="network output y", shrink=0.8)
