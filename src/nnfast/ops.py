"""Public ops, dispatched to the active backend (nnfast.set_backend).

Each function here takes the name, signature and docstring of its reference implementation
(nnfast/backends/reference.py, documented in docs/ops_api.md) and calls the active backend's
function of the same name."""
from __future__ import annotations

import functools
import inspect

from nnfast import backends
from nnfast._matmul import matmul
from nnfast.backends import reference as _reference


def _dispatcher(name: str):
    """A function with the reference's exact parameter list that passes every argument on by
    position to the active backend. Spelled out (not *args, **kwargs) because packing and
    unpacking the arguments cost about as much as a tiny kernel call; both backends share the
    reference's signature (tests/test_compare.py), so position is enough."""
    ref = getattr(_reference, name)
    params = list(inspect.signature(ref).parameters)
    assert all(p.isidentifier() and not p.startswith("_nnf") for p in params)
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD
               for p in inspect.signature(ref).parameters.values())
    arglist = ", ".join(params)
    src = (f"def {name}({arglist}):\n"
           f"    return _nnf_state['module'].{name}({arglist})\n")
    namespace = {"_nnf_state": backends._state}
    exec(src, namespace)
    op = namespace[name]
    if isinstance(ref, type):   # a class (MLPPlan): the active backend's class is built
        op.__defaults__ = tuple(p.default for p in inspect.signature(ref).parameters.values()
                                if p.default is not p.empty) or None
        return functools.update_wrapper(op, ref, updated=())
    op.__defaults__ = ref.__defaults__
    return functools.wraps(ref)(op)


for _name in _reference.__all__:
    globals()[_name] = _dispatcher(_name)

__all__ = ["matmul"] + list(_reference.__all__)
del _name


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
