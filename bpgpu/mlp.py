""":class:`MLP`: the network with its conveniences — ``fit``, ``evaluate``, ``save`` and ``load``.

The model itself (settings, parameters, forward and backward) is :class:`bpgpu.network.Network`;
this class adds the methods that call training and file I/O, which sit above the model.
"""

from __future__ import annotations

from . import io, training
from .network import Network


class MLP(Network):
    __doc__ = Network.__doc__

    def fit(self, X, y, **kwargs):
        """Train on (X, y); see :func:`bpgpu.fit` for the options. Returns the history."""
        return training.fit(self, X, y, **kwargs)

    def evaluate(self, X, y):
        """``{"loss": ..., "accuracy": ...}`` on (X, y); see :func:`bpgpu.evaluate`."""
        return training.evaluate(self, X, y)

    def save(self, path):
        """Write the network to ``path`` (``.npz``, no pickle), atomically."""
        io.save(self, path)


def load(path, device=None):
    """Read a network written by :meth:`MLP.save`, onto ``device`` (any spec)."""
    return io.load(path, MLP, device=device)
