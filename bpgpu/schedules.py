"""Learning-rate schedules: the rate of each epoch from the 0-based epoch and the base rate η0 (the
optimizer's ``lr``).

A schedule is evaluated on the host once per epoch, and the rate enters the step as data (the
optimizer state's ``"lr"``, :meth:`bpgpu.training.Trainer.set_lr`), so a compiled step or epoch is
never compiled again for a new rate. Every schedule has the same small interface:

``rate(epoch, lr0) -> float``
    the rate of ``epoch``; a pure function of its arguments except for :class:`ReduceOnPlateau`;
``observe(epoch, logs)``
    told each finished epoch's logs (``{"loss": ..., ...}``); only :class:`ReduceOnPlateau` looks;
``state_dict()`` / ``load_state_dict(d)``
    a JSON object of plain values for a checkpoint, and back.

:func:`get` makes one from a schedule, a command-line form (:func:`from_spec`) or any callable
``f(epoch) -> rate``, and :func:`rate_at` checks the rate a schedule gives.
"""

from __future__ import annotations

import math
import numbers

from .optim import check_setting

SPECS = ("constant, cosine[:WARMUP], step:SIZE[:GAMMA], exp:GAMMA, invscaling[:POWER], "
         "plateau[:PATIENCE]")


class Schedule:
    """The base of every schedule: the interface, with the constant rate η0."""

    name = "constant"

    def rate(self, epoch, lr0):
        """The learning rate of ``epoch`` (0-based) for base rate ``lr0``."""
        return lr0

    def observe(self, epoch, logs):
        """Take note of ``epoch``'s logs (a dict of metrics), once it has run."""

    def state_dict(self):
        """What a checkpoint keeps of this schedule: a JSON object of plain values."""
        return {"name": self.name}

    def load_state_dict(self, d):
        """Take up a :meth:`state_dict`, checked to be this schedule's."""
        if not isinstance(d, dict) or d.get("name") != self.name:
            raise ValueError(f"the saved learning-rate schedule {d!r} is not {self.name!r}; "
                             "resume with the schedule the checkpoint was written with")

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k[0] != "_")
        return f"{type(self).__name__}({settings})"


class Constant(Schedule):
    """The constant rate η0 (a run without a schedule)."""


class StepDecay(Schedule):
    """``η0 · γ^⌊epoch / step_size⌋``: the rate times ``gamma`` every ``step_size`` epochs."""

    name = "step"

    def __init__(self, step_size, gamma=0.1):
        self.step_size = _whole("step_size", step_size, 1)
        self.gamma = check_setting("gamma", gamma)

    def rate(self, epoch, lr0):
        return lr0 * self.gamma ** (epoch // self.step_size)


class Exponential(Schedule):
    """``η0 · γ^epoch``."""

    name = "exp"

    def __init__(self, gamma):
        self.gamma = check_setting("gamma", gamma)

    def rate(self, epoch, lr0):
        return lr0 * self.gamma**epoch


class Cosine(Schedule):
    """A linear warm-up from ``η0 / (warmup + 1)`` to η0 over ``warmup`` epochs, then a cosine
    from η0 down towards ``min_lr``, which it reaches at epoch ``epochs`` (and keeps after)."""

    name = "cosine"

    def __init__(self, epochs, min_lr=0.0, warmup=0):
        self.epochs = _whole("epochs (of the cosine schedule)", epochs, 1)
        self.min_lr = check_setting("min_lr", min_lr, low_ok=True)
        self.warmup = _whole("warmup", warmup, 0)
        if self.warmup >= self.epochs:
            raise ValueError(f"warmup ({self.warmup}) must be fewer than the cosine schedule's "
                             f"epochs ({self.epochs}); shorten the warm-up")

    def rate(self, epoch, lr0):
        if epoch < self.warmup:
            return lr0 * (epoch + 1) / (self.warmup + 1)
        if epoch >= self.epochs:
            return self.min_lr
        x = (epoch - self.warmup) / (self.epochs - self.warmup)
        return self.min_lr + (lr0 - self.min_lr) * (1 + math.cos(math.pi * x)) / 2


class InverseScaling(Schedule):
    """``η0 / (epoch + 1)^power_t``: scikit-learn's ``learning_rate="invscaling"``, except that
    scikit-learn's t counts the samples seen and bpgpu's counts epochs."""

    name = "invscaling"

    def __init__(self, power_t=0.5):
        self.power_t = check_setting("power_t", power_t, low_ok=True)

    def rate(self, epoch, lr0):
        return lr0 / (epoch + 1) ** self.power_t


class ReduceOnPlateau(Schedule):
    """Divide the rate by ``factor`` after ``patience`` epochs in a row in which the monitored
    value did not improve on its best by more than ``tol``; never below ``min_lr``.

    scikit-learn's ``learning_rate="adaptive"`` is this with factor 5 (its patience is
    ``n_iter_no_change``, and it waits one epoch more). A monitored accuracy improves upwards,
    anything else (a loss) downwards. Stateful: told each epoch's logs by :meth:`observe`; its
    best value, wait count and current rate are its :meth:`state_dict`.
    """

    name = "plateau"

    def __init__(self, factor=5.0, patience=10, tol=1e-4, monitor="loss", min_lr=0.0):
        self.factor = check_setting("factor", factor, low=1.0)
        self.patience = _whole("patience", patience, 1)
        self.tol = check_setting("tol", tol, low_ok=True)
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must name a metric such as 'loss', got {monitor!r}")
        self.monitor = monitor
        self.min_lr = check_setting("min_lr", min_lr, low_ok=True)
        self._best, self._wait, self._lr = None, 0, None

    def rate(self, epoch, lr0):
        if self._lr is None:
            self._lr = lr0
        return self._lr

    def observe(self, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(f"ReduceOnPlateau monitors {self.monitor!r}, which epoch {epoch}'s "
                             f"logs lack (they have {', '.join(logs)}); monitor one of those")
        value, sign = float(logs[self.monitor]), -1 if "accuracy" in self.monitor else 1
        # scikit-learn's bookkeeping: a better value is the best, a better one by > tol resets
        if self._best is not None and not sign * value < sign * self._best - self.tol:
            self._wait += 1
        else:
            self._wait = 0
        if self._best is None or sign * value < sign * self._best:
            self._best = value
        if self._wait >= self.patience and self._lr is not None:
            self._lr, self._wait = max(self._lr / self.factor, self.min_lr), 0

    def state_dict(self):
        best = self._best if self._best is not None and math.isfinite(self._best) else None
        return {"name": self.name, "best": best, "wait": self._wait, "lr": self._lr}

    def load_state_dict(self, d):
        super().load_state_dict(d)
        best, wait, lr = d.get("best"), d.get("wait"), d.get("lr")
        if not (best is None or _finite(best)) or not _is_whole(wait) or wait < 0 or not (
                lr is None or (_finite(lr) and lr > 0)):
            raise ValueError(f"bad saved ReduceOnPlateau state {d!r}: best a finite number or "
                             "null, wait a whole number ≥ 0, lr a number > 0 or null")
        self._best, self._wait = best, int(wait)
        self._lr = None if lr is None else float(lr)


class FromFunction(Schedule):
    """Any callable ``f(epoch) -> rate`` as a schedule (the rate itself, not a factor of η0)."""

    name = "function"

    def __init__(self, f):
        self.f = f

    def rate(self, epoch, lr0):
        return self.f(epoch)


def rate_at(schedule, epoch, lr0):
    """``schedule``'s rate of ``epoch`` as a float, checked to be finite and > 0."""
    value = schedule.rate(epoch, lr0)
    if not _finite(value) or value <= 0:
        raise ValueError(f"the learning-rate schedule {schedule!r} gives {value!r} at epoch "
                         f"{epoch}; a rate must be a finite number > 0: change its settings "
                         "(a min_lr > 0, or a schedule as long as the run)")
    return float(value)


def get(spec, epochs=None):
    """A schedule from ``spec``: ``None`` (the constant rate), a :class:`Schedule` (as it is), a
    command-line form (:func:`from_spec`, ``epochs`` for a cosine's length) or a callable
    ``f(epoch) -> rate``."""
    if spec is None:
        return Constant()
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, str):
        return from_spec(spec, epochs)
    if callable(spec):
        return FromFunction(spec)
    raise TypeError(f"a learning-rate schedule is a Schedule, one of {SPECS} or a function of "
                    f"the epoch; got {spec!r}")


def split(lr, schedule=None):
    """``(base rate or None, schedule spec or None)`` from a ``lr`` that may be a number,
    ``None``, a schedule or a callable, and an optional ``schedule`` beside a numeric ``lr``;
    the spec is built later by :func:`get`, once the run's length is known."""
    if lr is None or isinstance(lr, numbers.Real):
        return lr, schedule
    if schedule is not None:
        raise TypeError(f"lr={lr!r} is already a schedule; give lr a number (the base rate η0) "
                        f"beside schedule={schedule!r}, or the schedule alone")
    return None, lr


def resolve(lr, schedule=None, epochs=None):
    """``(base rate or None, schedule)``: :func:`split`, its spec built by :func:`get`."""
    base, spec = split(lr, schedule)
    return base, get(spec, epochs)


def from_spec(text, epochs=None):
    """A schedule from its command-line form: ``constant``, ``cosine``, ``cosine:WARMUP``,
    ``step:SIZE[:GAMMA]``, ``exp:GAMMA``, ``invscaling[:POWER]``, ``plateau[:PATIENCE]``;
    ``epochs`` is the run's length, which a cosine needs."""
    kind, *args = text.strip().lower().split(":")
    try:
        values = [float(a) if "." in a or "e" in a else int(a) for a in args]
    except ValueError:
        values = None
    cls, names, least = _FORMS.get(kind, (None, (), 0))
    if values is None or cls is None or not least <= len(values) <= len(names):
        raise ValueError(f"unknown learning-rate schedule {text!r}; use one of {SPECS}")
    settings = dict(zip(names, values))
    if cls is Cosine:
        if epochs is None:
            raise ValueError("the cosine schedule needs the run's epochs: from_spec('cosine', "
                             "epochs=N)")
        settings["epochs"] = epochs
    return cls(**settings)


_FORMS = {  # name: (class, the settings its fields give in order, how many it needs)
    "constant": (Constant, (), 0), "cosine": (Cosine, ("warmup",), 0),
    "step": (StepDecay, ("step_size", "gamma"), 1), "exp": (Exponential, ("gamma",), 1),
    "invscaling": (InverseScaling, ("power_t",), 0), "plateau": (ReduceOnPlateau, ("patience",), 0)}


def _is_whole(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _finite(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _whole(name, value, low):
    if not _is_whole(value) or value < low:
        raise ValueError(f"{name} must be a whole number ≥ {low}, got {value!r}")
    return int(value)
