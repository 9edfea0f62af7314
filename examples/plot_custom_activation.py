"""
A custom activation
===================

An activation is a small class with a ``name``, a ``forward`` and a ``derivative`` written with
the array namespace of its argument, so that it runs on every device. Registered with
:func:`bpgpu.register`, its name works wherever a built-in one does, including in saved files,
which store the name and never the code.
"""

# %%
# Softplus
# --------
# ``y = log(1 + e^z)``, whose slope is the logistic function, ``dy/dz = 1 − e^(−y)``: like
# the logistic neuron's, it is written with the output y.
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from array_api_compat import array_namespace

import bpgpu
from bpgpu import datasets
from bpgpu.activations import Activation


class Softplus(Activation):
    """``y = log(1 + exp(z))``, ``dy/dz = 1 − exp(−y)``."""

    name = "softplus"

    def forward(self, z):
        xp = array_namespace(z)
        # max(z, 0) + log1p(exp(−|z|)): exp never overflows
        return xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))

    def derivative(self, y):
        return 1 - array_namespace(y).exp(-y)


# replace=True: running this script again (a notebook cell, a gallery build) defines a new
# class of the same name, which then replaces the old one.
bpgpu.register(Softplus(), replace=True)

# %%
# Train, save and load
# --------------------
# Two interleaved spirals, a network with two softplus hidden layers.
data = datasets.load("spirals:300", seed=0)
net = bpgpu.MLP([2, 32, 32, 2], activation="softplus", device="cpu", seed=0)
history = net.fit(data.X, data.y, epochs=200, batch_size=32, lr=0.01)
with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "softplus.safetensors"
    net.save(path)
    loaded = bpgpu.load(path)
print("hidden activations of the loaded network:", [a.name for a in loaded.activations])
print("same predictions:",
      np.allclose(loaded.predict(data.X, host=True), net.predict(data.X, host=True)))
print(f"training accuracy: {np.mean(loaded.predict_labels(data.X) == data.y):.1%}")

# %%
# Draw
# ----
# Left: the training loss. Right: the loaded network's classes over the plane.
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
left.plot(history["loss"])
left.set(yscale="log", xlabel="epoch", ylabel="training loss", title="Training with softplus")
lo, hi = data.X.min(axis=0) - 0.5, data.X.max(axis=0) + 0.5
G1, G2 = np.meshgrid(np.linspace(lo[0], hi[0], 150), np.linspace(lo[1], hi[1], 150))
labels = loaded.predict_labels(np.column_stack([G1.ravel(), G2.ravel()]))
right.contourf(G1, G2, np.asarray(labels).reshape(G1.shape), levels=[-0.5, 0.5, 1.5],
               cmap="coolwarm", alpha=0.4)
right.scatter(data.X[:, 0], data.X[:, 1], c=data.y, cmap="coolwarm", s=8)
right.set(xlabel="x1", ylabel="x2", aspect="equal", title="The loaded network's classes")
