"""The multilayer network and its backward pass, as the lecture derives it.

Notation (per layer l = 1..L, batch of n examples in rows):
``z_l = y_{l-1} W_l + b_l``, ``y_l = f_l(z_l)``, ``y_0 = X``.
Deltas ``δ_l = ∂E/∂z_l`` (shape (n, n_l)): at the output ``δ_L = f'(z_L) · ∂E/∂y_L`` (for the
matched pairs simply ``(y - t) / n``); in hidden layers ``δ_l = f'(z_l) ∘ (δ_{l+1} W_{l+1}ᵀ)``.
Gradients ``∂E/∂W_l = y_{l-1}ᵀ δ_l`` and ``∂E/∂b_l = Σ_n δ_l``; the update is ``Δw = -η ∂E/∂w``.
E is the batch-mean loss, so every δ carries the factor 1/n.

The network is the model: its settings, its parameters, and the forward and backward passes as
functions of parameters handed in (by default its own). Training replaces the parameters; nothing
here writes into an array but a backend's in-place fast paths on arrays they have just made.
"""

from __future__ import annotations

from . import _host, losses, packed, rules, state
from .registry import get_backend
from .validation import (
    check_classes,
    check_flag,
    check_inputs,
    check_seed,
    check_sizes,
    check_targets,
)

DTYPES = ("float32", "float64")


class Network:
    """A fully connected feed-forward network and its backward pass (see :class:`bpgpu.MLP`).

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first: ``[64, 32, 10]`` is 64 inputs, 32 hidden units, 10 outputs.
    activation : str, Activation, or list of them
        Hidden-layer activation: ``identity``, ``logistic``, ``tanh``, ``relu``, or a custom rule
        (an :class:`~bpgpu.activations.Activation`, or the name of one given to
        :func:`bpgpu.register`). One for every hidden layer, or a list of one per hidden layer:
        ``["tanh", "relu"]`` for sizes ``[64, 32, 16, 10]``.
    output : str or Activation, optional
        Output activation; by default ``softmax`` for ``cross_entropy`` with several outputs,
        ``logistic`` for ``cross_entropy`` with one, ``identity`` for ``sse`` and ``mse``.
    loss : str or Loss
        ``cross_entropy``, ``sse`` (the lecture's ½Σ(t−y)²), ``mse`` or a custom
        :class:`~bpgpu.losses.Loss` (or its registered name); averaged over the batch.
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
        Use the rules' fast paths on the backend's in-place primitives (NumPy, PyTorch)
        where it has them; ``False`` forces the plain Array API reference everywhere.
    classes : sequence of int, float or str, optional
        The class label of each output, in output order (two labels for a single logistic
        output). With them, labels given to ``fit`` and ``evaluate`` are these labels (a label
        not among them is an error), and :meth:`predict_labels` answers in them. Without them,
        labels are the output indices ``0..k-1``.

    Attributes
    ----------
    activations : list of Activation
        Each hidden layer's activation, first to last; :attr:`activation` is the one they share.
    input_transform : bpgpu.transform.Standardize or None
        Applied to every input before the first layer (set by ``fit(..., standardize=True)``);
        saved with the network.
    target_transform : bpgpu.transform.Standardize or None
        A regression network's targets, standardised where they enter (``fit``, ``evaluate``,
        :meth:`gradients`: losses are then on that scale), and :meth:`predict`'s answers mapped
        back to the original units (set by ``fit(..., standardize=True)``).
    split : dict or None
        How ``bpgpu train`` chose the held-out rows (data set, rows, fraction, seed, fingerprint),
        for ``bpgpu evaluate --split held-out``.
    history : dict or None
        Every epoch the network has trained, across ``fit`` calls (see :func:`bpgpu.fit`).
    optimizer_state : (optimizer, dict) or None
        The optimizer of the last ``fit`` and its state (moments, step count), which the next
        ``fit`` with the same optimizer and settings continues; saved with the network.
    """

    def __init__(self, sizes, activation="logistic", output=None, loss="cross_entropy", *,
                 device=None, dtype="float32", seed=0, bias=True, fused=True, classes=None):
        self.sizes = check_sizes(sizes)
        self._shared, self._activations = rules.hidden_activations(activation,
                                                                   len(self.sizes) - 2)
        loss_rule = losses.get(loss)
        self.output = rules.lookup("activation", output or losses.default_output(
            loss_rule, self.sizes[-1]))
        self.loss = losses.for_output(loss_rule, self.output.name)
        losses.check_pairing(self.output.name, self.loss.name, self.sizes[-1])
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        self.dtype_name = dtype
        self.seed = check_seed(seed)
        self.bias = check_flag(bias, "bias")
        self.fused = check_flag(fused, "fused")
        k = 1 + self.bias
        # each layer: where its W and b are in the parameter list, and its activation
        self._layers = tuple((k * i, k * i + 1 if self.bias else None, f)
                             for i, f in enumerate([*self._activations, self.output]))
        n_params = sum((i + self.bias) * o for i, o in zip(self.sizes[:-1], self.sizes[1:]))
        _host.check_fits(8 * n_params, f"a network of layer sizes {self.sizes} "
                         f"({n_params:,} parameters, drawn in float64)", "use smaller layers")
        self.backend = get_backend(device)
        self.backend.check_dtype(dtype)
        self.xp = self.backend.xp
        self.dtype = getattr(self.xp, dtype)
        self.ops = self.backend.ops if fused else None
        # parameters as views into one buffer, where the primitives write into views of it (a
        # backend's ops that predate them, not derived from InPlaceOps, step per array)
        self._packs = hasattr(self.ops, "matmul_into")
        init_rng, self.shuffle_rng = _host.seed_streams(self.seed)
        self.set_weights(self._initial_weights(init_rng))
        self.classes = check_classes(classes, self.sizes[-1])
        self.input_transform = None
        self.target_transform = None
        self.split = None
        self.history = None
        self.optimizer_state = None

    @property
    def activations(self):
        """Each hidden layer's activation, first to last (a new list)."""
        return list(self._activations)

    @property
    def activation(self):
        """The activation every hidden layer has (AttributeError where they differ)."""
        if self._shared is None:
            raise AttributeError(f"this network's hidden layers have different activations "
                                 f"{self._activations}; read net.activations")
        return self._shared

    def _initial_weights(self, rng):
        """Host (W, b) pairs, each drawn for the activation after it (the output layer's for the
        last hidden one's, as when one serves all: the weights of one activation are unchanged)."""
        hidden = self._activations or [self._shared]
        names = [a.name for a in hidden] + [hidden[-1].name]
        return [pair for n_in, n_out, name in zip(self.sizes[:-1], self.sizes[1:], names)
                for pair in _host.initial_weights([n_in, n_out], name, rng, self.bias)]

    @property
    def task(self):
        """``"classify"`` (class labels, or a probability output) or ``"regress"``."""
        probability = self.output.name in ("softmax", "logistic")
        return "classify" if self.classes is not None or probability else "regress"

    def __repr__(self):
        shared = self._shared
        hidden = [a.name for a in self._activations] if shared is None else shared.name
        return (f"{type(self).__name__}({self.sizes}, activation={hidden!r}, "
                f"output={self.output.name!r}, loss={self.loss.name!r}, "
                f"device={self.device!r}, dtype={self.dtype_name!r})")

    @property
    def device(self) -> str:
        """The canonical spec of the device the weights live on."""
        return self.backend.name

    @property
    def weights(self):
        """List of ``(W, b)`` per layer on the device; ``W`` has shape (n_in, n_out), ``b`` (n_out,)
        or ``None`` without bias. Read ``weights`` again after training, and copy what you want
        to keep: the in-place fast paths (NumPy, PyTorch) train by writing into these arrays, a
        compiled JAX step gives them up (reading one then raises), and elsewhere they are
        replaced."""
        return self.unflatten(self._params)

    @property
    def params(self):
        """The parameters as one flat list ``[W1, b1, W2, b2, ...]`` (biases only if present).

        On a fused network of a backend that writes in place (NumPy, PyTorch), they are views
        into one buffer (a :class:`bpgpu.packed.Packed` list), which the step updates at once."""
        return self._params.alias() if self._packs else list(self._params)

    def replace_params(self, params):
        """Make ``params`` (a flat list as in :attr:`params`, device arrays of the right shapes
        and dtype — a training step's output) the network's parameters, without a check; where
        the network keeps its parameters in one buffer, arrays that are not already views into
        one (a rollback's copies) are copied into a new buffer."""
        if self._packs:
            if getattr(params, "flat", None) is not self._params.flat:  # else: the same views
                self._params = packed.packed_like(params, self._params.layout)
        else:
            self._params = list(params)

    def unflatten(self, params):
        """A flat parameter list as ``[(W, b), ...]`` pairs (``b`` is ``None`` without bias)."""
        if not self.bias:
            return [(W, None) for W in params]
        return list(zip(params[0::2], params[1::2]))

    def set_weights(self, pairs):
        """Replace the weights with copies of ``[(W, b), ...]`` from the host (NumPy) or any
        device, after checking their shapes. A :class:`bpgpu.Trainer` made earlier trains the
        new weights."""
        with self.backend.context():
            params = [p for pair in self._checked_copies(list(pairs)) for p in pair
                      if p is not None]
            self._params = packed.pack(params) if self._packs else params

    def _checked_copies(self, pairs):
        if len(pairs) != len(self.sizes) - 1:
            raise ValueError(f"set_weights needs {len(self.sizes) - 1} (W, b) pairs, "
                             f"got {len(pairs)}")
        out = []
        for i, ((W, b), n_in, n_out) in enumerate(zip(pairs, self.sizes[:-1], self.sizes[1:])):
            if not self.bias and b is not None:
                raise ValueError(f"b[{i}] given, but this network has bias=False; pass None")
            out.append((self._move(W, (n_in, n_out), f"W[{i}]"),
                        self._move(b, (n_out,), f"b[{i}]") if self.bias else None))
        return out

    def _move(self, a, shape, name):
        if a is None:
            raise ValueError(f"{name} is None; expected an array of shape {shape}")
        arr = self.backend.asarray(a, self.dtype)
        if tuple(arr.shape) != shape:
            raise ValueError(f"{name} has shape {tuple(arr.shape)}, expected {shape}")
        return self.xp.asarray(arr, copy=True)

    # -- forward and backward as functions of the parameters, on device arrays --------------

    def forward_pass(self, X, params=None):
        """All activations ``[X, y_1, ..., y_L]`` of device inputs X (n, sizes[0]) under
        ``params`` (a flat list as in :attr:`params`; default the network's own)."""
        p = self._params if params is None else params
        a, acts, ops = X, [X], self.ops
        for w, b, f in self._layers:
            if ops is None:
                a = a @ p[w]
                a = f.forward(a if b is None else a + p[b])
            else:
                a = f.forward_(ops.linear(a, p[w], None if b is None else p[b]), ops)
            acts.append(a)
        return acts

    def backward_pass(self, acts, T, params=None, into=None):
        """The deltas ``[δ_1, ..., δ_L]`` and gradients ``[(∂E/∂W, ∂E/∂b), ...]`` of the
        batch-mean loss, from a forward pass's activations and device targets T (n, sizes[-1]).

        ``into``: arrays of the parameters' shapes, in :attr:`params` order (a training step's
        gradient buffer), into which a fused network writes the gradients instead of making new
        ones."""
        p, ops = self._params if params is None else params, self.ops
        delta = losses.output_delta(self.loss, self.output, acts[-1], T, ops)
        deltas, grads = [delta], []
        for i in range(len(self._layers) - 1, -1, -1):
            w, b, _ = self._layers[i]
            if ops is not None and into is not None:
                db = None if b is None else ops.column_sum_into(delta, into[b])
                grads.append((ops.matmul_into(acts[i].T, delta, into[w]), db))
            else:
                db = None if b is None else (
                    self.xp.sum(delta, axis=0) if ops is None else ops.column_sum(delta))
                grads.append((acts[i].T @ delta, db))
            if i > 0:
                g = delta @ p[w].T
                f = self._layers[i - 1][2]  # acts[i] is hidden layer i's output
                delta = f.backward(acts[i], g) if ops is None else f.backward_(acts[i], g, ops)
                deltas.append(delta)
        return deltas[::-1], grads[::-1]

    # -- public, on any input ----------------------------------------------------------------

    def forward(self, X):
        """All activations ``[X, y_1, ..., y_L]`` for inputs X of shape (n, sizes[0])."""
        with self.backend.context():
            return self.forward_pass(self.device_inputs(X))

    def predict(self, X, host=False):
        """Network outputs, shape (n, sizes[-1]), in the targets' units (through the inverse of
        :attr:`target_transform` where the network has one); NumPy when ``host=True``."""
        with self.backend.context():
            out = self.forward_pass(self.device_inputs(X))[-1]
            if self.target_transform is not None:
                out = self.target_transform.inverse(self.backend, out, self.dtype)
        return self.backend.to_host(out) if host else out

    def predict_labels(self, X):
        """Predicted class labels as a NumPy array (argmax, or ``y ≥ 0.5`` for one output): the
        network's ``classes`` where it has them, else the output indices."""
        with self.backend.context():
            out = self.forward_pass(self.device_inputs(X))[-1]
            index = self.backend.to_host(labels_of(self.xp, out))
        return _host.label_values(self.classes, index)

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
            X = self.device_inputs(X)
            return self.backward_pass(self.forward_pass(X), self.device_targets(T, X.shape[0]))

    def loss_value(self, X, T):
        """The batch-mean loss on (X, T) as a Python float."""
        with self.backend.context():
            X = self.device_inputs(X)
            T = self.device_targets(T, X.shape[0])
            return float(self.loss.value(self.forward_pass(X)[-1], T))

    def to(self, device):
        """A copy of this network on another device (weights, settings, RNG state, history)."""
        return state.build(type(self), state.capture(self), device)

    def __reduce__(self):
        # Pickled and copied as plain data (settings, host arrays, RNG state, history) plus the
        # device spec, never as live device arrays or modules: rebuilt on the same device, or on
        # the CPU with a warning where that device is not usable. A copy trains independently.
        return state.rebuild, (type(self), state.capture(self), self.device)

    # -- input conversion (host checks happen once per call, never inside the step) --------

    def device_inputs(self, X, name="X"):
        """X checked and moved to the device: shape (n, sizes[0]), finite, the net's dtype, and
        through :attr:`input_transform` when the network has one."""
        return check_inputs(self, X, name)

    def device_targets(self, T, n_rows, name="y"):
        """Targets checked and moved to the device, shape (n_rows, sizes[-1]) (labels one-hot,
        through :attr:`classes` when the network has them)."""
        return check_targets(self, T, n_rows, name)


def labels_of(xp, out):
    """Class labels from outputs or one-hot targets: argmax per row, or ``≥ 0.5`` for one column."""
    if out.shape[1] == 1:
        return xp.astype(out[:, 0] >= 0.5, xp.int32)
    return xp.argmax(out, axis=1)
