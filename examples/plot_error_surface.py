"""
The error surface of a linear neuron
====================================

With coffee's price fixed, the squared error E(w_juice, w_toast) of the cafeteria's linear neuron
is a quadratic bowl: its cross-sections are ellipses, and its curvature (the Hessian) is the same
everywhere.
"""

# %%
# Measure
# -------
# :func:`bpgpu.lecture.linear.error_surface` measures E, ∂E/∂w and the Hessian with bpgpu's own
# gradients at one point and checks that the Hessian is unchanged at a far-away one.
import matplotlib.pyplot as plt
import numpy as np

from bpgpu.lecture import linear
from bpgpu.lecture.plots import quadratic

numbers, surface = linear.error_surface("cpu")
print("Hessian:", np.round(numbers["hessian"], 3))
print(f"largest change of the Hessian far away: {numbers['hessian_change']:.1e}")
print(f"axes of the ellipses: {numbers['axis_ratio']:.2f} : 1")

# %%
# Draw
# ----
# E being quadratic, :func:`bpgpu.lecture.plots.quadratic` gives it everywhere from what was
# measured at one point.
center = np.array(numbers["minimum"])
W1, W2 = np.meshgrid(np.linspace(center[0] - 120, center[0] + 120, 81),
                     np.linspace(center[1] - 120, center[1] + 120, 81))
E = quadratic(surface["w0"], surface["E0"], surface["g"], surface["H"], W1, W2)
fig = plt.figure(figsize=(11, 4.5), layout="constrained")
ax3 = fig.add_subplot(1, 2, 1, projection="3d")
ax3.plot_surface(W1, W2, E / 1000, cmap="viridis", linewidth=0)
ax3.set(xlabel="w_juice", ylabel="w_toast", zlabel="E (thousands)", title="A quadratic bowl")
ax = fig.add_subplot(1, 2, 2)
ax.contour(W1, W2, E, levels=np.linspace(0, np.sqrt(E.max()), 12)[1:] ** 2, colors="0.5")
ax.plot(*center, "k*", ms=12, label="minimum")
ax.set(xlabel="w_juice (cents)", ylabel="w_toast (cents)", aspect="equal",
       title=f"Elliptic cross-sections (axes {numbers['axis_ratio']:.1f} : 1)")
ax.legend(fontsize=8)
