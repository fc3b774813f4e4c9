# GEMM wrapper: out = alpha * a @ b + beta * out on 2-D float32/float64 arrays.

def gemm(a, b, out=None, double alpha=1.0, double beta=0.0):
    """out[m, n] = alpha * a[m, k] @ b[k, n] + beta * out. Transposed (Fortran-ordered) operands
    are read in place as op=T; other strided layouts are copied once. out=None allocates
    (beta must then be 0)."""
    cdef int isz = _check_array("gemm", "a", a, 2, 0)
    _check_array("gemm", "b", b, 2, isz)
    cdef cnp.ndarray A = <cnp.ndarray>a
    cdef cnp.ndarray B = <cnp.ndarray>b
    cdef int64_t m = A.shape[0], k = A.shape[1], n = B.shape[1]
    if B.shape[0] != k:
        raise ValueError(f"gemm: a has shape {a.shape} and b has shape {b.shape}; "
                         f"a.shape[1] must equal b.shape[0]")
    if out is None:
        if beta != 0.0:
            raise ValueError("gemm: beta must be 0 when out is None (there is no C to scale)")
        out = _empty((m, n), isz)
    else:
        _check_out("gemm", "out", out, (m, n), isz, (a, b))
    if m == 0 or n == 0:
        return out
    cdef int ta = 0, tb = 0
    cdef int64_t lda = 0, ldb = 0
    if not _row_layout(A, m, k, isz, &ta, &lda):
        A = np.ascontiguousarray(A); ta = 0; lda = k if k > 0 else 1
    if not _row_layout(B, k, n, isz, &tb, &ldb):
        B = np.ascontiguousarray(B); tb = 0; ldb = n
    cdef cnp.ndarray C = <cnp.ndarray>out
    cdef void *pc = cnp.PyArray_DATA(C)
    cdef void *pa = cnp.PyArray_DATA(A)
    cdef void *pb = cnp.PyArray_DATA(B)
    cdef int nt = _nthreads
    if isz == 4:
        with nogil:
            nnf_gemm_f32(<float *>pc, n, <const float *>pa, lda, <const float *>pb, ldb,
                         m, n, k, ta, tb, <float>alpha, <float>beta, nt)
    else:
        with nogil:
            nnf_gemm_f64(<double *>pc, n, <const double *>pa, lda, <const double *>pb, ldb,
                         m, n, k, ta, tb, alpha, beta, nt)
    return out
