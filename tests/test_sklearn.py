"""bpgpu.sklearn: scikit-learn's estimator checks, and the estimators in sklearn's tools."""

import os
import pickle
import sys

if "scipy" not in sys.modules:  # sklearn's array API checks need it set before scipy loads
    os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

import inspect  # noqa: E402
import warnings  # noqa: E402

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import bpgpu  # noqa: E402
from bpgpu.datasets import load  # noqa: E402
from bpgpu.sklearn import BPClassifier, BPRegressor  # noqa: E402

CHECKED = [
    BPClassifier(max_iter=30, learning_rate_init=0.01, random_state=0, device="cpu",
                 dtype="float64"),  # float32 sums differ by batch beyond the checks' atol=1e-7
    BPRegressor(max_iter=30, learning_rate_init=0.01, random_state=0, device="cpu",
                dtype="float64"),
]

# small runs stop at max_iter; scikit-learn's own MLP tests filter this warning the same way
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


SKLEARN_BEFORE_1_8 = tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 8)


def expected_failed_checks(estimator):
    failing = {
        "check_array_api_same_namespace": (
            "by design: the network lives on its own `device`, so predict accepts any array "
            "library after any fit and answers in the library of its input"),
    }
    return failing


def _wants_classes_in_x_namespace(estimator, check):
    """scikit-learn < 1.8 (the last for Python 3.10) checks that classes_ is in X's array
    namespace; bpgpu keeps classes_ in NumPy, as its labels may be text."""
    namespace = getattr(check, "keywords", {}).get("array_namespace")
    return (SKLEARN_BEFORE_1_8 and isinstance(estimator, BPClassifier)
            and getattr(getattr(check, "func", None), "__name__", "") == "check_array_api_input"
            and namespace not in (None, "numpy"))


def _listed(mark):
    """scikit-learn < 1.8 hands pytest a generator of checks, which pytest 9 deprecates."""
    name, values = mark.args
    return pytest.mark.parametrize(name, list(values), **mark.kwargs)


@_listed(parametrize_with_checks(CHECKED, expected_failed_checks=expected_failed_checks))
def test_sklearn_estimator_checks(estimator, check):
    if _wants_classes_in_x_namespace(estimator, check):
        with pytest.raises(AssertionError, match="'classes_' attribute is in wrong namespace"):
            check(estimator)
        return
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    data = load("digits")
    return np.asarray(data.X, dtype=np.float32), np.asarray(data.y)


def small(**params):
    return BPClassifier(**{"max_iter": 5, "hidden_layer_sizes": (32,), "learning_rate_init": 0.01,
                           "random_state": 0, "device": "cpu", **params})


def test_pipeline_and_cross_val_score(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), small(max_iter=10))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv)
    assert scores.shape == (3,)
    assert scores.min() > 0.85


def test_grid_search_over_device(digits):
    X, y = digits[0][:240], digits[1][:240]
    grid = GridSearchCV(small(max_iter=3), {"device": ["cpu", "strict"],
                                            "learning_rate_init": [0.01, 0.03]}, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["device"] in ("cpu", "strict")
    assert grid.best_estimator_.device_ == grid.best_params_["device"]
    # the same seed and data give the same network on both devices, up to float rounding
    by_device = {}
    for params, score in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"]):
        by_device.setdefault(params["learning_rate_init"], []).append(score)
    for scores in by_device.values():
        assert abs(scores[0] - scores[1]) <= 0.03


def test_clone_keeps_params_and_drops_fit(digits):
    X, y = digits
    est = small(hidden_layer_sizes=(16, 8), alpha=0.5, learning_rate_init=0.02)
    est.fit(X[:100], y[:100])
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert twin.get_params()["alpha"] == 0.5
    assert not hasattr(twin, "net_") and not hasattr(twin, "coefs_")


@pytest.mark.parametrize("device", ["cpu", "strict", "torch:cpu"])
def test_pickle_round_trip_predicts_the_same(digits, device):
    if device == "torch:cpu":
        pytest.importorskip("torch")
    X, y = digits[0][:300], digits[1][:300]
    clf = small(device=device, max_iter=2).fit(X, y)
    clf2 = pickle.loads(pickle.dumps(clf))
    assert clf2.device_ == clf.device_ == device
    np.testing.assert_array_equal(clf2.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(clf2.predict(X), clf.predict(X))
    Xr, yr = X[:, :10], X[:, 10] * 2 - 1
    reg = BPRegressor(max_iter=2, random_state=0, device=device).fit(Xr, yr)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(Xr), reg.predict(Xr))


def test_pickle_keeps_partial_fit_state(digits):
    X, y = digits
    a = small()
    for _ in range(3):
        a.partial_fit(X, y, classes=np.arange(10))
    b = pickle.loads(pickle.dumps(a))
    a.partial_fit(X, y)
    b.partial_fit(X, y)
    assert a.loss_curve_ == b.loss_curve_
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(wa, wb)


def test_unpickling_where_the_device_is_missing_falls_back_to_cpu(digits):
    X, y = digits
    clf = small(max_iter=1).fit(X, y)
    state = clf.__getstate__()
    state["_net_state"]["device"] = "cuda:99"  # a GPU no machine here has
    clone_ = BPClassifier.__new__(BPClassifier)
    with pytest.warns(UserWarning, match="'cuda:99', which is not usable here"):
        clone_.__setstate__(state)
    assert clone_.device_ == "cpu"
    np.testing.assert_array_equal(clone_.predict_proba(X), clf.predict_proba(X))


def test_partial_fit_lowers_the_loss(digits):
    X, y = digits
    clf = small()
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for _ in range(6):
        clf.partial_fit(X, y, classes=np.arange(10))
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 6  # as MLPClassifier's
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    assert all(b < a for a, b in zip(clf.loss_curve_, clf.loss_curve_[1:]))
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=np.arange(11))
    with pytest.raises(ValueError, match="labels not in classes_"):
        clf.partial_fit(X, y + 1)
    reg = BPRegressor(random_state=0, device="cpu")
    for _ in range(5):
        reg.partial_fit(X[:, :20], X[:, 20])
    assert reg.loss_curve_[-1] < reg.loss_curve_[0]


def test_coefs_shapes_and_initial_weights(digits):
    X, y = digits
    clf = small().fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(64, 32), (32, 10)]
    assert [b.shape for b in clf.intercepts_] == [(32,), (10,)]
    assert all(isinstance(c, np.ndarray) for c in clf.coefs_ + clf.intercepts_)
    assert clf.n_features_in_ == 64 and clf.n_outputs_ == 10 and clf.n_iter_ == 5
    assert list(clf.classes_) == list(range(10)) and len(clf.loss_curve_) == 5
    deep = BPRegressor(hidden_layer_sizes=(16, 8), max_iter=1, device="cpu").fit(X, X[:, :3])
    assert [c.shape for c in deep.coefs_] == [(64, 16), (16, 8), (8, 3)]
    assert deep.predict(X).shape == (len(X), 3)
    # random_state=k is MLP(seed=k); adam with alpha is bpgpu's adam with weight_decay=alpha/batch
    est = small(max_iter=3, random_state=7, alpha=0.1, batch_size=64).fit(X, y)
    net = bpgpu.MLP([64, 32, 10], "relu", "softmax", device="cpu", seed=7)
    net.fit(X, np.eye(10)[y], epochs=3, batch_size=64, lr=0.01, optimizer="adam",
            weight_decay=0.1 / 64, beta1=0.9, beta2=0.999, eps=1e-8)
    for c, (W, _) in zip(est.coefs_, net.weights):
        np.testing.assert_allclose(c, W, rtol=1e-5, atol=1e-6)
    assert est.t_ == 3 * len(X) and est.n_layers_ == 3


def test_random_state_none_and_numpy_numbers(digits):
    X, y = digits[0][:200], digits[1][:200]
    a = BPClassifier(max_iter=np.int64(2), batch_size=np.int64(16),
                     learning_rate_init=np.float32(0.01), device="cpu").fit(X, y)
    b = BPClassifier(max_iter=2, device="cpu").fit(X, y)
    assert not np.array_equal(a.coefs_[0], b.coefs_[0])  # a fresh seed each time


def test_labels_binary_strings_and_multilabel(digits):
    X, y = digits
    words = np.array(["even", "odd"])[y % 2]
    clf = small(max_iter=10).fit(X, words)
    assert list(clf.classes_) == ["even", "odd"]
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1  # as MLPClassifier's
    assert clf.coefs_[-1].shape == (32, 1)
    assert clf.score(X, words) > 0.9
    Y = np.stack([y % 2, (y > 4).astype(int), (y == 0).astype(int)], axis=1)
    ml = small(max_iter=10).fit(X, Y)
    assert ml.out_activation_ == "logistic" and ml.predict(X).shape == Y.shape
    assert (ml.predict(X) == Y).mean() > 0.9


def test_bad_parameters_fail_in_fit_not_init(digits):
    X, y = digits
    for params in ({"hidden_layer_sizes": (0,)}, {"activation": "softplus"}, {"alpha": -1},
                   {"max_iter": -1}, {"learning_rate_init": 0}, {"solver": "lbfgs"},
                   {"dtype": "float16"}, {"learning_rate": "cosine"}, {"tol": -1},
                   {"device": "nowhere"}, {"batch_size": 0}, {"random_state": -1}):
        est = small(**params)
        with pytest.raises((ValueError, bpgpu.DeviceUnavailableError)):
            est.fit(X[:50], y[:50])
        with pytest.raises((ValueError, bpgpu.DeviceUnavailableError)):
            clone(est).partial_fit(X[:50], y[:50], classes=np.arange(10))
    with pytest.raises(ValueError, match="has no loss='poisson'"):
        BPRegressor(loss="poisson").fit(X[:50], X[:50, 0])
    with pytest.raises(ValueError, match="use solver='adam' or solver='sgd'"):
        small(solver="lbfgs").fit(X[:50], y[:50])


def _dispatch_on():
    try:
        return sklearn.config_context(array_api_dispatch=True)
    except (RuntimeError, ImportError) as exc:  # scipy loaded without SCIPY_ARRAY_API=1
        pytest.skip(f"array API dispatch unavailable: {exc}")


def test_array_api_dispatch_keeps_torch_tensors_on_their_device(digits):
    torch = pytest.importorskip("torch")
    X, y = digits[0][:300], digits[1][:300]
    Xt, yt = torch.asarray(X), torch.asarray(y)
    with _dispatch_on():
        clf = small(max_iter=10, device=None).fit(Xt, yt)  # device=None: follow X
        labels, proba = clf.predict(Xt), clf.predict_proba(Xt)
        on_cpu = small(max_iter=10).fit(Xt, yt)
        labels_cpu = on_cpu.predict(Xt)
        score = clf.score(Xt, yt)
        words = small(max_iter=2).fit(Xt, np.array(["even", "odd"])[y % 2]).predict(Xt)
    assert clf.device_ == "torch:cpu" and on_cpu.device_ == "cpu"
    assert isinstance(labels, torch.Tensor) and isinstance(proba, torch.Tensor)
    assert isinstance(labels_cpu, torch.Tensor)
    assert labels.device == Xt.device and proba.dtype == torch.float32
    np.testing.assert_array_equal(labels.numpy(), labels_cpu.numpy())
    assert isinstance(score, float) and score > 0.8
    assert isinstance(words, np.ndarray) and set(words) <= {"even", "odd"}  # no torch strings
    # without dispatch the same estimator answers in NumPy
    assert isinstance(clf.predict(X), np.ndarray)


def test_array_api_dispatch_with_strict_arrays_on_another_device(digits):
    xps = pytest.importorskip("array_api_strict")
    X, y = digits[0][:200], digits[1][:200]
    dev = xps.Device("device1")
    Xs, ys = xps.asarray(X, device=dev), xps.asarray(y, device=dev)
    with _dispatch_on():
        reg = BPRegressor(max_iter=2, random_state=0).fit(Xs, Xs[:, 0])
        out = reg.predict(Xs)
        clf = BPClassifier(random_state=0).partial_fit(Xs, ys, classes=np.arange(10))
        labels = clf.predict(Xs)
    assert reg.device_ == clf.device_ == "strict"
    assert out.device == labels.device == dev and out.shape == (200,)
    host = np.asarray(out.to_device(xps.Device("CPU_DEVICE")))
    np.testing.assert_allclose(host, reg.predict(X), rtol=1e-6)


def test_verbose_prints_scikit_learns_lines(digits, capsys):
    X, y = digits
    small(max_iter=3, verbose=True).fit(X, y).partial_fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in out] == [f"Iteration {i}" for i in (1, 2, 3, 1)]
    assert all(", loss = " in line for line in out)


@pytest.mark.parametrize(("ours", "theirs"), [(BPClassifier, MLPClassifier),
                                              (BPRegressor, MLPRegressor)])
def test_every_scikit_learn_parameter_with_its_default(ours, theirs):
    mine = inspect.signature(ours).parameters
    sk = inspect.signature(theirs).parameters
    for name, param in sk.items():
        assert mine[name].default == param.default, name
        assert mine[name].kind == param.kind, name
    assert set(mine) - set(sk) == {"device", "dtype"}


@pytest.mark.parametrize(("old", "new"), [("epochs", "max_iter"), ("lr", "learning_rate_init"),
                                          ("optimizer", "solver"), ("tf32", "removed"),
                                          ("loss", "log-loss")])
def test_old_names_name_the_new_ones(old, new):
    with pytest.raises(TypeError, match=rf"BPClassifier\({old}=\.\.\.\) .*{new}"):
        BPClassifier(**{old: 1})
    if old != "loss":
        with pytest.raises(TypeError, match=f"as in MLPRegressor|{new}"):
            BPRegressor(**{old: 1})


@pytest.mark.parametrize("params", [{}, {"solver": "sgd", "learning_rate": "adaptive"}])
def test_the_stopping_rule_stops_where_scikit_learns_does(digits, params):
    X, y = digits[0][:300], digits[1][:300]
    common = {"hidden_layer_sizes": (16,), "tol": 10.0, "n_iter_no_change": 2, "max_iter": 50,
              "random_state": 0, **params}
    ours = BPClassifier(**common, device="cpu").fit(X, y)
    theirs = MLPClassifier(**common).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 50  # adaptive: 5 divisions by 5, then it stops
    assert len(ours.loss_curve_) == ours.n_iter_ and ours.t_ == ours.n_iter_ * len(X)
    assert ours.best_loss_ == min(ours.loss_curve_)
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None


def test_max_iter_warns_as_scikit_learn(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
            small(max_iter=2).fit(X, y)


def test_early_stopping_keeps_the_best_validation_score(digits):
    X, y = digits
    clf = small(max_iter=40, early_stopping=True, n_iter_no_change=3).fit(X, y)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_ < 40
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9
    reg = BPRegressor(max_iter=5, early_stopping=True, random_state=0, device="cpu")
    reg.fit(X[:, :20], X[:, 20])
    assert len(reg.validation_scores_) == 5 and reg.best_validation_score_ <= 1


def test_invscaling_rate_per_epoch_and_alpha_in_the_loss(digits):
    X, y = digits[0][:400], digits[1][:400]
    clf = small(solver="sgd", learning_rate="invscaling", learning_rate_init=0.1, max_iter=3,
                alpha=0.0).fit(X, y)
    expected = [0.1 / (e * 400 + 1) ** 0.5 for e in range(3)]
    np.testing.assert_allclose(clf.net_.history["lr"], expected, rtol=1e-6)
    penalised = small(alpha=1.0, max_iter=1, batch_size=400).fit(X, y)
    squares = sum(float((W.astype(np.float64) ** 2).sum()) for W in penalised.coefs_)
    history = penalised.net_.history["loss"][-1]
    assert penalised.loss_ == pytest.approx(history + 0.5 * squares / 400, rel=1e-5)


def test_warm_start_continues_and_a_cold_fit_starts_over(digits):
    X, y = digits
    warm = small(max_iter=2, warm_start=True).fit(X, y)
    first = warm.coefs_[0]
    warm.fit(X, y)
    assert len(warm.loss_curve_) == 4 and warm.n_iter_ == 2  # as MLPClassifier's
    assert warm.t_ == 4 * len(X)
    assert warm.loss_curve_[2] < warm.loss_curve_[0]
    cold = small(max_iter=2).fit(X, y)
    np.testing.assert_array_equal(cold.coefs_[0], first)
    assert cold.fit(X, y).n_iter_ == 2
