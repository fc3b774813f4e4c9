"""nnfast.matmul: a drop-in for numpy.matmul whose float32/float64 work runs on our GEMM.

Anything our kernel does not cover (other dtypes, subclasses, a mismatched `out`, invalid
shapes) is handed to numpy.matmul, so values, dtypes and exceptions are NumPy's own."""
from __future__ import annotations

import numpy as np

from nnfast import backends

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

try:
    from nnfast._native._kernels import matmul2d as _matmul2d
except ImportError:  # no extension: the "c" backend cannot be active either
    _matmul2d = None


def matmul(a, b, out=None):
    """Matrix product of two arrays, exactly like :func:`numpy.matmul`.

    float32/float64 products (after NumPy's type promotion) run on the active nnfast backend;
    transposed and Fortran-ordered operands are read in place.

    >>> import numpy as np, nnfast
    >>> nnfast.matmul(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)).shape
    (2, 4)
    """
    # Fast path: a 2-D float product on the compiled backend is checked and run in Cython.
    if out is None and backends._state["name"] == "c":
        res = _matmul2d(a, b)
        if res is not NotImplemented:
            return res
    return _matmul_general(a, b, out)


def _matmul_general(a, b, out):
    if isinstance(a, np.ndarray) and type(a) is not np.ndarray:
        return np.matmul(a, b, out=out)  # subclasses keep NumPy's own semantics
    if isinstance(b, np.ndarray) and type(b) is not np.ndarray:
        return np.matmul(a, b, out=out)
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if a_arr.ndim == 0 or b_arr.ndim == 0:
        return np.matmul(a_arr, b_arr, out=out)  # raises NumPy's ValueError
    try:
        dtype = np.result_type(a_arr, b_arr)
    except TypeError:
        return np.matmul(a_arr, b_arr, out=out)
    if dtype not in _FLOATS:
        return np.matmul(a_arr, b_arr, out=out)
    a2 = a_arr[np.newaxis, :] if a_arr.ndim == 1 else a_arr
    b2 = b_arr[:, np.newaxis] if b_arr.ndim == 1 else b_arr
    if a2.shape[-1] != b2.shape[-2]:
        return np.matmul(a_arr, b_arr, out=out)  # NumPy's mismatch error
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        return np.matmul(a_arr, b_arr, out=out)
    m, n = a2.shape[-2], b2.shape[-1]
    shape = batch + ((m,) if a_arr.ndim > 1 else ()) + ((n,) if b_arr.ndim > 1 else ())
    if out is not None and not (type(out) is np.ndarray and out.dtype == dtype
                                and out.shape == shape and out.flags.writeable):
        return np.matmul(a_arr, b_arr, out=out)  # NumPy casts or raises exactly as it would
    a2 = a2.astype(dtype, copy=False)  # promotion makes new arrays; inputs stay untouched
    b2 = b2.astype(dtype, copy=False)
    direct = (out is not None and out.flags.c_contiguous and out.flags.aligned
              and not np.may_share_memory(out, a_arr) and not np.may_share_memory(out, b_arr))
    res = out if direct else np.empty(shape, dtype)
    _batched_gemm(a2, b2, res.reshape(batch + (m, n)), batch)
    if out is not None:
        if not direct:
            out[...] = res
        return out
    return res[()] if res.ndim == 0 else res


def _batched_gemm(a, b, c, batch):
    gemm = backends.current().gemm
    if not batch:
        gemm(a, b, out=c)
        return
    if c.size == 0:
        return
    m, k = a.shape[-2:]
    # One big GEMM when b is shared and a's stack is one contiguous row block.
    if b.ndim == 2 and a.shape[:-2] == batch and a.flags.c_contiguous:
        rows = c.size // c.shape[-1]
        gemm(a.reshape(rows, k), b, out=c.reshape(rows, c.shape[-1]))
        return
    a_b = np.broadcast_to(a, batch + a.shape[-2:])
    b_b = np.broadcast_to(b, batch + b.shape[-2:])
    for idx in np.ndindex(*batch):
        gemm(a_b[idx], b_b[idx], out=c[idx])
