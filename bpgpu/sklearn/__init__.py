"""scikit-learn estimators around :class:`bpgpu.MLP`: :class:`BPClassifier`, :class:`BPRegressor`.

Needs scikit-learn ≥ 1.6, an optional dependency: the rest of bpgpu never imports scikit-learn.
The estimators work in ``Pipeline``, ``cross_val_score``, ``GridSearchCV`` (also over ``device``)
and ``clone``, and pickle (for joblib) as the network's state — host NumPy weights, settings and
the optimizer state of ``partial_fit`` (:mod:`bpgpu.state`) — rebuilt on their device when
unpickled (on ``"cpu"``, with a warning, where that device is not usable).

>>> from bpgpu.sklearn import BPClassifier
>>> clf = BPClassifier(hidden_layer_sizes=(32,), epochs=30, device="cpu", random_state=0)
>>> clf.fit(X, y).score(X_test, y_test)                              # doctest: +SKIP

Parameters (both estimators)
----------------------------
hidden_layer_sizes : int or tuple of int, default (32,)
    Widths of the hidden layers; the input and output widths come from the data.
activation : str, Activation, or list of them, default "logistic"
    Hidden-layer activation: ``identity``, ``logistic``, ``tanh``, ``relu`` or a custom rule
    (a :class:`bpgpu.activations.Activation`, or the name :func:`bpgpu.register` knows it by),
    for every hidden layer; or a list of one per hidden layer (``["tanh", "relu"]`` with
    ``hidden_layer_sizes=(32, 16)``). A custom rule must be registered (:func:`bpgpu.register`)
    wherever the estimator is pickled or unpickled.
loss : str or None
    ``None`` is ``"cross_entropy"`` for the classifier (softmax outputs, one per class, also for
    two classes; logistic outputs for multilabel targets) and ``"sse"`` for the regressor (the
    lecture's ½Σ(t−y)² per example, batch mean: for one output the same as MLPRegressor's loss).
    The classifier also takes ``"sse"`` / ``"mse"`` (logistic outputs), the regressor ``"mse"``.
optimizer : {"adam", "momentum", "sgd"}, default "adam"
lr : float or None, default None
    Learning rate; ``None`` is the optimizer's default from :mod:`bpgpu.defaults` (0.01 for
    Adam, 0.1 for SGD, 0.05 for momentum), the same as :func:`bpgpu.fit` and ``bpgpu train``.
epochs : int, default 30
    Passes over the data in ``fit``; ``partial_fit`` always does one.
batch_size : int or "full", default 32
    Examples per step (``"full"``: one step per epoch).
device : str or None
    A bpgpu device spec (``"cpu"``, ``"cuda:0"``, ``"torch:cpu"``, ``"strict"``, ...). ``None`` is
    ``$BPGPU_DEVICE`` or ``"auto"``, except that with array API dispatch on
    (``sklearn.set_config(array_api_dispatch=True)``) and a PyTorch, CuPy or array-api-strict X
    the network is put where X already is.
dtype : {"float32", "float64"}, default "float32"
random_state : int, RandomState or None
    An int is the MLP seed itself (``random_state=0`` starts from ``MLP(..., seed=0)``'s weights);
    otherwise a seed is drawn from it (``None``: a new one every fit).
tf32 : bool, default False
    Stored for the day bpgpu gets a TF32 path, where it would affect CUDA matmuls only. bpgpu has
    none yet, so it changes nothing (fit warns when it is True on a GPU).
verbose : bool, default False
    Report training: a progress bar where one shows (a terminal, or tqdm's widget in a
    notebook), else one line per epoch on standard error (``partial_fit``: one line per call).

Fitted attributes: ``net_`` (the :class:`bpgpu.MLP`), ``device_`` (its device spec),
``n_features_in_``, ``n_outputs_``, ``out_activation_``, ``loss_curve_`` (mean training loss per
epoch), ``loss_``, ``n_iter_`` (epochs run), and ``coefs_`` / ``intercepts_`` (NumPy copies of
the weights, ``coefs_[i]`` of shape (n_in, n_out)); the classifier adds ``classes_``.

With array API dispatch on, ``predict`` / ``predict_proba`` return arrays of X's library on X's
device (labels as NumPy when the classes are not numbers). Unlike scikit-learn's own array API
estimators, any input library is accepted after any fit: the network lives on its own device.
Outputs are computed in ``dtype`` and returned in X's floating dtype (integer X counts as
``dtype``), as scikit-learn expects.

``partial_fit`` trains one epoch and keeps its optimizer state (e.g. Adam's moments) from call to
call; after ``fit`` the first ``partial_fit`` continues ``fit``'s optimizer state (its settings are
the same unless changed in between, e.g. by ``set_params(lr=...)``, which starts a fresh one).
"""

from __future__ import annotations

import numpy as np

try:
    from sklearn.base import ClassifierMixin, RegressorMixin
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import column_or_1d, validate_data  # noqa: F401 (≥ 1.6)
except ImportError as exc:
    raise ImportError(f"bpgpu.sklearn needs scikit-learn ≥ 1.6 ({exc}); install it with "
                      "pip install 'scikit-learn>=1.6'") from exc

from ..backends import to_numpy
from ._base import BPEstimator

__all__ = ["BPClassifier", "BPRegressor"]


class BPClassifier(ClassifierMixin, BPEstimator):
    """A multilayer perceptron classifier trained by bpgpu's backpropagation on any device.

    Binary, multiclass (softmax with one output per class, cross-entropy) and multilabel
    (logistic outputs, binary cross-entropy) targets. See :mod:`bpgpu.sklearn` for the parameters.
    """

    _default_loss = "cross_entropy"
    _allowed_losses = ("cross_entropy", "sse", "mse")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def fit(self, X, y):
        """Train a new network on (X, y) for ``epochs`` epochs; returns self."""
        X, y = self._validate(X, y, reset=True)
        y = self._labels_1d(y)
        self._set_classes(y, None)
        self._build(X, len(self.classes_), self._output())
        self._train(X, self._targets(y))
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y); ``classes`` (every label) is needed on the first call."""
        first = "net_" not in self.__dict__
        X, y = self._validate(X, y, reset=first)
        y = self._labels_1d(y)
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit "
                                 "(every class label the data will contain)")
            self._set_classes(y, classes)
            self._build(X, len(self.classes_), self._output())
        elif classes is not None and not self._multilabel and not np.array_equal(
                np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the first call to "
                             f"partial_fit, which was {self.classes_!r}")
        self._train_one_epoch(X, self._targets(y))
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

    # -- helpers ---------------------------------------------------------------------------

    def _proba(self, X):
        out, (xp, dev) = self._outputs(X)
        if self.out_activation_ == "logistic" and not self._multilabel:
            out = out / xp.sum(out, axis=1, keepdims=True)  # sse/mse: logistic outputs
        return out, (xp, dev)

    def _output(self):
        if self._multilabel or self._loss_name() != "cross_entropy":
            return "logistic"
        return "softmax"

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
        """Host targets (n, n_outputs): one-hot codes of the labels, or the multilabel matrix."""
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
        return np.eye(len(self.classes_))[codes]


class BPRegressor(RegressorMixin, BPEstimator):
    """A multilayer perceptron regressor (identity outputs, ``sse`` loss by default) trained by
    bpgpu's backpropagation on any device. See :mod:`bpgpu.sklearn` for the parameters."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Train a new network on (X, y) for ``epochs`` epochs; returns self."""
        X, y = self._validate(X, y, reset=True)
        T = self._targets(y, first=True)
        self._build(X, T.shape[1], "identity")
        self._train(X, T)
        return self

    def partial_fit(self, X, y):
        """One epoch on (X, y), building the network on the first call."""
        first = "net_" not in self.__dict__
        X, y = self._validate(X, y, reset=first)
        T = self._targets(y, first=first)
        if first:
            self._build(X, T.shape[1], "identity")
        elif T.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {T.shape[1]} target columns, but this regressor was fitted "
                             f"on {self.n_outputs_}")
        self._train_one_epoch(X, T)
        return self

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, n_outputs) as y was in fit."""
        out, _ = self._outputs(X)
        return out[:, 0] if self._y_1d else out

    def _targets(self, y, first):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if first:
            self._y_1d = y.ndim == 1
        return np.asarray(y, dtype=np.float64).reshape(y.shape[0], -1)
