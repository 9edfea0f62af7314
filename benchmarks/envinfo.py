"""The environment a run measured in (``env`` of the JSON), and the thread settings it runs under:
library versions, CPU model, BLAS pools, TF32 state (:mod:`.tf32`), device names, the driver."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shutil
import subprocess
import sys

from .tf32 import tf32_state

ENV_KEYS = (
    "date", "python", "platform", "versions", "cpu_model", "cpu_count", "devices", "blas",
    "threads", "tf32", "dtype", "ceilings", "method", "loadavg", "argv",
)


def collect_env(args, devices, method, skipped, tf32_note=""):
    """The run's ``env``: every key of :data:`ENV_KEYS` (``ceilings`` still empty), ``skipped``.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options (``threads``, ``tf32``, ``dtype`` and the rest for ``argv``).
    devices : list of str
        Device specs measured.
    method : dict
        How the measurements are taken.
    skipped : iterable of str
        Why a peer or device was left out.
    tf32_note : str
        What :func:`tf32_mode` had to say.
    """
    torch = sys.modules.get("torch")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": library_versions(),
        "cpu_model": _device_name("cpu"),  # the NumPy backend's name for it: the CPU model
        "cpu_count": os.cpu_count(),
        "devices": device_names(devices),
        "blas": blas_info(),
        "threads": {"requested": args.threads,
                    "torch": torch.get_num_threads() if torch is not None else None},
        "tf32": tf32_state(args.tf32, tf32_note),
        "dtype": args.dtype,
        "ceilings": {},
        "method": method,
        "loadavg": {"start": loadavg()},
        "argv": [f"{k}={v}" for k, v in vars(args).items() if v not in (None, False)],
        "skipped": sorted(skipped),
    }


def library_versions():
    """Versions of bpgpu and of every library a run may use, None where absent; for the CUDA
    libraries also the CUDA runtime each was built with (``torch_cuda``, ``cupy_cuda``)."""
    out = {name: _version(dist) for name, dist in (
        ("bpgpu", "bpgpu"), ("numpy", "numpy"), ("torch", "torch"), ("sklearn", "scikit-learn"),
        ("array_api_compat", "array-api-compat"), ("threadpoolctl", "threadpoolctl"),
        ("matplotlib", "matplotlib"), ("jax", "jax"), ("jaxlib", "jaxlib"))}
    cupy = sys.modules.get("cupy")
    out["cupy"] = getattr(cupy, "__version__", None) if cupy else None
    if cupy is not None:
        with contextlib.suppress(Exception):
            out["cupy_cuda"] = _cuda_version(cupy.cuda.runtime.runtimeGetVersion())
    torch = sys.modules.get("torch")
    if torch is not None:
        out["torch_cuda"] = getattr(torch.version, "cuda", None)
    return out


def _cuda_version(number):
    """CUDA's version integer (``13000``) as text (``"13.0"``)."""
    return f"{number // 1000}.{number % 1000 // 10}"


def _version(dist):
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def blas_info():
    """The BLAS/OpenMP pools loaded in this process (threadpoolctl), with their thread counts."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"error": "threadpoolctl is not installed"}]
    return [{k: d.get(k) for k in ("user_api", "internal_api", "num_threads", "version",
                                   "threading_layer", "architecture")}
            | {"library": os.path.basename(d.get("filepath") or "")}
            for d in threadpool_info()]


def loadavg():
    """The 1, 5 and 15 minute load averages, or None where the system has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def device_names(devices):
    """``{spec: device name}``, with the NVIDIA driver (:func:`nvidia_driver`) where a CUDA
    device is measured."""
    names = {d: _device_name(d) for d in devices}
    if "cuda" in "".join(devices):
        with contextlib.suppress(Exception):
            names["nvidia_driver"] = nvidia_driver()
    return names


def _device_name(spec):
    import bpgpu

    try:
        return bpgpu.get_backend(spec).status().device_name
    except Exception as exc:
        return f"unknown ({exc})"


def nvidia_driver():
    """The NVIDIA driver: its release and the GPUs it shows (``nvidia-smi``), and the newest CUDA
    it runs (``cuda``, from CuPy where loaded). The CUDA runtime each library was built with is
    a library's, not the driver's: it is in ``versions`` (``torch_cuda``, ``cupy_cuda``)."""
    out = {}
    smi = shutil.which("nvidia-smi")
    if smi:
        rows = subprocess.run([smi, "--query-gpu=driver_version,name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30,
                              check=True).stdout.splitlines()
        rows = [[part.strip() for part in row.split(",", 1)] for row in rows if "," in row]
        out["version"] = rows[0][0] if rows else None
        out["gpus"] = [name for _, name in rows]
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        with contextlib.suppress(Exception):
            out["cuda"] = _cuda_version(cupy.cuda.runtime.driverGetVersion())
    return out


def try_import(name):
    """The module, or None when it is not installed or fails to import."""
    try:
        return __import__(name)
    except Exception:
        return None


@contextlib.contextmanager
def limit_threads(n):
    """Every BLAS/OpenMP pool (threadpoolctl) and PyTorch at ``n`` threads; None: as they are."""
    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    with contextlib.ExitStack() as stack:
        if n is not None:
            try:
                from threadpoolctl import threadpool_limits

                stack.enter_context(threadpool_limits(limits=n))
            except ImportError:
                print("--threads: threadpoolctl is not installed; BLAS threads left as they are",
                      file=sys.stderr)
            if torch is not None:
                torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch is not None and n is not None:
                torch.set_num_threads(old)


def peer_labels(hw, peers, skipped):
    """``[(impl, device label)]`` of the peers that can run on hardware ``hw`` (``cpu``,
    ``cuda:N``); why any other is left out goes into the set ``skipped``."""
    out = []
    for peer in peers:
        label = _PEER_LABELS[peer](hw, skipped)
        if label is not None:
            out.append((peer, label))
    return out


def _torch_label(hw, skipped):
    torch = try_import("torch")
    if torch is None:
        skipped.add("torch peer skipped: PyTorch is not installed")
    elif hw == "cpu":
        return "torch:cpu"
    elif torch.cuda.is_available() and int(hw.split(":")[1]) < torch.cuda.device_count():
        return "torch:" + hw
    else:
        skipped.add(f"torch peer skipped on {hw}: PyTorch sees no such CUDA device")
    return None


def _sklearn_label(hw, skipped):
    if hw != "cpu":
        return None  # scikit-learn runs on the CPU only: nothing to say
    if try_import("sklearn") is None:
        skipped.add("sklearn peer skipped: scikit-learn is not installed")
        return None
    return "cpu"


def _raw_label(hw, skipped):
    if hw == "cpu" or _cupy_usable():
        return hw
    skipped.add(f"raw peer skipped on {hw}: CuPy is not usable here")
    return None


def _cupy_usable():
    cupy = try_import("cupy")
    try:
        return cupy is not None and cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _jax_label(hw, skipped):
    import bpgpu

    spec = "jax:cpu" if hw == "cpu" else f"jax:{hw}"
    try:
        return bpgpu.get_backend(spec).name
    except bpgpu.DeviceUnavailableError as exc:
        skipped.add(f"jax peer skipped on {hw}: {exc}")
    return None


_PEER_LABELS = {"torch": _torch_label, "sklearn": _sklearn_label, "raw": _raw_label,
                "jax": _jax_label}
