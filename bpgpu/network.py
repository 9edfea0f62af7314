"""The multilayer network and its backward pass, as the lecture derives it.

Notation (per layer l = 1..L, batch of n examples in rows):
``z_l = y_{l-1} W_l + b_l``, ``y_l = f_l(z_l)``, ``y_0 = X``.
Deltas ``δ_l = ∂E/∂z_l`` (shape (n, n_l)): at the output ``δ_L = f'(z_L) · ∂E/∂y_L`` (for the
matched pairs simply ``(y - t) / n``); in hidden layers ``δ_l = f'(z_l) ∘ (δ_{l+1} W_{l+1}ᵀ)``.
Gradients ``∂E/∂W_l = y_{l-1}ᵀ δ_l`` and ``∂E/∂b_l = Σ_n δ_l``; the update is ``Δw = -η ∂E/∂w``.
E is the batch-mean loss, so every δ carries the factor 1/n.
"""

from __future__ import annotations

import warnings

from . import _host, activations, kernels, losses
from .registry import get_backend

DTYPES = ("float32", "float64")


class MLP:
    """A fully connected feed-forward network trained by backpropagation.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first: ``[64, 32, 10]`` is 64 inputs, 32 hidden units, 10 outputs.
    activation : str
        Hidden-layer activation: ``identity``, ``logistic``, ``tanh`` or ``relu``.
    output : str, optional
        Output activation; by default ``softmax`` for ``cross_entropy`` with several outputs,
        ``logistic`` for ``cross_entropy`` with one, ``identity`` for ``sse`` and ``mse``.
    loss : str
        ``cross_entropy``, ``sse`` (the lecture's ½Σ(t−y)²) or ``mse``; averaged over the batch.
    device : str, optional
        A device spec (``"cpu"``, ``"cuda:0"``, ``"torch:cpu"``, ``"strict"``, ...); default
        ``$BPGPU_DEVICE`` or ``"auto"``.
    dtype : {"float32", "float64"}
    seed : int
        Seeds the initial weights and the shuffling; the same seed gives the same initial weights
        on every device.
    bias : bool
        Whether each layer has a bias vector (the lecture's linear neuron has none).
    fused : bool
        Use the backend's fast paths for the step (in-place NumPy, fused CuPy kernels) where it
        has them; ``False`` forces the plain Array API reference everywhere.
    """

    def __init__(self, sizes, activation="logistic", output=None, loss="cross_entropy", *,
                 device=None, dtype="float32", seed=0, bias=True, fused=True):
        self.sizes = _check_sizes(sizes)
        self.activation = activations.get(activation)
        self.output = activations.get(output or _default_output(loss, self.sizes[-1]))
        self.loss = losses.for_output(losses.get(loss), self.output.name)
        _check_pairing(self.output.name, self.loss.name, self.sizes[-1])
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.dtype_name = dtype
        self.backend = get_backend(device)
        self.xp = self.backend.xp
        self.dtype = getattr(self.xp, dtype)
        self.seed = seed
        self.bias = bias
        self.fused = fused
        self.kernels = (fused and self.backend.kernels) or kernels.REFERENCE
        init_rng, self.shuffle_rng = _host.seed_streams(seed)
        self.set_weights(_host.initial_weights(self.sizes, self.activation.name, init_rng, bias))
        self.history = None

    def __repr__(self):
        return (f"MLP({self.sizes}, activation={self.activation.name!r}, "
                f"output={self.output.name!r}, loss={self.loss.name!r}, "
                f"device={self.device!r}, dtype={self.dtype_name!r})")

    @property
    def device(self) -> str:
        """The canonical spec of the device the weights live on."""
        return self.backend.name

    @property
    def weights(self):
        """List of ``(W, b)`` per layer on the device; ``W`` has shape (n_in, n_out), ``b`` (n_out,)
        or ``None`` without bias. These are the live arrays: training updates them in place."""
        return list(zip(self._W, self._b))

    @property
    def params(self):
        """The parameters as one flat list ``[W1, b1, W2, b2, ...]`` (biases only if present)."""
        return [p for pair in self.weights for p in pair if p is not None]

    def set_weights(self, pairs):
        """Replace the weights with ``[(W, b), ...]`` from the host (NumPy) or any device.

        The values are copied into the network's existing arrays, so a :class:`bpgpu.Trainer`
        made earlier keeps training the same arrays.
        """
        with self.backend.context():
            W_new, b_new = self._checked_copies(list(pairs))
        if not hasattr(self, "_W"):
            self._W, self._b = W_new, b_new
            return
        for old, new in zip(self._W + self._b, W_new + b_new):
            if old is not None:
                old[...] = new

    def _checked_copies(self, pairs):
        if len(pairs) != len(self.sizes) - 1:
            raise ValueError(f"set_weights needs {len(self.sizes) - 1} (W, b) pairs, "
                             f"got {len(pairs)}")
        W_new, b_new = [], []
        for i, ((W, b), n_in, n_out) in enumerate(zip(pairs, self.sizes[:-1], self.sizes[1:])):
            W_new.append(self._move(W, (n_in, n_out), f"W[{i}]"))
            if self.bias:
                b_new.append(self._move(b, (n_out,), f"b[{i}]"))
            elif b is not None:
                raise ValueError(f"b[{i}] given, but this network has bias=False; pass None")
            else:
                b_new.append(None)
        return W_new, b_new

    def _move(self, a, shape, name):
        if a is None:
            raise ValueError(f"{name} is None; expected an array of shape {shape}")
        arr = self.backend.asarray(a, self.dtype)
        if tuple(arr.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(arr.shape)}, expected {shape}")
        return self.xp.asarray(arr, copy=True)

    # -- forward and backward, on device arrays -------------------------------------------

    def _forward(self, X):
        acts = [X]
        last = len(self._W) - 1
        for i, (W, b) in enumerate(zip(self._W, self._b)):
            f = self.output if i == last else self.activation
            acts.append(self.kernels.dense(acts[-1], W, b, f))
        return acts

    def _backward(self, acts, T):
        """Deltas and gradients of the batch-mean loss from a forward pass's activations."""
        k = self.kernels
        delta = k.output_delta(self.loss, self.output, acts[-1], T)
        deltas, grads = [delta], []
        for i in range(len(self._W) - 1, -1, -1):
            y_in = acts[i]
            db = k.bias_grad(self.xp, delta) if self._b[i] is not None else None
            grads.append((k.weight_grad(y_in, delta), db))
            if i > 0:
                delta = k.hidden_delta(y_in, delta, self._W[i], self.activation)
                deltas.append(delta)
        return deltas[::-1], grads[::-1]

    # -- public, on any input ----------------------------------------------------------------

    def forward(self, X):
        """All activations ``[X, y_1, ..., y_L]`` for inputs X of shape (n, sizes[0])."""
        with self.backend.context():
            return self._forward(self._inputs(X))

    def predict(self, X, host=False):
        """Network outputs, shape (n, sizes[-1]); NumPy when ``host=True``."""
        out = self.forward(X)[-1]
        return self.backend.to_host(out) if host else out

    def predict_labels(self, X):
        """Predicted class labels as a NumPy int array (argmax, or ``y ≥ 0.5`` for one output)."""
        from .trainer import labels_of

        with self.backend.context():
            out = self._forward(self._inputs(X))[-1]
            return self.backend.to_host(labels_of(self.xp, out))

    def gradients(self, X, T):
        """``[(∂E/∂W, ∂E/∂b), ...]`` per layer of the batch-mean loss E on (X, T).

        T may be class labels (shape (n,)) or targets of the output's shape (n, sizes[-1]).
        """
        return self._deltas_and_grads(X, T)[1]

    def deltas(self, X, T):
        """The lecture's deltas ``[δ_1, ..., δ_L]``, ``δ_l = ∂E/∂z_l`` of shape (n, sizes[l])."""
        return self._deltas_and_grads(X, T)[0]

    def _deltas_and_grads(self, X, T):
        with self.backend.context():
            X = self._inputs(X)
            return self._backward(self._forward(X), self._targets(T, X.shape[0]))

    def loss_value(self, X, T):
        """The batch-mean loss on (X, T) as a Python float."""
        with self.backend.context():
            X = self._inputs(X)
            T = self._targets(T, X.shape[0])
            return float(self.loss.value(self._forward(X)[-1], T))

    def fit(self, X, y, **kwargs):
        """Train on (X, y); see :func:`bpgpu.train.fit` for the options. Returns the history."""
        from .train import fit

        return fit(self, X, y, **kwargs)

    def to(self, device):
        """A copy of this network on another device (weights, settings and RNG state)."""
        other = MLP(self.sizes, self.activation.name, self.output.name, self.loss.name,
                    device=device, dtype=self.dtype_name, seed=self.seed, bias=self.bias,
                    fused=self.fused)
        other.set_weights([(self.backend.to_host(W), None if b is None else self.backend.to_host(b))
                           for W, b in self.weights])
        other.shuffle_rng.bit_generator.state = self.shuffle_rng.bit_generator.state
        return other

    def save(self, path):
        """Write the network to ``path`` (``.npz``, no pickle), atomically."""
        from .io import save

        save(self, path)

    # -- input conversion (host checks happen once per call, never inside the step) --------

    def _inputs(self, X, name="X"):
        from .validation import check_inputs

        return check_inputs(self, X, name)

    def _targets(self, T, n_rows, name="y"):
        from .validation import check_targets

        return check_targets(self, T, n_rows, name)


def _check_sizes(sizes):
    try:
        sizes = [int(s) for s in sizes]
    except (TypeError, ValueError):
        raise ValueError(f"sizes must be a list of layer widths such as [64, 32, 10], "
                         f"got {sizes!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes needs at least an input and an output width, each ≥ 1, "
                         f"got {sizes}")
    return sizes


def _default_output(loss, n_out):
    name = loss.name if isinstance(loss, losses.Loss) else losses.ALIASES.get(loss, loss)
    if name == "cross_entropy":
        return "softmax" if n_out > 1 else "logistic"
    return "identity"


def _check_pairing(output, loss, n_out):
    if output == "softmax" and n_out == 1:
        raise ValueError("a softmax over one output is always 1; use output 'logistic' for a "
                         "single yes/no unit, or two softmax outputs")
    if loss == "cross_entropy" and output not in ("softmax", "logistic"):
        raise ValueError(f"loss 'cross_entropy' needs a probability output ('softmax' or "
                         f"'logistic'), got output {output!r}; use loss 'sse' or 'mse' instead")
    if output == "softmax" and loss != "cross_entropy":
        warnings.warn(f"a softmax output with loss {loss!r} trains slowly when saturated; "
                      "'cross_entropy' is the matched loss", UserWarning, stacklevel=3)
