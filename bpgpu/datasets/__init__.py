"""Data sets for bpgpu, returned as host-side NumPy arrays.

Use :func:`load` with a spec string; :func:`names` lists the spec forms::

    digits             UCI 8x8 handwritten digits shipped with bpgpu (1797 x 64, 10 classes)
    xor                the 4 XOR points (2 classes)
    cafeteria[:WEEKS]  the delta-rule lecture's cafeteria bills (regression, default 1 week)
    spirals[:N]        two interleaved spirals, N points (default 400, 2 classes)
    mnist:DIR          MNIST training set from local IDX files in DIR (no download)
    csv:PATH           CSV (``,`` ``;`` or tab): feature columns, then the label/target column
    npz:PATH           NumPy ``np.savez`` file with arrays ``X`` (n, features) and ``y`` (n,)

Files say nothing of their task: ``task="auto"`` decides by the rule of
:mod:`bpgpu.datasets._task` (text, or few distinct whole numbers → classes; else regression).
"""

from __future__ import annotations

from collections.abc import Callable

from bpgpu._host import check_fits
from bpgpu.datasets._arrays import read_npy, read_npz
from bpgpu.datasets._builtin import load_cafeteria, load_digits, load_spirals, load_xor
from bpgpu.datasets._csv import read_csv
from bpgpu.datasets._dataset import Dataset
from bpgpu.datasets._mnist import load_mnist
from bpgpu.datasets._split import fingerprint, held_out_rows, split
from bpgpu.datasets._table import Table
from bpgpu.datasets._task import MAX_AUTO_CLASSES, TASKS, decide, labelled, relabel
from bpgpu.errors import DatasetError

__all__ = ["MAX_AUTO_CLASSES", "TASKS", "Dataset", "Table", "decide", "fingerprint",
           "held_out_rows", "load", "names", "read_csv", "read_npy", "read_npz", "split"]

_FORMS = ["digits", "xor", "cafeteria[:WEEKS]", "spirals[:N]", "mnist:DIR", "csv:PATH",
          "npz:PATH"]
_FILES = {"csv": read_csv, "npz": read_npz}
_DEFAULT_WEEKS = 1
_DEFAULT_SPIRAL_POINTS = 400
_PLACEHOLDERS = {"cafeteria": "WEEKS", "spirals": "N"}
# What generating one row of spirals or cafeteria takes at its peak (inputs, targets, the
# temporaries of drawing them), so that a size no machine holds is refused before it is drawn.
_GENERATED_ROW_BYTES = 64


def names() -> list[str]:
    """Return the accepted spec forms, for help text.

    Returns
    -------
    list of str
        ``["digits", "xor", "cafeteria[:WEEKS]", "spirals[:N]", "mnist:DIR", "csv:PATH",
        "npz:PATH"]``.
    """
    return list(_FORMS)


def _count(kind: str, arg: str | None, default: int, minimum: int, example: int) -> int:
    """Parse the optional integer suffix of ``kind:ARG``, at least ``minimum``."""
    if arg is None:
        return default
    try:
        value = int(arg.strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise DatasetError(
            f"{kind}:{arg} is not valid: expected {kind}:{_PLACEHOLDERS[kind]} with "
            f"{_PLACEHOLDERS[kind]} an integer >= {minimum} (e.g. {kind}:{example}), "
            f"or plain {kind} for {default}"
        )
    return value


def _no_arg(kind: str, arg: str | None) -> None:
    """Reject an argument on a spec that takes none."""
    if arg is not None:
        raise DatasetError(f"{kind} takes no argument, got {kind}:{arg}; use plain {kind}")


def _need_arg(kind: str, arg: str | None, placeholder: str) -> str:
    """Return the required argument of ``kind:ARG`` or raise."""
    if arg is None or not arg.strip():
        raise DatasetError(
            f"{kind} needs a {placeholder.lower()} after the colon; use {kind}:{placeholder}"
        )
    return arg.strip()


def _digits(spec: str, arg: str | None, seed: int) -> Dataset:
    """Load ``digits`` (no argument)."""
    _no_arg("digits", arg)
    return load_digits(spec)


def _xor(spec: str, arg: str | None, seed: int) -> Dataset:
    """Load ``xor`` (no argument)."""
    _no_arg("xor", arg)
    return load_xor(spec)


def _cafeteria(spec: str, arg: str | None, seed: int) -> Dataset:
    """Load ``cafeteria[:WEEKS]``."""
    weeks = _count("cafeteria", arg, _DEFAULT_WEEKS, 1, 10)
    check_fits(weeks * _GENERATED_ROW_BYTES, f"{spec} ({weeks:,} weeks)", "use fewer weeks")
    return load_cafeteria(spec, weeks, seed)


def _spirals(spec: str, arg: str | None, seed: int) -> Dataset:
    """Load ``spirals[:N]``."""
    n_points = _count("spirals", arg, _DEFAULT_SPIRAL_POINTS, 2, 1000)
    check_fits(n_points * _GENERATED_ROW_BYTES, f"{spec} ({n_points:,} points)",
               "use fewer points")
    return load_spirals(spec, n_points, seed)


def _mnist(spec: str, arg: str | None, seed: int) -> Dataset:
    """Load ``mnist:DIR``."""
    return load_mnist(spec, _need_arg("mnist", arg, "DIR"))


#: Spec kind -> loader(spec, text after the colon or None, seed).
_LOADERS: dict[str, Callable[[str, str | None, int], Dataset]] = {
    "digits": _digits,
    "xor": _xor,
    "cafeteria": _cafeteria,
    "spirals": _spirals,
    "mnist": _mnist,
}


def load(spec: str, *, seed: int = 0, task: str = "auto", classes=None,
         header="auto") -> Dataset:
    """Load a data set from a spec string.

    Parameters
    ----------
    spec : str
        One of the forms returned by :func:`names`, e.g. ``"digits"``, ``"spirals:200"``,
        ``"cafeteria:8"``, ``"mnist:/data/mnist"``, ``"csv:train.csv"`` or ``"npz:data.npz"``.
    seed : int, optional
        Seed for the generated data sets (cafeteria weeks after the first, spirals).
    task : {"auto", "classify", "regress"}
        What the last column of a file holds (see :func:`decide`); the built-in sets know theirs.
    classes : list, optional
        Number the class labels by these (a trained model's ``classes``), so that class ``k``
        means the model's output ``k``; a label not among them is an error naming it.
    header : {"auto", "yes", "no"}
        Whether a CSV file's first row is a header (see :func:`read_csv`).

    Returns
    -------
    Dataset
        The data with ``name`` set to ``spec``.

    Raises
    ------
    DatasetError
        If the spec is unknown, its argument is invalid, or its files are missing or malformed.
    """
    spec = str(spec).strip()
    kind, colon, arg = spec.partition(":")
    kind = kind.strip().lower()
    if kind in _FILES:
        path = _need_arg(kind, arg if colon else None, "PATH")
        table = read_csv(path, header=header) if kind == "csv" else read_npz(path)
        return labelled(spec, table.X, table.labels, task=task, classes=classes,
                        description=f"{kind.upper()} {path}: {table.note}")
    loader = _LOADERS.get(kind)
    if loader is None:
        raise DatasetError(f"unknown dataset spec {spec!r}; use one of: {', '.join(_FORMS)}")
    data = loader(spec, arg if colon else None, seed)
    if task not in ("auto", data.task):
        raise DatasetError(f"{spec} is a {'classification' if data.n_classes else 'regression'} "
                           "data set; leave out --task (or use --task auto)")
    return data if classes is None else relabel(data, classes)
