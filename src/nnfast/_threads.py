"""One thread count for the whole process. Default, first rule that applies:
NNFAST_NUM_THREADS, OMP_NUM_THREADS, else the CPUs this process may run on (affinity mask,
capped by its cgroup's CPU quota) divided among the ranks an MPI launcher put on this node."""
from __future__ import annotations

import _thread  # not threading: `import nnfast` would pay ~1 ms for it
import contextlib
import math
import numbers
import os
import sys
import warnings

from nnfast import _cpus
from nnfast._cpus import available_cpus

__all__ = ["available_cpus", "blas_limited", "default_threads", "get_num_threads",
           "set_num_threads", "threads_source"]

# None until first read: `import nnfast` reads no environment variable (the default and its
# NNFAST_NUM_THREADS warning come at the first get_num_threads, see backends._Unresolved)
_state = {"n": None, "source": None}
_listeners = []  # callables(n) told about every change (the compiled backend)
# callables that apply the runtime's environment settings (backends._ensure, handed down so
# this floor imports no backend); run before anyone inspects the runtime from outside
_first_use = []


def ensure_runtime() -> None:
    """Apply NNFAST_* settings now if no op has yet; raises their ValueError."""
    for fn in _first_use:
        fn()


MAX_THREADS = 256  # the thread pool's limit (csrc/runtime/par.h NNF_MAX_THREADS)


def _validate(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"{what}: the thread count must be an integer >= 1, got {n!r}")
    if n < 1 or n > MAX_THREADS:
        raise ValueError(f"{what}: the thread count must be in [1, {MAX_THREADS}], got {n}")
    return int(n)


def set_num_threads(n: int) -> None:
    """Set the number of threads every nnfast kernel may use.

    >>> import nnfast
    >>> nnfast.set_num_threads(1)
    >>> nnfast.get_num_threads()
    1
    """
    _set(_validate(n, "set_num_threads"), "set_num_threads")


def _set(n: int, source: str) -> None:
    _state.update(n=n, source=source)
    for fn in _listeners:
        fn(n)


def get_num_threads() -> int:
    """The thread count nnfast kernels use."""
    if _state["n"] is None:
        _state["n"], _state["source"] = default_threads()
    return _state["n"]


def threads_source() -> str:
    """Where the current thread count came from: "NNFAST_NUM_THREADS", "OMP_NUM_THREADS",
    "affinity", "cgroup", "mpi-local-ranks", "set_num_threads" or "threadpoolctl"."""
    get_num_threads()
    return _state["source"]


def default_threads(environ=None, cgroup_root: str | None = None,
                    proc_cgroup: str | None = None) -> tuple[int, str]:
    """The thread count a process starts with, and the rule that chose it.

    NNFAST_NUM_THREADS, then OMP_NUM_THREADS (its first entry) win. Otherwise the CPUs in the
    affinity mask, capped by the CPU quota of the process's cgroup ("cgroup"), then divided
    among the MPI ranks on this node ("mpi-local-ranks", at least 1 each; see
    nnfast._cpus.mpi_local_ranks). ``environ`` and the cgroup paths are for tests.

    >>> from nnfast._threads import default_threads
    >>> default_threads({"NNFAST_NUM_THREADS": "3", "OMP_NUM_THREADS": "8"})
    (3, 'NNFAST_NUM_THREADS')
    """
    env = os.environ if environ is None else environ
    for var in ("NNFAST_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            n = env_threads(var, env)
        except ValueError as e:
            warnings.warn(f"nnfast: ignoring {e}", RuntimeWarning, stacklevel=3)
            continue
        if n is not None:
            return n, var
    n, source = _cpus.affinity_cpus(), "affinity"
    quota = _cpus.cgroup_cpu_quota(cgroup_root, proc_cgroup)
    cap = n if quota is None else max(1, math.ceil(quota))  # 1.5 CPUs of quota: 2 threads
    if cap < n:
        n, source = cap, "cgroup"
    ranks = _cpus.mpi_local_ranks(env)
    if ranks > 1:
        n, source = max(1, n // ranks), "mpi-local-ranks"
    return n, source


def env_threads(var: str, environ=None) -> int | None:
    """The thread count set by environment variable ``var`` (its first comma-separated entry,
    as OpenMP reads OMP_NUM_THREADS), None when unset or blank.

    Raises ValueError naming the variable when the value is not an integer in [1, 256].
    The library warns and ignores such a value (as OpenMP does); the `nnfast` command
    refuses it (exit 2)."""
    env = os.environ if environ is None else environ
    raw = env.get(var, "").strip()
    if not raw:
        return None
    try:
        return _validate(int(raw.split(",")[0]), var)
    except ValueError:
        raise ValueError(f"{var}={raw!r}: expected an integer in [1, {MAX_THREADS}]") from None


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


_blas_users = {"count": 0, "controller": None, "original": None}  # blocks of all threads
_blas_depth = {}  # thread id: blocks that thread is inside (under the lock)
_blas_lock = _thread.allocate_lock()


def _blas_after_fork() -> None:
    """A fork child keeps only the forking thread: the others' blocks are gone (one of them
    may have held the lock); the forking thread's own blocks still end in the child."""
    global _blas_lock
    _blas_lock = _thread.allocate_lock()
    me = _thread.get_ident()
    depth = _blas_depth.get(me, 0)
    _blas_depth.clear()
    if depth:
        _blas_depth[me] = depth
    else:
        _blas_users.update(controller=None, original=None)
    _blas_users["count"] = depth


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_blas_after_fork)


@contextlib.contextmanager
def blas_limited():
    """Context manager that keeps NumPy's BLAS single-threaded while nnfast's kernels run.

    nnfast's pool and OpenBLAS's pool both busy-wait between calls; when a training loop
    mixes the two (a NumPy dot for a metric, say) each steals cores from the other. Needs
    threadpoolctl (installed with scikit-learn, or `pip install threadpoolctl`); without it
    this does nothing.

    The BLAS limit is process-wide, so the blocks of all threads count as one: the first to
    enter sets it, the last to leave restores what the first one found. (Each block restoring
    its own view would leave BLAS at 1 thread after overlapping fits in two threads.)
    """
    with _blas_lock:
        if _blas_users["count"] == 0:
            controller = _blas_controller()
            if controller is not None:
                original = [d for d in controller.info() if d["user_api"] == "blas"]
                controller.limit(limits=1, user_api="blas")
                _release_openblas()
                _blas_users.update(controller=controller, original=original)
        _blas_users["count"] += 1
        me = _thread.get_ident()
        _blas_depth[me] = _blas_depth.get(me, 0) + 1
    try:
        yield
    finally:
        with _blas_lock:
            if _blas_depth[me] == 1:
                del _blas_depth[me]
            else:
                _blas_depth[me] -= 1
            _blas_users["count"] -= 1
            controller = _blas_users["controller"]
            if _blas_users["count"] == 0 and controller is not None:
                controller.limit(limits=_blas_users["original"])
                _release_openblas()
                _blas_users.update(controller=None, original=None)


def _release_openblas() -> None:
    """threadpoolctl 3.8 lets only the thread that last set a pthreads OpenBLAS's limit set it
    again, until that thread leaves its threadpool_limits block. blas_limited sets outside
    such a block and may restore from another thread, so it lets go at once."""
    import threadpoolctl
    openblas = getattr(threadpoolctl, "OpenBLASController", None)
    release = getattr(openblas, "clear_controlling_thread", None)
    if release is not None:
        release()
