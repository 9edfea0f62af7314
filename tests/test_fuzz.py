"""Property-based tests: random shapes, dtypes and values to fit/predict, random bytes to load.

Each call either works (and then nothing non-finite comes out) or raises one of bpgpu's
documented errors. Example counts are bounded so the file runs in seconds.
"""

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bpgpu

from .conftest import to_np

DOCUMENTED = (ValueError, TypeError, bpgpu.TrainingDiverged)
FAST = settings(max_examples=int(os.environ.get("BPGPU_FUZZ_EXAMPLES", "150")), deadline=None,
                derandomize=os.environ.get("BPGPU_FUZZ_EXAMPLES") is None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.uint8,
                          np.bool_, np.complex64])


def _values(dtype):
    if np.dtype(dtype).kind == "f":
        return st.floats(allow_nan=True, allow_infinity=True, width=np.dtype(dtype).itemsize * 8)
    return None


@st.composite
def problems(draw):
    n = draw(st.integers(0, 12))
    d = draw(st.integers(1, 4))
    dtype = draw(DTYPES)
    X = draw(hnp.arrays(dtype, (n, draw(st.sampled_from([d, d, d + 1]))),
                        elements=_values(dtype)))
    k = draw(st.integers(1, 3))
    if draw(st.booleans()):
        y = draw(hnp.arrays(np.int64, (draw(st.sampled_from([n, n, n + 1])),),
                            elements=st.integers(-1, k)))
    else:
        y = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-1e30, 1e30)))
    hidden = draw(st.lists(st.integers(1, 5), max_size=2))
    loss = draw(st.sampled_from(["cross_entropy", "sse", "mse"]))
    net_dtype = draw(st.sampled_from(["float32", "float64"]))
    fit = dict(epochs=draw(st.integers(1, 3)), batch_size=draw(st.sampled_from([1, 3, "full"])),
               lr=draw(st.sampled_from([1e-3, 0.1, 10.0])),
               optimizer=draw(st.sampled_from(["sgd", "momentum", "adam"])))
    return [d, *hidden, k], loss, net_dtype, X, y, fit


@FAST
@given(problems())
def test_fit_and_predict_work_or_raise_a_documented_error(problem):
    sizes, loss, dtype, X, y, fit = problem
    net = bpgpu.MLP(sizes, activation="tanh", loss=loss, dtype=dtype, seed=0)
    try:
        with warnings.catch_warnings():  # tanh saturated by large inputs: warned of, by design
            warnings.filterwarnings("ignore", "the first layer's gradients", UserWarning)
            hist = net.fit(X, y, **fit)
    except DOCUMENTED as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert all(np.isfinite(hist["loss"]))
        for W, b in net.weights:
            assert np.all(np.isfinite(to_np(W))) and np.all(np.isfinite(to_np(b)))
    try:
        out = net.predict(X, host=True)
    except DOCUMENTED as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert out.shape == (X.shape[0], sizes[-1])


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes_never_load(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "x.npz"
    path.write_bytes(data)
    with pytest.raises(bpgpu.ModelFileError):
        bpgpu.load(path)


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "net.npz"
    bpgpu.MLP([3, 4, 2], seed=0).save(path)
    return path.read_bytes()


@FAST
@given(st.data())
def test_damaged_model_files_load_cleanly_or_raise(tmp_path_factory, model_bytes, data):
    raw = bytearray(model_bytes)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    path = tmp_path_factory.mktemp("damaged") / "net.npz"
    path.write_bytes(bytes(raw[:cut]))
    try:
        net = bpgpu.load(path)
    except bpgpu.ModelFileError as exc:
        assert str(path) in str(exc)
    else:  # a flip in a byte nothing reads (e.g. a zip comment field): the model is whole
        assert net.sizes == [3, 4, 2]
        want = bpgpu.MLP([3, 4, 2], seed=0).weights
        for (W, b), (W0, b0) in zip(net.weights, want):
            assert np.array_equal(to_np(W), to_np(W0)) and np.array_equal(to_np(b), to_np(b0))
