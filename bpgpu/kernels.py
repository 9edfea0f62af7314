"""The hot operations of a training step, behind one delegation point.

:class:`Kernels` is the reference: plain Array API calls, the same on every backend. A backend may
offer a subclass (``backend.kernels``) that does the same arithmetic with fewer passes and
temporaries — in-place NumPy, fused CuPy kernels — and the tests require it to agree with the
reference within float tolerance. The network calls only these methods in its step.
"""

from __future__ import annotations

from . import losses


class Kernels:
    """Reference implementations (Array API only)."""

    name = "array-api"

    def dense(self, a, W, b, act):
        """``act(a @ W + b)``: one layer's forward pass; ``b`` may be ``None``."""
        z = a @ W
        if b is not None:
            z = z + b
        return act.forward(z)

    def hidden_delta(self, y, delta_next, W_next, act):
        """``f'(z) ∘ (δ_next W_nextᵀ)``: the delta of a hidden layer with outputs ``y``."""
        return act.backward(y, delta_next @ W_next.T)

    def output_delta(self, loss, act, y, t):
        """``f'(z) · ∂E/∂y`` at the output (``(y − t)/n`` for the matched pairs)."""
        return losses.output_delta(loss, act, y, t)

    def weight_grad(self, y_in, delta):
        """``∂E/∂W = y_inᵀ δ``."""
        return y_in.T @ delta

    def bias_grad(self, xp, delta):
        """``∂E/∂b = Σ_n δ``."""
        return xp.sum(delta, axis=0)

    def update(self, opt, params, grads, state):
        """Apply the optimizer's step to ``params`` in place (``grads`` may be consumed)."""
        opt.update(params, grads, state)


REFERENCE = Kernels()
