"""scikit-learn estimators around :class:`bpgpu.MLP`: :class:`BPClassifier`, :class:`BPRegressor`.

Needs scikit-learn ≥ 1.6, an optional dependency: the rest of bpgpu never imports scikit-learn.
They take every constructor parameter of scikit-learn's ``MLPClassifier`` / ``MLPRegressor``
under the same name, with the same default and meaning, so a script swaps the class name only:

>>> from bpgpu.sklearn import BPClassifier
>>> clf = BPClassifier(alpha=1e-4, early_stopping=True, random_state=0, device="cpu")
>>> clf.fit(X, y).score(X_test, y_test)                              # doctest: +SKIP

Parameters as scikit-learn's (see its documentation), trained by :func:`bpgpu.fit`:

- ``hidden_layer_sizes=(100,)``, ``activation="relu"`` (also a list, one per hidden layer, or a
  :class:`bpgpu.activations.Activation`).
- ``solver="adam"`` is bpgpu's ``adam`` with ``beta_1``, ``beta_2``, ``epsilon``;
  ``solver="sgd"`` is bpgpu's ``momentum`` with ``momentum`` and ``nesterov=nesterovs_momentum``
  (plain ``sgd`` when ``momentum=0``). ``"lbfgs"`` is a ValueError; ``max_fun`` is accepted and
  unused (it is for lbfgs only).
- ``learning_rate_init=0.001``; with sgd, ``learning_rate``: ``"constant"``, ``"invscaling"``
  (η = η0 / (t + 1)^power_t with t the samples seen, set once per epoch as in scikit-learn,
  whose optimizer updates it at each epoch's end: epoch e, from 0, runs at η0 / (e·n + 1)^power_t
  for n training rows), ``"adaptive"`` (the rate is divided by 5 where the stopping rule would
  stop; training stops once it is ≤ 1e-6).
- ``alpha=1e-4``: scikit-learn adds alpha·‖W‖²/(2·batch) to each batch's loss, so this is bpgpu's
  ``weight_decay`` = alpha / batch_size (weights, not biases); ``loss_`` includes the penalty.
- ``batch_size="auto"`` (min(200, n)), ``max_iter=200`` (epochs), ``shuffle=True``.
- The stopping rule: stop when the training loss has not improved by more than ``tol=1e-4`` for
  more than ``n_iter_no_change=10`` epochs in a row; with ``early_stopping=True``, the validation
  score (accuracy, or R² for the regressor) on a ``validation_fraction=0.1`` hold-out (stratified
  for multiclass labels), ending with the best epoch's weights. A ``ConvergenceWarning`` when
  ``max_iter`` comes first.
- ``warm_start=False``: True makes ``fit`` continue from the weights of the last fit (with a new
  optimizer state, as scikit-learn does). ``partial_fit`` trains one epoch and keeps the
  optimizer state between calls (the classifier needs ``classes=`` on the first).
- ``random_state``: an int is the :class:`bpgpu.MLP` seed itself (it also seeds the shuffling
  and the early-stopping split); otherwise a seed is drawn from it (``None``: a new one every fit).
- ``verbose``: scikit-learn's lines (``Iteration 1, loss = ...``) on standard output.
- The classifier's loss is log-loss: softmax and cross-entropy over one output per class; for two
  classes one logistic output, and logistic outputs for multilabel targets (as scikit-learn). The
  regressor's ``loss="squared_error"`` is bpgpu's ``sse``, ½(t−y)² per example, batch mean: the
  same as scikit-learn's for one output (scikit-learn also divides by the number of outputs).
  ``"poisson"`` is a ValueError.

bpgpu's own: ``device=None`` (a bpgpu device spec, ``"cpu"``, ``"cuda:0"``, ``"torch:cpu"``,
``"strict"``, ...; ``None`` is ``$BPGPU_DEVICE`` or ``"auto"``, except that with array API
dispatch on and a PyTorch, CuPy or array-api-strict X the network is put where X already is) and
``dtype="float32"`` (or ``"float64"``). 0.2.0's ``epochs``, ``lr`` and ``optimizer`` (now
``max_iter``, ``learning_rate_init``, ``solver``), the classifier's ``loss`` and ``tf32`` are a
TypeError naming what replaced them.

Fitted attributes as MLPClassifier's: ``loss_``, ``best_loss_`` (None with early stopping),
``loss_curve_``, ``validation_scores_`` and ``best_validation_score_`` (None without),
``t_``, ``n_iter_``, ``n_layers_``, ``n_outputs_``, ``out_activation_``, ``coefs_`` /
``intercepts_`` (NumPy copies), ``n_features_in_``, ``feature_names_in_``, the classifier's
``classes_``; and bpgpu's ``net_`` (the :class:`bpgpu.MLP`) and ``device_``.

With array API dispatch on, ``predict`` / ``predict_proba`` return arrays of X's library on X's
device (labels as NumPy when the classes are not numbers). Unlike scikit-learn's own array API
estimators, any input library is accepted after any fit: the network lives on its own device.
Estimators pickle as the network's state (host weights, settings, optimizer state), rebuilt on
their device when unpickled (on ``"cpu"``, with a warning, where that device is not usable).
"""

from __future__ import annotations

import numpy as np

try:
    from sklearn.base import ClassifierMixin, RegressorMixin
    from sklearn.metrics import r2_score
    from sklearn.utils._param_validation import StrOptions
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import column_or_1d, validate_data  # noqa: F401 (≥ 1.6)
except ImportError as exc:
    raise ImportError(f"bpgpu.sklearn needs scikit-learn ≥ 1.6 ({exc}); install it with "
                      "pip install 'scikit-learn>=1.6'") from exc

from ..backends import to_numpy
from ._base import BPEstimator, renamed_params

__all__ = ["BPClassifier", "BPRegressor"]


class BPClassifier(ClassifierMixin, BPEstimator):
    """A multilayer perceptron classifier with MLPClassifier's parameters, trained by bpgpu's
    backpropagation on any device.

    Binary (one logistic output), multiclass (softmax, one output per class) and multilabel
    (logistic outputs) targets, all with log-loss. See :mod:`bpgpu.sklearn` for the parameters.
    """

    _twin = "MLPClassifier"
    _renamed = {"loss": "was removed in 0.3.0: the classifier's loss is log-loss "
                        "(cross-entropy), as in MLPClassifier"}

    @renamed_params
    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=0.0001, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-08, n_iter_no_change=10, max_fun=15000,
                 device=None, dtype="float32"):
        self._set(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def fit(self, X, y):
        """Train on (X, y) as MLPClassifier.fit does (a new network unless ``warm_start``)."""
        self._validate_params()
        self._check_solver()
        fresh = not (self.warm_start and "net_" in self.__dict__)
        X, y = self._validate(X, y, reset=fresh)
        y = self._labels_1d(y)
        if fresh:
            self._set_classes(y, None)
            self._build(X, self._n_out(), self._output(), "cross_entropy")
        elif not self._multilabel and set(np.unique(y)) != set(self.classes_):
            raise ValueError(f"warm_start can only be used where `y` has the same classes as in "
                             f"the previous call to fit. Previously got {self.classes_}, `y` has "
                             f"{np.unique(y)}")
        T = self._targets(y)
        multiclass = not self._multilabel and len(self.classes_) > 2
        self._fit_network(X, T, False, stratify=np.argmax(T, axis=1) if multiclass else None)
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y); ``classes`` (every label) is needed on the first call."""
        self._validate_params()
        self._check_solver()
        first = "net_" not in self.__dict__
        X, y = self._validate(X, y, reset=first)
        y = self._labels_1d(y)
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(every class label the data will contain)")
            self._set_classes(y, classes)
            self._build(X, self._n_out(), self._output(), "cross_entropy")
        elif classes is not None and not self._multilabel and not np.array_equal(
                np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the first call to "
                             f"partial_fit, which was {self.classes_!r}")
        self._fit_network(X, self._targets(y), True)
        return self

    def predict(self, X):
        """Class labels: the most probable class (multilabel: each label with p > 0.5)."""
        proba, (xp, dev) = self._proba(X)
        if self._multilabel:
            return xp.astype(proba > 0.5, self._label_dtype if xp is np else xp.int64)
        idx = xp.argmax(proba, axis=1)
        if xp is np:
            return self.classes_[idx]
        if self.classes_.dtype.kind not in "biuf":
            return self.classes_[to_numpy(idx)]
        return xp.take(xp.asarray(self.classes_, device=dev), idx, axis=0)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        return self._proba(X)[0]

    def predict_log_proba(self, X):
        """The logarithm of ``predict_proba``."""
        proba, (xp, _) = self._proba(X)
        return xp.log(proba)

    # -- helpers ---------------------------------------------------------------------------

    def _binary(self):
        return not self._multilabel and len(self.classes_) == 2

    def _n_out(self):
        return 1 if self._binary() else len(self.classes_)

    def _output(self):
        return "logistic" if self._multilabel or self._binary() else "softmax"

    def _proba(self, X):
        out, (xp, dev) = self._outputs(X)
        if self._binary():
            out = xp.concat([1 - out, out], axis=1)
        return out, (xp, dev)

    def _validation_score(self, Xv, Tv):
        """Accuracy on the hold-out (host arrays), as MLPClassifier's early stopping scores."""
        net = self.net_
        out = np.asarray(net.backend.to_host(net.predict(Xv)))
        if self._multilabel or self._binary():
            return float(np.mean(np.all((out > 0.5) == (Tv > 0.5), axis=1)))
        return float(np.mean(np.argmax(out, axis=1) == np.argmax(Tv, axis=1)))

    def _labels_1d(self, y):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return y

    def _set_classes(self, y, classes):
        check_classification_targets(y)
        self._multilabel = type_of_target(y, input_name="y") == "multilabel-indicator"
        if self._multilabel:
            self.classes_ = np.arange(y.shape[1])
            self._label_dtype = y.dtype
            return
        self.classes_ = np.unique(y if classes is None else column_or_1d(np.asarray(classes)))
        if len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes to train, but the "
                             f"data have only one class: {self.classes_[0]!r}")

    def _targets(self, y):
        """Host targets (n, n_outputs): the class codes (one-hot; one column for two classes),
        or the multilabel matrix."""
        if self._multilabel:
            if y.ndim != 2 or y.shape[1] != len(self.classes_):
                raise ValueError(f"y must be a multilabel indicator matrix with "
                                 f"{len(self.classes_)} columns, got shape {y.shape}")
            return y.astype(np.float64)
        if y.ndim != 1:
            raise ValueError(f"y has shape {y.shape}; this classifier was fitted on class "
                             "labels of shape (n_samples,)")
        codes = np.searchsorted(self.classes_, y)
        codes = np.minimum(codes, len(self.classes_) - 1)
        unseen = self.classes_[codes] != y
        if np.any(unseen):
            raise ValueError(f"y contains labels not in classes_ {self.classes_!r}: "
                             f"{np.unique(y[unseen])!r}")
        if self._binary():
            return codes[:, None].astype(np.float64)
        return np.eye(len(self.classes_))[codes]


class BPRegressor(RegressorMixin, BPEstimator):
    """A multilayer perceptron regressor with MLPRegressor's parameters (identity outputs,
    squared error), trained by bpgpu's backpropagation on any device. See :mod:`bpgpu.sklearn`
    for the parameters."""

    _twin = "MLPRegressor"
    _parameter_constraints = {**BPEstimator._parameter_constraints,
                              "loss": [StrOptions({"squared_error", "poisson"})]}

    @renamed_params
    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=0.0001, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-08, n_iter_no_change=10, max_fun=15000,
                 device=None, dtype="float32"):
        self._set(locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Train on (X, y) as MLPRegressor.fit does (a new network unless ``warm_start``)."""
        self._check_params()
        fresh = not (self.warm_start and "net_" in self.__dict__)
        X, y = self._validate(X, y, reset=fresh)
        T = self._targets(y, first=fresh)
        if fresh:
            self._build(X, T.shape[1], "identity", "sse")
        self._check_outputs(T)
        self._fit_network(X, T, False)
        return self

    def partial_fit(self, X, y):
        """One epoch on (X, y), building the network on the first call."""
        self._check_params()
        first = "net_" not in self.__dict__
        X, y = self._validate(X, y, reset=first)
        T = self._targets(y, first=first)
        if first:
            self._build(X, T.shape[1], "identity", "sse")
        self._check_outputs(T)
        self._fit_network(X, T, True)
        return self

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_outputs) as y was in fit."""
        out, _ = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    def _check_params(self):
        self._validate_params()
        self._check_solver()
        if self.loss != "squared_error":
            raise ValueError(f"BPRegressor has no loss={self.loss!r}: use "
                             "loss='squared_error'")

    def _check_outputs(self, T):
        if T.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {T.shape[1]} target columns, but this regressor was fitted "
                             f"on {self.n_outputs_}")

    def _validation_score(self, Xv, Tv):
        """R² on the hold-out (host arrays), as MLPRegressor's early stopping scores."""
        net = self.net_
        return float(r2_score(Tv, np.asarray(net.backend.to_host(net.predict(Xv)))))

    def _targets(self, y, first):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if first:
            self._y_1d = y.ndim == 1
        return np.asarray(y, dtype=np.float64).reshape(y.shape[0], -1)
