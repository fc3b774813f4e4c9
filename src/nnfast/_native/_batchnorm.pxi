# Batch-normalization wrappers (csrc/nn/batchnorm.c). Mirrors _ref_batchnorm.py.

cdef int _bn_rows(object fn, object x) except -1:
    if not cnp.PyArray_Check(x):
        raise TypeError(f"{fn}: x must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{fn}: x must have at least 2 dimensions (..., channels), got "
                         f"{x.ndim}-D with shape {x.shape}")
    return _check_array(fn, "x", x, x.ndim, 0)


cdef int _bn_vector(object fn, object name, object v, int64_t c, int isz,
                    bint allow_none=True) except -1:
    if v is None and allow_none:
        return 0
    _check_array(fn, name, v, 1, isz)
    if v.shape[0] != c:
        raise ValueError(f"{fn}: {name} must have shape ({c},) (one value per channel), got "
                         f"{v.shape}")
    return 0


def batch_norm_forward(x, gamma, beta, moving_mean, moving_variance, training=False,
                       momentum=0.99, epsilon=1e-3, out=None, xhat=None, inv_std=None):
    """(y, xhat, inv_std) of batch normalization over the last axis (see the reference)."""
    fn = "batch_norm_forward"
    cdef int isz = _bn_rows(fn, x)
    cdef int64_t c = x.shape[x.ndim - 1]
    cdef int64_t r = cnp.PyArray_SIZE(<cnp.ndarray>x) // c if c else 0
    if c == 0:
        r = int(np.prod(x.shape[:x.ndim - 1]))
    _bn_vector(fn, "gamma", gamma, c, isz)
    _bn_vector(fn, "beta", beta, c, isz)
    _bn_vector(fn, "moving_mean", moving_mean, c, isz, False)
    _bn_vector(fn, "moving_variance", moving_variance, c, isz, False)
    cdef double mom = _real_param(fn, "momentum", momentum, 0.0, 1.0)
    cdef double eps = _real_param(fn, "epsilon", epsilon, 0.0)
    inputs = (x, gamma, beta, moving_mean, moving_variance)
    _check_nd_out(fn, "out", out, x.shape, isz, inputs)
    if out is None:
        out = _empty(x.shape, isz)
    cdef cnp.ndarray X = _contig(x)
    G = None if gamma is None else _contig(gamma)
    B = None if beta is None else _contig(beta)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *pg = _data_or_null(G)
    cdef void *pb = _data_or_null(B)
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef void *pmm
    cdef void *pmv
    cdef void *pxh
    cdef void *pinv
    cdef int nt = _nthreads, st = NNF_OK
    if not training:
        MM, MV = _contig(moving_mean), _contig(moving_variance)
        pmm = cnp.PyArray_DATA(<cnp.ndarray>MM)
        pmv = cnp.PyArray_DATA(<cnp.ndarray>MV)
        with nogil:
            if isz == 4:
                st = nnf_batchnorm_infer_fwd_f32(<float *>py, <const float *>px,
                                                 <const float *>pg, <const float *>pb,
                                                 <const float *>pmm, <const float *>pmv, eps,
                                                 r, c, nt)
            else:
                st = nnf_batchnorm_infer_fwd_f64(<double *>py, <const double *>px,
                                                 <const double *>pg, <const double *>pb,
                                                 <const double *>pmm, <const double *>pmv, eps,
                                                 r, c, nt)
        _check_status(fn, st, _WS_BATCHNORM)
        return out, None, None
    if r == 0:
        raise ValueError(f"{fn}: training needs at least one row to take statistics over, got "
                         f"x of shape {x.shape}")
    for name, v in (("moving_mean", moving_mean), ("moving_variance", moving_variance)):
        _check_behaved(fn, name, <cnp.ndarray>v)
        if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>v):
            raise ValueError(f"{fn}: {name} is read-only; it is updated in place")
    _check_nd_out(fn, "xhat", xhat, x.shape, isz, inputs + (out,))
    _check_nd_out(fn, "inv_std", inv_std, (c,), isz, inputs + (out, xhat))
    if xhat is None:
        xhat = _empty(x.shape, isz)
    if inv_std is None:
        inv_std = _empty((c,), isz)
    # the moving statistics are updated in place: a strided view is updated through a copy
    MM, MV = _contig(moving_mean), _contig(moving_variance)
    pmm = cnp.PyArray_DATA(<cnp.ndarray>MM)
    pmv = cnp.PyArray_DATA(<cnp.ndarray>MV)
    pxh = cnp.PyArray_DATA(<cnp.ndarray>xhat)
    pinv = cnp.PyArray_DATA(<cnp.ndarray>inv_std)
    with nogil:
        if isz == 4:
            st = nnf_batchnorm_train_fwd_f32(<float *>py, <float *>pxh, <float *>pinv,
                                             <float *>pmm, <float *>pmv, <const float *>px,
                                             <const float *>pg, <const float *>pb, mom, eps, r,
                                             c, nt)
        else:
            st = nnf_batchnorm_train_fwd_f64(<double *>py, <double *>pxh, <double *>pinv,
                                             <double *>pmm, <double *>pmv, <const double *>px,
                                             <const double *>pg, <const double *>pb, mom, eps,
                                             r, c, nt)
    _check_status(fn, st, _WS_BATCHNORM)
    if MM is not moving_mean:
        moving_mean[...] = MM
    if MV is not moving_variance:
        moving_variance[...] = MV
    return out, xhat, inv_std


def batch_norm_backward(dy, xhat, gamma, inv_std, dx=None, dgamma=None, dbeta=None,
                        bint accumulate=False, bint need_dx=True):
    """(dx, dgamma, dbeta) of training-mode batch normalization (see the reference)."""
    fn = "batch_norm_backward"
    cdef int isz = _bn_rows(fn, dy)
    cdef int64_t c = dy.shape[dy.ndim - 1]
    cdef int64_t r = int(np.prod(dy.shape[:dy.ndim - 1]))
    _check_array(fn, "xhat", xhat, dy.ndim, isz)
    if xhat.shape != dy.shape:
        raise ValueError(f"{fn}: xhat must have shape {dy.shape} like dy, got {xhat.shape}")
    _bn_vector(fn, "gamma", gamma, c, isz)
    _bn_vector(fn, "inv_std", inv_std, c, isz, False)
    if accumulate and (dgamma is None or dbeta is None):
        raise ValueError(f"{fn}: accumulate=True needs dgamma and dbeta to add to, got "
                         f"dgamma={'None' if dgamma is None else 'array'}, "
                         f"dbeta={'None' if dbeta is None else 'array'}")
    inputs = (dy, xhat, gamma, inv_std)
    _check_nd_out(fn, "dgamma", dgamma, (c,), isz, inputs)
    _check_nd_out(fn, "dbeta", dbeta, (c,), isz, inputs + (dgamma,))
    _check_nd_out(fn, "dx", dx, dy.shape, isz, inputs + (dgamma, dbeta))
    if dgamma is None:
        dgamma = _empty((c,), isz)
    if dbeta is None:
        dbeta = _empty((c,), isz)
    if need_dx and dx is None:
        dx = _empty(dy.shape, isz)
    if not need_dx:
        dx = None
    cdef cnp.ndarray DY = _contig(dy), XH = _contig(xhat), INV = _contig(inv_std)
    G = None if gamma is None else _contig(gamma)
    cdef void *pdx = _data_or_null(dx)
    cdef void *pdg = cnp.PyArray_DATA(<cnp.ndarray>dgamma)
    cdef void *pdb = cnp.PyArray_DATA(<cnp.ndarray>dbeta)
    cdef void *pdy = cnp.PyArray_DATA(DY)
    cdef void *pxh = cnp.PyArray_DATA(XH)
    cdef void *pg = _data_or_null(G)
    cdef void *pinv = cnp.PyArray_DATA(INV)
    cdef int nt = _nthreads, st = NNF_OK, acc = accumulate
    with nogil:
        if isz == 4:
            st = nnf_batchnorm_bwd_f32(<float *>pdx, <float *>pdg, <float *>pdb,
                                       <const float *>pdy, <const float *>pxh,
                                       <const float *>pg, <const float *>pinv, r, c, acc, nt)
        else:
            st = nnf_batchnorm_bwd_f64(<double *>pdx, <double *>pdg, <double *>pdb,
                                       <const double *>pdy, <const double *>pxh,
                                       <const double *>pg, <const double *>pinv, r, c, acc, nt)
    _check_status(fn, st, _WS_BATCHNORM)
    return dx, dgamma, dbeta
