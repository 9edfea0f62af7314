"""The base of :mod:`bpgpu.sklearn`'s estimators: parameters, the network, training, outputs under
array API dispatch, and pickling. Private; only :mod:`bpgpu.sklearn` and its modules
import scikit-learn.
"""

from __future__ import annotations

import numbers
import sys
import warnings

import array_api_compat
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import defaults, losses, optim
from .. import state as states
from ..backends import to_numpy
from ..mlp import MLP
from ..training import Trainer, progress
from ..validation import check_schedule, check_sizes
from ._helpers import (
    device_spec_of,
    epoch_printer,
    namespace_of,
    one_epoch,
)

_NO_Y = object()


class BPEstimator(BaseEstimator):
    """Base of :class:`~bpgpu.sklearn.BPClassifier` and :class:`~bpgpu.sklearn.BPRegressor`."""

    _default_loss = "sse"
    _allowed_losses = ("sse", "mse")

    def __init__(self, hidden_layer_sizes=defaults.HIDDEN, activation=defaults.ACTIVATION,
                 loss=None, optimizer=defaults.OPTIMIZER, lr=None, epochs=defaults.EPOCHS,
                 batch_size=defaults.BATCH_SIZE, device=None, dtype="float32", random_state=None,
                 tf32=False, verbose=False):
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

    def _activation(self, n_hidden):
        """``activation`` as MLP takes it; a list (or tuple) has one per hidden layer."""
        act = self.activation
        if isinstance(act, (list, tuple)) and len(act) != n_hidden:
            raise ValueError(f"activation lists {len(act)} activations, but hidden_layer_sizes "
                             f"has {n_hidden} layer{'s' * (n_hidden != 1)}; give one per hidden "
                             "layer, or one for all")
        return act

    def _schedule(self):
        """(epochs, batch_size, lr), checked, as the Python numbers bpgpu.fit accepts; ``lr=None``
        is the optimizer's default (:mod:`bpgpu.defaults`)."""
        epochs, batch = check_schedule(self.epochs, self.batch_size)
        if not isinstance(self.optimizer, str) or self.optimizer not in optim.OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(optim.OPTIMIZERS)}, "
                             f"got {self.optimizer!r}")
        return epochs, batch, optim.get(self.optimizer, lr=self.lr).lr

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = [sizes]
        return check_sizes(sizes, "hidden_layer_sizes", hidden=True)

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
        self.net_ = MLP(sizes, self._activation(len(sizes) - 2), output, self._loss_name(),
                        device=device, dtype=self.dtype, seed=self._seed())
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
        lines = self.verbose and not progress.shown()  # where no progress bar can show
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
            self._trainer.carry_on()  # after fit: its optimizer state, when the settings match
        self._trainer.opt.lr = lr
        with net.backend.context():
            loss = one_epoch(self._trainer, net.backend.asarray(self._on_net(X), net.dtype),
                             net.backend.asarray(T, net.dtype), batch_size, self.n_iter_)
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

    # -- pickling: the network's state (host arrays, settings, device), rebuilt when unpickled -

    def __getstate__(self):
        state = dict(super().__getstate__())
        net, trainer = state.pop("net_", None), state.pop("_trainer", None)
        if net is not None:
            state["_net_state"] = {**states.capture(net, trainer), "device": net.device}
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_net_state", None)
        super().__setstate__(state)
        if saved is None:
            return
        net = states.rebuild(MLP, saved, saved["device"])
        self.net_, self.device_, self._trainer = net, net.device, None
        if "optimizer" in saved:
            self._trainer = Trainer(net, states.optimizer_of(saved))
            states.restore_optimizer(self._trainer, saved)
