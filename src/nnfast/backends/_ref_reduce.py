"""Reference reductions (plain NumPy): the spec for the compiled twins."""
from __future__ import annotations

import numpy as np

from nnfast.backends._ref_checks import (
    _check_labels,
    _check_out,
    _check_out_layout,
    _float_array,
    _native,
)

__all__ = ["accuracy", "argmax_rows", "column_sums"]


def _check_int_out(fn: str, name: str, out, shape: tuple, inputs: tuple) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(out).__name__}")
    if _native(out.dtype) != np.int64:
        raise TypeError(f"{fn}: {name} must have dtype int64, got {out.dtype}")
    _check_out_layout(fn, name, out, shape, inputs)


def _check_rows(fn: str, name: str, x) -> None:
    _float_array(fn, name, x, 2)
    if x.shape[1] == 0:
        raise ValueError(f"{fn}: {name} must have at least one column, got shape {x.shape}")


def argmax_rows(x, out=None):
    """Index of the first maximum of each row of x (N, M), int64 (N,); M >= 1.
    NaN counts as the maximum (the first NaN of a row wins), as in np.argmax.

    >>> argmax_rows(np.array([[0.0, 2.0, 2.0], [5.0, 1.0, 0.0]]))
    array([1, 0])
    """
    fn = "argmax_rows"
    _check_rows(fn, "x", x)
    if out is None:
        out = np.empty(x.shape[0], np.int64)
    else:
        _check_int_out(fn, "out", out, (x.shape[0],), (x,))
    out[...] = np.argmax(x, axis=1)
    return out


def accuracy(logits, labels):
    """Fraction (Python float) of rows i with argmax_rows(logits)[i] == labels[i].

    logits (N, C) with N >= 1; labels int32/int64 (N,) in [0, C).

    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    fn = "accuracy"
    _check_rows(fn, "logits", logits)
    n, c = logits.shape
    if n == 0:
        raise ValueError(f"{fn}: logits must have at least one row, got shape {logits.shape}")
    _check_labels(fn, "labels", labels, n, c)
    return int(np.count_nonzero(np.argmax(logits, axis=1) == labels)) / n


def column_sums(x, out=None):
    """out[j] = sum_i x[i, j] for x (N, M); accumulated in float64, rows in order (as the C),
    then rounded to x's dtype, out (M,). So float32 sums are accurate and cannot overflow
    (3e38 + 3e38 - 3e38 = 3e38; ±inf only when the sum itself is past the float32 range), and a
    float64 sum that overflows does so as in the C (1e308 + 1e308 - 1e308 - 1e308 = inf, where
    NumPy's pairwise np.sum gives inf - inf = NaN).

    >>> column_sums(np.array([[1.0, 2.0], [3.0, 4.0]]))
    array([4., 6.])
    """
    fn = "column_sums"
    dtype = _float_array(fn, "x", x, 2)
    m = x.shape[1]
    if out is None:
        out = np.empty(m, dtype)
    else:
        _check_out(fn, "out", out, (m,), dtype, (x,))
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to ±inf is the answer
        out[...] = np.cumsum(x, axis=0, dtype=np.float64)[-1] if x.shape[0] else 0
    return out
