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
        """Write the network to ``path`` as safetensors, atomically.

        The file holds the parameters ``W0``, ``b0``, ``W1``, ... (``W{l}`` of shape
        (n_in, n_out)) as tensors, and the settings, shuffling RNG state and history as
        metadata; any suffix is accepted, ``.safetensors`` is the usual one. Weights with NaN or
        infinity are refused. See :mod:`bpgpu.io`.
        """
        io.save(self, path)


def load(path, device=None):
    """Read a network (or checkpoint) written by :meth:`MLP.save`, onto ``device`` (any spec).

    Reading runs no code and checks every array against the file's config first; a damaged or
    foreign file raises :class:`bpgpu.ModelFileError` naming the file and the problem. Files of
    bpgpu 0.1.0's zip format load too (save them again to convert them).
    """
    return io.load(path, MLP, device=device)
