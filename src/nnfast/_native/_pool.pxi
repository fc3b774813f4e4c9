# Pooling wrappers (csrc/nn/pool.c); geometry from _conv.pxi. Mirrors _ref_pool.py.

cdef int _pool_setup(object fn, object x, object pool_size, object strides, object padding,
                     nnf_conv_geom_t *g) except -1:
    cdef int isz = _check_array(fn, "x", x, 4, 0)
    if x.shape[3] == 0:
        raise ValueError(f"{fn}: x needs at least one channel, got shape {x.shape}")
    kh, kw = _pair(fn, "pool_size", pool_size)
    g.N, g.H, g.W, g.C = x.shape
    g.F = g.C
    _geometry(fn, g.H, g.W, kh, kw, (kh, kw) if strides is None else strides, padding, 1, g)
    return isz


cdef int _check_pool_dy(object fn, object dy, int isz, tuple shape) except -1:
    _check_array(fn, "dy", dy, 4, isz)
    if dy.shape != shape:
        raise ValueError(f"{fn}: dy must have shape {shape} (the pooled x), got {dy.shape}")
    return 0


def max_pool2d_forward(x, pool_size=2, strides=None, padding="valid", out=None, argmax=None):
    """(y, argmax) of max pooling, channels last (see the reference)."""
    fn = "max_pool2d_forward"
    cdef nnf_conv_geom_t g
    cdef int isz = _pool_setup(fn, x, pool_size, strides, padding, &g)
    shape = (g.N, g.OH, g.OW, g.C)
    _check_nd_out(fn, "out", out, shape, isz, (x,))
    if out is None:
        out = _empty(shape, isz)
    if argmax is None:
        argmax = np.empty(shape, np.int64)
    else:
        if not cnp.PyArray_Check(argmax):
            raise TypeError(f"{fn}: argmax must be a numpy.ndarray, got "
                            f"{type(argmax).__name__}")
        if argmax.dtype.newbyteorder("=") != np.int64:
            raise TypeError(f"{fn}: argmax must have dtype int64, got {argmax.dtype}")
        _check_behaved(fn, "argmax", <cnp.ndarray>argmax)  # C writes int64_t through it
        if argmax.shape != shape:
            raise ValueError(f"{fn}: argmax must have shape {shape}, got {argmax.shape}")
        if not argmax.flags.c_contiguous or not argmax.flags.writeable:
            raise ValueError(f"{fn}: argmax must be a writeable C-contiguous array")
        for a in (x, out):
            if argmax.size and _overlaps(<cnp.ndarray>argmax, a):
                raise ValueError(f"{fn}: argmax overlaps an input array; pass a separate buffer")
    cdef cnp.ndarray X = _contig(x)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int64_t *pa = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>argmax)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_maxpool2d_fwd_f32(<float *>py, pa, <const float *>px, &g, nt)
        else:
            nnf_maxpool2d_fwd_f64(<double *>py, pa, <const double *>px, &g, nt)
    return out, argmax


def max_pool2d_backward(dy, x, argmax, pool_size=2, strides=None, padding="valid", dx=None):
    """dx of max pooling from dy and the forward's argmax (see the reference)."""
    fn = "max_pool2d_backward"
    cdef nnf_conv_geom_t g
    cdef int isz = _pool_setup(fn, x, pool_size, strides, padding, &g)
    shape = (g.N, g.OH, g.OW, g.C)
    _check_pool_dy(fn, dy, isz, shape)
    if not cnp.PyArray_Check(argmax):
        raise TypeError(f"{fn}: argmax must be a numpy.ndarray, got {type(argmax).__name__}")
    if argmax.dtype.newbyteorder("=") != np.int64:
        raise TypeError(f"{fn}: argmax must have dtype int64, got {argmax.dtype}")
    if argmax.shape != shape:
        raise ValueError(f"{fn}: argmax must have shape {shape}, got {argmax.shape}")
    cdef cnp.ndarray A = argmax
    if not cnp.PyArray_IS_C_CONTIGUOUS(A) or not _behaved(A):
        A = np.array(A, dtype=np.int64, order="C")
    cdef const int64_t *pa = <const int64_t *>cnp.PyArray_DATA(A)
    cdef int64_t i, lo = 0, hi = 0, n = cnp.PyArray_SIZE(A), lim = g.H * g.W * g.C
    if n:
        lo = hi = pa[0]
        with nogil:
            for i in range(1, n):
                if pa[i] < lo:
                    lo = pa[i]
                elif pa[i] > hi:
                    hi = pa[i]
        if lo < 0 or hi >= lim:
            # an index outside the image would write outside dx
            raise ValueError(f"{fn}: argmax must lie in [0, {lim}) (an element of one "
                             f"{g.H}x{g.W}x{g.C} image), got values in [{lo}, {hi}]")
    _check_nd_out(fn, "dx", dx, x.shape, isz, (dy, x, argmax))
    if dx is None:
        dx = _empty(x.shape, isz)
    cdef cnp.ndarray DY = _contig(dy)
    cdef void *pdy = cnp.PyArray_DATA(DY)
    cdef void *pdx = cnp.PyArray_DATA(<cnp.ndarray>dx)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_maxpool2d_bwd_f32(<float *>pdx, <const float *>pdy, pa, &g, nt)
        else:
            nnf_maxpool2d_bwd_f64(<double *>pdx, <const double *>pdy, pa, &g, nt)
    return dx


def avg_pool2d_forward(x, pool_size=2, strides=None, padding="valid", out=None):
    """y of average pooling over the in-image part of each window (see the reference)."""
    fn = "avg_pool2d_forward"
    cdef nnf_conv_geom_t g
    cdef int isz = _pool_setup(fn, x, pool_size, strides, padding, &g)
    shape = (g.N, g.OH, g.OW, g.C)
    _check_nd_out(fn, "out", out, shape, isz, (x,))
    if out is None:
        out = _empty(shape, isz)
    cdef cnp.ndarray X = _contig(x)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_avgpool2d_fwd_f32(<float *>py, <const float *>px, &g, nt)
        else:
            nnf_avgpool2d_fwd_f64(<double *>py, <const double *>px, &g, nt)
    return out


def avg_pool2d_backward(dy, x, pool_size=2, strides=None, padding="valid", dx=None):
    """dx of average pooling (see the reference)."""
    fn = "avg_pool2d_backward"
    cdef nnf_conv_geom_t g
    cdef int isz = _pool_setup(fn, x, pool_size, strides, padding, &g)
    _check_pool_dy(fn, dy, isz, (g.N, g.OH, g.OW, g.C))
    _check_nd_out(fn, "dx", dx, x.shape, isz, (dy, x))
    if dx is None:
        dx = _empty(x.shape, isz)
    cdef cnp.ndarray DY = _contig(dy)
    cdef void *pdy = cnp.PyArray_DATA(DY)
    cdef void *pdx = cnp.PyArray_DATA(<cnp.ndarray>dx)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_avgpool2d_bwd_f32(<float *>pdx, <const float *>pdy, &g, nt)
        else:
            nnf_avgpool2d_bwd_f64(<double *>pdx, <const double *>pdy, &g, nt)
    return dx


cdef int _gap_x(object fn, object x) except -1:
    cdef int isz = _check_array(fn, "x", x, 4, 0)
    if x.shape[1] * x.shape[2] == 0:
        raise ValueError(f"{fn}: the {x.shape[1]}x{x.shape[2]} input has no pixels to average")
    return isz


def global_avg_pool2d_forward(x, out=None):
    """y (N, C) = mean of x (N, H, W, C) over H and W (see the reference)."""
    fn = "global_avg_pool2d_forward"
    cdef int isz = _gap_x(fn, x)
    cdef int64_t n = x.shape[0], p = x.shape[1] * x.shape[2], c = x.shape[3]
    _check_nd_out(fn, "out", out, (n, c), isz, (x,))
    if out is None:
        out = _empty((n, c), isz)
    cdef cnp.ndarray X = _contig(x)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_gavgpool2d_fwd_f32(<float *>py, <const float *>px, n, p, c, nt)
        else:
            nnf_gavgpool2d_fwd_f64(<double *>py, <const double *>px, n, p, c, nt)
    return out


def global_avg_pool2d_backward(dy, x, dx=None):
    """dx (N, H, W, C) = dy (N, C) / (H*W) (see the reference)."""
    fn = "global_avg_pool2d_backward"
    cdef int isz = _gap_x(fn, x)
    cdef int64_t n = x.shape[0], p = x.shape[1] * x.shape[2], c = x.shape[3]
    _check_array(fn, "dy", dy, 2, isz)
    if dy.shape != (n, c):
        raise ValueError(f"{fn}: dy must have shape {(n, c)}, got {dy.shape}")
    _check_nd_out(fn, "dx", dx, x.shape, isz, (dy, x))
    if dx is None:
        dx = _empty(x.shape, isz)
    cdef cnp.ndarray DY = _contig(dy)
    cdef void *pdy = cnp.PyArray_DATA(DY)
    cdef void *pdx = cnp.PyArray_DATA(<cnp.ndarray>dx)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_gavgpool2d_bwd_f32(<float *>pdx, <const float *>pdy, n, p, c, nt)
        else:
            nnf_gavgpool2d_bwd_f64(<double *>pdx, <const double *>pdy, n, p, c, nt)
    return dx
