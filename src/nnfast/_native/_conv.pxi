# Convolution wrappers (csrc/nn/conv.c) and the window geometry shared with pooling. The
# geometry mirrors nnfast/backends/_ref_geometry.py: Keras 3's padding rules, same messages.

cdef tuple _pair(object fn, object name, object value):
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, (bool, np.bool_)) for v in items):
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    try:
        a, b = [operator.index(v) for v in items]
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}") from None
    if a < 1 or b < 1:
        raise ValueError(f"{fn}: {name} must be positive, got {value!r}")
    return (a, b)


cdef int _geometry(object fn, int64_t h, int64_t w, int64_t kh, int64_t kw, object strides,
                   object padding, object dilation, nnf_conv_geom_t *g) except -1:
    """Fills g's window fields (KH..OW) for an h x w image: Keras "valid" / "same"."""
    sh, sw = _pair(fn, "strides", strides)
    dh, dw = _pair(fn, "dilation_rate", dilation)
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"{fn}: padding must be 'valid' or 'same', got {padding!r}")
    cdef int64_t eh = (kh - 1) * dh + 1, ew = (kw - 1) * dw + 1, th, tw
    if h == 0 or w == 0:
        raise ValueError(f"{fn}: the {h}x{w} input has no pixels, so the output would have none")
    g.KH, g.KW, g.SH, g.SW, g.DH, g.DW = kh, kw, sh, sw, dh, dw
    if padding.lower() == "valid":
        if h < eh or w < ew:
            # the extent only where dilation makes it differ (never for pooling)
            ext = "" if dh == 1 and dw == 1 else f" (dilated extent {eh}x{ew})"
            raise ValueError(f"{fn}: the {kh}x{kw} window{ext} is larger than the {h}x{w} "
                             f"input with padding 'valid'; the output would have no pixels")
        g.OH, g.OW, g.PT, g.PL = (h - eh) // sh + 1, (w - ew) // sw + 1, 0, 0
    else:
        g.OH, g.OW = (h + sh - 1) // sh, (w + sw - 1) // sw
        th, tw = max((g.OH - 1) * sh + eh - h, 0), max((g.OW - 1) * sw + ew - w, 0)
        g.PT, g.PL = th // 2, tw // 2
    return 0


cdef int _check_nd_out(object fn, object name, object out, tuple shape, int isz,
                       tuple inputs) except -1:
    """out=None is fine (allocated later); else _check_out for shape."""
    if out is not None:
        _check_out(fn, name, out, shape, isz, inputs)
    return 0


cdef int _conv_setup(object fn, object x, object W, object strides, object padding,
                     object dilation, nnf_conv_geom_t *g) except -1:
    cdef int isz = _check_array(fn, "x", x, 4, 0)
    _check_array(fn, "W", W, 4, isz)
    if W.shape[2] != x.shape[3]:
        raise ValueError(f"{fn}: W must have shape (KH, KW, {x.shape[3]}, F) to match x of "
                         f"shape {x.shape} (channels last), got {W.shape}")
    if x.shape[3] == 0 or W.shape[3] == 0 or W.shape[0] == 0 or W.shape[1] == 0:
        raise ValueError(f"{fn}: x needs at least one channel and W a non-empty kernel and at "
                         f"least one filter, got x {x.shape} and W {W.shape}")
    g.N, g.H, g.W, g.C = x.shape
    g.F = W.shape[3]
    _geometry(fn, g.H, g.W, W.shape[0], W.shape[1], strides, padding, dilation, g)
    return isz


cdef int _check_saved_nd(object fn, object activation, object dy, object z, object y,
                         int isz) except -1:
    for name, arr, needed in (("z", z, activation in _NEEDS_Z), ("y", y, activation in _NEEDS_Y)):
        if arr is None:
            if needed:
                raise ValueError(f"{fn}: {name} is required for activation {activation!r}, "
                                 "got None")
            continue
        _check_array(fn, name, arr, dy.ndim, isz)
        if arr.shape != dy.shape:
            raise ValueError(f"{fn}: {name} must have shape {dy.shape} like dy, got {arr.shape}")
    return 0


def conv2d_forward(x, W, b=None, strides=1, padding="valid", dilation_rate=1,
                   activation="identity", double alpha=0.0, out=None, z=None):
    """y = act(conv2d(x, W) + b), channels last (see the reference)."""
    fn = "conv2d_forward"
    cdef nnf_conv_geom_t g
    cdef int isz = _conv_setup(fn, x, W, strides, padding, dilation_rate, &g)
    if b is not None:
        _check_array(fn, "b", b, 1, isz)
        if b.shape[0] != g.F:
            raise ValueError(f"{fn}: b must have shape ({g.F},), got {b.shape}")
    cdef int act = _act_code(fn, activation)
    shape = (g.N, g.OH, g.OW, g.F)
    _check_nd_out(fn, "out", out, shape, isz, (x, W, b))
    _check_nd_out(fn, "z", z, shape, isz, (x, W, b, out))
    if out is None:
        out = _empty(shape, isz)
    cdef cnp.ndarray X = _contig(x), Wc = _contig(W)
    B = None if b is None else _contig(b)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *pw = cnp.PyArray_DATA(Wc)
    cdef void *pb = _data_or_null(B)
    cdef void *pz = _data_or_null(z)
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = _nthreads, st = NNF_OK
    with nogil:
        if isz == 4:
            st = nnf_conv2d_fwd_f32(<float *>py, <float *>pz, <const float *>px,
                                    <const float *>pw, <const float *>pb, &g, act, <float>alpha,
                                    nt)
        else:
            st = nnf_conv2d_fwd_f64(<double *>py, <double *>pz, <const double *>px,
                                    <const double *>pw, <const double *>pb, &g, act, alpha, nt)
    _check_status(fn, st, _WS_CONV)
    return out


def conv2d_backward(dy, x, W, z, y, strides=1, padding="valid", dilation_rate=1,
                    activation="identity", double alpha=0.0, dW=None, db=None, dx=None, dz=None,
                    bint accumulate=False, bint need_dx=True):
    """(dx, dW, db) of conv2d_forward from dy (see the reference)."""
    fn = "conv2d_backward"
    cdef nnf_conv_geom_t g
    cdef int isz = _check_array(fn, "dy", dy, 4, 0)
    _conv_setup(fn, x, W, strides, padding, dilation_rate, &g)
    _check_array(fn, "x", x, 4, isz)
    shape = (g.N, g.OH, g.OW, g.F)
    if dy.shape != shape:
        raise ValueError(f"{fn}: dy must have shape {shape} (the output of x and W), got "
                         f"{dy.shape}")
    cdef int act = _act_code(fn, activation)
    _check_saved_nd(fn, activation, dy, z, y, isz)
    inputs = (dy, x, W, z, y)
    if accumulate and (dW is None or db is None):
        raise ValueError(f"{fn}: accumulate=True needs dW and db to add to, got "
                         f"dW={'None' if dW is None else 'array'}, "
                         f"db={'None' if db is None else 'array'}")
    _check_nd_out(fn, "dz", dz, shape, isz, inputs)
    _check_nd_out(fn, "dW", dW, W.shape, isz, inputs + (dz,))
    _check_nd_out(fn, "db", db, (g.F,), isz, inputs + (dz, dW))
    _check_nd_out(fn, "dx", dx, x.shape, isz, inputs + (dz, dW, db))
    if dW is None:
        dW = _empty(W.shape, isz)
    if db is None:
        db = _empty((g.F,), isz)
    if need_dx and dx is None:
        dx = _empty(x.shape, isz)
    if not need_dx:
        dx = None
    if dz is None and act != NNF_ACT_IDENTITY:
        dz = _empty(shape, isz)  # workspace for dy * act'
    cdef cnp.ndarray DY = _contig(dy), X = _contig(x), Wc = _contig(W)
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
            st = nnf_conv2d_bwd_f32(<float *>pdx, <float *>pdw, <float *>pdb, <float *>pdz,
                                    <const float *>pdy, <const float *>px, <const float *>pw,
                                    <const float *>pz, <const float *>pyv, &g, act,
                                    <float>alpha, acc, nt)
        else:
            st = nnf_conv2d_bwd_f64(<double *>pdx, <double *>pdw, <double *>pdb, <double *>pdz,
                                    <const double *>pdy, <const double *>px, <const double *>pw,
                                    <const double *>pz, <const double *>pyv, &g, act, alpha,
                                    acc, nt)
    _check_status(fn, st, _WS_CONV)
    return dx, dW, db


cdef extern from "gemm/gemm_kernels.h" nogil:
    void nnf_conv_set_direct(int on)


def _conv_set_direct(bint on):
    """Test hook: False = never take the single-channel direct convolution (csrc/nn/conv.c,
    conv_direct1), so its results can be compared with the implicit GEMM's."""
    nnf_conv_set_direct(on)
