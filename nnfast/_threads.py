"""One thread count for the whole process: NNFAST_NUM_THREADS, then OMP_NUM_THREADS, then the
CPUs this process may run on (affinity mask and cgroup CPU quota)."""
from __future__ import annotations

import contextlib
import math
import numbers
import os
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


def blas_limited():
    """Context manager that keeps NumPy's BLAS single-threaded while nnfast's kernels run.

    nnfast's OpenMP pool and OpenBLAS's pool both busy-wait between calls; when a training
    loop mixes the two (a NumPy dot for a metric, say) each steals cores from the other.
    Needs threadpoolctl (installed with scikit-learn, or `pip install threadpoolctl`);
    without it this does nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
