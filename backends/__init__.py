"""Device backends: one module per array library, the same small surface in each.

Installed as ``bpgpu.backends``. Every backend module exposes

``make(arg)``
    a :class:`Backend` for the part of the device spec after the prefix (``None``, ``"1"``,
    ``"cuda:0"``, ...), or raise :class:`bpgpu.errors.DeviceUnavailableError` saying why not;
``status()``
    a list of :class:`DeviceStatus` rows for ``bpgpu.devices()``.

A backend holds device code only: how to make and move arrays, its in-place primitives
(:class:`InPlaceOps`, for libraries whose arrays can be written into) and, where the library
compiles, how to compile a pure function and run a loop inside it. Which primitive a rule uses is
decided by the rule itself (each activation, loss and optimizer in ``bpgpu``).

Third-party backends provide the same two functions in a module registered under the
entry-point group ``bpgpu.backends`` (the entry-point name is the spec prefix).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class DeviceStatus:
    """One row of ``bpgpu.devices()``: a device spec and whether it can run here."""

    spec: str
    library: str
    available: bool
    reason: str = ""
    version: str | None = None
    device_name: str | None = None
    memory_bytes: int | None = None
    extra: dict = field(default_factory=dict)


class Backend:
    """What bpgpu needs from an array library on one device.

    Attributes
    ----------
    name : str
        Canonical device spec, e.g. ``"cpu"``, ``"cuda:0"``, ``"torch:cpu"``.
    library : str
        The array library's import name.
    xp : module
        The Array API namespace for this library.
    device : object
        The library's device object, passed as ``device=`` to creation functions.
    is_gpu : bool
        True when arrays live in GPU memory.
    """

    name = "abstract"
    library = "none"
    is_gpu = False

    def __init__(self, xp, device=None):
        self.xp = xp
        self.device = device

    def __repr__(self):
        return f"<bpgpu backend {self.name!r}>"

    def asarray(self, x, dtype=None):
        """Move host data (NumPy, lists, or this library's arrays) to the device, cast to dtype."""
        if isinstance(dtype, str):
            dtype = getattr(self.xp, dtype)
        if not self.owns(x):
            x = to_numpy(x)
        with self.context():
            return self.xp.asarray(x, dtype=dtype, device=self.device)

    def owns(self, x) -> bool:
        """Whether ``x`` is already an array of this backend's library."""
        return False

    def to_host(self, x) -> np.ndarray:
        """A NumPy copy (or view, on the CPU) of a device array."""
        return to_numpy(x)

    def synchronize(self, *arrays):
        """Wait until queued device work (producing ``arrays``, where given) has finished."""

    def context(self):
        """A context manager that makes this device current (needed by CuPy for ``cuda:N``)."""
        return contextlib.nullcontext()

    def in_context(self, fn):
        """``fn`` made to run inside :meth:`context` at every call (made once, called per step:
        a backend may do this more cheaply than by entering the context each time)."""
        if type(self).context is Backend.context:  # nothing to enter
            return fn

        def run(*args):
            with self.context():
                return fn(*args)

        return run

    def status(self) -> DeviceStatus:
        """This backend's row in ``bpgpu.devices()``."""
        raise NotImplementedError

    def is_out_of_memory(self, exc) -> bool:
        """Whether ``exc`` is this library's out-of-memory error."""
        return isinstance(exc, MemoryError)

    def check_dtype(self, dtype_name):
        """Raise ``DeviceUnavailableError`` when this device cannot hold ``dtype_name`` arrays."""

    ops = None
    """In-place primitives (an :class:`InPlaceOps`) that the rules' fast paths call; ``None``:
    every step runs the pure Array API reference (immutable arrays, or the conformance check)."""

    compile_modes = ("none",)
    """What :func:`bpgpu.fit` may ask of this device: ``"none"`` (operation by operation),
    ``"step"`` (one compiled call per step), ``"epoch"`` (one compiled call per epoch)."""

    def compile(self, fn, donate=()):
        """``fn`` compiled for this device, the arguments at positions ``donate`` given up to it."""
        raise NotImplementedError(f"{self.name} does not compile")

    def scan(self, body, carry, xs):
        """``carry = body(carry, xs[k])`` for every row k of ``xs``; the last carry.

        Inside a compiled function a compiling backend runs this as one loop on the device.
        """
        for k in range(xs.shape[0]):
            carry = body(carry, xs[k, ...])
        return carry


class InPlaceOps:
    """Primitives that may write into their first array argument and return the result.

    Named by the math they do, not by the rule that uses them: an activation, loss or optimizer
    composes its fast path from these (see ``forward_`` / ``backward_`` / ``step_`` in
    ``bpgpu``). This base class is correct for any library whose arrays support the standard's
    in-place operators; a backend overrides what its library does with fewer passes or
    temporaries. The tests compare every rule's fast path with its pure reference.
    """

    def __init__(self, xp):
        self.xp = xp

    def linear(self, a, W, b):
        """A new array ``a @ W + b`` (``b`` may be ``None``)."""
        z = a @ W
        if b is not None:
            z += b
        return z

    def sigmoid_(self, z):
        """``1 / (1 + exp(-z))``."""
        return 1 / (1 + self.xp.exp(-z))

    def tanh_(self, z):
        return self.xp.tanh(z)

    def relu_(self, z):
        return self.xp.maximum(z, self.xp.zeros_like(z))

    def softmax_(self, z):
        """The softmax of each row."""
        xp = self.xp
        e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
        return e / xp.sum(e, axis=1, keepdims=True)

    def mul_sigmoid_grad_(self, g, y):
        """``g · y (1 − y)``."""
        g *= y * (1 - y)
        return g

    def mul_tanh_grad_(self, g, y):
        """``g · (1 − y²)``."""
        g *= 1 - y * y
        return g

    def mask_relu_grad_(self, g, y):
        """``g`` where ``y > 0``, else 0."""
        return self.xp.where(y > 0, g, self.xp.zeros_like(g))

    def scaled_diff(self, y, t, s):
        """A new array ``(y − t) · s``."""
        d = y - t
        d *= s
        return d

    def column_sum(self, d):
        """``Σ_n d`` over the rows, shape (d.shape[1],)."""
        return self.xp.sum(d, axis=0)

    def matmul_into(self, a, b, out):
        """``out = a @ b``, written into ``out`` (a view into a gradient buffer)."""
        out[...] = a @ b
        return out

    def column_sum_into(self, d, out):
        """``out = Σ_n d``, written into ``out``."""
        out[...] = self.column_sum(d)
        return out

    def add_(self, p, v):
        """``p += v``."""
        p += v
        return p

    def axpy_(self, p, a, g):
        """``p += a · g`` (``g`` may be consumed)."""
        g *= a
        p += g
        return p

    def scale_axpy_(self, v, mu, a, g):
        """``v = μ v + a · g`` (``g`` may be consumed)."""
        v *= mu
        return self.axpy_(v, a, g)

    def scale_addcmul_(self, v, mu, a, g, h):
        """``v = μ v + a · g · h``."""
        v *= mu
        v += a * (g * h)
        return v

    def addcdiv_sqrt_(self, p, a, m, v, eps):
        """``p += a · m / (√v + ε)``."""
        p += a * m / (v**0.5 + eps)
        return p

    def add_scaled_(self, x, a, y):
        """``x += a · y``, ``y`` left as it is (unlike :meth:`axpy_`)."""
        x += a * y
        return x

    def scale_(self, x, c):
        """``x *= c``."""
        x *= c
        return x


def to_numpy(x) -> np.ndarray:
    """Any supported array (NumPy, CuPy, PyTorch, array-api-strict, lists) as a NumPy array."""
    if isinstance(x, np.ndarray):
        return x
    module = type(x).__module__.split(".")[0]
    if module == "cupy":
        return x.get()
    if module == "torch":
        return x.detach().cpu().numpy()
    if module in ("jax", "jaxlib"):
        return np.asarray(x)
    if hasattr(x, "__dlpack__") and not isinstance(x, np.generic):
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError):
            pass
    return np.asarray(x)
