"""A network's state as plain data, and the one path that captures and rebuilds it.

A state is a dict:

- ``config``: the JSON-able settings that rebuild the architecture (:func:`config`);
- ``arrays``: host NumPy copies by name — ``W0``, ``b0``, ``W1``, ... (``W{l}`` of shape
  (sizes[l], sizes[l+1])), and with a trainer its optimizer's ``opt.<key>.<i>``;
- ``rng``: the shuffling generator's ``bit_generator.state``; ``history``: every epoch trained;
- ``data``: what the network knows of its data — its input and target transforms and how
  ``bpgpu train`` chose the held-out rows (the class labels are in ``config``, as they name the
  outputs);
- ``optimizer`` (with a trainer, or after a ``fit``): its name, settings, step count and which
  arrays are its lists.

Model files and checkpoints (:mod:`bpgpu.io`, :mod:`bpgpu.io.checkpoint`), ``resume``,
:meth:`Network.to`, pickling and copying, and the scikit-learn estimators' pickling all go through
:func:`capture` and :func:`build`, so a network is rebuilt, and an optimizer's state serialised, in
one place.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from . import optim, rules
from ._host import is_whole
from .errors import DeviceUnavailableError
from .transform import Standardize


def config(net):
    """The settings that rebuild ``net``'s architecture (JSON-serialisable). Its rules are kept as
    names, checked to name rules this process knows (:func:`bpgpu.register`), so that whatever
    is written can be read back; ``activation`` is one name where the hidden layers share it (as
    files have always had it), else a list of one per hidden layer."""
    names = [rules.saved_name("activation", a) for a in net.activations]
    shared = names if len(set(names)) > 1 else rules.saved_name("activation", net.activation)
    return {"sizes": list(net.sizes), "activation": shared,
            "output": rules.saved_name("activation", net.output),
            "loss": rules.saved_name("loss", net.loss, net.output.name), "bias": net.bias,
            "dtype": net.dtype_name, "seed": net.seed, "fused": net.fused,
            "classes": None if net.classes is None else list(net.classes)}


def param_names(cfg):
    """The parameters' names in :attr:`Network.params` order: ``["W0", "b0", "W1", ...]``."""
    layers = range(len(cfg["sizes"]) - 1)
    return [n for i in layers for n in ((f"W{i}", f"b{i}") if cfg["bias"] else (f"W{i}",))]


def capture(net, trainer=None):
    """``net``'s state as host copies, with the optimizer state of ``trainer`` when given, else
    of the network's last ``fit`` (:attr:`Network.optimizer_state`) when it has one."""
    cfg = config(net)
    host = net.backend.to_host
    arrays = {name: np.array(host(p)) for name, p in zip(param_names(cfg), net.params)}
    st = {"config": cfg, "arrays": arrays, "rng": net.shuffle_rng.bit_generator.state,
          "history": copy.deepcopy(net.history), "data": _data(net)}
    opt, opt_state = ((trainer.opt, trainer.state) if trainer is not None
                      else net.optimizer_state or (None, None))
    if opt is not None:
        st["optimizer"] = _optimizer_meta(opt, opt_state, host)
        for key, count in st["optimizer"]["lists"].items():
            arrays.update({f"opt.{key}.{i}": np.array(host(a))
                           for i, a in zip(range(count), opt_state[key])})
    return st


def _data(net):
    return {"transform": _json(net.input_transform),
            "target_transform": _json(net.target_transform), "split": copy.deepcopy(net.split)}


def _json(transform):
    return None if transform is None else transform.to_json()


def _transform(data, key, width, what):
    """The transform saved under ``key``, checked to have ``width`` columns (None if none)."""
    if data.get(key) is None:
        return None
    transform = Standardize.from_json(data[key])
    if transform.n_features != width:
        raise ValueError(f"a transform of {transform.n_features} columns for {width} {what}")
    return transform


def _optimizer_meta(opt, opt_state, host):
    scalars, lists = {}, {}
    for key, value in opt_state.items():
        if isinstance(value, list):
            lists[key] = len(value)
        else:  # a Python number, or a 0-d device array where the step is compiled
            value = value if isinstance(value, (int, float)) else host(value).item()
            # the learning rate is the one real number; the others count steps
            scalars[key] = float(value) if key == "lr" else int(value)
    return {"name": opt.name, "hyper": dict(vars(opt)), "scalars": scalars, "lists": lists}


def build(cls, st, device=None):
    """A network of class ``cls`` on ``device`` (any spec) from state ``st``."""
    cfg = dict(st["config"])
    with warnings.catch_warnings():  # a softmax + sse pairing was warned of when first made
        warnings.filterwarnings("ignore", "a softmax output with loss", UserWarning)
        net = cls(cfg.pop("sizes"), cfg.pop("activation"), cfg.pop("output"), cfg.pop("loss"),
                  device=device, **cfg)
    apply(net, st)
    return net


def apply(net, st):
    """Give ``net`` (of ``st``'s architecture) the state's parameters, RNG state, history, input
    transform, held-out split and optimizer state."""
    names = param_names(config(net))
    net.set_weights(net.unflatten([st["arrays"][n] for n in names]))
    if st.get("rng") is not None:
        _set_rng(net.shuffle_rng, st["rng"])
    history = st.get("history")
    if history is not None and not isinstance(history, dict):
        raise ValueError(f"bad history record of type {type(history).__name__}")
    net.history = copy.deepcopy(history)
    data = st.get("data") or {}
    if not isinstance(data, dict):
        raise ValueError(f"bad data record {data!r}")
    net.input_transform = _transform(data, "transform", net.sizes[0], "inputs")
    net.target_transform = _transform(data, "target_transform", net.sizes[-1], "outputs")
    split = data.get("split")
    if split is not None and not isinstance(split, dict):
        raise ValueError(f"bad held-out split {split!r}")
    net.split = copy.deepcopy(split)
    net.optimizer_state = None
    if "optimizer" in st:
        net.optimizer_state = optimizer_of(st), optimizer_arrays(net, st)


def _set_rng(rng, saved):
    """Give ``rng`` a saved bit-generator state; NumPy's errors on a bad one vary (an
    OverflowError for an out-of-range integer), so they become one ValueError."""
    try:
        rng.bit_generator.state = saved
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(f"bad shuffling RNG state ({type(exc).__name__}: {exc})") from None


def rebuild(cls, st, device):
    """:func:`build` on ``device``, or on ``"cpu"`` with a warning where that device is not
    usable here (an unpickled network, or an estimator fitted on a GPU and loaded without one)."""
    try:
        return build(cls, st, device)
    except DeviceUnavailableError as exc:
        warnings.warn(f"the {cls.__name__} was saved on device {device!r}, which is not usable "
                      f"here ({exc}); it is rebuilt on 'cpu'", UserWarning, stacklevel=2)
        return build(cls, st, "cpu")


def optimizer_of(st):
    """The optimizer that wrote ``st``'s optimizer state, with its settings."""
    meta = st["optimizer"]
    return optim.get(meta["name"], **meta["hyper"])


def optimizer_arrays(net, st):
    """``st``'s optimizer state (lists of arrays, step counts, learning rate) on ``net``'s
    device."""
    be, dtype = net.backend, net.dtype
    meta, arrays = st["optimizer"], st["arrays"]
    counts = {k: v for k, v in meta["scalars"].items() if k != "lr"}
    # Step counts: Adam divides by 1 - beta1**step, which a step of -1 makes zero.
    if not all(is_whole(v) and v >= 0 for v in counts.values()):
        raise ValueError(f"bad optimizer step counts {counts}; they must be whole numbers ≥ 0")
    with be.context():
        out = {key: [be.asarray(arrays[f"opt.{key}.{i}"], dtype) for i in range(count)]
               for key, count in meta["lists"].items()}
    out.update(meta["scalars"])
    if "lr" in out:  # the next step's rate; older files lack it (the optimizer's lr is used then)
        out["lr"] = optim.check_setting("the saved learning rate (optimizer scalar 'lr')",
                                        out["lr"])
    return out


def restore_optimizer(trainer, st):
    """Put ``st``'s optimizer state into ``trainer`` (bound to a network of ``st``'s shapes)."""
    trainer.state.update(optimizer_arrays(trainer.net, st))
