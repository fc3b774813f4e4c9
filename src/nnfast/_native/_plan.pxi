# Inference plan: the forward pass of a stack of dense / activation layers in one C call
# (nnf_mlp_fwd_*). Everything about the weights is checked once, at construction; forward
# checks x and out only. Same constructor, forward and messages as
# nnfast/backends/_ref_plan.py.
from libc.math cimport isfinite
from libc.stdlib cimport calloc, free

_PLAN_SHAPES = "('dense', W, b, activation, alpha) or ('activation', activation, alpha)"


cdef str _plan_what(object entry):
    if isinstance(entry, tuple):
        head = f" starting {entry[0]!r}" if entry and isinstance(entry[0], str) else ""
        return f"a tuple of {len(entry)}{head}"
    return type(entry).__name__


cdef int _plan_in_place(str where, str name, cnp.ndarray a) except -1:
    if not (cnp.PyArray_IS_C_CONTIGUOUS(a) and _behaved(a)):
        raise ValueError(f"{where} {name} must be C-contiguous, aligned and in native byte "
                         f"order: the plan reads it in place, so later changes to its values "
                         f"(set_weights, training) are seen")
    return 0


cdef double _plan_alpha(str where, object alpha, int isz) except? -1.0:
    """alpha as the kernels get it: finite, like the Dense layer's (a NaN or inf slope has no
    meaning), and still finite once a float32 plan rounds it to float (1e39 -> inf), as
    _real_param checks the float32 kernels' hyperparameters. Same messages as _ref_plan."""
    cdef double v
    cdef float r
    if isinstance(alpha, (str, bytes)) or alpha is None:
        raise TypeError(f"{where} alpha must be a real number, got {type(alpha).__name__}")
    try:
        v = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"{where} alpha must be a real number, got "
                        f"{type(alpha).__name__}") from None
    if not isfinite(v):
        raise ValueError(f"{where} alpha must be finite, got {v!r}")
    if isz == 4:
        r = <float>v
        if not isfinite(r):
            rounded = <double>r
            raise ValueError(f"{where} alpha={v!r} is out of range for float32: it rounds to "
                             f"{rounded!r}, and alpha must be finite")
    return v


cdef class MLPPlan:
    """MLPPlan(layers, n_features, dtype='float32')
--

    The forward pass of a stack of layers, checked once, run in one C call per forward
    (nnf_mlp_fwd_*, the GIL released). The arguments and errors: see the reference,
    nnfast/backends/_ref_plan.py. ``block_rows``: the rows C runs through all layers at a
    time (csrc/nn/plan.c says how it is chosen). The first line above is the signature
    ``inspect.signature`` reads (an extension type has no other)."""

    cdef nnf_mlp_op_t *_ops
    cdef int64_t _nops, _k, _m, _width, _rows
    cdef int _isz
    cdef bint _x_rows          # the first op reads x row-major contiguous (activation, none)
    cdef list _keep            # the W and b arrays: their pointers stay valid
    cdef list _idle            # idle workspaces [capacity rows, ws0, ws1]: one per concurrent call
    cdef readonly object dtype
    cdef readonly int64_t n_features, n_outputs, block_rows

    def __cinit__(self):
        self._ops = NULL

    def __dealloc__(self):
        free(self._ops)

    def __init__(self, layers, n_features, dtype="float32"):
        fn = "MLPPlan"
        if dtype not in ("float32", "float64") and not (
                isinstance(dtype, (np.dtype, type)) and np.dtype(dtype) in (np.float32,
                                                                          np.float64)):
            raise ValueError(f"{fn}: dtype must be 'float32' or 'float64', got {dtype!r}")
        self.dtype = np.dtype(dtype)
        cdef int isz = self.dtype.itemsize
        if (isinstance(n_features, (bool, np.bool_))
                or not isinstance(n_features, (int, np.integer)) or n_features < 1):
            raise ValueError(f"{fn}: n_features must be an int >= 1, got {n_features!r}")
        if not isinstance(layers, (list, tuple)):
            raise TypeError(f"{fn}: layers must be a list of layer descriptors {_PLAN_SHAPES}, "
                            f"got {type(layers).__name__}")
        cdef int64_t i, nops = len(layers), width = n_features, widest = 0
        cdef nnf_mlp_op_t *ops = <nnf_mlp_op_t *>calloc(nops if nops else 1, sizeof(nnf_mlp_op_t))
        if ops == NULL:
            raise MemoryError()
        keep = []
        try:
            for i in range(nops):
                entry = layers[i]
                kind = entry[0] if isinstance(entry, tuple) and entry else None
                if not ((kind == "dense" and len(entry) == 5)
                        or (kind == "activation" and len(entry) == 3)):
                    raise ValueError(f"{fn}: layers[{i}] must be a tuple {_PLAN_SHAPES}; got "
                                     f"{_plan_what(entry)}")
                where = f"{fn}: layers[{i}]"
                if kind == "dense":
                    _, W, b, activation, alpha = entry
                    _check_array(fn, f"layers[{i}] W", W, 2, 0)
                    if W.dtype.newbyteorder("=") != self.dtype:
                        raise TypeError(f"{fn}: layers[{i}] W must have dtype {self.dtype} like "
                                        f"the other operands, got {W.dtype}")
                    if W.shape[0] != width:
                        raise ValueError(f"{where} W must have shape ({width}, M) to take the "
                                         f"{width} features before it, got {W.shape}")
                    _plan_in_place(where, "W", <cnp.ndarray>W)
                    if b is not None:
                        _check_array(fn, f"layers[{i}] b", b, 1, isz)
                        if b.shape != (W.shape[1],):
                            raise ValueError(f"{where} b must have shape ({W.shape[1]},), got "
                                             f"{b.shape}")
                        _plan_in_place(where, "b", <cnp.ndarray>b)
                    ops[i].kind = NNF_MLP_DENSE
                    ops[i].W = cnp.PyArray_DATA(<cnp.ndarray>W)
                    ops[i].b = _data_or_null(b)
                    keep += [W, b]
                    width = W.shape[1]
                else:
                    _, activation, alpha = entry
                    ops[i].kind = NNF_MLP_ACT
                ops[i].act = _act_code(where, activation)
                ops[i].alpha = _plan_alpha(where, alpha, isz)
                ops[i].M = width
                if i < nops - 1 and width > widest:
                    widest = width
        except BaseException:
            free(ops)
            raise
        free(self._ops)     # __init__ called again on a live plan: its old ops go
        self._ops, self._nops, self._keep, self._idle = ops, nops, keep, []
        self._isz, self._k, self._m, self._width = isz, n_features, width, widest
        self._x_rows = nops == 0 or ops[0].kind == NNF_MLP_ACT
        self._rows = nnf_mlp_block_rows(ops, nops, n_features, isz)
        self.n_features, self.n_outputs, self.block_rows = n_features, width, self._rows

    def forward(self, x, out=None):
        """y (N, n_outputs) from x (N, n_features): see the reference."""
        fn = "MLPPlan.forward"
        if not cnp.PyArray_Check(x):
            raise TypeError(f"{fn}: x must be a numpy.ndarray, got {type(x).__name__}")
        cdef cnp.ndarray X = <cnp.ndarray>x
        cdef int t = cnp.PyArray_TYPE(X)
        if (t != cnp.NPY_FLOAT32 if self._isz == 4 else t != cnp.NPY_FLOAT64):
            raise TypeError(f"{fn}: x must have dtype {self.dtype} like the plan, got {x.dtype}")
        if cnp.PyArray_NDIM(X) != 2 or cnp.PyArray_DIM(X, 1) != self._k:
            raise ValueError(f"{fn}: x must have shape (N, {self._k}), got {x.shape}")
        cdef int64_t n = cnp.PyArray_DIM(X, 0)
        if out is None:
            out = _alloc(2, n, self._m, _ftype(self._isz))
        else:
            _check_out_nd(fn, "out", out, 2, n, self._m, self._isz, (x,))
        if n == 0:
            return out
        cdef int tx = 0
        cdef int64_t ldx = 0
        if self._x_rows or not _row_layout(X, n, self._k, self._isz, &tx, &ldx):
            X = _contig(X)   # a copy unless already row-major contiguous, native and aligned
            tx, ldx = 0, self._k
        cdef int64_t rows = n if n < self._rows else self._rows
        try:
            work = self._idle.pop()     # atomic: two threads never get the same one
        except IndexError:
            work = None
        if work is None or <int64_t>work[0] < rows:
            work = [rows, _alloc(1, rows * self._width, 0, _ftype(self._isz)),
                    _alloc(1, rows * self._width, 0, _ftype(self._isz))]
        cdef void *p0 = cnp.PyArray_DATA(<cnp.ndarray>work[1])
        cdef void *p1 = cnp.PyArray_DATA(<cnp.ndarray>work[2])
        cdef void *px = cnp.PyArray_DATA(X)
        cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
        cdef int nt = _nthreads, st = NNF_OK
        cdef int64_t blk = self._rows
        with nogil:
            if self._isz == 4:
                st = nnf_mlp_fwd_f32(<float *>py, <const float *>px, ldx, tx, self._ops,
                                     self._nops, <float *>p0, <float *>p1, n, self._k, blk, nt)
            else:
                st = nnf_mlp_fwd_f64(<double *>py, <const double *>px, ldx, tx, self._ops,
                                     self._nops, <double *>p0, <double *>p1, n, self._k, blk, nt)
        self._idle.append(work)
        _check_status(fn, st)
        return out

    def __repr__(self):
        return (f"MLPPlan({self._nops} ops, {self.n_features} -> {self.n_outputs}, "
                f"{self.dtype})")
