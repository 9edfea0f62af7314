"""``bpgpu devices``, ``predict`` and ``evaluate`` (``train`` is :mod:`bpgpu.cli.train`;
argument parsing lives in :mod:`bpgpu.cli`)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from .. import datasets
from ..registry import devices as list_devices
from ..registry import get_backend
from .train import as_labels, rmse


def devices(args):
    rows = list_devices()
    print(f"{'device':<13} {'usable':<7} {'library':<17} {'version':<12} {'memory':>9}  "
          "device / reason")
    for r in rows:
        mem = f"{r.memory_bytes / 2**30:.1f} GiB" if r.memory_bytes else "-"
        what = r.device_name if r.available else r.reason
        print(f"{r.spec:<13} {'yes' if r.available else 'no':<7} {r.library:<17} "
              f"{r.version or '-':<12} {mem:>9}  {what}")
    print(f"\ndefault device: {get_backend(args.device).name}")
    return 0


def predict(args):
    from ..mlp import load

    net = load(args.model, device=args.device)
    out = net.predict(_read_features(args.input, net.sizes[0], args.header), host=True)
    if args.out and args.out.endswith(".npy"):
        from ..io.files import atomic_write

        atomic_write(args.out, lambda f: np.save(f, out, allow_pickle=False))
        return 0
    if args.out:
        from ..io.files import atomic_write

        atomic_write(args.out, lambda f: _as_text(f, _write_predictions, net, out))
    else:
        _write_predictions(sys.stdout, net, out)
    return 0


def _as_text(binary, write, *args):
    """``write(text_stream, *args)`` on a binary file, which stays open afterwards."""
    text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
    write(text, *args)
    text.flush()
    text.detach()


def _write_predictions(stream, net, out):
    """CSV: for a classifier the predicted label (one of the model's classes) then each class's
    probability, ``p_<class>``; for a regression model the outputs ``y0, y1, ...``."""
    writer = csv.writer(stream, lineterminator="\n")
    values = np.char.mod("%.7g", out)
    if net.task != "classify":
        writer.writerow([f"y{k}" for k in range(out.shape[1])])
        writer.writerows(values.tolist())
        return
    index = (out[:, 0] >= 0.5).astype(np.int64) if out.shape[1] == 1 else np.argmax(out, axis=1)
    classes = net.classes if net.classes is not None else list(range(max(out.shape[1], 2)))
    names = [f"p_{c}" for c in classes] if out.shape[1] > 1 else [f"p_{classes[1]}"]
    writer.writerow(["label", *names])
    labels = np.asarray(classes)[index].tolist()
    writer.writerows([label, *row] for label, row in zip(labels, values.tolist()))


def _read_features(path, n_features, header):
    """The feature rows of ``--input``: a CSV (with or without a last label column, read as
    ``bpgpu train`` reads files), a ``.npy`` array, or a ``.npz`` file's ``X``."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--input {path}: no such file")
    if p.suffix == ".npy":
        return datasets.read_npy(p)
    if p.suffix == ".npz":
        return datasets.read_npz(p, labels=False).X
    return datasets.read_csv(p, header=header, n_features=n_features).X


def evaluate(args):
    from ..mlp import load

    net = load(args.model, device=args.device)
    seed = (net.split or {}).get("seed", 0)  # a generated set (spirals) as it was trained on
    data = datasets.load(args.dataset, seed=seed, task=net.task, classes=net.classes,
                         header=args.header)
    X, y = _held_out(net, data) if args.split == "held-out" else (data.X, data.y)
    y = as_labels(net, data, y)
    result = {"model": args.model, "dataset": data.name, "split": args.split,
              "device": net.device, "samples": len(X), **net.evaluate(X, y)}
    if net.task == "regress":
        result["rmse"] = rmse(net, X, y)["val_rmse"]
    if args.json:
        print(json.dumps(result))
    else:
        acc = f"  accuracy {result['accuracy']:.4f}" if "accuracy" in result else ""
        error = f"  RMSE {result['rmse']:.6g}" if "rmse" in result else ""
        part = "held-out rows" if args.split == "held-out" else "samples"
        print(f"{data.name}: {len(X)} {part} on {net.device}: "
              f"loss {result['loss']:.4f}{error}{acc}")
    return 0


def _held_out(net, data):
    """The rows ``bpgpu train`` held out of ``data`` for ``net``; refused for other data."""
    split = net.split
    if split is None:
        raise ValueError("this model records no held-out rows (it was not trained by bpgpu "
                         "train with a held-out share); use --split all")
    if (split.get("rows") != data.n_samples
            or split.get("fingerprint") != datasets.fingerprint(data.X, data.y)):
        raise ValueError(f"{data.name} is not the data set this model was trained on "
                         f"({split.get('dataset')}, {split.get('rows')} rows); give that data "
                         "set, or use --split all")
    return datasets.split(data.X, data.y, split["fraction"], seed=split["seed"])[2:]
