"""Public ops, dispatched to the active backend (nnfast.set_backend).

Each function here takes the name, signature and docstring of its reference implementation
(nnfast/backends/reference.py, documented in docs/ops_api.md) and calls the active backend's
function of the same name."""
from __future__ import annotations

import functools

from nnfast import backends
from nnfast._matmul import matmul
from nnfast.backends import reference as _reference


def _dispatcher(name: str):
    ref = getattr(_reference, name)

    @functools.wraps(ref)
    def op(*args, **kwargs):
        return getattr(backends.current(), name)(*args, **kwargs)

    return op


for _name in _reference.__all__:
    globals()[_name] = _dispatcher(_name)

__all__ = ["matmul"] + list(_reference.__all__)
del _name
