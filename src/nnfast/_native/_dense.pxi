# Dense layer wrappers: y = act(x @ W + b) and its gradients (dx, dW, db).

cdef cnp.ndarray _operand(cnp.ndarray a, int64_t rows, int64_t cols, int isz, int *trans,
                          int64_t *ld):
    """a (rows x cols) as GEMM reads it: in place when row- or column-major (and native,
    aligned), else one C-contiguous native copy."""
    if _row_layout(a, rows, cols, isz, trans, ld):
        return a
    trans[0] = 0
    ld[0] = cols if cols > 0 else 1
    return _contig(a)


cdef int _check_xW(object fn, object x, object W) except -1:
    cdef int isz = _check_array(fn, "x", x, 2, 0)
    _check_array(fn, "W", W, 2, isz)
    if cnp.PyArray_DIM(<cnp.ndarray>W, 0) != cnp.PyArray_DIM(<cnp.ndarray>x, 1):
        raise ValueError(f"{fn}: W must have shape ({x.shape[1]}, M) to match x of shape "
                         f"{x.shape}, got {W.shape}")
    return isz


def dense_forward(x, W, b=None, activation="identity", double alpha=0.0, out=None, z=None):
    """y = act(x @ W + b), z = x @ W + b saved when given (see the reference)."""
    fn = "dense_forward"
    cdef int isz = _check_xW(fn, x, W)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>x, 0), k = cnp.PyArray_DIM(<cnp.ndarray>x, 1)
    cdef int64_t m = cnp.PyArray_DIM(<cnp.ndarray>W, 1)
    if b is not None:
        _check_array(fn, "b", b, 1, isz)
        if cnp.PyArray_DIM(<cnp.ndarray>b, 0) != m:
            raise ValueError(f"{fn}: b must have shape ({m},), got {b.shape}")
    cdef int act = _act_code(fn, activation)
    if out is None:
        out = _alloc(2, n, m, _ftype(isz))
    else:
        _check_out_nd(fn, "out", out, 2, n, m, isz, (x, W, b))
    if z is not None:
        _check_out_nd(fn, "z", z, 2, n, m, isz, (x, W, b, out))
    if n == 0 or m == 0:
        return out
    cdef int tx = 0, tw = 0
    cdef int64_t ldx = 0, ldw = 0
    cdef cnp.ndarray X = _operand(<cnp.ndarray>x, n, k, isz, &tx, &ldx)
    cdef cnp.ndarray Wc = _operand(<cnp.ndarray>W, k, m, isz, &tw, &ldw)
    B = None if b is None else _contig(b)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *pw = cnp.PyArray_DATA(Wc)
    cdef void *pb = _data_or_null(B)
    cdef void *pz = _data_or_null(z)
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = _nthreads, st = NNF_OK
    with nogil:
        if isz == 4:
            st = nnf_dense_fwd_f32(<float *>py, <float *>pz, <const float *>px, ldx, tx,
                                   <const float *>pw, ldw, tw, <const float *>pb, n, k, m, act,
                                   <float>alpha, nt)
        else:
            st = nnf_dense_fwd_f64(<double *>py, <double *>pz, <const double *>px, ldx, tx,
                                   <const double *>pw, ldw, tw, <const double *>pb, n, k, m, act,
                                   alpha, nt)
    _check_status("dense_forward", st)
    return out


def dense_backward(dy, x, W, z, y, activation="identity", double alpha=0.0, dW=None, db=None,
                   dx=None, dz=None, bint accumulate=False, bint need_dx=True):
    """(dx, dW, db) of y = act(x @ W + b) from dy; dz workspace optional (see the reference)."""
    fn = "dense_backward"
    cdef int isz = _check_array(fn, "dy", dy, 2, 0)
    _check_xW(fn, x, W)
    _check_array(fn, "x", x, 2, isz)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>x, 0), k = cnp.PyArray_DIM(<cnp.ndarray>x, 1)
    cdef int64_t m = cnp.PyArray_DIM(<cnp.ndarray>W, 1)
    if cnp.PyArray_DIM(<cnp.ndarray>dy, 0) != n or cnp.PyArray_DIM(<cnp.ndarray>dy, 1) != m:
        raise ValueError(f"{fn}: dy must have shape {(n, m)} (x rows, W columns), got {dy.shape}")
    cdef int act = _act_code(fn, activation)
    _check_saved(fn, activation, dy, z, y, isz)
    inputs = (dy, x, W, z, y)
    if accumulate and (dW is None or db is None):
        raise ValueError(f"{fn}: accumulate=True needs dW and db to add to, got "
                         f"dW={'None' if dW is None else 'array'}, "
                         f"db={'None' if db is None else 'array'}")
    # Each given output must also miss the outputs checked before it (None entries are skipped).
    if dz is not None:
        _check_out_nd(fn, "dz", dz, 2, n, m, isz, inputs)
    if dW is not None:
        _check_out_nd(fn, "dW", dW, 2, k, m, isz, inputs + (dz,))
    if db is not None:
        _check_out_nd(fn, "db", db, 1, m, 0, isz, inputs + (dz, dW))
    if dx is not None:
        _check_out_nd(fn, "dx", dx, 2, n, k, isz, inputs + (dz, dW, db))
    cdef int ft = _ftype(isz)
    if dW is None:
        dW = _alloc(2, k, m, ft)
    if db is None:
        db = _alloc(1, m, 0, ft)
    if need_dx and dx is None:
        dx = _alloc(2, n, k, ft)
    if not need_dx:
        dx = None
    cdef cnp.ndarray DY = _contig(dy)
    if dz is None and act != NNF_ACT_IDENTITY:
        dz = _alloc(2, n, m, ft)  # workspace for dy * act'
    cdef int tx = 0, tw = 0
    cdef int64_t ldx = 0, ldw = 0
    cdef cnp.ndarray X = _operand(<cnp.ndarray>x, n, k, isz, &tx, &ldx)
    cdef cnp.ndarray Wc = _operand(<cnp.ndarray>W, k, m, isz, &tw, &ldw)
    Z = None if z is None else _contig(z)
    Y = None if y is None else _contig(y)
    cdef void *pdx = _data_or_null(dx)
    cdef void *pdw = cnp.PyArray_DATA(<cnp.ndarray>dW)
    cdef void *pdb = cnp.PyArray_DATA(<cnp.ndarray>db)
    cdef void *pdz = _data_or_null(dz)
    cdef void *pdy = cnp.PyArray_DATA(DY)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *pw = cnp.PyArray_DATA(Wc)
    cdef void *pz = _data_or_null(Z)
    cdef void *pyv = _data_or_null(Y)
    cdef int nt = _nthreads, st = NNF_OK, acc = accumulate
    with nogil:
        if isz == 4:
            st = nnf_dense_bwd_f32(<float *>pdx, <float *>pdw, <float *>pdb, <float *>pdz,
                                   <const float *>pdy, <const float *>px, ldx, tx,
                                   <const float *>pw, ldw, tw, <const float *>pz,
                                   <const float *>pyv, n, k, m, act, <float>alpha, acc, nt)
        else:
            st = nnf_dense_bwd_f64(<double *>pdx, <double *>pdw, <double *>pdb, <double *>pdz,
                                   <const double *>pdy, <const double *>px, ldx, tx,
                                   <const double *>pw, ldw, tw, <const double *>pz,
                                   <const double *>pyv, n, k, m, act, alpha, acc, nt)
    _check_status("dense_backward", st)
    return dx, dW, db
