"""A model file's metadata, checked before anything uses it: each JSON entry bounded in objects,
values and depth before it is parsed, then every value (config, RNG state, history, optimizer,
checkpoint, data record) checked for type and range, and the tensors' names, shapes, dtypes,
checksums and finiteness; anything wrong is one :class:`ModelFileError` naming the field."""

from __future__ import annotations

import json
import reprlib
import zlib

import numpy as np

from .. import optim, rules
from .. import state as states
from ..errors import ModelFileError
from ..transform import Standardize
from ..validation import MAX_WIDTH, check_classes

# Each JSON entry is bounded before it is parsed (str.count: milliseconds), so that parsing one
# stays well under 1 GB and a few seconds. bpgpu writes a handful of objects and lists per entry;
# 4 Mi values are 700,000 epochs of six metrics, or transforms of 2 Mi features.
MAX_JSON_CONTAINERS = 100_000  # objects and lists ({ and [, counted even inside strings)
MAX_JSON_VALUES = 1 << 22  # commas + 1
_DTYPES = {"float32": "F32", "float64": "F64"}
_CONFIG_KEYS = {"sizes", "activation", "output", "loss", "bias", "dtype", "seed", "fused",
                "classes"}
_PCG64_KEYS = {"bit_generator", "state", "has_uint32", "uinteger"}
_REPR = reprlib.Repr()  # values quoted in messages: a hostile one may be huge or deep
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 60, 60, 8, 6, 3
short = _REPR.repr




def parse_json(text, what):
    """``text`` as JSON, refused before parsing when it holds more objects and lists or values
    than bpgpu ever writes, and when nested too deeply; ``what`` names it in the message."""
    containers, values = text.count("{") + text.count("["), text.count(",") + 1
    if containers > MAX_JSON_CONTAINERS or values > MAX_JSON_VALUES:
        raise ModelFileError(
            f"its metadata {what} holds {containers:,} objects and lists and {values:,} values; "
            f"bpgpu writes far fewer and reads at most {MAX_JSON_CONTAINERS:,} and "
            f"{MAX_JSON_VALUES:,} (the file is damaged or hostile)")
    try:
        return json.loads(text)
    except RecursionError:  # json's parser recurses once per level
        raise ModelFileError(f"its metadata {what} is nested too deeply to be bpgpu's "
                             "(the file is damaged or hostile)") from None
    except ValueError as exc:
        raise ModelFileError(f"its metadata {what} is not valid JSON ({clip(exc)})") from None


# -- the metadata's values, each checked for type and range before anything uses it ------------

def check_metadata(st):
    """Check every metadata value of state ``st`` (as parsed from a file) before it is used."""
    cfg = st["config"]
    _check_config(cfg)
    _check_rng(st.get("rng"))
    _check_history(st.get("history"))
    _check_optimizer(st.get("optimizer"), len(states.param_names(cfg)))
    _check_checkpoint(st.get("checkpoint"))
    _check_data(st.get("data"), cfg["sizes"])


def _invalid(field, problem):
    return ModelFileError(f"the metadata and arrays do not describe a valid network: its {field} "
                          f"{problem}; use an intact copy of the file")


def _whole(value, low, high):
    """``value`` is a JSON whole number (not a bool, not a float) in [low, high)."""
    return type(value) is int and low <= value < high


def _check_config(cfg):
    unknown = sorted(set(cfg) - _CONFIG_KEYS)
    if unknown:
        raise _invalid("config", f"has unknown entries {short(unknown)}")
    missing = sorted({"activation", "output", "loss", "bias", "dtype"} - set(cfg))
    if missing:
        raise ModelFileError(f"its config lacks {missing}")
    sizes = cfg.get("sizes")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(_whole(s, 1, MAX_WIDTH + 1) for s in sizes)):
        raise ModelFileError(f"bad layer sizes in the metadata: {short(sizes)} (they must be a "
                             f"list of at least two whole numbers in [1, {MAX_WIDTH}])")
    if cfg["dtype"] not in _DTYPES or not isinstance(cfg["bias"], bool):
        raise ModelFileError(f"bad dtype or bias in the config: {short(cfg['dtype'])}, "
                             f"{short(cfg['bias'])} (dtype must be one of {sorted(_DTYPES)}, "
                             "bias true or false)")
    _check_config_values(cfg)


def _check_config_values(cfg):
    _check_activation(cfg["activation"], len(cfg["sizes"]) - 2)
    for key in ("output", "loss"):
        if not (isinstance(cfg[key], str) or (key == "output" and cfg[key] is None)):
            raise _invalid(f"config {key!r}", f"must be a name, got {short(cfg[key])}")
    _check_known_rules(cfg)
    if not isinstance(cfg.get("fused", True), bool):
        raise _invalid("config 'fused'", f"must be true or false, got {short(cfg['fused'])}")
    seed = cfg.get("seed")
    if seed is not None and not (type(seed) is int and seed >= 0):
        raise _invalid("config 'seed'", f"must be a whole number ≥ 0 or null, got {short(seed)}")
    if cfg.get("classes") is not None:
        try:
            check_classes(cfg["classes"], cfg["sizes"][-1])
        except ValueError as exc:
            raise _invalid("config 'classes'", f"are wrong ({clip(exc)})") from None


def _check_activation(activation, n_hidden):
    """One name for every hidden layer, or a list of one name per hidden layer."""
    if isinstance(activation, str):
        return
    if (not isinstance(activation, list) or len(activation) != n_hidden
            or not all(isinstance(a, str) for a in activation)):
        raise _invalid("config 'activation'", f"must be a name or a list of {n_hidden} names "
                                              f"(one per hidden layer), got {short(activation)}")


def _check_known_rules(cfg):
    """Every rule the config names is one this process knows, built in or registered: a file
    holds names, never code, so a custom rule must be registered before its file is read."""
    hidden = cfg["activation"] if isinstance(cfg["activation"], list) else [cfg["activation"]]
    for what, kind, name in (*(("activation", "activation", a) for a in hidden),
                             ("output activation", "activation", cfg["output"]),
                             ("loss", "loss", cfg["loss"])):
        if name is not None and not rules.known(kind, name):
            raise ModelFileError(f"it uses {what} {short(name)}, which this process does not "
                                 f"know (an unknown {what}: not built in, nor registered); "
                                 "import the code that defines it and call bpgpu.register on "
                                 "it before loading")


def _check_rng(rng):
    """A PCG64 ``bit_generator.state`` (what ``np.random.default_rng`` has), or None."""
    if rng is None:
        return
    inner = rng.get("state") if isinstance(rng, dict) else None
    if (not isinstance(rng, dict) or set(rng) != _PCG64_KEYS or rng["bit_generator"] != "PCG64"
            or not isinstance(inner, dict) or set(inner) != {"state", "inc"}):
        raise _invalid("rng", "(the shuffling generator's state) must be a PCG64 state with "
                              f"{sorted(_PCG64_KEYS)}, got {short(rng)}")
    for field, value, bits in (("state.state", inner["state"], 128),
                               ("state.inc", inner["inc"], 128),
                               ("has_uint32", rng["has_uint32"], 1),
                               ("uinteger", rng["uinteger"], 32)):
        if not _whole(value, 0, 1 << bits):
            high = 2 if bits == 1 else f"2**{bits}"
            raise _invalid(f"rng {field!r}", f"must be a whole number in [0, {high}), got "
                                             f"{short(value)}")


def _check_history(history):
    """Lists of numbers by metric name (lists may differ in length: a later fit may add or drop
    validation metrics; an infinite validation loss is a real record, so not refused)."""
    if history is None:
        return
    if not isinstance(history, dict):
        raise _invalid("history", f"must be an object of lists of numbers, got {short(history)}")
    for key, values in history.items():
        if not isinstance(values, list) or not all(type(v) in (int, float) for v in values):
            raise _invalid(f"history {short(key)}",
                           f"must be a list of numbers, got {short(values)}")


def _check_optimizer(opt, n_params):
    if opt is None:
        return
    if not isinstance(opt, dict) or set(opt) != {"name", "hyper", "scalars", "lists"}:
        raise _invalid("optimizer", f"must hold name, hyper, scalars and lists, got {short(opt)}")
    name, hyper = opt["name"], opt["hyper"]
    if not isinstance(name, str) or name not in optim.OPTIMIZERS:
        raise _invalid("optimizer 'name'", f"must be one of {sorted(optim.OPTIMIZERS)}, got "
                                           f"{short(name)}")
    if not isinstance(hyper, dict) or not all(type(v) in (int, float, bool)
                                              for v in hyper.values()):
        raise _invalid("optimizer 'hyper'", f"must map settings to numbers (nesterov to true or "
                                            f"false), got {short(hyper)}")
    try:
        fresh = optim.get(name, **hyper).init_state([])
    except (TypeError, ValueError) as exc:
        raise _invalid("optimizer 'hyper'", f"is wrong ({clip(exc)})") from None
    lists = opt["lists"]
    want = {k for k, v in fresh.items() if isinstance(v, list)}
    if not isinstance(lists, dict) or set(lists) != want or any(c != n_params
                                                                for c in lists.values()):
        raise ModelFileError(f"bad optimizer state in the metadata: {short(opt)} ({name} keeps "
                             f"lists {sorted(want)} of {n_params} arrays each)")
    _check_scalars(opt["scalars"], sorted(set(fresh) - want))


def _check_scalars(scalars, want):
    """The optimizer's step counts, whole numbers (Adam divides by 1 - beta1**step), and the
    next step's learning rate ``lr``, a finite number > 0 (absent from files written before
    the rate was state: the optimizer's ``lr`` is used then)."""
    counts = [k for k in want if k != "lr"]
    if not isinstance(scalars, dict) or not set(scalars) <= set(want):
        raise _invalid("optimizer 'scalars'", f"must be {want}, got {short(scalars)}")
    steps = {k: v for k, v in scalars.items() if k != "lr"}
    if sorted(steps) != counts or not all(_whole(v, 0, 1 << 62) for v in steps.values()):
        raise _invalid("optimizer 'scalars'", f"must be {counts} as whole numbers in [0, 2**62), "
                                              f"got {short(steps)}")
    lr = scalars.get("lr")
    if lr is not None and (type(lr) not in (int, float) or not 0 < lr < float("inf")):
        raise _invalid("optimizer 'scalars' 'lr'", f"(the next step's learning rate) must be a "
                                                   f"finite number > 0, got {short(lr)}")


def _check_checkpoint(ckpt):
    """The epoch, the batch settings and (since schedules) the learning-rate schedule's state."""
    if ckpt is None:
        return
    if not isinstance(ckpt, dict) or not {"epoch", "settings"} <= set(ckpt) <= {
            "epoch", "settings", "schedule"}:
        raise _invalid("checkpoint", f"must hold epoch and settings (and a schedule), got "
                                     f"{short(ckpt)}")
    if ckpt.get("schedule") is not None and not _flat(ckpt["schedule"]):
        raise _invalid("checkpoint 'schedule'", f"must be an object of plain values, got "
                                                f"{short(ckpt['schedule'])}")
    if not _whole(ckpt["epoch"], 0, 1 << 53):
        raise _invalid("checkpoint 'epoch'", f"must be a whole number ≥ 0, got "
                                             f"{short(ckpt['epoch'])}")
    if ckpt["settings"] is not None and not _flat(ckpt["settings"]):
        raise _invalid("checkpoint 'settings'", f"must be an object of plain values, got "
                                                f"{short(ckpt['settings'])}")


def _check_data(data, sizes):
    if data is None:
        return
    if not isinstance(data, dict) or not set(data) <= {"transform", "target_transform", "split"}:
        raise _invalid("data", f"must hold transform, target_transform and split, got "
                               f"{short(data)}")
    for key, width in (("transform", sizes[0]), ("target_transform", sizes[-1])):
        if data.get(key) is None:
            continue
        try:
            columns = Standardize.from_json(data[key]).n_features
        except ValueError as exc:
            raise _invalid(f"data {key!r}", f"is wrong ({clip(exc)})") from None
        if columns != width:
            raise _invalid(f"data {key!r}", f"has {columns} columns for a layer of {width}")
    if data.get("split") is not None and not _flat(data["split"]):
        raise _invalid("data 'split'", f"must be an object of plain values or null, got "
                                       f"{short(data['split'])}")


def _flat(value):
    """An object of JSON scalars (what bpgpu writes for a split or batch settings)."""
    return isinstance(value, dict) and all(v is None or type(v) in (bool, int, float, str)
                                           for v in value.values())


def clip(exc, limit=300):
    """A message of bounded length: some quote the values they refuse."""
    text = str(exc)
    return text if len(text) <= limit else text[:limit] + "…"


# -- the arrays -----------------------------------------------------------------------------------

def check_tensors(st, specs):
    """Every tensor the config (and optimizer state) implies, of the right shape and dtype, and
    no other."""
    want = _expected(st)
    dtype = _DTYPES[st["config"]["dtype"]]
    for name, shape in want.items():
        if name not in specs:
            raise ModelFileError(f"array {name!r} is missing")
        if list(specs[name][0]) != shape or specs[name][1] != dtype:
            raise ModelFileError(
                f"array {name!r} is {list(specs[name][0])} {specs[name][1]}, but layer sizes "
                f"{st['config']['sizes']} in {st['config']['dtype']} need {shape} {dtype}")
    extra = sorted(set(specs) - set(want))
    if extra:
        raise ModelFileError(f"unexpected arrays {short(extra)} (not parameters of this "
                             "network)")


def _expected(st):
    """{name: shape} of the tensors state ``st`` (its metadata checked) needs."""
    cfg = st["config"]
    sizes = cfg["sizes"]
    shapes = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"W{i}"] = [n_in, n_out]
        if cfg["bias"]:
            shapes[f"b{i}"] = [n_out]
    params = list(shapes.values())
    for key, count in (st.get("optimizer") or {"lists": {}})["lists"].items():
        shapes.update({f"opt.{key}.{i}": params[i] for i in range(count)})
    return shapes


def check_sums(arrays, sums):
    for name, a in arrays.items():
        if sums.get(name) != zlib.crc32(np.ascontiguousarray(a)):
            raise ModelFileError(f"array {name!r} is damaged (its CRC-32 does not match)")


def check_finite(arrays):
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            raise ModelFileError(f"array {name!r} holds NaN or infinity; the file was written by "
                                 "a diverged run or edited: retrain, or use an intact copy")
