"""Reference GEMM (plain NumPy): the spec for nnf_gemm_*."""

import numpy as np

from nnfast.backends._ref_checks import _check_out, _float_array

__all__ = ["gemm"]

def gemm(a, b, out=None, alpha=1.0, beta=0.0):
    """out = alpha * a @ b + beta * out, for 2-D float32/float64 a (m, k) and b (k, n).

    beta == 0 overwrites out (NaN in out is ignored, as in BLAS); out=None allocates.
    beta is used in the operands' dtype, so a beta that rounds to 0 there (1e-50 in float32)
    overwrites too.
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
    with np.errstate(over="ignore"):
        beta_t = dtype.type(beta)  # what the kernel sees (1e39 is inf in float32)
    if beta_t == 0:
        out[...] = prod
    else:
        out *= beta_t
        out += prod
    return out
