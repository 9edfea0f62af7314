"""Parameters, gradients and optimizer state as views into one flat buffer each.

On a backend that writes in place (NumPy, PyTorch, CuPy), a network keeps its parameters as
views into one flat buffer, the step writes its gradients into a second, and the optimizer's
lists (velocities, moments) are views into buffers of their own. The update then runs over whole
buffers: a few array-library calls per step however many layers the network has (PyTorch's
``_foreach`` and fused optimizers get their speed the same way), and the data-parallel all-reduce
sums the gradient buffer as it stands.

A :class:`Packed` is a plain ``list`` of the views, in the usual order (``[W0, b0, W1, ...]``), so
everything that reads a parameter list reads it unchanged. In the buffer the weight matrices come
first and the bias vectors after them, so that weight decay, which acts on the weights only, is
one call over the first :attr:`Packed.n_weights` elements.

Only the built-in optimizers (the classes themselves, not subclasses) update buffers; the Array
API reference, compiled steps and custom optimizers see lists of arrays, and fresh gradients at
every step, as ever.
"""

from __future__ import annotations

import math

from array_api_compat import array_namespace, device


class Packed(list):
    """A list of arrays that are views into one flat buffer, :attr:`flat`.

    Changing the list itself (assigning, appending, removing an element) makes :attr:`flat`
    ``None``: the list no longer describes the buffer, and is then an ordinary list of arrays.

    Attributes
    ----------
    flat : array or None
        The 1-D buffer (with ``spare`` elements after the views, where asked for).
    layout : tuple
        Each view's shape, in list order.
    n_weights : int
        How many elements of the buffer the arrays of two or more dimensions take (they come
        first).
    """

    def __init__(self, views, flat, layout, n_weights, spare=0):
        super().__init__(views)
        self.flat, self.layout, self.n_weights, self._spare = flat, layout, n_weights, spare
        size = flat.shape[0] - spare
        xp = array_namespace(flat)
        body = flat[:size] if spare else flat
        self._whole = [body]
        # the weights as one 2-D block (so that decay rules see weights), the biases after them
        parts = [xp.reshape(flat[:n_weights], (1, n_weights))] if n_weights else []
        self._split = parts + ([flat[n_weights:size]] if n_weights < size else [])

    def segments(self, split):
        """The buffer as a list of arrays for an elementwise rule: ``[all of it]``, or with
        ``split`` the weights as one (1, n) block and the biases as one vector, so that a rule
        that treats weights and biases apart (:func:`bpgpu.optim.decays`) still can."""
        return self._split if split else self._whole

    def alias(self):
        """A new list of the same views over the same buffer (a plain list once changed)."""
        if self.flat is None:
            return list(self)
        out = list.__new__(Packed)
        list.__init__(out, self)
        out.__dict__.update(self.__dict__)
        return out

    def _unpack(self):
        self.flat = None

    def __setitem__(self, key, value):
        self._unpack()
        super().__setitem__(key, value)

    def __delitem__(self, key):
        self._unpack()
        super().__delitem__(key)

    def __iadd__(self, other):
        self._unpack()
        return super().__iadd__(other)

    def __imul__(self, n):
        self._unpack()
        return super().__imul__(n)

    def __reduce__(self):  # pickled and copied as the plain list it reads as
        return list, (list(self),)


def _unpacking(name):
    def method(self, *args, **kwargs):
        self._unpack()
        return getattr(list, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in ("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"):
    setattr(Packed, _name, _unpacking(_name))


def is_packed(arrays, layout=None):
    """Whether ``arrays`` is an intact :class:`Packed` (of ``layout``, where given)."""
    return (getattr(arrays, "flat", None) is not None
            and (layout is None or arrays.layout is layout or arrays.layout == layout))


def pack(arrays, spare=0, copy=True):
    """A :class:`Packed` of new views holding ``arrays``' values (``copy=False``: their shapes
    only, the values left unset), the arrays of two or more dimensions first in the buffer, and
    ``spare`` more elements after them (where the all-reduce keeps its row count)."""
    first = arrays[0]
    xp = array_namespace(first)
    layout = arrays.layout if is_packed(arrays) else tuple(tuple(a.shape) for a in arrays)
    order = sorted(range(len(arrays)), key=lambda i: len(layout[i]) < 2)  # stable: weights first
    sizes = [math.prod(s) for s in layout]
    n_weights = sum(sizes[i] for i in order if len(layout[i]) >= 2)
    flat = xp.empty((sum(sizes) + spare,), dtype=first.dtype, device=device(first))
    views, offset = [None] * len(arrays), 0
    for i in order:
        views[i] = xp.reshape(flat[offset:offset + sizes[i]], layout[i])
        if copy:
            views[i][...] = arrays[i]
        offset += sizes[i]
    return Packed(views, flat, layout, n_weights, spare)


def packed_like(arrays, layout):
    """``arrays`` if it is an intact :class:`Packed` of ``layout``, else a packed copy of it."""
    return arrays if is_packed(arrays, layout) else pack(arrays)
