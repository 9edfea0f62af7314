"""Activation functions, each with its backward pass written from its output where the math allows.

Every activation maps pre-activations ``z`` of shape (n_samples, n_units) to outputs ``y`` of the
same shape, and ``backward(y, dE_dy)`` returns ``dE/dz`` — the factor ``f'(z)`` the lecture's
delta rule multiplies in, applied to an incoming gradient. Writing ``f'`` from ``y`` (the logistic
``y (1 - y)``, tanh's ``1 - y^2``) is what lets the backward pass use only the activations cached by
the forward pass.

Each activation also owns its fast path: ``forward_(z, ops)`` and ``backward_(y, g, ops)`` do the
same arithmetic with a backend's in-place primitives (:class:`bpgpu.backends.InPlaceOps`), and may
write into ``z`` and ``g``. A new activation needs only its reference; the fast path is optional.
A custom one (a subclass with a ``name``, ``forward`` and ``derivative`` in Array API calls) is
known by its name, in files too, once :func:`bpgpu.register` has been given it.
"""

from __future__ import annotations

from array_api_compat import array_namespace


class Activation:
    """An activation: ``forward(z)`` and ``backward(y, g)`` (= ``f'(z) * g`` given ``y = f(z)``)."""

    name = "abstract"
    elementwise = True

    def forward(self, z):
        raise NotImplementedError

    def derivative(self, y):
        """``f'(z)`` written from the output ``y = f(z)`` (elementwise activations only)."""
        raise NotImplementedError

    def backward(self, y, g):
        return self.derivative(y) * g

    def forward_(self, z, ops):
        """:meth:`forward`, allowed to write into ``z``."""
        return self.forward(z)

    def backward_(self, y, g, ops):
        """:meth:`backward`, allowed to write into ``g``."""
        return self.backward(y, g)

    def __repr__(self):
        return self.name


class Identity(Activation):
    """The linear neuron: ``y = z``."""

    name = "identity"

    def forward(self, z):
        return z

    def derivative(self, y):
        return array_namespace(y).ones_like(y)

    def backward(self, y, g):
        return g


class Logistic(Activation):
    """``y = 1 / (1 + exp(-z))``, ``dy/dz = y (1 - y)``."""

    name = "logistic"

    def forward(self, z):
        # For z < -88 (float32) exp(-z) overflows to inf and y is exactly 0, as it should be;
        # the backends' context() keeps NumPy from warning about it.
        return 1 / (1 + array_namespace(z).exp(-z))

    def derivative(self, y):
        return y * (1 - y)

    def forward_(self, z, ops):
        return ops.sigmoid_(z)

    def backward_(self, y, g, ops):
        return ops.mul_sigmoid_grad_(g, y)


class Tanh(Activation):
    """``y = tanh(z)``, ``dy/dz = 1 - y^2``."""

    name = "tanh"

    def forward(self, z):
        return array_namespace(z).tanh(z)

    def derivative(self, y):
        return 1 - y * y

    def forward_(self, z, ops):
        return ops.tanh_(z)

    def backward_(self, y, g, ops):
        return ops.mul_tanh_grad_(g, y)


class ReLU(Activation):
    """``y = max(z, 0)``, ``dy/dz = 1`` where ``y > 0`` (0 at and below zero)."""

    name = "relu"

    def forward(self, z):
        xp = array_namespace(z)
        return xp.maximum(z, xp.zeros_like(z))

    def derivative(self, y):
        return array_namespace(y).astype(y > 0, y.dtype)

    def backward(self, y, g):
        xp = array_namespace(y)
        return xp.where(y > 0, g, xp.zeros_like(g))

    def forward_(self, z, ops):
        return ops.relu_(z)

    def backward_(self, y, g, ops):
        return ops.mask_relu_grad_(g, y)


class Softmax(Activation):
    """``y_k = exp(z_k) / sum_j exp(z_j)`` over each row; not elementwise.

    Its Jacobian couples the outputs of a row, so ``backward`` is
    ``y * (g - sum_k g_k y_k)`` rather than a product with a derivative.
    """

    name = "softmax"
    elementwise = False

    def forward(self, z):
        xp = array_namespace(z)
        e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
        return e / xp.sum(e, axis=1, keepdims=True)

    def backward(self, y, g):
        xp = array_namespace(y)
        return y * (g - xp.sum(g * y, axis=1, keepdims=True))

    def forward_(self, z, ops):
        return ops.softmax_(z)


ACTIVATIONS = {a.name: a for a in (Identity(), Logistic(), Tanh(), ReLU(), Softmax())}
ALIASES = {"linear": "identity", "sigmoid": "logistic"}


def get(name) -> Activation:
    """The activation called ``name``, built in or made known by :func:`bpgpu.register` (or an
    :class:`Activation`, returned as is)."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str):
        raise TypeError(f"an activation is a name or a bpgpu.activations.Activation, got "
                        f"{type(name).__name__}")
    key = ALIASES.get(name, name)
    if key not in ACTIVATIONS:
        valid = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"unknown activation {name!r}; choose one of: {valid} (or write your "
                         "own and bpgpu.register it)")
    return ACTIVATIONS[key]
