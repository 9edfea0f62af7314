"""bpgpu.sklearn: scikit-learn's estimator checks, and the estimators in sklearn's tools."""

import os
import pickle
import sys

if "scipy" not in sys.modules:  # sklearn's array API checks need it set before scipy loads
    os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import bpgpu  # noqa: E402
from bpgpu.datasets import load  # noqa: E402
from bpgpu.sklearn import BPClassifier, BPRegressor  # noqa: E402

CHECKED = [
    BPClassifier(epochs=10, random_state=0, device="cpu"),
    BPRegressor(epochs=10, random_state=0, device="cpu"),
]


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
    return BPClassifier(**{"epochs": 5, "random_state": 0, "device": "cpu", **params})


def test_pipeline_and_cross_val_score(digits):
    X, y = digits
    pipe = make_pipeline(StandardScaler(), small(epochs=10))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv)
    assert scores.shape == (3,)
    assert scores.min() > 0.85


def test_grid_search_over_device(digits):
    X, y = digits[0][:240], digits[1][:240]
    grid = GridSearchCV(small(epochs=3), {"device": ["cpu", "strict"], "lr": [0.01, 0.03]}, cv=2)
    grid.fit(X, y)
    assert grid.best_params_["device"] in ("cpu", "strict")
    assert grid.best_estimator_.device_ == grid.best_params_["device"]
    # the same seed and data give the same network on both devices, up to float rounding
    by_device = {}
    for params, score in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"]):
        by_device.setdefault(params["lr"], []).append(score)
    for scores in by_device.values():
        assert abs(scores[0] - scores[1]) <= 0.03


def test_clone_keeps_params_and_drops_fit(digits):
    X, y = digits
    est = small(hidden_layer_sizes=(16, 8), tf32=True, lr=0.02).fit(X[:100], y[:100])
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert twin.get_params()["tf32"] is True
    assert not hasattr(twin, "net_") and not hasattr(twin, "coefs_")


@pytest.mark.parametrize("device", ["cpu", "strict", "torch:cpu"])
def test_pickle_round_trip_predicts_the_same(digits, device):
    if device == "torch:cpu":
        pytest.importorskip("torch")
    X, y = digits[0][:300], digits[1][:300]
    clf = small(device=device, epochs=2).fit(X, y)
    clf2 = pickle.loads(pickle.dumps(clf))
    assert clf2.device_ == clf.device_ == device
    np.testing.assert_array_equal(clf2.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(clf2.predict(X), clf.predict(X))
    Xr, yr = X[:, :10], X[:, 10] * 2 - 1
    reg = BPRegressor(epochs=2, random_state=0, device=device).fit(Xr, yr)
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
    clf = small(epochs=1).fit(X, y)
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
    assert clf.n_iter_ == 6 and len(clf.loss_curve_) == 6
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    assert all(b < a for a, b in zip(clf.loss_curve_, clf.loss_curve_[1:]))
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=np.arange(11))
    with pytest.raises(ValueError, match="labels not in classes_"):
        clf.partial_fit(X, y + 1)
    reg = BPRegressor(epochs=1, random_state=0, device="cpu")
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
    deep = BPRegressor(hidden_layer_sizes=(16, 8), epochs=1, device="cpu").fit(X, X[:, :3])
    assert [c.shape for c in deep.coefs_] == [(64, 16), (16, 8), (8, 3)]
    assert deep.predict(X).shape == (len(X), 3)
    # random_state=k starts from MLP(seed=k)'s weights
    untrained = small(epochs=0, random_state=7).fit(X, y)
    net = bpgpu.MLP([64, 32, 10], device="cpu", seed=7)
    for c, (W, _) in zip(untrained.coefs_, net.weights):
        np.testing.assert_array_equal(c, W)


def test_random_state_none_and_numpy_numbers(digits):
    X, y = digits[0][:200], digits[1][:200]
    a = BPClassifier(epochs=np.int64(2), batch_size=np.int64(16), lr=np.float32(0.01),
                     device="cpu").fit(X, y)
    b = BPClassifier(epochs=2, device="cpu").fit(X, y)
    assert not np.array_equal(a.coefs_[0], b.coefs_[0])  # a fresh seed each time


def test_labels_binary_strings_and_multilabel(digits):
    X, y = digits
    words = np.array(["even", "odd"])[y % 2]
    clf = small(epochs=10).fit(X, words)
    assert list(clf.classes_) == ["even", "odd"]
    assert clf.predict_proba(X).shape == (len(X), 2)
    assert clf.score(X, words) > 0.9
    Y = np.stack([y % 2, (y > 4).astype(int), (y == 0).astype(int)], axis=1)
    ml = small(epochs=10).fit(X, Y)
    assert ml.out_activation_ == "logistic" and ml.predict(X).shape == Y.shape
    assert (ml.predict(X) == Y).mean() > 0.9
    sse = small(loss="sse", epochs=10).fit(X, y)
    np.testing.assert_allclose(sse.predict_proba(X).sum(axis=1), 1, rtol=1e-5)


def test_bad_parameters_fail_in_fit_not_init(digits):
    X, y = digits
    for params in ({"hidden_layer_sizes": (0,)}, {"loss": "hinge"}, {"tf32": "yes"},
                   {"epochs": -1}, {"lr": 0}, {"optimizer": "lbfgs"}, {"dtype": "float16"},
                   {"device": "nowhere"}, {"batch_size": 0}, {"random_state": -1}):
        est = small(**params)
        with pytest.raises((ValueError, bpgpu.DeviceUnavailableError)):
            est.fit(X[:50], y[:50])
        with pytest.raises((ValueError, bpgpu.DeviceUnavailableError)):
            clone(est).partial_fit(X[:50], y[:50], classes=np.arange(10))
    with pytest.raises(ValueError, match="supports loss"):
        BPRegressor(loss="cross_entropy").fit(X[:50], X[:50, 0])


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
        clf = BPClassifier(epochs=10, random_state=0).fit(Xt, yt)  # device=None: follow X
        labels, proba = clf.predict(Xt), clf.predict_proba(Xt)
        on_cpu = BPClassifier(epochs=10, random_state=0, device="cpu").fit(Xt, yt)
        labels_cpu = on_cpu.predict(Xt)
        score = clf.score(Xt, yt)
        words = small(epochs=2).fit(Xt, np.array(["even", "odd"])[y % 2]).predict(Xt)
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
        reg = BPRegressor(epochs=2, random_state=0).fit(Xs, Xs[:, 0])
        out = reg.predict(Xs)
        clf = BPClassifier(epochs=2, random_state=0).partial_fit(Xs, ys, classes=np.arange(10))
        labels = clf.predict(Xs)
    assert reg.device_ == clf.device_ == "strict"
    assert out.device == labels.device == dev and out.shape == (200,)
    host = np.asarray(out.to_device(xps.Device("CPU_DEVICE")))
    np.testing.assert_allclose(host, reg.predict(X), rtol=1e-6)


def test_verbose_prints_one_line_per_epoch(digits, capsys):
    X, y = digits
    small(epochs=3, verbose=True).fit(X, y).partial_fit(X, y)
    err = capsys.readouterr().err.splitlines()
    assert [line.split()[:2] for line in err] == [
        ["epoch", "1/3"], ["epoch", "2/3"], ["epoch", "3/3"], ["partial_fit", "epoch"]]
