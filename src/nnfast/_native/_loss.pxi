# Loss wrappers: validate (same order, types and messages as nnfast/backends/_ref_loss.py),
# then one fused C call per loss (csrc/nn/loss.c) returning (loss, grad).

cdef tuple _REDUCTIONS = ("mean", "sum", "none")


cdef int _loss_batch(str fn, str name, object x, int64_t *rows, int64_t *cols) except -1:
    """A 2-D float input with at least one row and one column: its itemsize; N, C stored."""
    cdef int isz = _check_array(fn, name, x, 2, 0)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>x, 0), c = cnp.PyArray_DIM(<cnp.ndarray>x, 1)
    rows[0] = n
    cols[0] = c
    if n == 0:
        raise ValueError(f"{fn}: empty batch: {name} has 0 rows (a loss over no samples "
                         f"is undefined)")
    if c == 0:
        raise ValueError(f"{fn}: {name} must have at least one column, got shape {x.shape}")
    return isz


cdef object _loss_same_shape(str fn, str name, object t, int64_t n, int64_t c, int isz,
                             str like):
    _check_array(fn, name, t, 2, isz)
    if cnp.PyArray_DIM(<cnp.ndarray>t, 0) != n or cnp.PyArray_DIM(<cnp.ndarray>t, 1) != c:
        raise ValueError(f"{fn}: {name} must have shape {(n, c)} like {like}, got {t.shape}")
    return _contig(t)


cdef object _loss_weights(str fn, str name, object w, int64_t n, int isz):
    """None, or a non-negative (n,) float vector of the operands' dtype (contiguous)."""
    if w is None:
        return None
    _check_array(fn, name, w, 1, isz)
    if cnp.PyArray_DIM(<cnp.ndarray>w, 0) != n:
        raise ValueError(f"{fn}: {name} must have shape {(n,)}, got {w.shape}")
    w = _contig(w)
    cdef void *p = cnp.PyArray_DATA(<cnp.ndarray>w)
    cdef int64_t i, bad = -1
    with nogil:
        for i in range(n):
            if (isz == 4 and (<float *>p)[i] < 0) or (isz == 8 and (<double *>p)[i] < 0):
                bad = i
                break
    if bad >= 0:
        raise ValueError(f"{fn}: {name} must be non-negative, got {float(w[bad])!r} "
                         f"at index {bad}")
    return w


cdef double _loss_scale(str fn, object reduction, int64_t n) except -1.0:
    """The factor applied to Σ_i w_i·l_i: 1/N for "mean", 1 otherwise."""
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of 'mean', 'sum', 'none', "
                         f"got {reduction!r}")
    return 1.0 / n if reduction == "mean" else 1.0


cdef object _loss_labels(str fn, object targets, int64_t n, int64_t c):
    """int32/int64 labels (n,) in [0, c), made contiguous, native and aligned."""
    if (cnp.PyArray_NDIM(<cnp.ndarray>targets) != 1
            or cnp.PyArray_DIM(<cnp.ndarray>targets, 0) != n):
        raise ValueError(f"{fn}: targets (class labels) must have shape {(n,)}, "
                         f"got {targets.shape}")
    targets = _contig(targets)
    cdef void *p = cnp.PyArray_DATA(<cnp.ndarray>targets)
    cdef bint wide = cnp.PyArray_ITEMSIZE(<cnp.ndarray>targets) == 8
    cdef int64_t i, y, bad = -1
    with nogil:
        for i in range(n):
            y = (<int64_t *>p)[i] if wide else (<int *>p)[i]
            if y < 0 or y >= c:
                bad = i
                break
    if bad >= 0:
        raise ValueError(f"{fn}: targets must be class labels in [0, {c}), "
                         f"got {int(targets[bad])} at index {bad}")
    return targets


cdef object _loss_grad(str fn, object grad, int64_t n, int64_t c, int isz, tuple inputs):
    if grad is None:
        return _alloc(2, n, c, _ftype(isz))
    _check_out_nd(fn, "grad", grad, 2, n, c, isz, inputs)
    return grad


cdef object _loss_result(object rows, double total, object reduction, int64_t n, int isz):
    if reduction == "none":
        if isz == 8:
            return rows
        with np.errstate(over="ignore"):  # a row past FLT_MAX is inf there, silently as in C
            return rows.astype(np.float32)
    return total / n if reduction == "mean" else total


cdef inline void *_ptr(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def softmax_cross_entropy(logits, targets, sample_weight=None, class_weight=None,
                          label_smoothing=0.0, reduction="mean", grad=None):
    """Softmax cross-entropy from logits (N, C) and its gradient in one fused pass
    (nnf_softmax_xent_*); see nnfast.backends.reference.softmax_cross_entropy."""
    cdef str fn = "softmax_cross_entropy"
    cdef int64_t n, c
    cdef int isz = _loss_batch(fn, "logits", logits, &n, &c)
    if not cnp.PyArray_Check(targets):
        raise TypeError(f"{fn}: targets must be a numpy.ndarray, got {type(targets).__name__}")
    cdef int label_bytes = 0
    # The common dtypes are told apart in C; the rest by the rule as NumPy states it.
    cdef int tt = cnp.PyArray_TYPE(<cnp.ndarray>targets)
    cdef bint probs, labels
    if tt == cnp.NPY_FLOAT32 or tt == cnp.NPY_FLOAT64:
        probs, labels = True, False
    elif tt == cnp.NPY_INT32 or tt == cnp.NPY_INT64:
        probs, labels = False, True
    else:
        dt = targets.dtype
        probs = dt.kind == "f"
        labels = dt.kind == "i" and (dt.itemsize == 4 or dt.itemsize == 8)
    if probs:
        t = _loss_same_shape(fn, "targets", targets, n, c, isz, "logits")
    elif labels:
        t = _loss_labels(fn, targets, n, c)
        label_bytes = cnp.PyArray_ITEMSIZE(<cnp.ndarray>targets)
    else:
        raise TypeError(f"{fn}: targets must be int32/int64 class labels or float32/float64 "
                        f"probabilities, got {targets.dtype}")
    sw = _loss_weights(fn, "sample_weight", sample_weight, n, isz)
    cw = _loss_weights(fn, "class_weight", class_weight, c, isz)
    cdef double eps = _real_param(fn, "label_smoothing", label_smoothing, 0.0, 1.0, False, True)
    cdef double scale = _loss_scale(fn, reduction, n)
    grad = _loss_grad(fn, grad, n, c, isz, (logits, targets, sample_weight, class_weight))
    z = _contig(logits)
    rows = _alloc(1, n, 0, cnp.NPY_FLOAT64)
    cdef double total = 0.0
    cdef void *pg = cnp.PyArray_DATA(<cnp.ndarray>grad)
    cdef double *pr = <double *>cnp.PyArray_DATA(<cnp.ndarray>rows)
    cdef const void *pz = cnp.PyArray_DATA(<cnp.ndarray>z)
    cdef const void *plab = _ptr(t) if label_bytes else NULL
    cdef const void *pprob = NULL if label_bytes else _ptr(t)
    cdef const void *psw = _ptr(sw)
    cdef const void *pcw = _ptr(cw)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_softmax_xent_f32(<float *>pg, pr, &total, <const float *>pz, plab, label_bytes,
                                 <const float *>pprob, <const float *>psw, <const float *>pcw,
                                 eps, scale, n, c, nt)
        else:
            nnf_softmax_xent_f64(<double *>pg, pr, &total, <const double *>pz, plab,
                                 label_bytes, <const double *>pprob, <const double *>psw,
                                 <const double *>pcw, eps, scale, n, c, nt)
    return _loss_result(rows, total, reduction, n, isz), grad


cdef tuple _elem_loss(int kind, str fn, str name, object pred, str tname, object target,
                      object sample_weight, object delta, object reduction, object grad):
    """Shared wrapper of the elementwise losses (nnf_elem_loss_*)."""
    cdef int64_t n, m
    cdef int isz = _loss_batch(fn, name, pred, &n, &m)
    t = _loss_same_shape(fn, tname, target, n, m, isz, name)
    sw = _loss_weights(fn, "sample_weight", sample_weight, n, isz)
    cdef double d = 0.0
    if kind == NNF_LOSS_HUBER:
        d = _real_param(fn, "delta", delta, 0.0, float("inf"), True, True, isz)
    cdef double scale = _loss_scale(fn, reduction, n)
    grad = _loss_grad(fn, grad, n, m, isz, (pred, target, sample_weight))
    p = _contig(pred)
    rows = _alloc(1, n, 0, cnp.NPY_FLOAT64)
    cdef double total = 0.0
    cdef void *pg = cnp.PyArray_DATA(<cnp.ndarray>grad)
    cdef double *pr = <double *>cnp.PyArray_DATA(<cnp.ndarray>rows)
    cdef const void *pp = cnp.PyArray_DATA(<cnp.ndarray>p)
    cdef const void *pt = cnp.PyArray_DATA(<cnp.ndarray>t)
    cdef const void *psw = _ptr(sw)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_elem_loss_f32(kind, <float *>pg, pr, &total, <const float *>pp,
                              <const float *>pt, <const float *>psw, d, scale, n, m, nt)
        else:
            nnf_elem_loss_f64(kind, <double *>pg, pr, &total, <const double *>pp,
                              <const double *>pt, <const double *>psw, d, scale, n, m, nt)
    return _loss_result(rows, total, reduction, n, isz), grad


def binary_cross_entropy(logits, targets, sample_weight=None, reduction="mean", grad=None):
    """Binary cross-entropy from logits (N, M) and its gradient in one fused pass;
    see nnfast.backends.reference.binary_cross_entropy."""
    return _elem_loss(NNF_LOSS_BCE_LOGITS, "binary_cross_entropy", "logits", logits, "targets",
                      targets, sample_weight, None, reduction, grad)


def mse(pred, target, sample_weight=None, reduction="mean", grad=None):
    """Mean squared error and its gradient in one fused pass; see nnfast.backends.reference.mse."""
    return _elem_loss(NNF_LOSS_MSE, "mse", "pred", pred, "target", target, sample_weight, None,
                      reduction, grad)


def huber(pred, target, delta=1.0, sample_weight=None, reduction="mean", grad=None):
    """Huber loss and its gradient in one fused pass; see nnfast.backends.reference.huber."""
    return _elem_loss(NNF_LOSS_HUBER, "huber", "pred", pred, "target", target, sample_weight,
                      delta, reduction, grad)
