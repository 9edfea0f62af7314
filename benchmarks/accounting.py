"""What a benchmark run measures and how much work that is.

The nets and their batch sizes, the FLOPs and bytes of one training step (design.md §6), and the
parsing of ``--nets``, ``--batch-sizes``, ``--peers`` and ``--devices``.
"""

from __future__ import annotations

import re
import typing

NETS = {
    "mnist-mlp": [784, 1024, 1024, 10],
    "digits-mlp": [64, 32, 10],
}
DEFAULT_BATCHES = {
    "mnist-mlp": [64, 512, 4096, 32768],
    "digits-mlp": [32, 256, 2048],
}
QUICK_BATCHES = {
    "mnist-mlp": [64, 512],
    "digits-mlp": [32, 2048],
}
CUSTOM_BATCHES = [64, 512, 4096]  # for nets given as explicit layer widths
CUSTOM_QUICK_BATCHES = [64, 512]
PEERS = ("torch", "sklearn", "raw", "jax")
DTYPES = ("float32", "float64")
LR = 0.1
SEED = 0


def step_flops(sizes, batch):
    """Floating-point operations of one training step, counting the matrix products only.

    The forward pass is ``2·B·s_i·s_{i+1}`` per layer; the backward pass is the weight gradient
    ``y_iᵀ δ`` (the same again) and the input gradient ``δ Wᵀ`` (the same again) except in the
    first layer, which needs no gradient with respect to the data. Hence
    ``6·B·Σ s_i·s_{i+1} − 2·B·s_0·s_1`` (design.md §6). Biases, activations, the softmax and the
    update are O(B·Σ s_i) or O(#params) and left out.

    Parameters
    ----------
    sizes : sequence of int, length L + 1
        Layer widths ``s_0 … s_L``, input first.
    batch : int
        Rows per step, ``B``.

    Returns
    -------
    int
    """
    sizes = [int(s) for s in sizes]
    batch = int(batch)
    pairs = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    return 6 * batch * pairs - 2 * batch * sizes[0] * sizes[1]


def param_count(sizes):
    """Weights and biases of the net with layer widths ``sizes``: ``Σ (s_i·s_{i+1} + s_{i+1})``.

    Parameters
    ----------
    sizes : sequence of int, length L + 1

    Returns
    -------
    int
    """
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))


def min_bytes(sizes, batch, itemsize, state_per_param=0):
    """Bytes one training step cannot do without, each tensor of the algorithm held once.

    ``itemsize · (P + P + state_per_param·P + B·Σ_{i=0..L} s_i + B·Σ_{i=1..L} s_i)``: the
    parameters (P = ``param_count(sizes)``), their gradients, the optimizer state, the
    activations saved for the backward pass (the input ``X = y_0`` included), and the deltas
    ``δ_i = ∂E/∂z_i``.

    Left out: the targets (a few KiB for these nets), the temporaries of elementwise work, and
    library workspace (BLAS/cuBLAS buffers). It is the textbook step in which every one of these
    tensors exists once, not a hard floor: the hand-written ``raw`` step applies each layer's
    update as soon as its gradient is known, so its peak can fall below this. ``peak_bytes /
    min_bytes`` is how much more than the textbook step an implementation keeps alive.

    Parameters
    ----------
    sizes : sequence of int, length L + 1
    batch : int
    itemsize : int
        Bytes per value (4 for float32).
    state_per_param : int, default 0
        Optimizer values per parameter: 0 for plain SGD, 1 for momentum, 2 for Adam.

    Returns
    -------
    int
    """
    sizes = [int(s) for s in sizes]
    P = param_count(sizes)
    acts = batch * sum(sizes)
    deltas = batch * sum(sizes[1:])
    return int(itemsize) * ((2 + state_per_param) * P + acts + deltas)


# -- command-line parsing -------------------------------------------------------------------

_WIDTHS = re.compile(r"^\d+([,x-]\d+)+$")


class Net(typing.NamedTuple):
    """A net to measure: its name, layer widths, and its own batch sizes (None: the defaults)."""

    name: str
    sizes: list
    batches: list | None = None


def parse_nets(values):
    """The nets named by ``--nets`` values, each once, in order.

    Each value holds one or more nets separated by ``;``; the option may also be repeated. A net
    is a preset name (``mnist-mlp``, ``digits-mlp``) or layer widths joined by ``,``, ``-`` or
    ``x`` (``784,256,10``); several presets may also be joined by ``,``. A net may carry its own
    batch sizes after ``@``: ``mnist-mlp@64,512``.

    Parameters
    ----------
    values : str or list of str

    Returns
    -------
    list of Net

    Raises
    ------
    ValueError
        For an unknown net, a bad width or batch size, or no net at all.
    """
    if isinstance(values, str):
        values = [values]
    nets = [net for value in values for item in value.split(";") if item.strip()
            for net in _parse_net_item(item.strip())]
    if not nets:
        raise ValueError("no net given; use e.g. --nets mnist-mlp or --nets '784,256,10'")
    unique = {}
    for net in nets:
        unique.setdefault(net.name, net)
    return list(unique.values())


def _parse_net_item(item):
    """The nets of one ``;``-separated item: a preset, widths, or presets joined by ``,``."""
    item, at, batch_text = item.partition("@")
    item = item.strip()
    batches = parse_batches(batch_text) if at else None
    if item in NETS:
        return [Net(item, list(NETS[item]), batches)]
    if _WIDTHS.match(item):
        sizes = [int(s) for s in re.split(r"[,x-]", item)]
        if min(sizes) < 1:
            raise ValueError(f"bad net {item!r}: every layer width must be ≥ 1")
        if sizes[-1] < 2:
            raise ValueError(f"bad net {item!r}: a softmax output needs ≥ 2 units")
        return [Net("-".join(map(str, sizes)), sizes, batches)]
    names = [p.strip() for p in item.split(",")]
    if all(name in NETS for name in names):
        return [Net(name, list(NETS[name]), batches) for name in names]
    raise ValueError(f"unknown net {item!r}: use a preset ({', '.join(NETS)}) or layer widths "
                     f"such as 784,256,10; separate several nets with ';'")


def parse_batches(text):
    """Batch sizes from ``"64,512,4096"``: whole numbers ≥ 1, each once. Raises ValueError."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"bad batch size {part!r}: batch sizes are whole numbers ≥ 1, "
                             "e.g. --batch-sizes 64,512,4096")
        out.append(int(part))
    if not out:
        raise ValueError("no batch size given; use e.g. --batch-sizes 64,512")
    return list(dict.fromkeys(out))


def parse_peers(text):
    """Peers from ``"torch,sklearn,raw"`` (``""`` or ``"none"`` for none). Raises ValueError."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if parts == ["none"]:
        return []
    bad = [p for p in parts if p not in PEERS]
    if bad:
        raise ValueError(f"unknown peer {bad[0]!r}: choose from {', '.join(PEERS)} (or 'none')")
    return list(dict.fromkeys(parts))


def plan(nets, batch_text, quick, default=None):
    """``[(name, sizes, batch), ...]``: every (net, batch size) to measure, in order.

    A net's own ``@`` batch sizes come first, then ``--batch-sizes`` (``batch_text``), then
    ``default`` (one list for every net), then the net's defaults (fewer with ``quick``).
    Raises ValueError for a bad ``batch_text``.
    """
    common = parse_batches(batch_text) if batch_text is not None else default
    out = []
    for name, sizes, own in nets:
        if own is not None:
            batches = own
        elif common is not None:
            batches = common
        elif quick:
            batches = QUICK_BATCHES.get(name, CUSTOM_QUICK_BATCHES)
        else:
            batches = DEFAULT_BATCHES.get(name, CUSTOM_BATCHES)
        out.extend((name, sizes, b) for b in batches)
    return out


def default_devices():
    """Every usable device of ``bpgpu.devices()``, without the conformance backend ``strict``."""
    import bpgpu

    return [r.spec for r in bpgpu.devices() if r.available and r.spec != "strict"]


def resolve_devices(text):
    """Canonical device specs (``cuda`` → ``cuda:0``) from ``--devices`` (None: the defaults).

    Raises ValueError naming the device and the reason when one is unknown or unusable here.
    """
    import bpgpu

    specs = default_devices() if text is None else [s.strip() for s in text.split(",")]
    out = []
    for spec in filter(None, specs):
        try:
            name = bpgpu.get_backend(spec).name
        except bpgpu.DeviceUnavailableError as exc:
            raise ValueError(f"device {spec!r} is not usable here: {exc}") from None
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no device to measure; see `bpgpu devices`")
    return out


def hardware_of(label):
    """The hardware a device label runs on: ``cpu``, ``cuda:N`` or ``tpu:N``."""
    for prefix in ("torch:cuda", "jax:cuda", "jax:gpu", "jax:tpu"):
        if label.startswith(prefix):
            kind = "tpu" if prefix == "jax:tpu" else "cuda"
            return f"{kind}:" + (label.split(":")[2] if label.count(":") == 2 else "0")
    if label.startswith("cuda"):
        return label if ":" in label else "cuda:0"
    return "cpu"
