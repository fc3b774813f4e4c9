"""Backend registry. "c" is the compiled extension, "python" the plain-NumPy reference; both
export the same functions with the same signatures (nnfast/backends/reference.py is the spec)."""
from __future__ import annotations

import contextlib
import importlib
import os
import warnings

BACKENDS = ("c", "python")
_MODULES = {"c": "nnfast.backends.compiled", "python": "nnfast.backends.reference"}
_state = {"name": None, "module": None}
_compiled_error: list = []  # the ImportError of the extension, when it failed to load


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
    module = _load(name)
    _state["name"], _state["module"] = name, module


def get_backend() -> str:
    """Name of the active backend."""
    return _state["name"]


def current():
    """The active backend module."""
    return _state["module"]


@contextlib.contextmanager
def use_backend(name: str):
    """Run a block on another backend, restoring the previous one afterwards (not thread-safe)."""
    previous = _state["name"]
    set_backend(name)
    try:
        yield current()
    finally:
        set_backend(previous)


def compiled_available() -> bool:
    return not _compiled_error


def _init() -> None:
    try:
        importlib.import_module("nnfast.backends.compiled")
    except ImportError as exc:
        _compiled_error.append(exc)
    wanted = os.environ.get("NNFAST_BACKEND", "").strip()
    if wanted:
        set_backend(wanted)  # unknown names raise ValueError with the valid ones
        return
    if _compiled_error:
        warnings.warn(f"nnfast: compiled extension not available ({_compiled_error[0]}); "
                      "using the pure-Python reference backend", RuntimeWarning, stacklevel=3)
        set_backend("python")
    else:
        set_backend("c")


_init()
