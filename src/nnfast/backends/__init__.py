"""Backend registry. "c" is the compiled extension, "python" the plain-NumPy reference; both
export the same functions with the same signatures (nnfast/backends/reference.py is the spec)."""
from __future__ import annotations

import contextlib
import importlib
import os
import warnings

from nnfast import _threads

BACKENDS = ("c", "python")
_MODULES = {"c": "nnfast.backends.compiled", "python": "nnfast.backends.reference"}
_compiled_error: list = []  # the ImportError of the extension, when it failed to load


class _Unresolved:
    """Stands in for the backend module until the first op: `import nnfast` reads no
    environment variable, so a bad NNFAST_BACKEND / NNFAST_ISA / NNFAST_THREADING /
    NNFAST_SPIN_US cannot break the import itself (the `nnfast` command, which lives inside
    the package, reports it as a one-line error). The first use raises the ValueError naming
    the variable, and raises it again on every later use until the variable is fixed."""

    def __getattr__(self, name):
        _ensure()
        return getattr(_state["module"], name)


_state = {"name": None, "module": _Unresolved()}


def _load(name: str):
    if name not in _MODULES:
        valid = ", ".join(map(repr, BACKENDS))
        raise ValueError(f"unknown backend {name!r}; valid backends: {valid}")
    if name == "c" and _compiled_error:
        raise ImportError(f"the compiled backend 'c' is unavailable: {_compiled_error[0]}; "
                          "reinstall nnfast with a C compiler (pip install .)")
    return importlib.import_module(_MODULES[name])


def set_backend(name: str) -> None:
    """Select the backend every nnfast op runs on: "c" (compiled) or "python" (NumPy reference).

    >>> import nnfast
    >>> nnfast.set_backend("python"); nnfast.get_backend()
    'python'
    >>> nnfast.set_backend("c")
    """
    _ensure()
    module = _load(name)
    _state["name"], _state["module"] = name, module


def plan(name: str):
    """The active backend's plan builder ``name`` (one of reference.PLANS, e.g.
    ``make_train_step``): like an op, but it returns an object to run many times."""
    _ensure()
    return getattr(_state["module"], name)


def get_backend() -> str:
    """Name of the active backend."""
    _ensure()
    return _state["name"]


def current():
    """The active backend module."""
    _ensure()
    return _state["module"]


def _ensure() -> None:
    """Choose the backend on first use (see _Unresolved)."""
    if _state["name"] is None:
        _init()


@contextlib.contextmanager
def use_backend(name: str):
    """Run a block on another backend, restoring the previous one afterwards (not thread-safe)."""
    previous = get_backend()
    set_backend(name)
    try:
        yield current()
    finally:
        set_backend(previous)


def compiled_available() -> bool:
    _ensure()
    return not _compiled_error


def _missing_extension_message(exc: ImportError) -> str:
    """What happened, in words: the extension file is absent (a source tree never built, the
    usual case), or present but failed to load. Python's own text for the first case can read
    "cannot import name '_kernels' from partially initialized module ... (most likely due to a
    circular import)", which sends people looking for a cycle that is not there."""
    import importlib.util
    native = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_native")
    try:
        spec = importlib.util.find_spec("nnfast._native._kernels")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return (f"nnfast: the compiled extension nnfast._native._kernels is not built: no "
                f"_kernels extension file in {native} (nnfast is imported from a source tree "
                f"that was not compiled; run `python setup.py build_ext --inplace` or "
                f"`pip install .`); using the pure-Python reference backend, which is much "
                f"slower")
    return (f"nnfast: the compiled extension {spec.origin} exists but failed to load "
            f"({type(exc).__name__}: {exc}); rebuild it for this Python and platform "
            f"(`python setup.py build_ext --inplace` or `pip install .`); using the pure-Python "
            f"reference backend, which is much slower")


_threads._first_use.append(_ensure)


def _init() -> None:
    wanted = os.environ.get("NNFAST_BACKEND", "").strip()
    if wanted and wanted not in _MODULES:
        valid = ", ".join(map(repr, BACKENDS))
        raise ValueError(f"NNFAST_BACKEND={wanted!r}: unknown backend; valid backends: {valid}")
    if not _compiled_error:
        try:   # a bad NNFAST_ISA / NNFAST_THREADING / NNFAST_SPIN_US raises ValueError here
            importlib.import_module("nnfast.backends.compiled")
        except ImportError as exc:
            _compiled_error.append(exc)
            warnings.warn(_missing_extension_message(exc), RuntimeWarning, stacklevel=4)
    name = wanted or ("python" if _compiled_error else "c")
    _state["name"], _state["module"] = name, _load(name)
