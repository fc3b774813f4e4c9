# Inference plan of a network with image layers: conv / pool / batch-norm / reshape / dense /
# activation ops in one C call (nnf_net_fwd_*, csrc/nn/netplan.c). Everything about the
# weights and shapes is checked once, at construction, in the order and with the messages of
# nnfast/backends/_ref_netplan.py; forward checks x and out only. Helpers _plan_in_place,
# _plan_alpha and _plan_what: _plan.pxi.
import math

_NET_LENGTHS = {"dense": 5, "activation": 3, "conv2d": 8, "max_pool2d": 4, "avg_pool2d": 4,
                "global_avg_pool2d": 1, "batch_norm": 6, "reshape": 2}
_NET_SHAPES = ("('dense', W, b, activation, alpha), ('activation', activation, alpha), "
               "('conv2d', W, b, strides, padding, dilation_rate, activation, alpha), "
               "('max_pool2d' or 'avg_pool2d', pool_size, strides, padding), "
               "('global_avg_pool2d',), "
               "('batch_norm', gamma, beta, moving_mean, moving_variance, epsilon) or "
               "('reshape', target_shape)")


cdef tuple _net_dims(str fn, str name, object value):
    ok = isinstance(value, (tuple, list)) and len(value) > 0 and all(
        not isinstance(d, (bool, np.bool_)) and isinstance(d, (int, np.integer)) and d >= 1
        for d in value)
    if not ok:
        raise ValueError(f"{fn}: {name} must be a non-empty tuple of ints >= 1, got {value!r}")
    return tuple(int(d) for d in value)


cdef tuple _net_image(str where, str kind, tuple shape):
    if len(shape) != 3:
        raise ValueError(f"{where} {kind} needs images (H, W, C) per sample, got shape {shape}")
    return shape


cdef int _net_weight(str fn, int64_t i, str name, object a, int ndim, object dtype) except -1:
    _check_array(fn, f"layers[{i}] {name}", a, ndim, 0)
    if a.dtype.newbyteorder("=") != dtype:
        raise TypeError(f"{fn}: layers[{i}] {name} must have dtype {dtype} like the other "
                        f"operands, got {a.dtype}")
    _plan_in_place(f"{fn}: layers[{i}]", name, <cnp.ndarray>a)
    return 0


cdef int _net_vector(str fn, int64_t i, str name, object v, int64_t c, object dtype) except -1:
    _net_weight(fn, i, name, v, 1, dtype)
    if v.shape != (c,):
        raise ValueError(f"{fn}: layers[{i}] {name} must have shape ({c},) (one value per "
                         f"channel), got {v.shape}")
    return 0


cdef double _net_epsilon(str where, object eps) except? -1.0:
    cdef double v
    if isinstance(eps, (str, bytes, bool, np.bool_)) or eps is None:
        raise TypeError(f"{where} epsilon must be a real number, got {type(eps).__name__}")
    try:
        v = float(eps)
    except (TypeError, ValueError):
        raise TypeError(f"{where} epsilon must be a real number, got "
                        f"{type(eps).__name__}") from None
    if not (isfinite(v) and v >= 0):
        raise ValueError(f"{where} epsilon must be a finite number >= 0, got {v!r}")
    return v


cdef class NetPlan:
    """NetPlan(layers, input_shape, dtype='float32')
--

    The predict-mode forward pass of a network with image layers, checked once, run in one
    C call per forward (nnf_net_fwd_*, the GIL released). The arguments and errors: see the
    reference, nnfast/backends/_ref_netplan.py. ``block_images``: the samples C runs through
    all ops at a time (csrc/nn/netplan.c says how it is chosen). The first line above is the
    signature ``inspect.signature`` reads (an extension type has no other)."""

    cdef nnf_net_op_t *_ops
    cdef int64_t _nops, _width, _argw
    cdef int _isz
    cdef list _keep            # the arrays the ops point into: their pointers stay valid
    cdef list _idle            # idle workspaces [images, ws0, ws1, arg]: one per concurrent call
    cdef readonly object dtype, input_shape, output_shape
    cdef readonly int64_t n_features, n_outputs, block_images

    def __cinit__(self):
        self._ops = NULL

    def __dealloc__(self):
        free(self._ops)

    def __init__(self, layers, input_shape, dtype="float32"):
        fn = "NetPlan"
        if dtype not in ("float32", "float64") and not (
                isinstance(dtype, (np.dtype, type)) and np.dtype(dtype) in (np.float32,
                                                                          np.float64)):
            raise ValueError(f"{fn}: dtype must be 'float32' or 'float64', got {dtype!r}")
        dt = np.dtype(dtype)
        cdef int isz = dt.itemsize
        cdef tuple shape = _net_dims(fn, "input_shape", input_shape)
        first = shape
        if not isinstance(layers, (list, tuple)):
            raise TypeError(f"{fn}: layers must be a list of layer descriptors {_NET_SHAPES}, "
                            f"got {type(layers).__name__}")
        cdef int64_t i, n = len(layers), nops = 0, width = 0, argw = 0, size
        cdef nnf_net_op_t *ops = <nnf_net_op_t *>calloc(n if n else 1, sizeof(nnf_net_op_t))
        cdef nnf_net_op_t *op
        if ops == NULL:
            raise MemoryError()
        keep = []
        try:
            for i in range(n):
                entry = layers[i]
                kind = entry[0] if isinstance(entry, tuple) and entry else None
                if not isinstance(kind, str) or _NET_LENGTHS.get(kind) != len(entry):
                    raise ValueError(f"{fn}: layers[{i}] must be a tuple {_NET_SHAPES}; got "
                                     f"{_plan_what(entry)}")
                where = f"{fn}: layers[{i}]"
                size = math.prod(shape)
                op = &ops[nops]
                op.n_in = size
                if kind == "dense":
                    _, W, b, activation, alpha = entry
                    if len(shape) != 1:
                        raise ValueError(f"{where} dense needs 1-D features per sample, got "
                                         f"shape {shape}")
                    _net_weight(fn, i, "W", W, 2, dt)
                    if W.shape[0] != shape[0]:
                        raise ValueError(f"{where} W must have shape ({shape[0]}, M) to take "
                                         f"the {shape[0]} features before it, got {W.shape}")
                    if b is not None:
                        _net_vector(fn, i, "b", b, W.shape[1], dt)
                    op.kind, op.act = NNF_NET_DENSE, _act_code(where, activation)
                    op.alpha = _plan_alpha(where, alpha, isz)
                    op.W, op.b = cnp.PyArray_DATA(<cnp.ndarray>W), _data_or_null(b)
                    keep += [W, b]
                    shape = (W.shape[1],)
                elif kind == "activation":
                    _, activation, alpha = entry
                    op.act = _act_code(where, activation)
                    if activation in ("softmax", "log_softmax") and len(shape) != 1:
                        raise ValueError(f"{where} {activation} needs 1-D features per sample, "
                                         f"got shape {shape}")
                    op.kind, op.alpha = NNF_NET_ACT, _plan_alpha(where, alpha, isz)
                elif kind == "conv2d":
                    _, W, b, strides, padding, dilation, activation, alpha = entry
                    _net_image(where, kind, shape)
                    _net_weight(fn, i, "W", W, 4, dt)
                    if W.shape[2] != shape[2] or 0 in W.shape:
                        raise ValueError(f"{where} W must have shape (KH, KW, {shape[2]}, F), "
                                         f"none of them 0, to take the {shape[2]} channels "
                                         f"before it, got {W.shape}")
                    if b is not None:
                        _net_vector(fn, i, "b", b, W.shape[3], dt)
                    op.g.H, op.g.W, op.g.C, op.g.F = shape[0], shape[1], shape[2], W.shape[3]
                    _geometry(where, op.g.H, op.g.W, W.shape[0], W.shape[1], strides, padding,
                              dilation, &op.g)
                    op.kind, op.act = NNF_NET_CONV2D, _act_code(where, activation)
                    op.alpha = _plan_alpha(where, alpha, isz)
                    op.W, op.b = cnp.PyArray_DATA(<cnp.ndarray>W), _data_or_null(b)
                    keep += [W, b]
                    shape = (op.g.OH, op.g.OW, op.g.F)
                elif kind == "max_pool2d" or kind == "avg_pool2d":
                    _, pool_size, strides, padding = entry
                    _net_image(where, kind, shape)
                    kh, kw = _pair(where, "pool_size", pool_size)
                    op.g.H, op.g.W, op.g.C, op.g.F = shape[0], shape[1], shape[2], shape[2]
                    _geometry(where, op.g.H, op.g.W, kh, kw,
                              (kh, kw) if strides is None else strides, padding, 1, &op.g)
                    op.kind = NNF_NET_MAXPOOL2D if kind == "max_pool2d" else NNF_NET_AVGPOOL2D
                    shape = (op.g.OH, op.g.OW, op.g.C)
                elif kind == "global_avg_pool2d":
                    op.g.C = _net_image(where, kind, shape)[2]
                    op.kind = NNF_NET_GAVGPOOL2D
                    shape = (op.g.C,)
                elif kind == "batch_norm":
                    _, gamma, beta, mean, var, eps = entry
                    op.g.C = shape[len(shape) - 1]
                    for name, v in (("gamma", gamma), ("beta", beta), ("moving_mean", mean),
                                    ("moving_variance", var)):
                        if v is not None or name.startswith("moving"):
                            _net_vector(fn, i, name, v, op.g.C, dt)
                    op.kind, op.eps = NNF_NET_BATCHNORM, _net_epsilon(where, eps)
                    op.gamma, op.beta = _data_or_null(gamma), _data_or_null(beta)
                    op.mean = cnp.PyArray_DATA(<cnp.ndarray>mean)
                    op.var = cnp.PyArray_DATA(<cnp.ndarray>var)
                    keep += [gamma, beta, mean, var]
                else:   # reshape: the same contiguous values, no C op
                    target = _net_dims(where, "target_shape", entry[1])
                    if math.prod(target) != size:
                        raise ValueError(f"{where} cannot reshape {shape} ({size} values) to "
                                         f"{target} ({math.prod(target)} values)")
                    shape = target
                    continue
                op.n_out = math.prod(shape)
                if op.kind == NNF_NET_MAXPOOL2D and op.n_out > argw:
                    argw = op.n_out
                nops += 1
            for i in range(nops - 1):   # the workspaces hold every output but the last
                if ops[i].n_out > width:
                    width = ops[i].n_out
        except BaseException:
            free(ops)
            raise
        free(self._ops)     # __init__ called again on a live plan: its old ops go
        self._ops, self._nops, self._keep, self._idle = ops, nops, keep, []
        self._isz, self._width, self._argw = isz, width, argw
        self.dtype, self.input_shape, self.output_shape = dt, first, shape
        self.n_features, self.n_outputs = math.prod(first), math.prod(shape)
        self.block_images = nnf_net_block_images(ops, nops, self.n_features, isz)

    def forward(self, x, out=None):
        """y (N, *output_shape) from x (N, *input_shape) or (N, n_features): see the
        reference."""
        fn = "NetPlan.forward"
        if not cnp.PyArray_Check(x):
            raise TypeError(f"{fn}: x must be a numpy.ndarray, got {type(x).__name__}")
        cdef cnp.ndarray X = <cnp.ndarray>x
        cdef int t = cnp.PyArray_TYPE(X)
        if (t != cnp.NPY_FLOAT32 if self._isz == 4 else t != cnp.NPY_FLOAT64):
            raise TypeError(f"{fn}: x must have dtype {self.dtype} like the plan, got {x.dtype}")
        if x.shape[1:] != self.input_shape and not (cnp.PyArray_NDIM(X) == 2 and
                                                    cnp.PyArray_DIM(X, 1) == self.n_features):
            one = "(N, " + ", ".join(map(str, self.input_shape)) + ")"
            want = one if len(self.input_shape) == 1 else f"{one} or (N, {self.n_features})"
            raise ValueError(f"{fn}: x must have shape {want}, got {x.shape}")
        cdef int64_t n = cnp.PyArray_DIM(X, 0)
        if out is None:
            out = _empty((n,) + self.output_shape, self._isz)
        else:
            flat = cnp.PyArray_Check(out) and cnp.PyArray_NDIM(<cnp.ndarray>out) == 2
            _check_out(fn, "out", out, (n, self.n_outputs) if flat else
                       (n,) + self.output_shape, self._isz, (x,))
        if n == 0:
            return out
        X = _contig(X)   # a copy unless already row-major contiguous, native and aligned
        if self._nops == 0:   # reshapes only: the values as they are
            np.copyto(out, X.reshape(out.shape))
            return out
        cdef int64_t imgs = n if n < self.block_images else self.block_images
        try:
            work = self._idle.pop()     # atomic: two threads never get the same one
        except IndexError:
            work = None
        if work is None or <int64_t>work[0] < imgs:
            work = [imgs, _alloc(1, imgs * self._width, 0, _ftype(self._isz)),
                    _alloc(1, imgs * self._width, 0, _ftype(self._isz)),
                    _alloc(1, imgs * self._argw, 0, cnp.NPY_INT64)]
        cdef void *p0 = cnp.PyArray_DATA(<cnp.ndarray>work[1])
        cdef void *p1 = cnp.PyArray_DATA(<cnp.ndarray>work[2])
        cdef int64_t *pa = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>work[3])
        cdef void *px = cnp.PyArray_DATA(X)
        cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
        cdef int nt = _nthreads, st = NNF_OK
        cdef int64_t blk = self.block_images
        with nogil:
            if self._isz == 4:
                st = nnf_net_fwd_f32(<float *>py, <const float *>px, self._ops, self._nops,
                                     <float *>p0, <float *>p1, pa, n, blk, nt)
            else:
                st = nnf_net_fwd_f64(<double *>py, <const double *>px, self._ops, self._nops,
                                     <double *>p0, <double *>p1, pa, n, blk, nt)
        self._idle.append(work)
        _check_status(fn, st, _WS_NET)
        return out

    def __repr__(self):
        return (f"NetPlan({self._nops} ops, {self.input_shape} -> {self.output_shape}, "
                f"{self.dtype})")
