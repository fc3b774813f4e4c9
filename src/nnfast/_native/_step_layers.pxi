# The one-call training step's layer checks (issue 13; the image layers of issue 18): each layer
# dict TrainStep (_step.pxi) is given is checked once, at construction, and written into its
# nnf_step_layer_t (and nnf_step_img_t); the per-sample shapes (channels last) are followed
# from layer to layer. Geometry: _geometry and _pair of _conv.pxi, Keras' padding rules.


cdef void *_step_index_buf(str where, object a, tuple shape) except NULL:
    """A writeable C-contiguous int64 array of exactly this shape (max pooling's argmax)."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"TrainStep: {where} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.int64 or tuple(a.shape) != shape or not cnp.PyArray_ISCARRAY(
            <cnp.ndarray>a):
        raise ValueError(f"TrainStep: {where} must be a writeable C-contiguous int64 array of "
                         f"shape {shape}, got {a.dtype} {a.shape}")
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef tuple _step_image(str fn, str where, tuple shape):
    if len(shape) != 3:
        raise ValueError(f"{fn}: {where} needs images (height, width, channels) per sample, got "
                         f"input shape {shape}")
    return shape


cdef int _step_params(str fn, str where, dict spec, str wname, str bname, tuple wshape,
                      tuple bshape, nnf_step_layer_t *L, char *pbase, char *gbase, int64_t p,
                      int isz, bint w_optional) except -1:
    """L.W, L.dW (wname), L.b, L.db (bname: optional), their offsets and sizes."""
    cdef int64_t ws = 1, bs = 1
    for d in wshape:
        ws *= d
    for d in bshape:
        bs *= d
    L.W = _step_buf(f"{where}['{wname}']", spec.get(wname), wshape, isz, w_optional)
    L.dW = _step_buf(f"{where}['d{wname}']", spec.get("d" + wname), wshape, isz, L.W == NULL)
    L.b = _step_buf(f"{where}['{bname}']", spec.get(bname), bshape, isz, True)
    L.db = _step_buf(f"{where}['d{bname}']", spec.get("d" + bname), bshape, isz, L.b == NULL)
    L.wsize, L.bsize = ws, bs
    if L.W != NULL:
        L.woff = _step_offset(where, wname, L.W, L.dW, pbase, gbase, ws, p, isz)
    if L.b != NULL:
        L.boff = _step_offset(where, bname, L.b, L.db, pbase, gbase, bs, p, isz)
    return 0


cdef tuple _step_layer(str fn, str where, dict spec, nnf_step_layer_t *L, nnf_step_img_t *im,
                       tuple shape, char *pbase, char *gbase, int64_t p, int isz):
    """Checks one layer's parameters and geometry, fills L (and im); returns its per-sample
    output shape."""
    cdef int64_t width = L.k, m, c
    cdef int kind = L.kind
    if kind == NNF_STEP_DENSE:
        W = spec.get("W")
        if not cnp.PyArray_Check(W) or W.ndim != 2 or W.shape[0] != width:
            raise ValueError(f"{fn}: {where}['W'] must be a ({width}, m) array")
        m = W.shape[1]
        _step_params(fn, where, spec, "W", "b", (width, m), (m,), L, pbase, gbase, p, isz, False)
        _step_reg(fn, where, spec, L)
        return (m,)
    elif kind == NNF_STEP_CONV2D:
        h, w, c = _step_image(fn, where, shape)
        W = spec.get("W")
        if not cnp.PyArray_Check(W) or W.ndim != 4 or W.shape[2] != c or 0 in W.shape:
            raise ValueError(f"{fn}: {where}['W'] must be a (KH, KW, {c}, F) array")
        _step_params(fn, where, spec, "W", "b", tuple(W.shape), (W.shape[3],), L, pbase, gbase,
                     p, isz, False)
        im.g.H, im.g.W, im.g.C, im.g.F = h, w, c, W.shape[3]
        _geometry(f"{fn}: {where}", h, w, W.shape[0], W.shape[1], spec.get("strides", 1),
                  spec.get("padding", "valid"), spec.get("dilation_rate", 1), &im.g)
        _step_reg(fn, where, spec, L)
        return (im.g.OH, im.g.OW, im.g.F)
    elif kind == NNF_STEP_MAXPOOL2D or kind == NNF_STEP_AVGPOOL2D:
        h, w, c = _step_image(fn, where, shape)
        kh, kw = _pair(f"{fn}: {where}", "pool_size", spec.get("pool_size", 2))
        strides = spec.get("strides")
        im.g.H, im.g.W, im.g.C, im.g.F = h, w, c, c
        _geometry(f"{fn}: {where}", h, w, kh, kw, (kh, kw) if strides is None else strides,
                  spec.get("padding", "valid"), 1, &im.g)
        return (im.g.OH, im.g.OW, c)
    elif kind == NNF_STEP_GLOBAL_AVG_POOL:
        im.channels = _step_image(fn, where, shape)[2]
        return (im.channels,)
    elif kind == NNF_STEP_BATCHNORM:
        if not shape:
            raise ValueError(f"{fn}: {where} needs at least one feature axis, got input shape ()")
        c = shape[len(shape) - 1]
        if c < 1:
            raise ValueError(f"{fn}: {where} needs at least one channel, got input shape {shape}")
        im.channels = c
        _step_params(fn, where, spec, "gamma", "beta", (c,), (c,), L, pbase, gbase, p, isz, True)
        im.moving_mean = _step_buf(where + "['moving_mean']", spec.get("moving_mean"), (c,), isz)
        im.moving_var = _step_buf(where + "['moving_variance']", spec.get("moving_variance"),
                                  (c,), isz)
        im.inv_std = _step_buf(where + "['inv_std']", spec.get("inv_std"), (c,), isz)
        im.momentum = _real_param(fn, where + "['momentum']", spec.get("momentum", 0.99), 0.0,
                                  1.0)
        im.eps = _real_param(fn, where + "['epsilon']", spec.get("epsilon", 1e-3), 0.0, None,
                             True)
        return shape
    elif kind == NNF_STEP_RESHAPE:
        target = spec.get("shape")
        if (not isinstance(target, tuple) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in target)):
            raise ValueError(f"{fn}: {where}['shape'] must be a tuple of positive ints, got "
                             f"{target!r}")
        m = 1
        for d in target:
            m *= d
        if m != width:
            raise ValueError(f"{fn}: {where}['shape'] {target} holds {m} values, its input "
                             f"{width}")
        return target
    elif kind == NNF_STEP_FLATTEN:
        return (width,)
    return shape


cdef int _step_reg(str fn, str where, dict spec, nnf_step_layer_t *L) except -1:
    """The kernel regularizer's factors (dense, conv2d)."""
    L.l1 = _real_param(fn, where + "['l1']", spec.get("l1", 0.0), 0.0)
    L.l2 = _real_param(fn, where + "['l2']", spec.get("l2", 0.0), 0.0)
    return 0
