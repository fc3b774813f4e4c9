"""Argument checks shared by the reference functions; messages match the Cython layer's
(nnfast/_native/_validate.pxi) so both backends fail the same way."""
from __future__ import annotations

import math
import operator

import numpy as np

_FLOATS = (np.float32, np.float64)


def _native(dtype: np.dtype) -> np.dtype:
    """dtype in native byte order. Inputs in either order are read as NumPy reads them (the
    compiled backend copies them); outputs must be native (_check_behaved); results are."""
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def _read(a):
    """An input as the kernels read it: a itself when native and aligned, else a native aligned
    copy (as the compiled backend's _contig). NumPy's matmul hands only such operands to BLAS,
    so a byte-swapped one would be summed in another order than its native twin."""
    if a is None or (a.dtype.isnative and a.flags.aligned):
        return a
    return np.array(a, dtype=_native(a.dtype))


def _float_array(fn: str, name: str, x, ndim: int, dtype=None) -> np.dtype:
    """x: a float32/float64 array (either byte order) of ndim dimensions, of `dtype` when given;
    returns its native dtype."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    native = _native(x.dtype)
    if native not in _FLOATS:
        raise TypeError(f"{fn}: {name} must have dtype float32 or float64, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got {x.ndim}-D with shape {x.shape}")
    if dtype is not None and native != dtype:
        raise TypeError(f"{fn}: {name} must have dtype {dtype} like the other operands, "
                        f"got {x.dtype}")
    return native


def _interval(lo, hi, lo_open: bool, hi_open: bool) -> str:
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


def _inside(v: float, lo, hi, lo_open: bool, hi_open: bool) -> bool:
    return not math.isnan(v) and (lo is None or (v > lo if lo_open else v >= lo)) and \
        (hi is None or (v < hi if hi_open else v <= hi))


def _real_param(fn: str, name: str, value, lo=None, hi=None, lo_open=False, hi_open=False,
                dtype=None) -> float:
    """A real hyperparameter in the interval lo..hi (open ends flagged); NaN is always rejected.
    dtype float32: the value is used in float32, so the rounded value must lie in the interval
    too (eps=1e-50 rounds to 0, beta1=1-1e-9 to 1, delta=1e39 to inf)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}") from None
    if not _inside(v, lo, hi, lo_open, hi_open):
        raise ValueError(f"{fn}: {name} must be {_interval(lo, hi, lo_open, hi_open)}, got {v!r}")
    if dtype is not None and np.dtype(dtype) == np.float32:
        with np.errstate(over="ignore"):
            r = float(np.float32(v))
        if not _inside(r, lo, hi, lo_open, hi_open):
            raise ValueError(f"{fn}: {name}={v!r} is out of range for float32: it rounds to "
                             f"{r!r}, and {name} must be {_interval(lo, hi, lo_open, hi_open)}")
    return v


def _step_param(fn: str, value) -> int:
    """The update count of an optimizer step: an integer >= 1."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: step must be an integer, got {type(value).__name__}")
    try:
        s = operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: step must be an integer, got {type(value).__name__}") from None
    if s < 1 or s >= 2**63:
        raise ValueError(f"{fn}: step must be in [1, 2**63) (updates so far, this one "
                         f"included), got {s}")
    return s


def _check_out(fn: str, name: str, out, shape: tuple, dtype, inputs: tuple) -> None:
    _float_array(fn, name, out, len(shape), dtype)
    _check_out_layout(fn, name, out, shape, inputs)


def _check_behaved(fn: str, name: str, out) -> None:
    """A given output is written in place, so it cannot be copied: it must be in native byte
    order (TypeError) and aligned (ValueError), as C needs (nnfast/_native/_validate.pxi)."""
    if out.dtype.isnative and out.flags.aligned:
        return
    want = f"{fn}: {name} must be an aligned native-byte-order {out.dtype.name} array"
    if not out.dtype.isnative:
        raise TypeError(f"{want}, got dtype {out.dtype.str}")
    raise ValueError(f"{want}, got one whose data or strides are not multiples of "
                     f"{out.dtype.alignment} bytes")


def _check_out_layout(fn: str, name: str, out, shape: tuple, inputs: tuple) -> None:
    """An output buffer: native and aligned, exact shape, C-contiguous, writeable, not
    overlapping the inputs."""
    _check_behaved(fn, name, out)
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
    """labels: int32/int64 1-D array (either byte order) of length n with every value in
    [0, n_classes)."""
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(labels).__name__}")
    if _native(labels.dtype) not in (np.int32, np.int64):
        raise TypeError(f"{fn}: {name} must have dtype int32 or int64, got {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"{fn}: {name} must have shape ({n},), got {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"{fn}: {name} must lie in [0, {n_classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")


def all_finite(x) -> bool:
    """Whether every value of the ndarray x is finite (no NaN, no +-Inf): the engine's check of
    predict / fit input (nnfast/engine/checks.py). The compiled twin (nnfast/_native/
    _validate.pxi) reads a C-contiguous float x in place without a boolean array. TypeError
    for a non-ndarray x.

    Up to 65536 values: ``np.isfinite(x).all()``. Larger float x: a NaN or Inf value makes the
    sum NaN or Inf, so a finite sum proves every value finite without a boolean array of
    x.size bytes; only a sum that overflowed from finite values needs the exact test."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"all_finite: x must be a numpy.ndarray, got {type(x).__name__}")
    if x.size > _SMALL_FINITE_CHECK and x.dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            total = np.add.reduce(x, axis=None)
        if math.isfinite(total):
            return True
    return bool(np.isfinite(x).all())


_SMALL_FINITE_CHECK = 1 << 16   # values: up to here np.isfinite's boolean array is small


def servable_input(x, dtype, shape) -> bool:
    """Whether x can go to an inference plan as it is: an exact numpy.ndarray of ``dtype``
    (float32 or float64, native byte order), C-contiguous, aligned, of at least one sample of
    per-sample shape ``shape`` (a tuple), every value finite. False for anything else, never
    an error: the engine then takes its general path, which converts x or raises
    (nnfast/engine/inference.py, ``servable``). The compiled twin makes the same tests in
    C-level checks (nnfast/_native/_validate.pxi)."""
    if (type(x) is not np.ndarray or not isinstance(dtype, np.dtype) or type(shape) is not tuple
            or dtype.type not in _FLOATS or not dtype.isnative or x.dtype != dtype
            or x.ndim != len(shape) + 1 or not x.size or x.shape[1:] != shape):
        return False
    flags = x.flags
    return flags.c_contiguous and flags.aligned and all_finite(x)
