"""
Batch versus online learning
============================

Batch learning takes one step down the gradient of the whole error per epoch; online learning
takes one step per bill, zig-zagging across the error surface as each bill pulls its own way.
Both reach the minimum.
"""

# %%
# Measure
# -------
# :func:`bpgpu.lecture.linear.batch_vs_online` learns the juice and toast prices both ways,
# recording the weights after every step, until they are within a cent of the true ones.
import matplotlib.pyplot as plt
import numpy as np

from bpgpu.lecture import linear

numbers, paths = linear.batch_vs_online("cpu")
for kind, n in numbers.items():
    print(f"{kind:>6}: η = {n['lr']:g}, {n['epochs']} epochs, {n['steps']} steps, "
          f"path length {n['path_length']:.0f} cents")

# %%
# Draw
# ----
target = linear.TRUE_PRICES[1:]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
for kind, color in (("batch", "C0"), ("online", "C3")):
    p, n = paths[kind], numbers[kind]
    left.plot(p[:, 0], p[:, 1], ".-", color=color, ms=4, lw=0.8,
              label=f"{kind}: {n['steps']} steps")
    right.plot(np.arange(len(p)) * n["epochs"] / n["steps"], np.max(np.abs(p - target), axis=1),
               color=color, label=f"{kind}: {n['epochs']} epochs")
left.plot(*target, "k*", ms=12, label="true prices")
left.set(xlabel="w_juice (cents)", ylabel="w_toast (cents)",
         title="Batch follows −∂E/∂w; online zig-zags")
left.legend(fontsize=8)
right.axhline(1.0, color="0.5", ls=":", lw=1)
right.set(yscale="log", xlabel="epoch", ylabel="largest price error (cents)",
          title="Both come within a cent")
right.legend(fontsize=8)
