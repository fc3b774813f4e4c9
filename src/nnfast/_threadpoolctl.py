"""threadpoolctl sees nnfast: ``threadpool_info()`` lists its threads and
``threadpool_limits(n)`` (or ``user_api="nnfast"``) limits them through
:func:`nnfast.set_num_threads`, restoring the count on exit.

threadpoolctl (>= 3.5) matches a controller class to a loaded shared library by its filename
and exported symbols: nnfast's is the extension ``nnfast/_native/_kernels.*.so``, which exports
``nnf_pool_workers``. The thread count itself lives in Python (nnfast._threads), so the
controller reads and sets it there; from the library it reads only the active runtime.

The controller is registered when threadpoolctl is imported: at once if it already was when
nnfast is imported, otherwise by a finder on ``sys.meta_path`` that registers it right after
threadpoolctl's module has run. So ``import nnfast`` never imports threadpoolctl, whether it is
installed or not. Without the compiled extension there is no library to match, so nothing is
listed (the reference backend has no thread pool of its own).
"""
from __future__ import annotations

import re
import sys
import warnings

from nnfast import _threads
from nnfast._version import __version__

USER_API = "nnfast"
MIN_VERSION = (3, 5)  # LibController.check_symbols and the current constructor


class _InternalApi:
    """``internal_api``: "nnfast-pool" or "nnfast-openmp", the runtime active when asked (the
    class-level value, which threadpoolctl.register records, is the default runtime)."""

    def __get__(self, controller, owner=None) -> str:
        if controller is None:
            return "nnfast-pool"
        try:
            _threads.ensure_runtime()   # NNFAST_THREADING is applied on first use
        except ValueError:
            pass    # a bad NNFAST_* variable is reported by nnfast's own first use
        get = getattr(controller.dynlib, "nnf_get_threading", None)
        return "nnfast-openmp" if get is not None and get() == 1 else "nnfast-pool"  # enum


def _controller_class(tpc):
    class NnfastController(tpc.LibController):
        user_api = USER_API
        internal_api = _InternalApi()
        filename_prefixes = ("_kernels",)
        check_symbols = ("nnf_pool_workers", "nnf_get_threading", "nnf_have_openmp")

        def get_num_threads(self) -> int:
            return _threads.get_num_threads()

        def set_num_threads(self, num_threads) -> None:
            # threadpoolctl checks no limit; raising here would leave other libraries limited
            _threads._set(max(1, int(num_threads)), "threadpoolctl")

        def get_version(self) -> str:
            return __version__

    NnfastController.__qualname__ = "NnfastController"
    return NnfastController


def register(tpc) -> None:
    """Register nnfast's controller with the threadpoolctl module `tpc` (>= 3.5; older ones are
    left alone). A failure warns and never breaks threadpoolctl's import."""
    m = re.match(r"(\d+)\.(\d+)", getattr(tpc, "__version__", ""))
    if m is None or (int(m[1]), int(m[2])) < MIN_VERSION or not hasattr(tpc, "register"):
        return
    try:
        tpc.register(_controller_class(tpc))
    except Exception as exc:  # a changed threadpoolctl API must not break its import
        warnings.warn(f"nnfast: could not register with threadpoolctl "
                      f"{tpc.__version__}: {exc!r}", RuntimeWarning, stacklevel=2)


class _Loader:
    """threadpoolctl's own loader, then register(); anything else goes to the wrapped one."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        register(module)

    def __getattr__(self, name):  # get_source, get_resource_reader ...
        return getattr(self._loader, name)


class _Finder:
    """On sys.meta_path: finds threadpoolctl with the other finders and wraps its loader.
    Every import of it (a reload, or after it left sys.modules) registers again, on the fresh
    module; other names cost one comparison."""

    def find_spec(self, name, path=None, target=None):
        if name != "threadpoolctl":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                if hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> None:
    """Called by ``import nnfast``."""
    tpc = sys.modules.get("threadpoolctl")
    if tpc is not None:
        register(tpc)
    # Stays in place for good: removing it while another thread walks sys.meta_path would
    # make that thread skip a finder.
    sys.meta_path.insert(0, _Finder())
