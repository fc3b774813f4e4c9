"""The compiled backend: the Cython wrappers of nnfast._native._kernels under the reference's
names."""
import os

from nnfast import _threads
from nnfast._native import _kernels
from nnfast.backends import reference as _reference

__all__ = list(_reference.__all__)
globals().update({name: getattr(_kernels, name)
                 for name in __all__ + list(_reference.PLANS) + list(_reference.CHECKS)})
PLANS, CHECKS = _reference.PLANS, _reference.CHECKS

_kernels.set_num_threads(_threads.get_num_threads())
_threads._listeners.append(_kernels.set_num_threads)
_kernels.select_isa(os.environ.get("NNFAST_ISA", "").strip().lower() or None)
_kernels.set_threading(os.environ.get("NNFAST_THREADING", "").strip().lower() or "pool")
_spin = os.environ.get("NNFAST_SPIN_US", "").strip()
if _spin:
    try:
        _kernels.set_spin_us(int(_spin))
    except (ValueError, OverflowError):
        raise ValueError(f"NNFAST_SPIN_US: expected microseconds as an integer in [0, 1000000], "
                         f"got {_spin!r}") from None
