"""Training: the step as a pure function, the one epoch loop, :func:`fit` and :func:`evaluate`.

One step is ``(params, optimizer state, X, T) → (params', state', outputs)``. The reference never
writes into an array; on NumPy and PyTorch the same call runs the rules' in-place fast paths,
and on a compiling device (JAX) it is compiled once per shape — one call per step, or a whole epoch
(the shuffled batches taken on the device, the ragged last batch included) as one call.

Nothing waits for the device inside an epoch: the loss and the count of correct answers accumulate
on the device and are read once, when the epoch ends (data-parallel training over MPI on host
buffers is the exception: each step's all-reduce goes through host memory).

The wing's rooms: :mod:`~bpgpu.training.step` (the :class:`Trainer` and its pure step),
:mod:`~bpgpu.training.epoch` (the epoch loop, step by step or compiled), :mod:`~bpgpu.training.fit`
(:func:`fit`), :mod:`~bpgpu.training.callbacks` (:class:`EarlyStopping`, :class:`StopTraining`),
:mod:`~bpgpu.training.evaluate` (scoring) and :mod:`~bpgpu.training.progress` (the progress bar).
"""

from .callbacks import EarlyStopping, StopTraining
from .epoch import EpochRunner, StepHook, epoch_function
from .evaluate import chunk_totals, count_correct, evaluate, evaluate_arrays, is_classification
from .fit import fit, learn_transforms, warn_if_saturated
from .step import MODES, Trainer, resolve_mode

__all__ = ["MODES", "EarlyStopping", "EpochRunner", "StepHook", "StopTraining", "Trainer",
           "chunk_totals", "count_correct",
           "epoch_function", "evaluate", "evaluate_arrays", "fit", "is_classification",
           "learn_transforms", "resolve_mode", "warn_if_saturated"]
