# Reduction wrappers: argmax per row, accuracy, column sums.

cdef int _check_int64_out(object fn, object name, object out, tuple shape,
                          object x) except -1:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(out).__name__}")
    cdef cnp.ndarray o = <cnp.ndarray>out
    if not cnp.PyArray_ISSIGNED(o) or cnp.PyArray_ITEMSIZE(o) != 8:  # long or long long
        raise TypeError(f"{fn}: {name} must have dtype int64, got {out.dtype}")
    _check_behaved(fn, name, o)
    if out.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {out.shape}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out):
        raise ValueError(f"{fn}: {name} must be C-contiguous")
    if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
        raise ValueError(f"{fn}: {name} is read-only; pass a writeable array")
    if cnp.PyArray_SIZE(<cnp.ndarray>out) and _overlaps(<cnp.ndarray>out, x):
        raise ValueError(f"{fn}: {name} overlaps an input array; pass a separate buffer")
    return 0


cdef int _check_rows(object fn, object name, object x) except -1:
    cdef int isz = _check_array(fn, name, x, 2, 0)
    if x.shape[1] == 0:
        raise ValueError(f"{fn}: {name} must have at least one column, got shape {x.shape}")
    return isz


def argmax_rows(x, out=None):
    """Index (int64) of the first maximum of each row; NaN wins as in np.argmax."""
    fn = "argmax_rows"
    cdef int isz = _check_rows(fn, "x", x)
    cdef int64_t n = x.shape[0], m = x.shape[1]
    if out is None:
        out = np.empty(n, dtype=np.int64)
    else:
        _check_int64_out(fn, "out", out, (n,), x)
    if n == 0:
        return out
    cdef cnp.ndarray X = _contig(x)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef int64_t *po = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_argmax_rows_f32(po, <const float *>px, n, m, nt)
        else:
            nnf_argmax_rows_f64(po, <const double *>px, n, m, nt)
    return out


def accuracy(logits, labels):
    """Fraction of rows whose argmax equals the label (Python float); N >= 1."""
    fn = "accuracy"
    cdef int isz = _check_rows(fn, "logits", logits)
    cdef int64_t n = logits.shape[0], m = logits.shape[1], hits
    if n == 0:
        raise ValueError(f"{fn}: logits must have at least one row, got shape {logits.shape}")
    cdef cnp.ndarray lab = _check_labels(fn, "labels", labels, n, m)
    cdef cnp.ndarray X = _contig(logits)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef const int64_t *pl = <const int64_t *>cnp.PyArray_DATA(lab)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            hits = nnf_accuracy_f32(<const float *>px, pl, n, m, nt)
        else:
            hits = nnf_accuracy_f64(<const double *>px, pl, n, m, nt)
    return hits / <double>n


def column_sums(x, out=None):
    """out[j] = sum_i x[i, j], in double then rounded, rows in order (any thread count)."""
    fn = "column_sums"
    cdef int isz = _check_array(fn, "x", x, 2, 0)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>x, 0), m = cnp.PyArray_DIM(<cnp.ndarray>x, 1)
    if out is None:
        out = _alloc(1, m, 0, _ftype(isz))
    else:
        _check_out_nd(fn, "out", out, 1, m, 0, isz, (x,))
    if m == 0:
        return out
    cdef cnp.ndarray X = _contig(x)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *po = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_column_sums_f32(<float *>po, <const float *>px, n, m, 0, nt)
        else:
            nnf_column_sums_f64(<double *>po, <const double *>px, n, m, 0, nt)
    return out
