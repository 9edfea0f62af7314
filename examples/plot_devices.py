"""
Switching devices
=================

bpgpu's algorithm is written once against the Python Array API, so the device is a setting: the
same seeded network trains on NumPy, PyTorch, JAX or array-api-strict and follows the same loss
curve, up to float rounding.
"""

# %%
# Which devices are usable here
# -----------------------------
# :func:`bpgpu.devices` lists every backend bpgpu knows, usable or not, with the reason.
import matplotlib.pyplot as plt

import bpgpu
from bpgpu import datasets

usable = [d.spec for d in bpgpu.devices() if d.available]
for d in bpgpu.devices():
    print(f"{d.spec:>10}: {'usable' if d.available else d.reason}")

# %%
# Train the same network on each
# ------------------------------
# One seed, one recipe; only ``device`` changes. The history ``fit`` returns holds plain
# Python numbers whatever the device.
data = datasets.load("digits")
histories = {}
for device in usable:
    net = bpgpu.MLP([64, 32, 10], device=device, seed=0)
    histories[device] = net.fit(data.X, data.y, epochs=15, batch_size=64, lr=0.01)["loss"]
    print(f"{device:>10}: final loss {histories[device][-1]:.5f}")

# %%
# Draw
# ----
# The curves lie on top of each other.
fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
for k, (device, loss) in enumerate(histories.items()):
    ax.plot(range(1, len(loss) + 1), loss, ls=("-", "--", ":", "-.")[k % 4], lw=2,
            label=device)
ax.set(yscale="log", xlabel="epoch", ylabel="training loss (cross-entropy)",
       title="The same network on every usable device")
ax.legend()
