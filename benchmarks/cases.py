"""The implementations under test: bpgpu and its peers, each doing one SGD step of the same net
from the same weights on the same data.

``torch``    PyTorch eager: ``nn.Sequential`` + autograd + ``optim.SGD`` (CPU, or its CUDA GPU);
``sklearn``  scikit-learn's ``MLPClassifier.partial_fit`` with one batch (CPU only);
``raw``      the same backprop written by hand on the device library itself (NumPy on the CPU,
             CuPy on a CUDA GPU), no bpgpu: see :func:`raw_step`;
``jax``      JAX as its users write it: a loss function, ``jax.grad`` and a ``jax.jit`` step
             that donates the parameter buffers (``donate_argnums=0``).

Every case times one step on a fixed batch (``mode`` "step"), except bpgpu's epoch case on devices
that compile epochs (``mode`` "epoch"): one epoch of ``fit`` over ``EPOCH_BATCHES`` shuffled
batches, the last one ragged, so its samples/s counts every row of the epoch.
"""

from __future__ import annotations

import contextlib

import numpy as np

from .accounting import LR, SEED, hardware_of

TORCH_CPU_NOTE = "peak_bytes not measured: PyTorch's CPU allocator does not report to tracemalloc"
JAX_NOTE = "peak_bytes not measured: JAX's allocator does not report to tracemalloc"
EPOCH_BATCHES, EPOCH_ROWS = 45, 65536
"""An epoch case's rows: ``EPOCH_BATCHES`` full batches (at batch 32, about digits' training set
of 1,437 rows), fewer where they would pass ``EPOCH_ROWS`` (but two at least), then a ragged half
batch."""


class HostData:
    """One (net, batch)'s inputs on the host: X, integer labels y, one-hot T, initial weights."""

    def __init__(self, sizes, batch, dtype, weights):
        rng = np.random.default_rng([SEED, batch, *sizes])
        self.sizes, self.batch, self.dtype = list(sizes), batch, dtype
        self.X = rng.standard_normal((batch, sizes[0])).astype(dtype)
        self.y = rng.integers(0, sizes[-1], batch).astype(np.int64)
        self.T = np.eye(sizes[-1], dtype=dtype)[self.y]
        self.weights = weights


def reference_weights(sizes, dtype):
    """The bpgpu net's initial weights as host arrays: every implementation starts from these.

    Returns
    -------
    list of (W, b)
        ``W`` of shape (s_i, s_{i+1}) and ``b`` of shape (s_{i+1},), NumPy arrays in ``dtype``.
    """
    import bpgpu

    net = bpgpu.MLP(sizes, activation="logistic", output="softmax", loss="cross_entropy",
                    device="cpu", dtype=dtype, seed=SEED)
    to_host = net.backend.to_host
    return [(np.array(to_host(W), copy=True), np.array(to_host(b), copy=True))
            for W, b in net.weights]


def raw_step(xp, Ws, bs, X, T, lr):
    """One SGD step of the sigmoid / softmax / cross-entropy MLP written directly on NumPy or CuPy.

    What a competent user writes by hand: products with ``@``, bias, sigmoid, softmax, the delta
    and the update done in place on the product's output, one temporary for ``1 - y``.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    Ws, bs : list of arrays
        Weights (s_i, s_{i+1}) and biases (s_{i+1},), updated in place.
    X, T : arrays
        Inputs (B, s_0) and one-hot targets (B, s_L).
    lr : float
    """
    acts = [X]
    a = X
    last = len(Ws) - 1
    for i in range(last):
        z = a @ Ws[i]
        z += bs[i]
        xp.negative(z, out=z)  # sigmoid in place: 1 / (1 + exp(-z))
        xp.exp(z, out=z)
        z += 1
        xp.reciprocal(z, out=z)
        acts.append(z)
        a = z
    z = a @ Ws[last]
    z += bs[last]
    z -= z.max(axis=1, keepdims=True)
    xp.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    delta = z  # softmax + cross-entropy: dE/dz = (y - t) / n
    delta -= T
    delta *= 1.0 / X.shape[0]
    for i in range(last, -1, -1):
        gW = acts[i].T @ delta
        gb = delta.sum(axis=0)
        if i > 0:
            y = acts[i]
            d = delta @ Ws[i].T
            d *= y
            d *= 1 - y
            delta = d
        gW *= lr
        Ws[i] -= gW
        gb *= lr
        bs[i] -= gb


class Case:
    """One implementation on one device for one (net, batch): build, step, sync, free."""

    impl = "?"
    mode = "step"
    memory = "tracemalloc"  # how peak_bytes is read: tracemalloc | torch-cuda | cupy | None
    note = ""

    @property
    def rows(self):
        """Samples per timed call: the batch, or every row of an epoch."""
        return self.data.batch

    def __init__(self, label, data):
        self.label, self.data = label, data
        self.hardware = hardware_of(label)

    def setup(self):
        """Allocate the state (weights, data, model) on the device; :meth:`free` drops it."""
        self._keep = set(vars(self)) | {"_keep"}
        self.build()

    def build(self):
        raise NotImplementedError

    def step(self):
        raise NotImplementedError

    def sync(self):
        pass

    def host_weights(self):
        raise NotImplementedError

    def free(self):
        """Drop what :meth:`setup` allocated, keeping what the constructor set."""
        keep = getattr(self, "_keep", None)
        if keep is not None:
            for key in set(vars(self)) - keep:
                delattr(self, key)


class BpgpuCase(Case):
    impl = "bpgpu"

    def __init__(self, label, data):
        import bpgpu

        super().__init__(label, data)
        backend = bpgpu.get_backend(label)
        if backend.library == "jax":
            self.memory, self.note = None, JAX_NOTE
        elif backend.is_gpu:
            self.memory = "torch-cuda" if backend.library == "torch" else "cupy"
        elif backend.library == "torch":
            self.memory, self.note = None, TORCH_CPU_NOTE

    def build(self):
        import bpgpu

        d = self.data
        net = bpgpu.MLP(d.sizes, activation="logistic", output="softmax", loss="cross_entropy",
                        device=self.label, dtype=d.dtype, seed=SEED)
        net.set_weights([(W.copy(), b.copy()) for W, b in d.weights])
        self.net, self.trainer = net, bpgpu.Trainer(net, "sgd", lr=LR)
        self.X = net.backend.asarray(d.X.copy(), net.dtype)
        self.T = net.backend.asarray(d.T.copy(), net.dtype)

    def step(self):
        self.trainer.step(self.X, self.T)

    def sync(self):
        self.net.backend.synchronize(*self.net.params)

    def host_weights(self):
        to_host = self.net.backend.to_host
        return [(to_host(W), to_host(b)) for W, b in self.net.weights]


class BpgpuEpochCase(BpgpuCase):
    """One epoch of ``fit`` (the epoch loop ``fit`` runs, compiled as one call) over shuffled
    rows (see ``EPOCH_ROWS``); the same net, weights and learning rate."""

    mode = "epoch"

    @property
    def rows(self):
        b = self.data.batch
        return b * max(2, min(EPOCH_BATCHES, EPOCH_ROWS // b)) + b // 2

    def build(self):
        import bpgpu
        from bpgpu.training import EpochRunner

        super().build()
        d, net = self.data, self.net
        rng = np.random.default_rng([SEED, self.rows, *d.sizes])
        X = rng.standard_normal((self.rows, d.sizes[0])).astype(d.dtype)
        y = rng.integers(0, d.sizes[-1], self.rows)
        trainer = bpgpu.Trainer(net, "sgd", lr=LR, compile="step")
        self.run = EpochRunner(trainer, net.device_inputs(X), net.device_targets(y, self.rows),
                               d.batch, shuffle=True, classify=True, mode="epoch")

    def step(self):
        self.run.epoch()


def bpgpu_specs(label):
    """bpgpu's cases on a device: the step, and the epoch where the device compiles epochs."""
    import bpgpu

    if "epoch" in bpgpu.get_backend(label).compile_modes:
        return [("bpgpu", label), ("bpgpu-epoch", label)]
    return [("bpgpu", label)]


class RawCase(Case):
    impl = "raw"

    def __init__(self, label, data):
        super().__init__(label, data)
        if self.hardware == "cpu":
            self.xp = np
        else:
            import cupy

            self.xp, self.memory = cupy, "cupy"
            self.index = int(self.hardware.split(":")[1])

    def build(self):
        xp, d = self.xp, self.data
        with self._device():
            self.Ws = [xp.array(W, copy=True) for W, _ in d.weights]
            self.bs = [xp.array(b, copy=True) for _, b in d.weights]
            self.X = xp.array(d.X, copy=True)
            self.T = xp.array(d.T, copy=True)

    def _device(self):
        if self.xp is np:
            return contextlib.nullcontext()
        return self.xp.cuda.Device(self.index)

    def step(self):
        # Device 0 is CuPy's current device already: entering its context would only add host
        # time to every step.
        if self.xp is np or self.index == 0:
            raw_step(self.xp, self.Ws, self.bs, self.X, self.T, LR)
        else:
            with self._device():
                raw_step(self.xp, self.Ws, self.bs, self.X, self.T, LR)

    def sync(self):
        if self.xp is not np:
            self._device().synchronize()

    def host_weights(self):
        host = np.asarray if self.xp is np else self.xp.asnumpy
        return [(host(W), host(b)) for W, b in zip(self.Ws, self.bs, strict=True)]


class TorchCase(Case):
    impl = "torch"

    def __init__(self, label, data):
        import torch

        super().__init__(label, data)
        self.torch = torch
        self.dev = torch.device(label.split(":", 1)[1])
        if self.dev.type == "cuda":
            self.memory = "torch-cuda"
        else:
            self.memory, self.note = None, TORCH_CPU_NOTE

    def build(self):
        torch, d = self.torch, self.data
        tdtype = getattr(torch, d.dtype)
        layers = []
        for i, (W, b) in enumerate(d.weights):
            lin = torch.nn.utils.skip_init(torch.nn.Linear, W.shape[0], W.shape[1],
                                           device=self.dev, dtype=tdtype)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if i < len(d.weights) - 1:
                layers.append(torch.nn.Sigmoid())
        self.model = torch.nn.Sequential(*layers)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        self.loss = torch.nn.CrossEntropyLoss()
        self.X = torch.from_numpy(d.X.copy()).to(self.dev)
        self.y = torch.from_numpy(d.y.copy()).to(self.dev)

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        self.loss(self.model(self.X), self.y).backward()
        self.opt.step()

    def sync(self):
        if self.dev.type == "cuda":
            self.torch.cuda.synchronize(self.dev)

    def host_weights(self):
        lins = [m for m in self.model if isinstance(m, self.torch.nn.Linear)]
        return [(m.weight.detach().cpu().numpy().T, m.bias.detach().cpu().numpy())
                for m in lins]


class SklearnCase(Case):
    impl = "sklearn"
    note = "MLPClassifier.partial_fit on one batch (input checks and loss included)"

    def build(self):
        from sklearn.neural_network import MLPClassifier

        d = self.data
        clf = MLPClassifier(hidden_layer_sizes=tuple(d.sizes[1:-1]), activation="logistic",
                            solver="sgd", alpha=0.0, batch_size=d.batch,
                            learning_rate="constant", learning_rate_init=LR, momentum=0.0,
                            nesterovs_momentum=False, shuffle=False, random_state=SEED)
        self.X, self.y = d.X.copy(), d.y.copy()
        clf.partial_fit(self.X, self.y, classes=np.arange(d.sizes[-1]))  # allocates the weights
        for (W, b), cW, cb in zip(d.weights, clf.coefs_, clf.intercepts_, strict=True):
            cW[...] = W
            cb[...] = b
        self.clf = clf

    def step(self):
        self.clf.partial_fit(self.X, self.y)

    def host_weights(self):
        return list(zip(self.clf.coefs_, self.clf.intercepts_, strict=True))


class JaxCase(Case):
    impl = "jax"
    memory, note = None, JAX_NOTE

    def __init__(self, label, data):
        import jax

        import bpgpu

        super().__init__(label, data)
        self.jax, self.backend = jax, bpgpu.get_backend(label)

    def build(self):
        jax, jnp, d = self.jax, self.jax.numpy, self.data
        put = lambda a: jax.device_put(a.copy(), self.backend.device)  # noqa: E731
        self.params = [(put(W), put(b)) for W, b in d.weights]
        self.X, self.T = put(d.X), put(d.T)

        def loss(params, X, T):
            a = X
            for W, b in params[:-1]:
                a = jax.nn.sigmoid(a @ W + b)
            W, b = params[-1]
            return -jnp.mean(jnp.sum(T * jax.nn.log_softmax(a @ W + b), axis=1))

        def step(params, X, T):
            grads = jax.grad(loss)(params, X, T)
            return [(W - LR * gW, b - LR * gb) for (W, b), (gW, gb) in zip(params, grads)]

        # The parameters are donated (argument 0), as JAX advises for training steps: XLA writes
        # the new weights into the old ones' buffers instead of allocating fresh ones each step.
        # jax:cpu implements donation (JAX 0.10), and every donated buffer has an output of its
        # shape and dtype, so no "Some donated buffers were not usable" warning is raised.
        precision = "highest" if self.hardware != "cpu" else None  # no TF32, like the others
        self._step = jax.jit(step, donate_argnums=0) if precision is None else jax.jit(
            lambda *a: _with_precision(jax, precision, step, *a), donate_argnums=0)

    def step(self):
        # Donation deletes the arrays passed in: only the step's output is kept and used again.
        self.params = self._step(self.params, self.X, self.T)

    def sync(self):
        self.jax.block_until_ready(self.params)

    def host_weights(self):
        return [(np.asarray(W), np.asarray(b)) for W, b in self.params]


def _with_precision(jax, precision, fn, *args):
    with jax.default_matmul_precision(precision):
        return fn(*args)


CASES = {"bpgpu": BpgpuCase, "bpgpu-epoch": BpgpuEpochCase, "raw": RawCase, "torch": TorchCase,
         "sklearn": SklearnCase, "jax": JaxCase}
