"""Reference GEMM (plain NumPy): the spec for nnf_gemm_*."""

import numpy as np

from nnfast.backends._ref_checks import _check_out, _float_array

__all__ = ["gemm"]

def gemm(a, b, out=None, alpha=1.0, beta=0.0):
    """out = alpha * a @ b + beta * out, for 2-D float32/float64 a (m, k) and b (k, n).

    beta == 0 overwrites out (NaN in out is ignored, as in BLAS); alpha == 0 reads neither a
    nor b (NaN there is ignored); alpha and beta are compared with 0 after conversion to the
    operands' dtype, as the kernel uses them (float32: |alpha| < 7e-46 is 0, 1e39 is inf).
    out=None allocates.
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
    # As in BLAS: alpha == 0 does not read a or b; beta == 0 does not read out. Both are
    # taken in the operands' dtype, as the kernel does: a float32 alpha of 1e-50 is 0.
    with np.errstate(over="ignore"):
        alpha_t, beta_t = dtype.type(alpha), dtype.type(beta)  # 1e39 is inf in float32
    prod = np.matmul(a, b) if alpha_t != 0 else np.zeros((m, n), dtype)
    if alpha_t not in (0, 1):
        prod *= alpha_t
    if beta_t == 0:
        out[...] = prod
    else:
        out *= beta_t
        out += prod
    return out
