"""The reference backend: plain NumPy, no compiled code of ours. It is the specification the
compiled backend is tested against, and the fallback when the extension is missing. Every
function here has a twin of the same name and signature in nnfast._kernels."""
from __future__ import annotations

import numpy as np

__all__ = ["gemm"]

_FLOATS = (np.float32, np.float64)


def _float_array(fn: str, name: str, x, ndim: int, dtype=None) -> np.dtype:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in _FLOATS:
        raise TypeError(f"{fn}: {name} must have dtype float32 or float64, got {x.dtype}")
    if x.ndim != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got {x.ndim}-D with shape {x.shape}")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{fn}: {name} must have dtype {dtype} like the other operands, "
                        f"got {x.dtype}")
    return x.dtype


def _check_out(fn: str, name: str, out, shape: tuple, dtype, inputs: tuple) -> None:
    _float_array(fn, name, out, len(shape), dtype)
    if out.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{fn}: {name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{fn}: {name} is read-only; pass a writeable array")
    for x in inputs:
        if x is not None and out.size and np.may_share_memory(out, x):
            raise ValueError(f"{fn}: {name} overlaps an input array; pass a separate buffer")


def gemm(a, b, out=None, alpha=1.0, beta=0.0):
    """out = alpha * a @ b + beta * out, for 2-D float32/float64 a (m, k) and b (k, n).

    beta == 0 overwrites out (NaN in out is ignored, as in BLAS); out=None allocates.
    """
    dtype = _float_array("gemm", "a", a, 2)
    _float_array("gemm", "b", b, 2, dtype)
    m, k = a.shape
    if b.shape[0] != k:
        raise ValueError(f"gemm: a has shape {a.shape} and b has shape {b.shape}; "
                         f"a.shape[1] must equal b.shape[0]")
    n = b.shape[1]
    if out is None:
        if beta != 0.0:
            raise ValueError("gemm: beta must be 0 when out is None (there is no C to scale)")
        out = np.empty((m, n), dtype=dtype)
    else:
        _check_out("gemm", "out", out, (m, n), dtype, (a, b))
    # As in BLAS: alpha == 0 does not read a or b; beta == 0 does not read out.
    prod = np.matmul(a, b) if alpha != 0.0 else np.zeros((m, n), dtype)
    if alpha not in (0.0, 1.0):
        prod *= dtype.type(alpha)
    if beta == 0.0:
        out[...] = prod
    else:
        out *= dtype.type(beta)
        out += prod
    return out
