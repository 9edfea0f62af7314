"""The ``bpgpu`` command: ``devices``, ``train``, ``predict``, ``evaluate``, ``bench``, ``lecture``.

A user mistake (unknown device, unusable GPU, bad layer spec, missing file, shape mismatch) prints
one line on standard error and exits with status 2; a diverged training run exits with 3. Pass
``--debug`` for the full traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .. import __version__, defaults
from ..errors import BpgpuError, TrainingDiverged

EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors in one line, as bpgpu's other errors are, pointing to the
    command's --help instead of printing the whole usage block."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser():
    from .. import datasets

    p = _Parser(prog="bpgpu", description="Backpropagation on any device.")
    p.add_argument("--version", action="version", version=f"bpgpu {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    common = _Parser(add_help=False)
    common.add_argument("--device", default=None,
                        help="cpu, cuda[:N], gpu, torch[:cpu|:cuda[:N]], "
                             "jax[:cpu|:cuda[:N]|:tpu[:N]], strict or auto "
                             "(default: $BPGPU_DEVICE or auto)")
    common.add_argument("--debug", action="store_true", help="show tracebacks")

    sub.add_parser("devices", parents=[common], help="list every backend and whether it runs here")

    t = sub.add_parser("train", parents=[common], help="train a network and report",
                       description="Train a network. With no options: 64-32-10 on digits.")
    t.add_argument("--dataset", default="digits", help=" | ".join(datasets.names()))
    t.add_argument("--task", default="auto", choices=datasets.TASKS,
                   help="what a file's last column holds: classify (labels), regress (numbers) "
                        "or auto (default: text, or at most "
                        f"{datasets.MAX_AUTO_CLASSES} distinct whole numbers each in two rows "
                        "or more on average, are classes; anything else is regression)")
    _header_option(t)
    t.add_argument("--no-standardize", action="store_true",
                   help="feed the features as they are; by default each is standardised with "
                        "the training rows' mean and deviation, kept in the model (not for the "
                        "lecture's cafeteria and xor, nor with --trace)")
    t.add_argument("--layers", help="widths, input first, e.g. 64,32,10 (default: "
                                    "features,32,outputs)")
    t.add_argument("--activation", help="hidden activation: identity, logistic, tanh, relu, "
                                        "for every hidden layer, or one per hidden layer, "
                                        f"e.g. tanh,relu (default {defaults.ACTIVATION})")
    t.add_argument("--output", help="output activation (default: follows the loss)")
    t.add_argument("--loss", help="cross_entropy, sse or mse (default: cross_entropy for "
                                  "classes, sse for targets)")
    t.add_argument("--optimizer", choices=["sgd", "momentum", "adam", "adamw"],
                   help=f"default {defaults.OPTIMIZER}; with --trace sgd (the lecture's delta "
                        "rule)")
    t.add_argument("--lr", type=float, default=None,
                   help="learning rate η (default: " + ", ".join(
                       f"{v:g} for {k}" for k, v in defaults.LR.items()) + ")")
    t.add_argument("--schedule", metavar="SPEC",
                   help="learning-rate schedule from --lr: cosine, cosine:WARMUP, "
                        "step:SIZE[:GAMMA], exp:GAMMA, invscaling[:POWER], plateau[:PATIENCE] "
                        "(default: constant)")
    t.add_argument("--weight-decay", type=float, default=None, metavar="λ",
                   help="L2 on the weights, not the biases (∂E/∂W += λW); with adamw, decoupled "
                        "decay (default 0, adamw 0.01)")
    t.add_argument("--nesterov", action="store_true",
                   help="Nesterov momentum (with --optimizer momentum)")
    t.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop when the held-out loss (see --val-fraction) has not improved for "
                        "PATIENCE epochs, and keep the best epoch's weights")
    t.add_argument("--epochs", type=int, default=defaults.EPOCHS)
    t.add_argument("--batch-size", default=str(defaults.BATCH_SIZE),
                   help="N (mini-batch), full (batch) or 1 (online)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    t.add_argument("--val-fraction", type=float, default=0.2,
                   help="share held out for validation and --early-stopping (default 0.2)")
    t.add_argument("--no-bias", action="store_true", help="layers without bias")
    t.add_argument("--save", metavar="PATH",
                   help="write the trained model as safetensors (any suffix; .safetensors is the "
                        "usual one)")
    t.add_argument("--checkpoint", metavar="PATH",
                   help="write weights, optimizer state, epoch and RNG state here")
    t.add_argument("--checkpoint-every", type=int, default=1, metavar="N",
                   help="epochs between checkpoints (default 1)")
    t.add_argument("--resume", metavar="PATH", help="continue from a checkpoint; --epochs is "
                                                    "the total to reach")
    t.add_argument("--compile", default="auto", choices=["auto", "none", "step", "epoch"],
                   help="none: operation by operation; step / epoch: one compiled call per step "
                        "/ per epoch, on devices that compile (jax); auto (default): epoch where "
                        "the device compiles, else none")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI ranks: mpiexec -n N bpgpu train --distributed")
    t.add_argument("--plot", metavar="PATH", help="loss/accuracy curves as PNG (bpgpu[plot])")
    t.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    t.add_argument("--quiet", action="store_true", help="no progress bar, no summary")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it shows only on a terminal anyway)")
    t.add_argument("--check-gradients", action="store_true",
                   help="before training, compare the backward pass with float64 finite "
                        "differences on 32 examples and print the largest relative error per "
                        "layer")
    t.add_argument("--trace", action="store_true",
                   help="print every step's δ, ∂E/∂w and Δw (small networks only)")

    pr = sub.add_parser("predict", parents=[common], help="predict with a saved model")
    pr.add_argument("--model", required=True)
    pr.add_argument("--input", required=True,
                    help="features as CSV (a last label column is allowed and ignored), .npy "
                         "or .npz (array X)")
    _header_option(pr)
    pr.add_argument("--out", metavar="PATH", help="write .csv or .npy (default: CSV on stdout)")

    ev = sub.add_parser("evaluate", parents=[common], help="loss and accuracy of a saved model")
    ev.add_argument("--model", required=True)
    ev.add_argument("--dataset", required=True, help=" | ".join(datasets.names()))
    ev.add_argument("--split", default="all", choices=["all", "held-out"],
                    help="all rows (default), or only the held-out rows of the data set the "
                         "model was trained on, chosen as bpgpu train chose them")
    _header_option(ev)
    ev.add_argument("--json", action="store_true")

    sub.add_parser("bench", add_help=False, help="CPU vs GPU throughput (bpgpu bench --help)")

    lec = sub.add_parser("lecture", parents=[common], help="the seed lecture's claims, measured "
                         "and drawn", description="Train what each claim of the lecture needs, "
                         "print the measurements, and write one figure per claim and "
                         "lecture.json (needs bpgpu[plot]).")
    lec.add_argument("--out", default="lecture", metavar="DIR",
                     help="folder for the figures and lecture.json (default ./lecture)")
    return p


def _header_option(parser):
    parser.add_argument("--header", default="auto", choices=["auto", "yes", "no"],
                        help="is a CSV file's first row a header? auto (default): when none of "
                             "its cells is a number, or it is exactly 0,1,...,k-1 (pandas)")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from ..benchmarks.bench import main as bench_main

        return bench_main(argv[1:])
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["train", *argv]  # the main job is the default command
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # one line per warning, as errors are shown
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args):
    try:
        return _dispatch(args)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stdout must stay valid until exit
        return 0
    except TrainingDiverged as exc:
        if args.debug:
            raise
        _fail(f"{exc}; try --lr {exc.lr / 10:g}" if exc.lr else str(exc))
        return EXIT_DIVERGED
    except (BpgpuError, ValueError, TypeError, OSError, MemoryError) as exc:
        if args.debug:
            raise
        _fail(_one_line(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _fail("interrupted: --save was not written (checkpoints written so far are kept)")
        return EXIT_INTERRUPTED


def _one_line(exc):
    """An error as one line; a host allocation that failed says so, and what to change."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, MemoryError):
        fix = "" if ";" in text else "; use smaller layers, a smaller --batch-size or fewer rows"
        return f"out of memory: {text}{fix}"
    return text


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if _mpi_rank() == 0:
        print(f"bpgpu: warning: {message}", file=sys.stderr)


def _fail(message):
    if _mpi_rank() == 0:  # under mpiexec every rank fails alike; one line is enough
        print(f"bpgpu: error: {message}", file=sys.stderr)


def _mpi_rank():
    mpi = sys.modules.get("mpi4py.MPI")
    return mpi.COMM_WORLD.Get_rank() if mpi is not None else 0


def _dispatch(args):
    if args.command == "lecture":  # its command lives with its experiments and figures
        from ..lecture import command

        return command(args)
    if args.command == "train":
        from .train import train

        return train(args)
    from . import commands

    return getattr(commands, args.command)(args)


if __name__ == "__main__":
    sys.exit(main())
