"""The device registry: specs, the default, errors that name the fix, plugins."""

import types

import pytest

import bpgpu
from bpgpu import registry as reg


def test_specs_resolve_to_backends():
    assert bpgpu.get_backend("cpu").library == "numpy"
    assert bpgpu.get_backend("numpy").name == "cpu"
    assert bpgpu.get_backend(" CPU ").name == "cpu"
    assert bpgpu.get_backend("strict").library == "array_api_strict"


def test_torch_cpu_spec():
    pytest.importorskip("torch")
    be = bpgpu.get_backend("torch:cpu")
    assert be.library == "torch" and be.name == "torch:cpu" and not be.is_gpu


def test_auto_is_cuda_when_usable_else_cpu():
    be = bpgpu.get_backend("auto")
    try:
        bpgpu.get_backend("cuda")
        assert be.is_gpu
    except bpgpu.DeviceUnavailableError:
        assert be.is_gpu or be.name == "cpu"


def test_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv("BPGPU_DEVICE", "strict")
    assert bpgpu.default_spec() == "strict"
    assert bpgpu.MLP([2, 1]).device == "strict"
    monkeypatch.setenv("BPGPU_DEVICE", "")
    assert bpgpu.default_spec() == "auto"


def test_unknown_device_lists_the_known_ones():
    with pytest.raises(bpgpu.DeviceUnavailableError, match="unknown device 'tpu'.*cpu.*cuda"):
        bpgpu.get_backend("tpu")
    assert issubclass(bpgpu.DeviceUnavailableError, RuntimeError)


@pytest.mark.parametrize("spec", ["cpu:3", "strict:1", "torch:mps", "torch:cuda:x", "cuda:x"])
def test_malformed_specs_are_refused_with_a_reason(spec):
    with pytest.raises(bpgpu.DeviceUnavailableError) as info:
        bpgpu.get_backend(spec)
    assert len(str(info.value)) > 20


def test_missing_cupy_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name == "cupy" or name.startswith("cupy."):
            raise ImportError("No module named 'cupy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    reg._resolve.cache_clear()
    try:
        with pytest.raises(bpgpu.DeviceUnavailableError,
                           match=r"CuPy is not installed; install bpgpu\[cuda12\] or "
                                 r"bpgpu\[cuda13\]"):
            bpgpu.get_backend("cuda:0")
        rows = {r.spec: r for r in bpgpu.devices()}
        assert not rows["cuda"].available and "bpgpu[cuda12]" in rows["cuda"].reason
    finally:
        reg._resolve.cache_clear()


def test_devices_lists_every_backend_with_a_reason():
    rows = bpgpu.devices()
    specs = [r.spec for r in rows]
    assert specs[:2] == ["cpu", "strict"]
    assert any(s.startswith("cuda") for s in specs)
    assert any(s.startswith("torch") for s in specs)
    for r in rows:
        assert r.available or r.reason


def test_entry_point_plugins_register_a_prefix(monkeypatch):
    numpy_backend = reg._module("cpu")

    class Plugin(type(numpy_backend.make())):
        name = "mine"

    plugin = types.SimpleNamespace(make=lambda arg: Plugin(),
                                   status=lambda: [Plugin().status()])
    ep = types.SimpleNamespace(name="mine", load=lambda: plugin)
    monkeypatch.setattr(reg, "_plugins", lambda: {"mine": ep})
    reg._resolve.cache_clear()
    try:
        net = bpgpu.MLP([3, 2], device="mine")
        assert net.backend.name == "mine"
        assert any(r.spec == "cpu" for r in bpgpu.devices())
    finally:
        reg._resolve.cache_clear()
