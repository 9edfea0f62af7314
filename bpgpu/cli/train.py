"""``bpgpu train``: read the data, decide the task and the scaling, build the network, train it,
save it and report."""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from .. import datasets, defaults, schedules
from ..registry import get_backend
from ..training import EarlyStopping, learn_transforms
from ..validation import check_lr, check_schedule, check_seed, check_sizes


def train(args):
    from ..io.files import check_writable
    from .report import check_plot

    check_seed(args.seed, "--seed")
    options = _optimizer_options(args)  # settings checked before any data is read
    schedules.get(args.schedule, epochs=max(args.epochs, 1))
    if args.plot:
        check_plot(args.plot)
    for path in (args.save, args.plot):  # fail now, not after the training they would record
        if path:
            check_writable(path)
    comm = _mpi_world() if args.distributed else None
    backend = _rank_backend(args.device, comm)
    if comm is not None and comm.Get_rank() != 0:
        args.quiet, args.json, args.save, args.plot = True, False, None, None
    data = datasets.load(args.dataset, seed=args.seed, task=args.task, header=args.header)
    args.optimizer = args.optimizer or ("sgd" if args.trace else defaults.OPTIMIZER)
    net = _build_net(args, data, backend)
    Xt, yt, Xv, yv = (as_labels(net, data, a)
                      for a in _split(data, args.val_fraction, args.seed))
    batch_size = _batch_size(args.batch_size, args.epochs)
    lr = check_lr(args.lr, "--lr") or defaults.LR[args.optimizer]
    if len(Xv):
        net.split = {"dataset": data.name, "rows": data.n_samples, "fraction": args.val_fraction,
                     "seed": args.seed, "fingerprint": datasets.fingerprint(data.X, data.y)}
    if _standardizes(args, data):
        learn_transforms(net, Xt, yt)
    if not (args.quiet or args.json):
        print("\n".join(_plan_lines(net, data, len(Xt))), flush=True)
    if args.check_gradients and (comm is None or comm.Get_rank() == 0):
        _check_gradients(args, net, Xt, yt)
    if args.trace:
        from ..lecture.trace import trace_fit

        if args.compile == "epoch":
            raise ValueError("--trace shows every step, so it runs step by step: leave out "
                             "--compile epoch")
        trace_fit(net, Xt, yt, epochs=args.epochs, batch_size=batch_size, lr=lr,
                  optimizer=args.optimizer, shuffle=True, out=sys.stdout)
        return _finish(args, net, None)
    run_epochs = []
    t0 = time.perf_counter()
    stopping = _stopping(args, len(Xv))
    callbacks = [lambda net, epoch, logs: run_epochs.append(epoch), *stopping]
    hist = net.fit(Xt, yt, epochs=args.epochs, batch_size=batch_size, lr=lr,
                   schedule=args.schedule, optimizer=args.optimizer,
                   validation_data=(Xv, yv) if len(Xv) else None,
                   verbose=sys.stdout.isatty() and not (args.quiet or args.json
                                                        or args.no_progress),
                   checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every,
                   resume=args.resume, comm=comm, compile=args.compile, callbacks=callbacks,
                   **options)
    elapsed = time.perf_counter() - t0
    extra = rmse(net, Xv, yv) if len(Xv) and net.task == "regress" else {}
    if stopping and stopping[0].best_epoch is not None:  # the weights are the best epoch's
        extra.update(best_epoch=stopping[0].best_epoch, stopped_epoch=stopping[0].stopped_epoch)
    _report(args, net, data, hist, comm, lr, batch_size, len(Xt), len(run_epochs), elapsed,
            extra)
    return 0


def _scores_of(hist, best_epoch):
    """The history's scores of the epoch whose weights the network ends with: the last, or
    the best one that early stopping restored; and the last epoch's learning rate."""
    row = -1 if best_epoch is None else best_epoch - 1
    scores = {k: v[row] for k, v in hist.items() if k not in ("time", "lr") and v}
    if hist.get("lr"):
        scores["final_lr"] = hist["lr"][-1]
    return scores


def _optimizer_options(args):
    """The optimizer settings given on the command line (the optimizer's defaults otherwise)."""
    options = {}
    if args.weight_decay is not None:
        options["weight_decay"] = args.weight_decay
    if args.nesterov:
        if args.optimizer != "momentum":
            raise ValueError("--nesterov is Nesterov momentum: use it with --optimizer momentum")
        options["nesterov"] = True
    return options


def _stopping(args, n_held_out):
    """``--early-stopping``'s callback: on the held-out loss, or the training loss where the
    data set is too small to hold rows out."""
    if args.early_stopping is None:
        return []
    monitor = "val_loss" if n_held_out else "loss"
    return [EarlyStopping(monitor=monitor, patience=args.early_stopping, restore_best=True)]


def rmse(net, X, T):
    """The held-out root-mean-square error in the targets' own units (the loss of a network with
    a target transform is on the standardised scale)."""
    error = net.predict(X, host=True) - np.asarray(T, dtype=np.float64).reshape(len(X), -1)
    return {"val_rmse": float(np.sqrt(np.mean(error ** 2)))}


def as_labels(net, data, a):
    """A classification data set's class indices as its labels, for a network with ``classes``
    (a model of bpgpu 0.2.0 has none, and takes the indices); anything else as it is."""
    if net.classes is None or data.n_classes is None or a.ndim != 1:
        return a
    return np.asarray(data.classes)[a]


def _standardizes(args, data):
    """Standardise the features unless told not to, or where raw values are the point (the
    lecture's own sets, and --trace, whose every number is read)."""
    return not (args.no_standardize or args.trace) and data.hints.get("standardize", True)


def _plan_lines(net, data, n_train):
    """What is about to be trained on what, before the training starts."""
    why = data.hints.get("task_reason")
    task = net.task + (f": {why}" if why else "")
    what = "features and targets" if net.target_transform is not None else "features"
    scaled = (f"{what} standardised with the mean and deviation of the {n_train:,} training "
              "rows, kept in the model (--no-standardize: as they are)"
              if net.input_transform is not None else "as they are")
    return [f"read        {data.description}", f"task        {task}", f"scaling     {scaled}"]


def _build_net(args, data, backend):
    from ..mlp import MLP

    cfg = _model_config(args, data)
    net = MLP(cfg["layers"], cfg["activation"], cfg["output"], cfg["loss"], device=backend,
              dtype=args.dtype, seed=args.seed, bias=cfg["bias"],
              classes=data.classes if data.n_classes is not None else None)
    if "init_weights" in cfg:
        net.set_weights([(np.asarray(W, dtype=float), None) for W in cfg["init_weights"]])
    return net


def _check_gradients(args, net, X, y, rows=32):
    """Print the largest relative error per layer of the backward pass on ``rows`` examples."""
    from ..gradcheck import check_gradients

    errors = check_gradients(net, X[:rows], y[:rows])
    args.gradient_check = errors
    if not args.json:
        print(f"gradient check (float64 central differences, {min(rows, len(X))} examples): "
              "largest relative error per layer " + ", ".join(f"{e:.1e}" for e in errors)
              + ("  ok (< 1e-6)" if max(errors) < 1e-6 else "  LARGE: check the derivatives"))


def _report(args, net, data, hist, comm, lr, batch_size, n_train, epochs_run, elapsed, extra):
    """Save, plot, then print the summary (JSON or lines)."""
    from .report import plot_history, summary_lines

    summary = {"device": net.device, "dataset": data.name, "layers": net.sizes,
               "optimizer": args.optimizer, "lr": lr,
               "batch_size": "full" if batch_size == "full" else batch_size,
               "epochs": len(hist.get("loss", [])), "epochs_this_run": epochs_run,
               "resumed_from": len(hist.get("loss", [])) - epochs_run, "seconds": elapsed,
               "samples_per_s": n_train * epochs_run / elapsed if elapsed > 0 else None,
               "task": net.task, "standardized": net.input_transform is not None,
               "standardized_targets": net.target_transform is not None,
               **_scores_of(hist, extra.get("best_epoch")), **extra}
    if getattr(args, "gradient_check", None) is not None:
        summary["gradient_check"] = args.gradient_check
    if comm is not None:
        from ..distributed import DataParallel

        summary["ranks"] = comm.Get_size()
        summary["allreduce"] = DataParallel.path_for(net.backend)
    _finish(args, net, summary)  # the model first: nothing optional can lose it
    if args.plot and hist.get("loss"):
        plot_history(hist, args.plot, title=f"{data.name} on {net.device}")
    if args.json:
        print(json.dumps(summary))
    elif not args.quiet:
        print("\n".join(summary_lines(summary, args)))


def _mpi_world():
    try:
        from mpi4py import MPI
    except ImportError:
        raise ValueError("--distributed needs mpi4py and an MPI library: "
                         "pip install 'bpgpu[mpi]'") from None
    return MPI.COMM_WORLD


_GPU_PREFIX = {"cupy": "cuda", "torch": "torch:cuda", "jax": "jax:cuda"}


def _rank_backend(spec, comm):
    """The device for this process: under MPI, a GPU spec without an index (``cuda``, ``gpu``,
    ``torch``, ``torch:cuda``, ``jax``, ``jax:cuda``, ``auto``) means this rank's GPU among those
    it sees (:func:`bpgpu.distributed.rank_gpu`); a spec with an index is taken as is."""
    backend = get_backend(spec)
    if comm is None or not backend.is_gpu or _has_index(spec or ""):
        return backend
    from ..distributed import rank_gpu

    return get_backend(rank_gpu(comm, _GPU_PREFIX[backend.library]))


def _has_index(spec):
    return spec.strip().rsplit(":", 1)[-1].isdigit()


def _finish(args, net, summary):
    if args.save:
        net.save(args.save)
        if summary is not None:
            summary["saved"] = args.save
    return 0


def _model_config(args, data):
    hints = data.hints
    n_in, n_out = data.n_features, data.n_outputs
    layers = _layers(args.layers, hints.get("layers") or [n_in, *defaults.HIDDEN, n_out], data)
    cfg = {"layers": layers,
           "activation": (_activation(args.activation, layers) if args.activation
                          else hints.get("activation", defaults.ACTIVATION)),
           "loss": args.loss or hints.get("loss") or
           ("cross_entropy" if data.n_classes is not None else "sse"),
           "output": args.output or hints.get("output"),
           "bias": not args.no_bias and hints.get("bias", True)}
    init = hints.get("init_weights")
    if init is not None and layers == hints.get("layers") and not cfg["bias"]:
        cfg["init_weights"] = init
    return cfg


def _layers(text, default, data):
    if text is None:
        layers = list(default)
    else:
        try:
            layers = [int(s) for s in text.replace(" ", "").split(",") if s]
        except ValueError:
            raise ValueError(f"--layers {text!r} is not a list of widths such as 64,32,10") \
                from None
    layers = check_sizes(layers, "--layers")
    if layers[0] != data.n_features:
        raise ValueError(f"--layers starts with {layers[0]} but {data.name} has "
                         f"{data.n_features} features per example")
    binary = data.n_classes == 2 and layers[-1] == 1  # one logistic unit for two classes
    if layers[-1] != data.n_outputs and not binary:
        raise ValueError(f"--layers ends with {layers[-1]} but {data.name} has "
                         f"{data.n_outputs} outputs")
    return layers


def _activation(text, layers):
    """``--activation``: one name for every hidden layer, or comma-separated names, one each."""
    names = [s.strip() for s in text.split(",")]
    if len(names) == 1:
        return names[0]
    n_hidden = len(layers) - 2
    if len(names) != n_hidden:
        raise ValueError(f"--activation names {len(names)} activations, but layers "
                         f"{','.join(map(str, layers))} have {n_hidden} hidden "
                         f"layer{'s' * (n_hidden != 1)}; give one for all, or one per hidden layer")
    return names


def _batch_size(text, epochs):
    """``--batch-size`` as fit takes it (an int or ``"full"``), checked with ``--epochs``."""
    try:
        size = "full" if text == "full" else int(text)
    except ValueError:
        size = text
    batch = check_schedule(epochs, size, ("--epochs", "--batch-size"))[1]
    return "full" if batch is None else batch


MIN_SAMPLES_FOR_HOLDOUT = 20


def _split(data, fraction, seed):
    if not 0 <= fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {fraction}")
    if data.n_samples < MIN_SAMPLES_FOR_HOLDOUT or round(fraction * data.n_samples) < 1:
        # A handful of examples (xor, cafeteria) is all training data, kept in file order.
        return data.X, data.y, data.X[:0], data.y[:0]
    return datasets.split(data.X, data.y, fraction, seed=seed)
