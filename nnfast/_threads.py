"""One thread count for the whole process: NNFAST_NUM_THREADS, then OMP_NUM_THREADS, then the
CPUs this process may run on (affinity mask and cgroup CPU quota)."""
from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import warnings

_state = {"n": 1}
_listeners = []  # callables(n) told about every change (the compiled backend)


def _cgroup_cpu_limit() -> int | None:
    """CPU quota of a cgroup v2 (cpu.max) or v1 (cfs quota/period), rounded up; None if unset."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by a cgroup CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return max(1, min(n, limit) if limit else n)


def _validate(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"{what}: the thread count must be an integer >= 1, got {n!r}")
    if n < 1:
        raise ValueError(f"{what}: the thread count must be >= 1, got {n}")
    return int(n)


def set_num_threads(n: int) -> None:
    """Set the number of threads every nnfast kernel may use.

    >>> import nnfast
    >>> nnfast.set_num_threads(1)
    >>> nnfast.get_num_threads()
    1
    """
    n = _validate(n, "set_num_threads")
    _state["n"] = n
    for fn in _listeners:
        fn(n)


def get_num_threads() -> int:
    """The thread count nnfast kernels use."""
    return _state["n"]


def _default_from_env() -> int:
    for var in ("NNFAST_NUM_THREADS", "OMP_NUM_THREADS"):
        raw = os.environ.get(var, "").strip()
        if not raw:
            continue
        try:
            return _validate(int(raw.split(",")[0]), var)
        except ValueError:
            warnings.warn(f"nnfast: ignoring {var}={raw!r}: expected an integer >= 1",
                          RuntimeWarning, stacklevel=3)
    return available_cpus()


_state["n"] = _default_from_env()


_blas = {"key": None, "controller": None}  # the cached threadpoolctl controller and its key


def _blas_controller():
    """A threadpoolctl.ThreadpoolController, rebuilt only when the number of imported modules
    changed (None without threadpoolctl).

    Building one rescans every loaded library (/proc/self/maps: ~3 ms), too slow for each
    fit. New libraries nearly always arrive with an import (torch, scipy.linalg ...), which
    the key catches; one dlopen'ed without any import is picked up at the next import.
    threadpoolctl's own get_cached_controller (3.8+) uses the same key.
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    key = len(sys.modules)
    controller = _blas["controller"]
    if controller is None or _blas["key"] != key:
        controller = ThreadpoolController()
        _blas.update(key=key, controller=controller)
    return controller


def blas_limited():
    """Context manager that keeps NumPy's BLAS single-threaded while nnfast's kernels run.

    nnfast's OpenMP pool and OpenBLAS's pool both busy-wait between calls; when a training
    loop mixes the two (a NumPy dot for a metric, say) each steals cores from the other.
    Needs threadpoolctl (installed with scikit-learn, or `pip install threadpoolctl`);
    without it this does nothing. The limit is set on the call and restored when the `with`
    block exits.
    """
    controller = _blas_controller()
    if controller is None:
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")
