"""Rules known by name: :func:`register`, and the check that a rule can travel by its name.

A model file, a checkpoint, a pickle and :meth:`bpgpu.network.Network.to` keep a network's
activations, loss and optimizer as names, never as code (the choice of Keras's
``register_keras_serializable``): reading a file runs nothing, so the process that reads one must
know every name it uses. The built-in rules are known everywhere; a custom rule — a subclass of
:class:`bpgpu.activations.Activation`, :class:`bpgpu.losses.Loss` or :class:`bpgpu.optim.SGD` —
becomes known by :func:`register`, in each process that saves or loads it.
"""

from __future__ import annotations

import functools
import re

from . import activations, defaults, losses, optim

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,99}")  # no commas: `--activation tanh,relu`
# Names (and aliases) that mean the same rule in every process; a file naming one is read the
# same everywhere, so none of them can be registered to another rule.
BUILT_IN = {"activation": frozenset(activations.ACTIVATIONS) | frozenset(activations.ALIASES),
            "loss": frozenset(losses.LOSSES) | frozenset(losses.ALIASES),
            "optimizer": frozenset(optim.OPTIMIZERS)}


def register(rule=None, *, replace=False):
    """Make a custom activation, loss or optimizer known by its ``name`` everywhere.

    After ``bpgpu.register(Softplus())`` the name ``"softplus"`` works wherever a built-in name
    does: ``MLP(..., activation="softplus")`` (also in a list, one per hidden layer), the
    estimators, ``bpgpu train --activation`` in the same process, and model files, checkpoints
    and pickles, which store the name. Register the rule in every process that loads such a file,
    before loading it: a file holds names, never code.

    Parameters
    ----------
    rule : Activation, Loss, a subclass of either, or a subclass of bpgpu.optim.SGD
        An activation or loss instance; a class of either is instantiated with no arguments. An
        optimizer is registered as its class (an instance stands for its class): its settings are
        saved beside its name and passed to the class when it is rebuilt.
    replace : bool
        Replace a different custom rule already registered under the same name (say, when the
        notebook cell that defines it runs again). Registering an equal rule again does nothing.
        Built-in names and their aliases are never replaced: a file naming ``tanh`` means the same
        everywhere.

    Returns
    -------
    The ``rule`` given, unchanged, so that ``@bpgpu.register`` (or
    ``@bpgpu.register(replace=True)``) decorates a class.

    Raises
    ------
    TypeError
        ``rule`` is none of the above, or its class needs arguments (register an instance).
    ValueError
        Its name is missing, malformed, built in, or taken by a different rule.
    """
    if rule is None:
        return functools.partial(register, replace=replace)
    kind, entry = _entry(rule)
    _check_new(kind, entry, replace)
    _table(kind)[entry.name] = entry
    return rule


def _entry(rule):
    """``(kind, what the registry keeps)`` for ``rule``: an instance, or an optimizer class."""
    for kind, base in (("activation", activations.Activation), ("loss", losses.Loss)):
        if isinstance(rule, base):
            _check_methods(rule, base)
            return kind, rule
        if isinstance(rule, type) and issubclass(rule, base):
            return _entry(_instance(rule))
    if isinstance(rule, optim.SGD) or (isinstance(rule, type) and issubclass(rule, optim.SGD)):
        return "optimizer", rule if isinstance(rule, type) else type(rule)
    raise TypeError(f"bpgpu.register takes an Activation or Loss (or a class of one with a "
                    f"no-argument constructor) or a subclass of bpgpu.optim.SGD; got "
                    f"{type(rule).__name__}")


def _instance(cls):
    """``cls()``, for ``@bpgpu.register`` on a class; one that needs arguments is an error."""
    try:
        return cls()
    except TypeError as exc:
        raise TypeError(f"bpgpu.register could not make {cls.__name__}() ({exc}); register an "
                        f"instance instead: bpgpu.register({cls.__name__}(...))") from None


def _check_methods(rule, base):
    """A custom rule defines the math its base leaves abstract (caught now, not mid-training)."""
    needs = ((("forward",), ("derivative", "backward")) if base is activations.Activation
             else (("value",), ("grad",)))
    cls = type(rule)
    for options in needs:
        if all(getattr(cls, m) is getattr(base, m) for m in options):
            raise TypeError(f"{cls.__name__} does not define {' or '.join(options)}; a custom "
                            f"{base.__name__.lower()} needs it written in Array API calls")


def _check_new(kind, entry, replace):
    name, what = entry.name, _what(entry)
    if not isinstance(name, str) or name == "abstract" or not _NAME.fullmatch(name):
        raise ValueError(f"{what} needs a name of its own — letters, digits, '_', '.' or '-', "
                         f"at most 100 — as a class attribute such as name = 'softplus'; got "
                         f"{name!r}")
    old = _table(kind).get(name)
    if old is not None and same(old, entry):
        return
    if name in BUILT_IN[kind]:
        raise ValueError(f"{kind} {name!r} is built in and cannot be replaced; give {what} a "
                         "name of its own")
    if old is not None and not replace:
        raise ValueError(f"{kind} {name!r} is already registered to another rule "
                         f"({_what(old)}); pass replace=True to replace it, or choose another "
                         "name")


def hidden_activations(activation, n_hidden):
    """``(shared, per_layer)`` from one activation (a name or rule, for every hidden layer) or a
    list or tuple of them (one per hidden layer): ``shared`` is the rule all hidden layers have
    (``None`` when they differ), ``per_layer`` a list of ``n_hidden`` rules."""
    if not isinstance(activation, (list, tuple)):
        shared = activations.get(activation)
        return shared, [shared] * n_hidden
    if len(activation) != n_hidden:
        raise ValueError(f"activation lists {len(activation)} rules for {n_hidden} hidden "
                         f"layer{'s' * (n_hidden != 1)}; give one per hidden layer, or one name "
                         "for all")
    per_layer = [activations.get(a) for a in activation]
    if not per_layer:  # no hidden layer: the choice is moot, and the default stands
        return activations.get(defaults.ACTIVATION), []
    return (per_layer[0] if len({a.name for a in per_layer}) == 1 else None), per_layer


def lookup(kind, name):
    """The rule of ``kind`` (``"activation"``, ``"loss"`` or ``"optimizer"``) called ``name``,
    built in or registered; ValueError if there is none."""
    if kind == "optimizer":
        if name not in optim.OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}")
        return optim.OPTIMIZERS[name]
    return (activations.get if kind == "activation" else losses.get)(name)


def known(kind, name):
    """Whether this process knows a rule of ``kind`` called ``name`` (a string from a file)."""
    try:
        lookup(kind, name)
    except (ValueError, TypeError):
        return False
    return True


def saved_name(kind, rule, output=None):
    """``rule``'s name, checked to bring back an equal rule where it is looked up: built in or
    registered, and not a different rule under a registered name. ``output``: the output
    activation's name, which picks a loss's variant (binary cross-entropy after a logistic)."""
    name, what = rule.name, _what(rule)
    try:
        found = lookup(kind, name)
    except (ValueError, TypeError):
        raise ValueError(f"{kind} {name!r} ({what}) is not registered, so a saved or copied "
                         f"network could not be rebuilt from its name; call bpgpu.register("
                         f"{what}) first") from None
    if kind == "loss":
        found = losses.for_output(found, output)
    if not same(found, rule):
        raise ValueError(f"{kind} {name!r} here is {what}, but that name is registered to "
                         f"{_what(found)}; give {what} a name of its own and bpgpu.register it")
    return name


def same(a, b):
    """Whether rules ``a`` and ``b`` do the same math: one object, or one class with equal
    settings (a copy, or a fresh ``Tanh()``); optimizers are classes, equal only to themselves."""
    if a is b:
        return True
    if isinstance(a, type) or type(a) is not type(b):
        return False
    try:
        return bool(vars(a) == vars(b))
    except (TypeError, ValueError):  # settings that do not compare as one bool (arrays)
        return False


def _table(kind):
    """The registry of ``kind``: the rule modules' own tables, read anew (tests may swap them)."""
    if kind == "activation":
        return activations.ACTIVATIONS
    return losses.LOSSES if kind == "loss" else optim.OPTIMIZERS


def _what(rule):
    """A rule as messages show it: ``Softplus()`` for an instance, ``HalfSGD`` for a class."""
    return rule.__name__ if isinstance(rule, type) else f"{type(rule).__name__}()"
