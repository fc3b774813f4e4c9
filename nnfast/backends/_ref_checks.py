"""Argument checks shared by the reference functions; messages match the Cython layer's
(nnfast/_validate.pxi) so both backends fail the same way."""
from __future__ import annotations

import math
import operator

import numpy as np

_FLOATS = (np.float32, np.float64)


def _float_array(fn: str, name: str, x, ndim: int, dtype=None) -> np.dtype:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if not x.dtype.isnative:
        raise TypeError(f"{fn}: {name} must be in native byte order, got dtype {x.dtype.str}")
    if x.dtype not in _FLOATS:
        raise TypeError(f"{fn}: {name} must have dtype float32 or float64, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got {x.ndim}-D with shape {x.shape}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{fn}: {name} must have dtype {dtype} like the other operands, "
                        f"got {x.dtype}")
    return x.dtype


def _interval(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _real_param(fn: str, name: str, value, lo=None, hi=None, lo_open=False, hi_open=False) -> float:
    """A real hyperparameter in the interval lo..hi (open ends flagged); NaN is always rejected."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}") from None
    ok = not math.isnan(v) and (lo is None or (v > lo if lo_open else v >= lo)) and \
        (hi is None or (v < hi if hi_open else v <= hi))
    if not ok:
        raise ValueError(f"{fn}: {name} must be {_interval(lo, hi, lo_open, hi_open)}, got {v!r}")
    return v


def _step_param(fn: str, value) -> int:
    """The update count of an optimizer step: an integer >= 1."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: step must be an integer, got {type(value).__name__}")
    try:
        s = operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: step must be an integer, got {type(value).__name__}") from None
    if s < 1:
        raise ValueError(f"{fn}: step must be >= 1 (updates so far, this one included), got {s}")
    return s


def _check_out(fn: str, name: str, out, shape: tuple, dtype, inputs: tuple) -> None:
    _float_array(fn, name, out, len(shape), dtype)
    _check_out_layout(fn, name, out, shape, inputs)


def _check_out_layout(fn: str, name: str, out, shape: tuple, inputs: tuple) -> None:
    """An output buffer: exact shape, C-contiguous, writeable, not overlapping the inputs."""
    if out.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{fn}: {name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{fn}: {name} is read-only; pass a writeable array")
    for x in inputs:
        if x is not None and out.size and np.may_share_memory(out, x):
            raise ValueError(f"{fn}: {name} overlaps an input array; pass a separate buffer")


def _check_labels(fn: str, name: str, labels, n: int, n_classes: int) -> None:
    """labels: int32/int64 1-D array of length n with every value in [0, n_classes)."""
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(labels).__name__}")
    if labels.dtype not in (np.int32, np.int64):
        raise TypeError(f"{fn}: {name} must have dtype int32 or int64, got {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"{fn}: {name} must have shape ({n},), got {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{fn}: {name} must lie in [0, {n_classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
