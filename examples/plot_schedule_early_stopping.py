"""
A learning-rate schedule with early stopping
============================================

A cosine schedule warms the learning rate up over a few epochs, then lowers it; early stopping
watches the loss on held-out data and ends the run when it has stopped improving, keeping the
best epoch's weights.
"""

# %%
# Train
# -----
# ``validation_fraction`` holds out a share of the data (stratified by class) and records its
# loss as ``val_loss`` after every epoch; the history records each epoch's ``lr`` too.
import matplotlib.pyplot as plt

import bpgpu
from bpgpu import datasets

data = datasets.load("digits")
net = bpgpu.MLP([64, 64, 10], device="cpu", seed=0)
stop = bpgpu.EarlyStopping(monitor="val_loss", patience=5, min_delta=1e-3)
# Cosine(60, warmup=3): up to Adam's default η0 = 0.01 in 3 epochs, down to 0 at epoch 60;
# EarlyStopping ends the run once val_loss has not improved by 0.001 for 5 epochs.
history = net.fit(data.X, data.y, epochs=60, batch_size=32, optimizer="adam",
                  lr=bpgpu.schedules.Cosine(60, warmup=3), validation_fraction=0.25,
                  standardize=True, callbacks=[stop])
print(f"stopped at epoch {stop.stopped_epoch}, best val_loss {stop.best:.4f} "
      f"at epoch {stop.best_epoch}")

# %%
# Draw
# ----
epochs = range(1, len(history["loss"]) + 1)
fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
ax.plot(epochs, history["loss"], label="loss (training)")
ax.plot(epochs, history["val_loss"], label="val_loss (held out)")
ax.axvline(stop.best_epoch, color="0.5", ls=":", label=f"best epoch ({stop.best_epoch})")
ax.set(yscale="log", xlabel="epoch", ylabel="cross-entropy",
       title="Cosine schedule, early stopping on val_loss")
twin = ax.twinx()
twin.plot(epochs, history["lr"], color="C2", ls="--", label="learning rate")
twin.set(ylabel="learning rate η", ylim=(0, None))
handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
ax.legend(handles=handles, fontsize=8)
