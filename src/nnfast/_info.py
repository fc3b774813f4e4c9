"""nnfast.info(): what this installation is and what it will run on."""
from __future__ import annotations

import platform

import numpy as np

from nnfast import _threads, backends
from nnfast._version import __version__


def info() -> dict:
    """Version, backend, threads, OpenMP, CPU features and the GEMM kernel path.

    >>> import nnfast
    >>> sorted(nnfast.info())[:3]
    ['available_cpus', 'backend', 'compiled']
    """
    out = {
        "version": __version__,
        "backend": backends.get_backend(),
        "compiled": backends.compiled_available(),
        "threads": _threads.get_num_threads(),
        "threads_source": _threads.threads_source(),
        "available_cpus": _threads.available_cpus(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    if backends.compiled_available():
        from nnfast._native import _kernels

        rt = _kernels.runtime_info()
        out.update(openmp=rt["openmp"], threading=rt["threading"],
                   cpu_features=rt["cpu_features"],
                   kernel_path=rt["kernel_path"], gemm_blocking=rt["gemm_blocking"])
    else:
        out.update(openmp=False, threading="none", cpu_features=[],
                   kernel_path="numpy (reference backend)",
                   gemm_blocking={})
    return out


def format_info(d: dict) -> str:
    """Readable multi-line form of info()."""
    width = max(map(len, d))
    lines = []
    for key, val in d.items():
        if isinstance(val, list):
            val = ", ".join(val) or "none"
        elif isinstance(val, dict):
            val = "; ".join(f"{k}: " + " ".join(f"{a}={b}" for a, b in v.items())
                            if isinstance(v, dict) else f"{k}={v}" for k, v in val.items())
        elif isinstance(val, bool):
            val = "yes" if val else "no"
        lines.append(f"{key.ljust(width)}  {val}")
    return "\n".join(lines)
