"""Compiled functions shared between networks of one structure.

A compiled step, epoch or evaluation of a :class:`bpgpu.MLP` trained by a :class:`bpgpu.Trainer`
with a built-in optimizer depends on the network's structure — its class, sizes, rules, bias,
dtype and device — on the batch size and on the optimizer's kind and settings, never on the
parameters or the learning rate, which it takes as data. So it is built once per structure and
process, and every further network of that structure (a second model, a point of a grid search,
each ``fit`` of a scikit-learn estimator) runs the same function. The backend still compiles it
once for each new shape of the data it is given: a fold of a cross-validation with as many rows as
the one before compiles nothing, a fold with one row more compiles anew. Subclasses of the
network, the trainer or an optimizer may change any method, so their code is compiled for them
alone (:func:`shares`).

The functions are built over a *shell* of the network (:func:`shell`): its structure, with no
parameters, history or data, so the cache keeps no network alive. The cache holds the
:data:`LIMIT` most recently used functions (each of which holds the executables the backend compiled
for it, one per input shape).

For repeated runs of a script, JAX can also keep its executables on disk
(``jax.config.update("jax_compilation_cache_dir", ...)``; see the user guide).
"""

from __future__ import annotations

import collections
import copy
import numbers
import threading

from .. import optim

LIMIT = 64
"""How many compiled functions the cache keeps (the least recently used is dropped first)."""

_CACHE = collections.OrderedDict()
_LOCK = threading.Lock()
_STATS = {"hits": 0, "misses": 0}

# What a network's forward and backward passes read besides the parameters they are given.
_STRUCTURE = ("sizes", "_shared", "_activations", "output", "loss", "bias", "fused", "ops",
              "backend", "xp", "dtype", "dtype_name", "_layers")


def get(key, build):
    """The function cached under ``key``, made by ``build()`` on the first request."""
    with _LOCK:  # fits in several threads share the cache
        fn = _CACHE.get(key)
        if fn is not None:
            _CACHE.move_to_end(key)
            _STATS["hits"] += 1
            return fn
        _STATS["misses"] += 1
    fn = build()  # (outside the lock: building traces nothing yet, but may take a while)
    with _LOCK:
        _CACHE[key] = fn
        while len(_CACHE) > LIMIT:
            _CACHE.popitem(last=False)
    return fn


def clear():
    """Drop every cached function (what the backend compiled goes with them)."""
    with _LOCK:
        _CACHE.clear()


def stats():
    """``{"hits": ..., "misses": ..., "size": ...}``: requests answered from the cache, functions
    built, and functions kept now."""
    return {**_STATS, "size": len(_CACHE)}


def shares(net, trainer=None):
    """Whether compiled code of ``net`` (and ``trainer``) may be shared: bpgpu's own network,
    trainer and optimizer classes, whose behaviour the key describes whole. A subclass may
    change any method or read attributes of its own, so its code is compiled for it alone."""
    own = type(net).__module__ in ("bpgpu.network", "bpgpu.mlp")
    if trainer is not None:
        own = own and type(trainer).__module__ == "bpgpu.training.step" and (
            type(trainer.opt) in optim.OPTIMIZERS.values())
    return own


def structure_key(net):
    """What a compiled function of ``net`` depends on, as a hashable key."""
    return (type(net), net.backend.name, tuple(net.sizes),
            tuple(rule_key(a) for a in net.activations), rule_key(net.output),
            rule_key(net.loss), net.bias, net.dtype_name, net.ops is None)


def optimizer_key(opt, rate_is_data):
    """What a compiled step depends on of optimizer ``opt``: its class and its numeric, boolean
    and text settings (the learning rate too where the step reads it as a constant)."""
    return type(opt), tuple((k, v) for k, v in vars(opt).items()
                            if (k != "lr" or not rate_is_data)
                            and isinstance(v, (numbers.Number, str)))


def rule_key(rule):
    """A built-in rule by its class and name (they hold no state); a custom one by identity."""
    if type(rule).__module__ in ("bpgpu.activations", "bpgpu.losses"):
        return type(rule), rule.name
    return _Identity(rule)


def shell(net):
    """A parameterless copy of ``net``'s structure: its forward and backward passes work on the
    parameters handed to them, and it holds nothing of the network's data."""
    from ..network import Network

    out = object.__new__(Network)
    out.__dict__.update({k: getattr(net, k) for k in _STRUCTURE})
    out._params = None
    return out


def shell_trainer(trainer):
    """A copy of ``trainer`` over :func:`shell` of its network and a copy of its optimizer (its
    settings now), with no state: what a shared compiled step closes over."""
    out = object.__new__(type(trainer))
    out.net = shell(trainer.net)
    out.opt = copy.copy(trainer.opt)
    out.parallel = None
    return out


class _Identity:
    """A key part equal only to itself's object (custom rules may define ``==`` or be
    unhashable)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, _Identity) and other.obj is self.obj
