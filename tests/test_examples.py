"""Every script of the example gallery (``examples/plot_*.py``) runs and draws a figure.

Sphinx-gallery runs them with the examples folder as the working directory; here each runs in a
temporary one instead, so that a script that wrote files would leave them there, and one that
found its data through the working directory would fail.
"""

import runpy
from pathlib import Path

import pytest

from bpgpu import activations, losses, optim

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("plot_*.py"))


def test_the_gallery_has_scripts_and_a_readme():
    assert SCRIPTS
    assert (EXAMPLES / "README.txt").is_file()


@pytest.fixture
def registry(monkeypatch):
    """The rule tables as copies: what an example registers is gone after it."""
    for module, table in ((activations, "ACTIVATIONS"), (losses, "LOSSES"),
                          (optim, "OPTIMIZERS")):
        monkeypatch.setattr(module, table, dict(getattr(module, table)))


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_runs_and_draws(script, tmp_path, monkeypatch, registry):
    text = script.read_text(encoding="utf-8")
    title = text.split('"""')[1].strip().splitlines()
    assert len(title) >= 2 and set(title[1]) == {"="} and len(title[1]) >= len(title[0]), \
        f"{script.name} must open with a reST title underlined with '='"
    monkeypatch.chdir(tmp_path)
    plt.close("all")
    try:
        runpy.run_path(str(script), run_name="__main__")
        assert plt.get_fignums(), f"{script.name} drew no figure"
    finally:
        plt.close("all")
    assert list(tmp_path.iterdir()) == [], f"{script.name} wrote files"
