"""The base of :mod:`bpgpu.sklearn`'s estimators: MLPClassifier's parameters, the network,
scikit-learn's training loop (its stopping rule, ``learning_rate`` and ``alpha``) around
:func:`bpgpu.fit`, outputs under array API dispatch, and pickling. Private; only
:mod:`bpgpu.sklearn` and its modules import scikit-learn.
"""

from __future__ import annotations

import functools
import math
import numbers
import warnings

import array_api_compat
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import state as states
from ..activations import Activation
from ..backends import to_numpy
from ..mlp import MLP
from ..training import StopTraining
from ._helpers import device_spec_of, namespace_of

_NO_Y = object()

_RENAMED = {  # 0.2.0's names that have a scikit-learn twin now, or are gone
    "epochs": "is now max_iter=..., as in {twin} (fit also stops before max_iter when the "
              "training loss stops improving: tol, n_iter_no_change)",
    "lr": "is now learning_rate_init=..., as in {twin} (default 0.001)",
    "optimizer": "is now solver=... ('adam', or 'sgd' with momentum=0 for plain SGD), as in "
                 "{twin}",
    "tf32": "was removed in 0.3.0: it never changed anything (bpgpu has no TF32 path)",
}


def renamed_params(init):
    """Wrap an estimator's ``__init__`` so that 0.2.0's parameter names raise a TypeError
    naming the new one; the signature (which get_params reads) stays ``init``'s."""
    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        table = {**_RENAMED, **type(self)._renamed}
        for old in kwargs:
            if old in table:
                raise TypeError(f"{type(self).__name__}({old}=...) "
                                + table[old].format(twin=type(self)._twin))
        init(self, *args, **kwargs)

    return __init__


class BPEstimator(BaseEstimator):
    """Base of :class:`~bpgpu.sklearn.BPClassifier` and :class:`~bpgpu.sklearn.BPRegressor`."""

    _twin = "MLPClassifier"
    _renamed = {}
    _parameter_constraints = {
        **MLPClassifier._parameter_constraints,
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"}), list, tuple,
                       Activation],
        "device": [None, str],
        "dtype": [StrOptions({"float32", "float64"})],
    }

    def _set(self, params):
        for name, value in params.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

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

    def _check_solver(self):
        if self.solver == "lbfgs":
            raise ValueError(f"{type(self).__name__} has no solver='lbfgs': use solver='adam' "
                             "or solver='sgd'")

    def _activation(self, n_hidden):
        """``activation`` as MLP takes it; a list (or tuple) has one per hidden layer."""
        act = self.activation
        if isinstance(act, (list, tuple)) and len(act) != n_hidden:
            raise ValueError(f"activation lists {len(act)} activations, but hidden_layer_sizes "
                             f"has {n_hidden} layer{'s' * (n_hidden != 1)}; give one per hidden "
                             "layer, or one for all")
        return act

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral):
            sizes = [sizes]
        sizes = list(sizes)
        if not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes}")
        return [int(s) for s in sizes]

    def _seed(self):
        """The MLP seed: ``random_state`` itself when it is an int, else drawn from it."""
        rng = check_random_state(self.random_state)
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(rng.randint(np.iinfo(np.int32).max))

    def _batch_size(self, n):
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          "to be clipped", UserWarning, stacklevel=4)
        return int(np.clip(self.batch_size, 1, n))

    def _optimizer(self, batch_size):
        """(bpgpu optimizer name, its options): ``alpha`` as bpgpu's weight decay λ =
        alpha / batch_size (scikit-learn adds alpha·‖W‖²/(2·batch) to each batch's loss)."""
        options = {"weight_decay": float(self.alpha) / batch_size}
        if self.solver == "adam":
            return "adam", {**options, "beta1": float(self.beta_1), "beta2": float(self.beta_2),
                            "eps": float(self.epsilon)}
        if self.momentum == 0:
            return "sgd", options
        return "momentum", {**options, "momentum": float(self.momentum),
                            "nesterov": bool(self.nesterovs_momentum)}

    def _rate_now(self, epoch=None):
        """This epoch's learning rate: scikit-learn's, which also changes once per epoch
        (``invscaling``: η0 / (t + 1)^power_t, t the samples seen; ``adaptive``: η0, divided by 5
        on each plateau)."""
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            return float(self.learning_rate_init) / (self.t_ + 1) ** float(self.power_t)
        return self._lr

    # -- building and training the network -------------------------------------------------

    def _validate(self, X, y=_NO_Y, reset=True):
        """sklearn's validate_data, keeping float X of the net's precision where it can."""
        xp = namespace_of(X) or np
        floats = (xp.float32, xp.float64)
        kwargs = {"dtype": floats[::-1] if self.dtype == "float64" else floats}
        if y is _NO_Y:
            return validate_data(self, X, reset=reset, **kwargs)
        X, y = validate_data(self, X, y, reset=reset, multi_output=True,
                             y_numeric=self._twin != "MLPClassifier", **kwargs)
        return X, to_numpy(y)

    def _build(self, X, n_outputs, output, loss):
        """A fresh network for X (n_samples, n_features_in_) with n_outputs outputs, and fresh
        fitted attributes."""
        device = self.device
        if device is None and namespace_of(X) is not None:
            device = device_spec_of(X)  # array API dispatch: train where the data already are
        sizes = [X.shape[1], *self._hidden_sizes(), n_outputs]
        self.net_ = MLP(sizes, self._activation(len(sizes) - 2), output, loss,
                        device=device, dtype=self.dtype, seed=self._seed())
        self.device_ = self.net_.device
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        self.out_activation_ = self.net_.output.name
        self.loss_curve_, self.n_iter_, self.t_, self.loss_ = [], 0, 0, None
        self.best_loss_ = np.inf
        self.validation_scores_ = self.best_validation_score_ = None
        self._no_improvement_count = 0
        self._lr = float(self.learning_rate_init)

    def _fit_network(self, X, T, incremental, stratify=None):
        """scikit-learn's ``_fit_stochastic`` on host targets T (n, n_outputs): ``max_iter``
        epochs of bpgpu.fit (one for ``partial_fit``), its stopping rule as a callback."""
        early = bool(self.early_stopping) and not incremental
        Xv = Tv = None
        self.n_iter_ = 0  # epochs of this call, as scikit-learn counts (loss_curve_ and t_ go on)
        if not incremental:
            self._lr = float(self.learning_rate_init)  # a new optimizer, as scikit-learn's
            self.net_.optimizer_state = None
        if early:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
            X, Xv, T, Tv = train_test_split(to_numpy(X), T, random_state=self._seed(),
                                            test_size=self.validation_fraction,
                                            stratify=stratify)
            if Xv.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
        n = X.shape[0]
        batch = self._batch_size(n)
        name, options = self._optimizer(batch)
        rule = _Rule(self, n, math.ceil(n / batch), (Xv, Tv) if early else None)
        self.net_.fit(self._on_net(X), T, epochs=1 if incremental else self.max_iter,
                      batch_size=batch, lr=float(self.learning_rate_init),
                      schedule=self._rate_now if self.solver == "sgd" else None,
                      optimizer=name, shuffle=bool(self.shuffle), callbacks=[rule], **options)
        if early and rule.best is not None:
            self.net_.replace_params(rule.best)
        if not incremental and not rule.stopped and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=3)

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
        net = state.pop("net_", None)
        if net is not None:
            state["_net_state"] = {**states.capture(net), "device": net.device}
        return state

    def __setstate__(self, state):
        state = dict(state)
        saved = state.pop("_net_state", None)
        super().__setstate__(state)
        if saved is not None:
            net = states.rebuild(MLP, saved, saved["device"])
            self.net_, self.device_ = net, net.device


class _Rule:
    """scikit-learn's per-epoch bookkeeping as a bpgpu.fit callback: ``loss_`` with the alpha
    penalty, ``loss_curve_``, ``t_``, ``n_iter_``, the validation score with early stopping, and
    the stopping rule (``adaptive`` sgd divides the rate by 5 instead, until it is ≤ 1e-6)."""

    def __init__(self, est, n, n_batches, validation):
        self.est, self.n, self.n_batches, self.validation = est, n, n_batches, validation
        self.best, self.stopped = None, False

    def __call__(self, net, epoch, logs):
        est = self.est
        loss = float(logs["loss"])
        if est.alpha:  # scikit-learn's loss_: each batch adds alpha·‖W‖²/(2·batch)
            squares = sum(net.xp.sum(W * W) for W, _ in net.weights)
            loss += 0.5 * float(est.alpha) * float(net.backend.to_host(squares)) * (
                self.n_batches / self.n)
        est.n_iter_ += 1
        est.t_ += self.n
        est.loss_ = loss
        est.loss_curve_.append(loss)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        tol = float(est.tol)
        if self.validation is not None:
            score = est._validation_score(*self.validation)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            worse = score < est.best_validation_score_ + tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best = [net.xp.asarray(p, copy=True) for p in net.params]
        else:
            worse = loss > est.best_loss_ - tol
            est.best_loss_ = min(est.best_loss_, loss)
        est._no_improvement_count = est._no_improvement_count + 1 if worse else 0
        if est._no_improvement_count > est.n_iter_no_change:
            if est.solver == "sgd" and est.learning_rate == "adaptive" and est._lr > 1e-6:
                est._lr /= 5.0
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"Setting learning rate to {est._lr:f}")
                return
            what = ("Validation score" if self.validation is not None else "Training loss")
            if est.verbose:
                print(f"{what} did not improve more than tol={tol:f} for "
                      f"{est.n_iter_no_change} consecutive epochs. Stopping.")
            self.stopped = True
            raise StopTraining(what)
