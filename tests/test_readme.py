"""Every ```python block of README.md, and of the user guide's pages (docs/guide/*.md), runs as
written.

Each block runs on its own, in a fresh namespace and its own temporary working directory (the
files it writes land there), with ``BPGPU_DEVICE`` unset so that ``"auto"`` is the default device,
as for a user: the README's Python examples are written to be copied one at a time, so none
relies on a name or a file from an earlier block (a block that did would fail here). The test id
and the failure name the block's first line in README.md, and the traceback's line numbers are
README.md's. Blocks fenced otherwise (bash, text, bare output) are not run.
"""

import re
import traceback
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_FENCE = re.compile(r"^```(\S*)(?:\s.*)?$")  # an info string may follow: ```{include} path


def python_blocks(text, name="README.md"):
    """``(line, source)`` of each ```python block; ``line`` is the block's first code line."""
    blocks, lang, start, lines = [], None, 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if match is None:
            if lang is not None:
                lines.append(line)
        elif lang is None:  # an opening fence
            lang, start, lines = match.group(1).lower(), number + 1, []
        else:  # the closing fence
            if lang == "python":
                blocks.append((start, "\n".join(lines) + "\n"))
            lang = None
    assert lang is None, f"{name}: the block opened on line {start - 1} is never closed"
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
GUIDE = sorted((README.parent / "docs" / "guide").glob("*.md"))
GUIDE_BLOCKS = [(page, line, source) for page in GUIDE
                for line, source in python_blocks(page.read_text(encoding="utf-8"), page.name)]


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 3


def test_python_blocks_parse():
    for line, source in BLOCKS:
        try:
            compile(source, f"README.md:{line}", "exec")
        except SyntaxError as exc:
            pytest.fail(f"README.md line {line - 1 + (exc.lineno or 1)}: {exc}")


def _run_block(path, line, source):
    """Run one block as a user would; a failure names the file and the block's first line, and
    the traceback's line numbers are the file's own (the block is padded with the lines above)."""
    code = compile("\n" * (line - 1) + source, str(path), "exec")
    try:
        exec(code, {"__name__": "__docs__"})
    except Exception:
        pytest.fail(f"the {path.name} block starting on line {line} failed:\n"
                    f"{traceback.format_exc()}", pytrace=False)


@pytest.fixture
def as_a_user(tmp_path, monkeypatch):
    """A fresh working folder for the files a block writes, and the default device."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BPGPU_DEVICE", raising=False)


@pytest.mark.parametrize(("line", "source"), BLOCKS, ids=[f"README.md:{n}" for n, _ in BLOCKS])
def test_readme_python_block_runs(line, source, as_a_user):
    _run_block(README, line, source)


@pytest.mark.parametrize(("page", "line", "source"), GUIDE_BLOCKS,
                         ids=[f"{p.name}:{n}" for p, n, _ in GUIDE_BLOCKS])
def test_user_guide_python_block_runs(page, line, source, as_a_user):
    _run_block(page, line, source)
