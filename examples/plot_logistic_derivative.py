"""
The logistic neuron's derivative
================================

A logistic neuron's output ``y = 1 / (1 + e^(−z))`` has the slope ``dy/dz = y(1 − y)``:
backpropagation needs only the output it already computed. bpgpu's slope agrees with a central
difference of its own y(z) to about 1e-11.
"""

# %%
# Measure
# -------
# :func:`bpgpu.lecture.logistic_derivative` reads y(z) from a one-weight network, and the slope
# backpropagation uses from its deltas.
import matplotlib.pyplot as plt

from bpgpu.lecture import logistic_derivative

numbers, curves = logistic_derivative("cpu")
print(f"y(1 − y) against the central difference: {numbers['max_abs_error']:.1e}")
print(f"backpropagation's slope against it:       {numbers['backprop_max_abs_error']:.1e}")

# %%
# Draw
# ----
fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
ax.plot(curves["z"], curves["y"], label="y = 1 / (1 + e^(−z))")
ax.plot(curves["z"], curves["dydz"], label="dy/dz = y(1 − y)")
ax.plot(curves["z"][::8], curves["central"][::8], "k.", label="central difference of y")
ax.set(xlabel="z", title=f"y(1 − y) within {numbers['max_abs_error']:.0e} of the slope")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
