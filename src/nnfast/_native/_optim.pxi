# Optimizer wrappers: validate (same order, types and messages as
# nnfast/backends/_ref_optim.py), then one in-place C pass (csrc/nn/optim.c). They return None.

cdef int _opt_buffers(str fn, object params, object grads, tuple names, tuple bufs) except -1:
    """params and the state buffers (None = unused): 1-D, contiguous, writeable, one dtype and
    length, no overlaps; grads: same dtype and length, any layout. Returns the itemsize."""
    cdef int isz = _check_array(fn, "params", params, 1, 0)
    cdef int64_t p = cnp.PyArray_DIM(<cnp.ndarray>params, 0)
    cdef Py_ssize_t k
    _check_out_nd(fn, "params", params, 1, p, 0, isz, (grads,) + bufs)  # None entries skipped
    _check_array(fn, "grads", grads, 1, isz)
    if cnp.PyArray_DIM(<cnp.ndarray>grads, 0) != p:
        raise ValueError(f"{fn}: grads must have shape {(p,)} like params, got {grads.shape}")
    for k in range(len(bufs)):
        if bufs[k] is not None:
            _check_out_nd(fn, names[k], bufs[k], 1, p, 0, isz,
                          (params, grads) + bufs[:k] + bufs[k + 1:])
    return isz


cdef inline double _unit_param(str fn, str name, object value, int isz) except? -1.0:
    """A rate in [0, 1) that stays below 1 in the buffers' dtype (1 - 1e-9 is 1.0 in float32)."""
    return _real_param(fn, name, value, 0.0, 1.0, False, True, isz)


cdef inline double _eps_param(str fn, object value, int isz) except? -1.0:
    """eps > 0, also in the buffers' dtype (1e-50 is 0.0 in float32: a division by zero)."""
    return _real_param(fn, "eps", value, 0.0, None, True, False, isz)


def sgd_update(params, grads, velocity=None, lr=0.01, momentum=0.0, nesterov=False,
               weight_decay=0.0):
    """SGD with momentum/Nesterov, in place (nnf_sgd_update_*); see
    nnfast.backends.reference.sgd_update."""
    cdef str fn = "sgd_update"
    cdef int isz = _opt_buffers(fn, params, grads, ("velocity",), (velocity,))
    cdef double lr_ = _real_param(fn, "lr", lr, 0.0)
    cdef double wd = _real_param(fn, "weight_decay", weight_decay, 0.0)
    cdef double mu = _unit_param(fn, "momentum", momentum, isz)
    if mu > 0 and velocity is None:
        raise ValueError(f"{fn}: velocity is required when momentum > 0 (got momentum={mu!r})")
    cdef int nest = 1 if nesterov else 0
    if nest and mu == 0:
        raise ValueError(f"{fn}: nesterov=True needs momentum > 0")
    g = _contig(grads)
    cdef void *pp = _ptr(params)
    cdef void *pv = _ptr(velocity)
    cdef const void *pg = _ptr(g)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>params, 0)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_sgd_update_f32(<float *>pp, <float *>pv, <const float *>pg, lr_, mu, nest, wd,
                               n, nt)
        else:
            nnf_sgd_update_f64(<double *>pp, <double *>pv, <const double *>pg, lr_, mu, nest,
                               wd, n, nt)


def adam_update(params, grads, m, v, step, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0, decoupled=False):
    """Adam / AdamW (decoupled=True), in place (nnf_adam_update_*); see
    nnfast.backends.reference.adam_update."""
    cdef str fn = "adam_update"
    cdef int isz = _opt_buffers(fn, params, grads, ("m", "v"), (m, v))
    cdef int64_t s = _step_param(fn, step)
    cdef double lr_ = _real_param(fn, "lr", lr, 0.0)
    cdef double wd = _real_param(fn, "weight_decay", weight_decay, 0.0)
    cdef double b1 = _unit_param(fn, "beta1", beta1, isz)
    cdef double b2 = _unit_param(fn, "beta2", beta2, isz)
    cdef double eps_ = _eps_param(fn, eps, isz)
    cdef int dec = 1 if decoupled else 0
    g = _contig(grads)
    cdef void *pp = _ptr(params)
    cdef void *pm = _ptr(m)
    cdef void *pv = _ptr(v)
    cdef const void *pg = _ptr(g)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>params, 0)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_adam_update_f32(<float *>pp, <float *>pm, <float *>pv, <const float *>pg, lr_,
                                b1, b2, eps_, wd, dec, s, n, nt)
        else:
            nnf_adam_update_f64(<double *>pp, <double *>pm, <double *>pv, <const double *>pg,
                                lr_, b1, b2, eps_, wd, dec, s, n, nt)


def rmsprop_update(params, grads, sq, lr=0.001, rho=0.9, eps=1e-7, momentum=0.0,
                   velocity=None, weight_decay=0.0):
    """RMSprop (optionally with momentum), in place (nnf_rmsprop_update_*); see
    nnfast.backends.reference.rmsprop_update."""
    cdef str fn = "rmsprop_update"
    cdef int isz = _opt_buffers(fn, params, grads, ("sq", "velocity"), (sq, velocity))
    cdef double lr_ = _real_param(fn, "lr", lr, 0.0)
    cdef double wd = _real_param(fn, "weight_decay", weight_decay, 0.0)
    cdef double rho_ = _unit_param(fn, "rho", rho, isz)
    cdef double mu = _unit_param(fn, "momentum", momentum, isz)
    cdef double eps_ = _eps_param(fn, eps, isz)
    if mu > 0 and velocity is None:
        raise ValueError(f"{fn}: velocity is required when momentum > 0 (got momentum={mu!r})")
    g = _contig(grads)
    cdef void *pp = _ptr(params)
    cdef void *ps = _ptr(sq)
    cdef void *pv = _ptr(velocity)
    cdef const void *pg = _ptr(g)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>params, 0)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_rmsprop_update_f32(<float *>pp, <float *>ps, <float *>pv, <const float *>pg,
                                   lr_, rho_, eps_, mu, wd, n, nt)
        else:
            nnf_rmsprop_update_f64(<double *>pp, <double *>ps, <double *>pv,
                                   <const double *>pg, lr_, rho_, eps_, mu, wd, n, nt)


def adagrad_update(params, grads, acc, lr=0.01, eps=1e-7, weight_decay=0.0):
    """Adagrad, in place (nnf_adagrad_update_*); see nnfast.backends.reference.adagrad_update."""
    cdef str fn = "adagrad_update"
    cdef int isz = _opt_buffers(fn, params, grads, ("acc",), (acc,))
    cdef double lr_ = _real_param(fn, "lr", lr, 0.0)
    cdef double wd = _real_param(fn, "weight_decay", weight_decay, 0.0)
    cdef double eps_ = _eps_param(fn, eps, isz)
    g = _contig(grads)
    cdef void *pp = _ptr(params)
    cdef void *pa = _ptr(acc)
    cdef const void *pg = _ptr(g)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>params, 0)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_adagrad_update_f32(<float *>pp, <float *>pa, <const float *>pg, lr_, eps_, wd,
                                   n, nt)
        else:
            nnf_adagrad_update_f64(<double *>pp, <double *>pa, <const double *>pg, lr_, eps_,
                                   wd, n, nt)


def clip_grad_norm(grads, max_norm):
    """Global L2 norm of grads (float64, fixed-order blocks); scales grads in place by
    max_norm/norm when norm > max_norm; returns the norm (nnf_clip_grad_norm_*). See
    nnfast.backends.reference.clip_grad_norm."""
    cdef str fn = "clip_grad_norm"
    cdef int isz = _check_array(fn, "grads", grads, 1, 0)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>grads, 0)
    _check_out(fn, "grads", grads, (n,), isz, ())
    cdef double mx = _real_param(fn, "max_norm", max_norm, 0.0)
    cdef double norm = 0.0
    cdef void *pg = _ptr(grads)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_clip_grad_norm_f32(&norm, <float *>pg, mx, n, nt)
        else:
            nnf_clip_grad_norm_f64(&norm, <double *>pg, mx, n, nt)
    return norm
