"""The base of :mod:`bpgpu.sklearn`'s estimators: parameters, the network, training, outputs under
array API dispatch, and pickling. Private; only the ``_sklearn*`` modules and :mod:`bpgpu.sklearn`
import scikit-learn.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings

import array_api_compat
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import losses
from ._host import is_whole
from ._sklearn_helpers import (
    device_spec_of,
    epoch_printer,
    namespace_of,
    one_epoch,
)
from .backends import to_numpy
from .errors import DeviceUnavailableError
from .io import model_config
from .mlp import MLP
from .optim import OPTIMIZERS
from .progress import is_tty
from .training import Trainer

_NO_Y = object()


class BPEstimator(BaseEstimator):
    """Base of :class:`~bpgpu.sklearn.BPClassifier` and :class:`~bpgpu.sklearn.BPRegressor`."""

    _default_loss = "sse"
    _allowed_losses = ("sse", "mse")

    def __init__(self, hidden_layer_sizes=(32,), activation="logistic", loss=None,
                 optimizer="adam", lr=0.01, epochs=30, batch_size=32, device=None,
                 dtype="float32", random_state=None, tf32=False, verbose=False):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.random_state = random_state
        self.tf32 = tf32
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    # -- fitted attributes scikit-learn users expect, read from the live network ---------

    @property
    def coefs_(self):
        """Weight matrices as NumPy copies; ``coefs_[i]`` has shape (n_in, n_out) of layer i."""
        net = self._live_net()
        return [np.array(net.backend.to_host(W)) for W, _ in net.weights]

    @property
    def intercepts_(self):
        """Bias vectors as NumPy copies; ``intercepts_[i]`` has shape (n_out,) of layer i."""
        net = self._live_net()
        return [np.array(net.backend.to_host(b)) for _, b in net.weights]

    def _live_net(self):
        if "net_" not in self.__dict__:  # AttributeError keeps hasattr(est, "coefs_") False
            raise AttributeError(f"this {type(self).__name__} is not fitted yet; call fit first")
        return self.net_

    # -- parameters, checked when fit runs (never in __init__) ---------------------------

    def _loss_name(self):
        name = self._default_loss if self.loss is None else losses.get(self.loss).name
        if name not in self._allowed_losses:
            raise ValueError(f"{type(self).__name__} supports loss in {self._allowed_losses}, "
                             f"got {self.loss!r}")
        return name

    def _schedule(self):
        """(epochs, batch_size, lr), checked, as the Python numbers bpgpu.fit accepts."""
        epochs, batch, lr = self.epochs, self.batch_size, self.lr
        if not is_whole(epochs) or epochs < 0:
            raise ValueError(f"epochs must be a whole number ≥ 0, got {epochs!r}")
        if batch not in (None, "full") and (not is_whole(batch) or batch < 1):
            raise ValueError(f"batch_size must be a whole number ≥ 1 or 'full', got {batch!r}")
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (
                math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")
        return int(epochs), batch if batch in (None, "full") else int(batch), float(lr)

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1
               for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be whole numbers ≥ 1, such as (32,) or "
                             f"(64, 32); got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _seed(self):
        """The MLP seed: ``random_state`` itself when it is an int, else drawn from it."""
        rng = check_random_state(self.random_state)  # rejects bad ints and other types
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(rng.randint(np.iinfo(np.int32).max))

    # -- building and training the network -------------------------------------------------

    def _validate(self, X, y=_NO_Y, reset=True):
        """sklearn's validate_data, keeping float X of the net's precision where it can."""
        xp = namespace_of(X) or np
        floats = (xp.float32, xp.float64)
        kwargs = {"dtype": floats[::-1] if self.dtype == "float64" else floats}
        if y is _NO_Y:
            return validate_data(self, X, reset=reset, **kwargs)
        X, y = validate_data(self, X, y, reset=reset, multi_output=True,
                             y_numeric=self._default_loss != "cross_entropy", **kwargs)
        return X, to_numpy(y)

    def _build(self, X, n_outputs, output):
        """A fresh network for X (n_samples, n_features_in_) with n_outputs outputs."""
        if not isinstance(self.tf32, (bool, np.bool_)):
            raise ValueError(f"tf32 must be True or False, got {self.tf32!r}")
        self._schedule()
        device = self.device
        if device is None and namespace_of(X) is not None:
            device = device_spec_of(X)  # array API dispatch: train where the data already are
        sizes = [X.shape[1], *self._hidden_sizes(), n_outputs]
        self.net_ = MLP(sizes, self.activation, output, self._loss_name(), device=device,
                        dtype=self.dtype, seed=self._seed())
        self.device_ = self.net_.device
        self.n_outputs_ = n_outputs
        self.out_activation_ = self.net_.output.name
        self.loss_curve_, self.n_iter_, self.loss_ = [], 0, None
        self._trainer = None
        if self.tf32 and self.net_.backend.is_gpu:
            warnings.warn("tf32=True has no effect yet: bpgpu has no TF32 matmul path, so the "
                          "GPU computes in full float32", UserWarning, stacklevel=3)

    def _train(self, X, T):
        """``epochs`` epochs of bpgpu.fit on host targets T (n, n_outputs)."""
        epochs, batch_size, lr = self._schedule()
        lines = self.verbose and not is_tty(sys.stderr)  # where no progress bar can show
        history = self.net_.fit(self._on_net(X), T, epochs=epochs, batch_size=batch_size, lr=lr,
                                optimizer=self.optimizer, shuffle=True, verbose=bool(self.verbose),
                                callbacks=[epoch_printer(epochs)] if lines else ())
        self.loss_curve_ = [float(v) for v in history["loss"]]
        self.n_iter_ = len(self.loss_curve_)
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None

    def _train_one_epoch(self, X, T):
        """One epoch for partial_fit, keeping the optimizer state from call to call."""
        _, batch_size, lr = self._schedule()
        net = self.net_
        if self._trainer is None or self._trainer.opt.name != self.optimizer:
            self._trainer = Trainer(net, self.optimizer, lr=lr)
        self._trainer.opt.lr = lr
        with net.backend.context():
            loss = one_epoch(self._trainer, net.backend.asarray(self._on_net(X), net.dtype),
                          net.backend.asarray(T, net.dtype),
                          None if batch_size in (None, "full") else batch_size)
        self.loss_curve_.append(loss)
        self.n_iter_ += 1
        self.loss_ = loss
        if self.verbose:
            print(f"partial_fit epoch {self.n_iter_}  loss {loss:.4f}", file=sys.stderr)

    def _on_net(self, X):
        """X, moved first when it is the net's library but on another device (the core keeps
        such arrays where they are)."""
        net = self.net_
        if not net.backend.owns(X):
            if net.backend.library == "torch" and isinstance(X, np.ndarray) and not (
                    X.flags.writeable):
                return np.array(X)  # torch.as_tensor warns on read-only NumPy arrays
            return X  # bpgpu copies it to the device through the host
        if array_api_compat.device(X) == array_api_compat.device(net.weights[0][0]):
            return X
        if net.backend.library == "torch":
            return net.backend.asarray(X)
        return to_numpy(X)

    def _outputs(self, X):
        """The network's outputs for X as an array of X's library, device and float dtype (NumPy
        without array API dispatch), with that (xp, device)."""
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        net = self.net_
        out = net.predict(self._on_net(X))
        xp = namespace_of(X)
        if xp is None:
            return net.backend.to_host(out).astype(X.dtype, copy=False), (np, None)
        dev = array_api_compat.device(X)
        if not (net.backend.owns(out) and array_api_compat.device(out) == dev):
            out = xp.asarray(net.backend.to_host(out), device=dev)
        return xp.astype(out, X.dtype, copy=False), (xp, dev)

    # -- pickling: host weights and settings; rebuilt on the device when unpickled -------

    def __getstate__(self):
        state = dict(super().__getstate__())
        net = state.pop("net_", None)
        trainer = state.pop("_trainer", None)
        if net is not None:
            host = net.backend.to_host
            state["_net_blob"] = {
                "config": model_config(net), "fused": net.fused, "device": net.device,
                "weights": [(np.array(host(W)), None if b is None else np.array(host(b)))
                            for W, b in net.weights],
                "shuffle_state": net.shuffle_rng.bit_generator.state,
                "optimizer": None if trainer is None else (trainer.opt, {
                    k: [np.array(host(a)) for a in v] if isinstance(v, list) else v
                    for k, v in trainer.state.items()}),
            }
        return state

    def __setstate__(self, state):
        state = dict(state)
        blob = state.pop("_net_blob", None)
        super().__setstate__(state)
        if blob is None:
            return
        cfg = dict(blob["config"])
        args = (cfg.pop("sizes"), cfg.pop("activation"), cfg.pop("output"), cfg.pop("loss"))
        try:
            net = MLP(*args, device=blob["device"], fused=blob["fused"], **cfg)
        except DeviceUnavailableError as exc:
            warnings.warn(f"{type(self).__name__} was fitted on device {blob['device']!r}, which "
                          f"is not usable here ({exc}); it is rebuilt on 'cpu'", UserWarning,
                          stacklevel=2)
            net = MLP(*args, device="cpu", fused=blob["fused"], **cfg)
        net.set_weights(blob["weights"])
        net.shuffle_rng.bit_generator.state = blob["shuffle_state"]
        self.net_, self.device_, self._trainer = net, net.device, None
        if blob["optimizer"] is not None:
            opt, saved = blob["optimizer"]
            self._trainer = Trainer(net, opt)
            self._trainer.state = {
                k: [net.backend.asarray(a, net.dtype) for a in v] if isinstance(v, list) else v
                for k, v in saved.items()}
