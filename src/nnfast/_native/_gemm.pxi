# GEMM wrapper: out = alpha * a @ b + beta * out on 2-D float32/float64 arrays.
# Small products are dominated by this call path, so it avoids Python-level calls where the
# C-API gives the same result (allocation through PyArray_EMPTY, not np.empty).


cdef inline object _empty2(int64_t m, int64_t n, int isz):
    cdef cnp.npy_intp dims[2]
    dims[0] = <cnp.npy_intp>m
    dims[1] = <cnp.npy_intp>n
    return cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32 if isz == 4 else cnp.NPY_FLOAT64, 0)


def gemm(a, b, out=None, double alpha=1.0, double beta=0.0):
    """out[m, n] = alpha * a[m, k] @ b[k, n] + beta * out. Transposed (Fortran-ordered) operands
    are read in place as op=T; other strided layouts, byte-swapped or unaligned operands are
    copied once. out=None allocates (beta must then be 0)."""
    return _gemm(a, b, out, alpha, beta)


def matmul2d(a, b):
    """gemm(a, b) when a and b are exact ndarrays, 2-D, of one native float dtype, with
    a.shape[1] == b.shape[0]; NotImplemented otherwise. The fast path of nnfast.matmul: its
    checks cost a few C comparisons instead of Python attribute lookups."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        return NotImplemented
    cdef cnp.ndarray A = <cnp.ndarray>a
    cdef cnp.ndarray B = <cnp.ndarray>b
    if cnp.PyArray_NDIM(A) != 2 or cnp.PyArray_NDIM(B) != 2:
        return NotImplemented
    cdef int t = cnp.PyArray_TYPE(A)
    if (t != cnp.PyArray_TYPE(B) or (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64)
            or not cnp.PyArray_ISNOTSWAPPED(A) or not cnp.PyArray_ISNOTSWAPPED(B)
            or cnp.PyArray_DIM(A, 1) != cnp.PyArray_DIM(B, 0)):
        return NotImplemented
    return _gemm(a, b, None, 1.0, 0.0)


cdef object _gemm(a, b, out, double alpha, double beta):
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
        out = _empty2(m, n, isz)
    else:
        _check_out("gemm", "out", out, (m, n), isz, (a, b))
    if m == 0 or n == 0:
        return out
    cdef int ta = 0, tb = 0
    cdef int64_t lda = 0, ldb = 0
    if not _row_layout(A, m, k, isz, &ta, &lda):
        A = _contig(A); ta = 0; lda = k if k > 0 else 1
    if not _row_layout(B, k, n, isz, &tb, &ldb):
        B = _contig(B); tb = 0; ldb = n
    cdef cnp.ndarray C = <cnp.ndarray>out
    cdef void *pc = cnp.PyArray_DATA(C)
    cdef void *pa = cnp.PyArray_DATA(A)
    cdef void *pb = cnp.PyArray_DATA(B)
    cdef int nt = _nthreads, st = NNF_OK
    if isz == 4:
        with nogil:
            st = nnf_gemm_f32(<float *>pc, n, <const float *>pa, lda, <const float *>pb, ldb,
                              m, n, k, ta, tb, <float>alpha, <float>beta, nt)
    else:
        with nogil:
            st = nnf_gemm_f64(<double *>pc, n, <const double *>pa, lda, <const double *>pb, ldb,
                              m, n, k, ta, tb, alpha, beta, nt)
    _check_status("gemm", st)
    return out


cdef extern from "gemm/gemm_kernels.h" nogil:
    void nnf_gemm_set_path(int path)
    void nnf_gemm_set_swap(int on)


def _gemm_set_path(int path):
    """Test hook: 0 = choose the GEMM loop nest by size, 1 = always the small nest (A read in
    place), 2 = always the packed nest, 3 = packed with B shared by the team, 4 = packed with
    a column range per thread."""
    if path not in (0, 1, 2, 3, 4):
        raise ValueError(f"_gemm_set_path: path must be 0 to 4, got {path}")
    nnf_gemm_set_path(path)


def _gemm_set_swap(bint on):
    """Test hook: False = never compute a narrow product as C^T = op(B)^T op(A)^T (the swap
    that puts the vector lanes along m when n is under one register panel)."""
    nnf_gemm_set_swap(on)


_EP_ACTS = {"identity": NNF_ACT_IDENTITY, "relu": NNF_ACT_RELU,
            "leaky_relu": NNF_ACT_LEAKY_RELU, "elu": NNF_ACT_ELU, "sigmoid": NNF_ACT_SIGMOID,
            "tanh": NNF_ACT_TANH, "gelu": NNF_ACT_GELU, "gelu_tanh": NNF_ACT_GELU_TANH,
            "silu": NNF_ACT_SILU, "softplus": NNF_ACT_SOFTPLUS}


def gemm_ep(a, b, bias=None, z=None, act="identity", double act_alpha=0.0, out=None,
            double alpha=1.0, double beta=0.0):
    """out = act(alpha * a @ b + beta * out + bias), with the pre-activation stored in z when
    given: the fused GEMM epilogue (bias, saved z, elementwise activation) applied per tile.
    bias: 1-D length n or None; z: C-contiguous (m, n) array or None (OUT)."""
    cdef int isz = _check_array("gemm_ep", "a", a, 2, 0)
    _check_array("gemm_ep", "b", b, 2, isz)
    cdef cnp.ndarray A = <cnp.ndarray>a
    cdef cnp.ndarray B = <cnp.ndarray>b
    cdef int64_t m = A.shape[0], k = A.shape[1], n = B.shape[1]
    if B.shape[0] != k:
        raise ValueError(f"gemm_ep: a has shape {a.shape} and b has shape {b.shape}; "
                         f"a.shape[1] must equal b.shape[0]")
    if act not in _EP_ACTS:
        raise ValueError(f"gemm_ep: act must be one of {sorted(_EP_ACTS)}, got {act!r}")
    cdef nnf_epilogue_t ep
    ep.bias = NULL
    ep.z = NULL
    ep.ldz = n
    ep.act = _EP_ACTS[act]
    ep.act_alpha = act_alpha
    if bias is not None:
        _check_array("gemm_ep", "bias", bias, 1, isz)
        if bias.shape[0] != n:
            raise ValueError(f"gemm_ep: bias must have length {n}, got {bias.shape[0]}")
        bias = _contig(bias)
        ep.bias = cnp.PyArray_DATA(<cnp.ndarray>bias)
    if out is None:
        if beta != 0.0:
            raise ValueError("gemm_ep: beta must be 0 when out is None (there is no C to scale)")
        out = _empty2(m, n, isz)
    else:
        _check_out("gemm_ep", "out", out, (m, n), isz, (a, b, bias))
    if z is not None:
        _check_out("gemm_ep", "z", z, (m, n), isz, (a, b, bias, out))
        ep.z = cnp.PyArray_DATA(<cnp.ndarray>z)
    if m == 0 or n == 0:
        return out
    cdef int ta = 0, tb = 0
    cdef int64_t lda = 0, ldb = 0
    if not _row_layout(A, m, k, isz, &ta, &lda):
        A = _contig(A); ta = 0; lda = k if k > 0 else 1
    if not _row_layout(B, k, n, isz, &tb, &ldb):
        B = _contig(B); tb = 0; ldb = n
    cdef void *pc = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef void *pa = cnp.PyArray_DATA(A)
    cdef void *pb = cnp.PyArray_DATA(B)
    cdef int nt = _nthreads, st = NNF_OK
    if isz == 4:
        with nogil:
            st = nnf_gemm_ep_f32(<float *>pc, n, <const float *>pa, lda, <const float *>pb, ldb,
                                 m, n, k, ta, tb, <float>alpha, <float>beta, &ep, nt)
    else:
        with nogil:
            st = nnf_gemm_ep_f64(<double *>pc, n, <const double *>pa, lda, <const double *>pb, ldb,
                                 m, n, k, ta, tb, alpha, beta, &ep, nt)
    _check_status("gemm_ep", st)
    return out


def _gemm_simulate_oom(bint on, int64_t min_bytes=0):
    """Test hook: while on, every GEMM workspace request of more than min_bytes fails as if
    memory ran out (process-wide; set it before starting threads)."""
    nnf_gemm_set_alloc_limit(min_bytes if on else -1)


def _gemm_workspace_bytes():
    """Bytes held in the GEMM workspaces of all live threads (each calling thread keeps one
    between its calls; it is freed when the thread exits)."""
    return nnf_gemm_workspace_bytes()
