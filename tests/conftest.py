"""One ``device`` fixture over every registered backend; GPU entries are marked ``gpu``.

``BPGPU_TEST_BACKENDS=strict pytest`` forces every backend-parametrized test onto the listed
backends only (comma-separated specs), e.g. to run the whole suite on array-api-strict.
"""

import os

# JAX's float64 tests need its 64-bit mode, which must be chosen before JAX is imported; the
# float32 paths are the same with it on. A run may still set JAX_ENABLE_X64=0 to test without.
os.environ.setdefault("JAX_ENABLE_X64", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import bpgpu  # noqa: E402

BACKENDS = [
    pytest.param("cpu", id="numpy"),
    pytest.param("strict", id="strict"),
    pytest.param("torch:cpu", id="torch-cpu"),
    pytest.param("jax:cpu", id="jax-cpu"),
    pytest.param("cuda", id="cupy", marks=pytest.mark.gpu),
    pytest.param("torch:cuda", id="torch-cuda", marks=pytest.mark.gpu),
    pytest.param("jax:cuda", id="jax-cuda", marks=pytest.mark.gpu),
]

_forced = [s.strip() for s in os.environ.get("BPGPU_TEST_BACKENDS", "").split(",") if s.strip()]
if _forced:
    BACKENDS = [p for p in BACKENDS if p.values[0] in _forced]


@pytest.fixture(params=BACKENDS)
def device(request):
    """A usable device spec; skips, with the registry's reason, where the backend cannot run."""
    try:
        bpgpu.get_backend(request.param)
    except bpgpu.DeviceUnavailableError as exc:
        pytest.skip(f"{request.param} unavailable: {exc}")
    return request.param


def to_np(x):
    """Any backend's array as a NumPy array (test helper)."""
    from bpgpu.backends import to_numpy

    return np.asarray(to_numpy(x))


TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-12)}
