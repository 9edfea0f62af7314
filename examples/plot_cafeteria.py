"""
The cafeteria's delta rule
==========================

The lecture's first example: a cashier's bill is a linear neuron ``y = Σ wᵢxᵢ`` whose weights
are the prices of coffee, juice and toast. One step of the delta rule ``Δw = η x (t − y)`` with
η = 1/35 on a bill of 850 cents turns the residual t − y from 350 into −30; online learning over
ten weeks of bills finds the true prices.
"""

# %%
# Measure
# -------
# :func:`bpgpu.lecture.linear.cafeteria_step` takes the one step with :meth:`bpgpu.MLP.fit`,
# and :func:`~bpgpu.lecture.linear.cafeteria_prices` trains online on every bill.
import matplotlib.pyplot as plt
import numpy as np

from bpgpu.lecture import linear

step, _ = linear.cafeteria_step("cpu")
prices, curves = linear.cafeteria_prices("cpu")
print(f"residual before the step: {step['residual_before']:g} cents, "
      f"after it: {step['residual_after']:g} cents")
print("learned prices:", np.round(prices["learned"], 6), "true:", prices["true"])

# %%
# Draw
# ----
# Left: the weights before and after the step (coffee got worse: one bill cannot tell the
# prices apart). Right: the prices after every epoch of online learning.
products = ["coffee", "juice", "toast"]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
x = np.arange(3)
for k, (label, w) in enumerate([("first guess", step["w_before"]),
                                ("after one step", step["w_after"]),
                                ("true price", prices["true"])]):
    left.bar(x + (k - 1) * 0.27, w, 0.27, label=label)
left.set_xticks(x, products)
left.set(ylabel="price w (cents)",
         title=f"One step, η = 1/35: residual {step['residual_before']:g} → "
               f"{step['residual_after']:g}")
left.legend(fontsize=8)
path = curves["prices"]
for i, name in enumerate(products):
    right.plot(path[:, i], color=f"C{i}", label=f"w_{name}")
    right.axhline(prices["true"][i], color=f"C{i}", ls=":", lw=1)
right.set_xscale("symlog", linthresh=10)
right.set(xlabel="epoch (online learning)", ylabel="price w (cents)",
          title=f"The prices converge (within {prices['max_abs_error']:.0e} cents)")
right.legend(fontsize=8)
