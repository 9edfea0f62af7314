"""What pyproject.toml installs is the whole package: every folder of bpgpu/ that holds code is
listed, so a plain ``pip install .`` (not only an editable one) has every module."""

import pathlib

import pytest

import bpgpu

ROOT = pathlib.Path(bpgpu.__file__).parent


def test_every_subpackage_is_installed():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    if not (ROOT.parent / "pyproject.toml").is_file():
        pytest.skip("bpgpu is installed from a wheel here, not from its source tree")
    listed = set(tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {"bpgpu." + ".".join(p.parent.relative_to(ROOT).parts)
             for p in ROOT.rglob("__init__.py")} - {"bpgpu."}
    assert found <= listed, sorted(found - listed)
