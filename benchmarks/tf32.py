"""TF32 for float32 matrix products on PyTorch CUDA and CuPy: setting it for a run, and reading
what each library is set to (``env["tf32"]`` of the JSON)."""

from __future__ import annotations

import contextlib
import os
import sys


def tf32_state(requested, note=""):
    """Whether TF32 was asked for, and what PyTorch and CuPy are set to: PyTorch's float32
    matmul precision (``"tf32"`` or ``"ieee"``, or the older ``"high"`` / ``"highest"``), and
    CuPy's ``CUPY_TF32`` with, once CuPy is loaded, the compute type its float32 products use."""
    state = {"requested": bool(requested), "cupy_tf32_env": os.environ.get("CUPY_TF32")}
    linalg = _cupy_linalg()
    if linalg is not None:
        with contextlib.suppress(Exception):
            state["cupy_float32_compute_type"] = linalg.compute_type_to_str(
                linalg.get_compute_type("float32"))
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch_float32_matmul"] = _torch_matmul_precision(torch)
    if note:
        state["note"] = note
    return state


@contextlib.contextmanager
def tf32_mode(enabled):
    """TF32 on or off for float32 matrix products on PyTorch CUDA and CuPy, restored afterwards.

    CuPy reads ``CUPY_TF32`` at its first float32 product and keeps what it read, so once CuPy
    is loaded its kept compute type is set as well. PyTorch is set through its current API
    (``torch.backends.cuda.matmul.fp32_precision``) where it has one: reading or writing the
    older ``allow_tf32`` flags there is deprecated, and mixing the two APIs is an error.

    Yields a note, empty unless a setting could not be made.
    """
    notes = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(_cupy_tf32(enabled, notes))
        torch = _import_torch() if enabled else sys.modules.get("torch")
        if torch is not None:
            stack.enter_context(_torch_tf32(torch, enabled))
        yield "; ".join(notes)


@contextlib.contextmanager
def _cupy_tf32(enabled, notes):
    old_env = os.environ.get("CUPY_TF32")
    old_type = _cupy_compute_type(notes)
    os.environ["CUPY_TF32"] = "1" if enabled else "0"
    _set_cupy_compute_type(enabled, notes)
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop("CUPY_TF32", None)
        else:
            os.environ["CUPY_TF32"] = old_env
        _set_cupy_compute_type(old_type, notes)


def _cupy_linalg():
    """CuPy's matrix-product module, which keeps the float32 compute type; None without CuPy."""
    if "cupy" not in sys.modules:
        return None
    try:
        from cupy._core import _routines_linalg  # private: where CuPy keeps the compute type

        return _routines_linalg
    except Exception:
        return None


def _cupy_compute_type(notes):
    """The compute type CuPy's float32 products use now (decided from ``CUPY_TF32`` if no
    product has run yet), or None without CuPy."""
    linalg = _cupy_linalg()
    try:
        return None if linalg is None else linalg.get_compute_type("float32")
    except Exception as exc:
        notes.append(f"CuPy's float32 compute type could not be read ({exc})")
        return None


def _set_cupy_compute_type(value, notes):
    """Set CuPy's kept float32 compute type: True (TF32), False (default), or a saved type."""
    linalg = _cupy_linalg()
    if linalg is None or value is None:
        return
    if isinstance(value, bool):
        value = linalg.COMPUTE_TYPE_TF32 if value else linalg.COMPUTE_TYPE_DEFAULT
    try:
        linalg.set_compute_type("float32", value)
    except Exception as exc:
        notes.append(f"CuPy's float32 compute type could not be set ({exc}); CUPY_TF32 "
                     "applies only if CuPy has run no float32 product yet")


@contextlib.contextmanager
def _torch_tf32(torch, enabled):
    matmul = torch.backends.cuda.matmul
    if _has_fp32_precision(torch):
        old = matmul.fp32_precision
        matmul.fp32_precision = "tf32" if enabled else "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = old
        return
    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


def _has_fp32_precision(torch):
    """Whether this PyTorch has the per-backend precision API (2.9 and later)."""
    try:
        return isinstance(torch.backends.cuda.matmul.fp32_precision, str)
    except (AttributeError, RuntimeError):
        return False


def _torch_matmul_precision(torch):
    if _has_fp32_precision(torch):
        return torch.backends.cuda.matmul.fp32_precision
    return torch.get_float32_matmul_precision()


def _import_torch():
    try:
        import torch
    except Exception:  # not installed, or a broken install: nothing to set
        return None
    return torch
