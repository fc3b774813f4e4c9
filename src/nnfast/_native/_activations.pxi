# Activation wrappers: y = act(x) and dz = dy * act'(z, y), row-wise for softmax/log_softmax.

_ACT_CODES = {
    "identity": NNF_ACT_IDENTITY, "relu": NNF_ACT_RELU, "leaky_relu": NNF_ACT_LEAKY_RELU,
    "elu": NNF_ACT_ELU, "sigmoid": NNF_ACT_SIGMOID, "tanh": NNF_ACT_TANH, "gelu": NNF_ACT_GELU,
    "gelu_tanh": NNF_ACT_GELU_TANH, "silu": NNF_ACT_SILU, "softplus": NNF_ACT_SOFTPLUS,
    "softmax": NNF_ACT_SOFTMAX, "log_softmax": NNF_ACT_LOG_SOFTMAX,
}
# Which saved values act' reads (docs/ops_api.md, activation_backward).
cdef frozenset _NEEDS_Z = frozenset(("relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu",
                                     "softplus"))
cdef frozenset _NEEDS_Y = frozenset(("elu", "sigmoid", "tanh", "softmax", "log_softmax"))


cdef inline int _act_code(object fn, object activation) except -1:
    if not isinstance(activation, str):
        raise TypeError(f"{fn}: activation must be a str, got {type(activation).__name__}")
    code = _ACT_CODES.get(activation)
    if code is None:
        raise ValueError(f"{fn}: activation must be one of {', '.join(_ACT_CODES)}; "
                         f"got {activation!r}")
    return code


cdef inline void *_data_or_null(object a):
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline int _check_saved_one(object fn, object name, object arr, bint needed,
                                 object activation, object dy, int isz) except -1:
    if arr is None:
        if needed:
            raise ValueError(f"{fn}: {name} is required for activation {activation!r}, got None")
        return 0
    _check_array(fn, name, arr, 2, isz)
    cdef cnp.npy_intp *d = cnp.PyArray_DIMS(<cnp.ndarray>arr)
    cdef cnp.npy_intp *e = cnp.PyArray_DIMS(<cnp.ndarray>dy)
    if d[0] != e[0] or d[1] != e[1]:
        raise ValueError(f"{fn}: {name} must have shape {dy.shape} like dy, got {arr.shape}")
    return 0


cdef int _check_saved(object fn, object activation, object dy, object z, object y,
                      int isz) except -1:
    """z and y: None or dy's shape and dtype; present when act' reads them."""
    _check_saved_one(fn, "z", z, activation in _NEEDS_Z, activation, dy, isz)
    _check_saved_one(fn, "y", y, activation in _NEEDS_Y, activation, dy, isz)
    return 0


def activation_forward(x, activation, double alpha=0.0, out=None):
    """y = act(x) for a 2-D x (N, M); softmax/log_softmax row-wise (see the reference)."""
    fn = "activation_forward"
    cdef int isz = _check_array(fn, "x", x, 2, 0)
    cdef int act = _act_code(fn, activation)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>x, 0), m = cnp.PyArray_DIM(<cnp.ndarray>x, 1)
    if out is None:
        out = _alloc(2, n, m, _ftype(isz))
    else:
        _check_out_nd(fn, "out", out, 2, n, m, isz, (x,))
    if n == 0 or m == 0:
        return out
    cdef cnp.ndarray X = _contig(x)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_activation_fwd_f32(<float *>py, <const float *>px, n, m, act, <float>alpha, nt)
        else:
            nnf_activation_fwd_f64(<double *>py, <const double *>px, n, m, act, alpha, nt)
    return out


def activation_backward(dy, z, y, activation, double alpha=0.0, out=None):
    """dz = dy * act'(z) given z and y = act(z) (see the reference for which may be None)."""
    fn = "activation_backward"
    cdef int isz = _check_array(fn, "dy", dy, 2, 0)
    cdef int act = _act_code(fn, activation)
    _check_saved(fn, activation, dy, z, y, isz)
    cdef int64_t n = cnp.PyArray_DIM(<cnp.ndarray>dy, 0), m = cnp.PyArray_DIM(<cnp.ndarray>dy, 1)
    if out is None:
        out = _alloc(2, n, m, _ftype(isz))
    else:
        _check_out_nd(fn, "out", out, 2, n, m, isz, (dy, z, y))
    if n == 0 or m == 0:
        return out
    cdef cnp.ndarray DY = _contig(dy)
    Z = None if z is None else _contig(z)
    Y = None if y is None else _contig(y)
    cdef void *pdy = cnp.PyArray_DATA(DY)
    cdef void *pz = _data_or_null(Z)
    cdef void *pyv = _data_or_null(Y)
    cdef void *pout = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4:
            nnf_activation_bwd_f32(<float *>pout, <const float *>pdy, <const float *>pz,
                                   <const float *>pyv, n, m, act, <float>alpha, nt)
        else:
            nnf_activation_bwd_f64(<double *>pout, <const double *>pdy, <const double *>pz,
                                   <const double *>pyv, n, m, act, alpha, nt)
    return out
