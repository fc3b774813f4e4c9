# Argument checks shared by every wrapper. Messages name the function, the argument,
# what was expected and what was given.

cdef inline int _itemsize_of(object fn, object name, object arr) except -1:
    """4 for float32, 8 for float64, in either byte order (a byte-swapped or unaligned input is
    copied by _contig as NumPy would; a given output must be native and aligned, _check_behaved);
    TypeError otherwise."""
    if not cnp.PyArray_Check(arr):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(arr).__name__}")
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>arr)
    if t == cnp.NPY_FLOAT32:
        return 4
    if t == cnp.NPY_FLOAT64:
        return 8
    raise TypeError(f"{fn}: {name} must have dtype float32 or float64, got {arr.dtype}")


cdef inline bint _behaved(cnp.ndarray a) noexcept:
    """Native byte order and aligned (data pointer and strides): C may read a's elements as its
    float, double or int64_t type. A view at an odd byte offset is not (UB in C)."""
    return cnp.PyArray_ISNOTSWAPPED(a) and cnp.PyArray_ISALIGNED(a)


cdef inline cnp.ndarray _contig(object a):
    """An input as C reads it: a itself when C-contiguous, aligned and in native byte order,
    else one C-contiguous native copy holding the same values (NumPy's own conversion)."""
    cdef cnp.ndarray A = <cnp.ndarray>a
    if cnp.PyArray_IS_C_CONTIGUOUS(A) and _behaved(A):
        return A
    return np.array(A, dtype=A.dtype.newbyteorder("="), order="C")


cdef inline int _check_behaved(object fn, object name, cnp.ndarray out) except -1:
    """A given output is written in place, so it cannot be copied: it must be in native byte
    order (TypeError) and aligned (ValueError). Same messages as _ref_checks._check_behaved."""
    if _behaved(out):
        return 0
    want = f"{fn}: {name} must be an aligned native-byte-order {out.dtype.name} array"
    if not cnp.PyArray_ISNOTSWAPPED(out):
        raise TypeError(f"{want}, got dtype {out.dtype.str}")
    raise ValueError(f"{want}, got one whose data or strides are not multiples of "
                     f"{out.dtype.alignment} bytes")


cdef inline int _check_array(object fn, object name, object arr, int ndim, int itemsize) except -1:
    """arr is an ndarray with ndim dimensions and the given float itemsize."""
    cdef int isz = _itemsize_of(fn, name, arr)
    if cnp.PyArray_NDIM(<cnp.ndarray>arr) != ndim:
        raise ValueError(f"{fn}: {name} must be {ndim}-D, got {arr.ndim}-D with shape {arr.shape}")
    if itemsize and isz != itemsize:
        want = "float32" if itemsize == 4 else "float64"
        raise TypeError(f"{fn}: {name} must have dtype {want} like the other operands, "
                        f"got {arr.dtype}")
    return isz


cdef inline bint _extent(cnp.ndarray a, uintptr_t *start, uintptr_t *end) noexcept:
    """[start, end): the bytes a's elements can touch, from its data pointer, shape and strides
    (NumPy's get_array_memory_extents); empty (start == end) for a zero-size array."""
    cdef int i, nd = cnp.PyArray_NDIM(a)
    cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(a)
    cdef cnp.npy_intp *strides = cnp.PyArray_STRIDES(a)
    cdef cnp.npy_intp lower = 0, upper = 0, reach
    cdef uintptr_t base = <uintptr_t>cnp.PyArray_DATA(a)
    for i in range(nd):
        if dims[i] == 0:
            start[0] = end[0] = base
            return False
        reach = strides[i] * (dims[i] - 1)  # negative strides extend the extent downwards
        if reach > 0:
            upper += reach
        else:
            lower += reach
    start[0] = base + <uintptr_t>lower
    end[0] = base + <uintptr_t>(upper + cnp.PyArray_ITEMSIZE(a))
    return start[0] < end[0]


cdef inline bint _bounds_overlap(cnp.ndarray a, cnp.ndarray b) noexcept:
    """np.may_share_memory(a, b) without the Python call: do the memory extents intersect
    (MAY_SHARE_BOUNDS; interleaved views such as x[::2] and x[1::2] count as overlapping)?"""
    cdef uintptr_t s1, e1, s2, e2
    if not _extent(a, &s1, &e1) or not _extent(b, &s2, &e2):
        return False
    return s1 < e2 and s2 < e1


cdef inline bint _overlaps(cnp.ndarray out, object x) except -1:
    """Whether out may share memory with the input x (None: no input)."""
    if x is None:
        return False
    if cnp.PyArray_Check(x):
        return _bounds_overlap(out, <cnp.ndarray>x)
    return np.may_share_memory(out, x)  # not yet validated: NumPy converts it the same way


def _may_share_memory(a, b):
    """Test hook: the overlap test of every out= check, for comparison with np.may_share_memory."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"_may_share_memory: a must be a numpy.ndarray, got {type(a).__name__}")
    return _overlaps(<cnp.ndarray>a, b)


cdef inline int _check_out(object fn, object name, object out, tuple shape, int itemsize,
                           tuple inputs) except -1:
    """out: ndarray of exactly `shape` and dtype, native and aligned, C-contiguous, writeable,
    not overlapping inputs."""
    _check_array(fn, name, out, len(shape), itemsize)
    _check_behaved(fn, name, <cnp.ndarray>out)
    if out.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {out.shape}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out):
        raise ValueError(f"{fn}: {name} must be C-contiguous")
    if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
        raise ValueError(f"{fn}: {name} is read-only; pass a writeable array")
    if cnp.PyArray_SIZE(<cnp.ndarray>out):
        for x in inputs:
            if _overlaps(<cnp.ndarray>out, x):
                raise ValueError(f"{fn}: {name} overlaps an input array; pass a separate buffer")
    return 0


cdef inline int _check_out_nd(object fn, object name, object out, int nd, int64_t d0, int64_t d1,
                              int itemsize, tuple inputs) except -1:
    """_check_out for the shape (d0,) (nd=1) or (d0, d1) (nd=2), compared in C; the tuple is
    only built for the error message."""
    _check_array(fn, name, out, nd, itemsize)
    _check_behaved(fn, name, <cnp.ndarray>out)
    cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(<cnp.ndarray>out)
    if dims[0] != d0 or (nd == 2 and dims[1] != d1):
        shape = <tuple>(d0,) if nd == 1 else <tuple>(d0, d1)
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {out.shape}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out):
        raise ValueError(f"{fn}: {name} must be C-contiguous")
    if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
        raise ValueError(f"{fn}: {name} is read-only; pass a writeable array")
    if cnp.PyArray_SIZE(<cnp.ndarray>out):
        for x in inputs:
            if _overlaps(<cnp.ndarray>out, x):
                raise ValueError(f"{fn}: {name} overlaps an input array; pass a separate buffer")
    return 0


cdef inline object _alloc(int nd, int64_t d0, int64_t d1, int type_num):
    """np.empty((d0,) or (d0, d1), dtype) through the C-API (no Python call)."""
    cdef cnp.npy_intp dims[2]
    dims[0] = <cnp.npy_intp>d0
    dims[1] = <cnp.npy_intp>d1
    return cnp.PyArray_EMPTY(nd, dims, type_num, 0)


cdef inline int _ftype(int itemsize) noexcept:
    return cnp.NPY_FLOAT32 if itemsize == 4 else cnp.NPY_FLOAT64


cdef inline object _empty(tuple shape, int itemsize):
    return np.empty(shape, dtype=np.float32 if itemsize == 4 else np.float64)


cdef inline bint _row_layout(cnp.ndarray a, int64_t rows, int64_t cols, int isz,
                             int *trans, int64_t *ld):
    """Can `a` (rows x cols) be read as row-major with row stride ld (trans=0) or as the
    transpose of a row-major cols x rows matrix (trans=1) without a copy? Never when `a` is
    byte-swapped or unaligned."""
    if not _behaved(a):
        return False
    cdef cnp.npy_intp s0 = cnp.PyArray_STRIDE(a, 0), s1 = cnp.PyArray_STRIDE(a, 1)
    # Row-major: unit inner stride (irrelevant when cols <= 1), positive row stride >= cols.
    if cols <= 1 or s1 == isz:
        if rows <= 1:
            trans[0] = 0; ld[0] = cols if cols > 0 else 1
            return True
        if s0 > 0 and s0 % isz == 0 and s0 // isz >= cols:
            trans[0] = 0; ld[0] = s0 // isz
            return True
    # Column-major (a transposed view): unit row stride, positive column stride >= rows.
    if rows <= 1 or s0 == isz:
        if s1 > 0 and s1 % isz == 0 and s1 // isz >= rows:
            trans[0] = 1; ld[0] = s1 // isz
            return True
    return False


# Hyperparameters (mirrors nnfast/backends/_ref_checks.py: same types and messages).
import operator


cdef str _interval(object lo, object hi, bint lo_open, bint hi_open):
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo:g}"
    return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"


cdef inline bint _inside(double v, object lo, object hi, bint lo_open, bint hi_open):
    cdef bint ok = v == v
    if ok and lo is not None:
        ok = v > <double>lo if lo_open else v >= <double>lo
    if ok and hi is not None:
        ok = v < <double>hi if hi_open else v <= <double>hi
    return ok


cdef double _real_param(object fn, object name, object value, object lo=None, object hi=None,
                        bint lo_open=False, bint hi_open=False, int itemsize=0) except? -1.0:
    """A real hyperparameter in the interval lo..hi (open ends flagged); NaN is always rejected.
    itemsize 4: the float32 kernels cast it to float, so the rounded value must lie in the
    interval too (eps=1e-50 rounds to 0, beta1=1-1e-9 to 1, delta=1e39 to inf)."""
    cdef double v, r
    if type(value) is float:  # the common case; float(value) would give the same
        v = <double>value
    elif isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    else:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{fn}: {name} must be a real number, "
                            f"got {type(value).__name__}") from None
    if not _inside(v, lo, hi, lo_open, hi_open):
        raise ValueError(f"{fn}: {name} must be {_interval(lo, hi, lo_open, hi_open)}, got {v!r}")
    if itemsize == 4:
        r = <float>v
        if not _inside(r, lo, hi, lo_open, hi_open):
            raise ValueError(f"{fn}: {name}={v!r} is out of range for float32: it rounds to "
                             f"{r!r}, and {name} must be {_interval(lo, hi, lo_open, hi_open)}")
    return v


cdef int64_t _step_param(object fn, object value) except -1:
    """The update count of an optimizer step: an integer >= 1."""
    if type(value) is int and 1 <= value < 2**63:  # the common case, as operator.index takes it
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: step must be an integer, got {type(value).__name__}")
    try:
        s = operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: step must be an integer, got {type(value).__name__}") from None
    if s < 1 or s >= 2**63:
        raise ValueError(f"{fn}: step must be in [1, 2**63) (updates so far, this one "
                         f"included), got {s}")
    return s


cdef inline cnp.ndarray _check_labels(object fn, object name, object labels, int64_t n,
                                      int64_t n_classes):
    """labels: int32/int64 1-D array (either byte order) of length n, every value in
    [0, n_classes). Returns them as an aligned C-contiguous native int64 array (no copy when
    they already are one)."""
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(labels).__name__}")
    cdef cnp.ndarray lab = <cnp.ndarray>labels
    cdef int isz = cnp.PyArray_ITEMSIZE(lab)
    if not cnp.PyArray_ISSIGNED(lab) or (isz != 4 and isz != 8):  # int64 is long or long long
        raise TypeError(f"{fn}: {name} must have dtype int32 or int64, got {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"{fn}: {name} must have shape ({n},), got {labels.shape}")
    if isz != 8 or not cnp.PyArray_IS_C_CONTIGUOUS(lab) or not _behaved(lab):
        lab = np.array(lab, dtype=np.int64, order="C")
    cdef const int64_t *p = <const int64_t *>cnp.PyArray_DATA(lab)
    cdef int64_t i, lo = 0, hi = 0
    if n:
        lo = hi = p[0]
        with nogil:
            for i in range(1, n):
                if p[i] < lo:
                    lo = p[i]
                elif p[i] > hi:
                    hi = p[i]
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"{fn}: {name} must lie in [0, {n_classes}), got values in "
                             f"[{lo}, {hi}]")
    return lab


# What each kernel family allocates, for _check_status's MemoryError.
cdef str _WS_CONV = ("the convolution's workspace (im2col columns or per-thread partial sums, "
                     "and the GEMM packing buffers)")
cdef str _WS_BATCHNORM = "the per-thread partial sums of the channel statistics"
cdef str _WS_NET = ("the layers' workspaces (GEMM packing buffers, a convolution's im2col "
                    "columns)")


cdef inline int _check_status(str fn, int status,
                              str what="the GEMM packing buffers (a few MB per thread)") except -1:
    """After a kernel that allocates: MemoryError naming the working memory it could not get
    (``what``). The status is that call's own; outputs that accumulate were left as they were."""
    if status == NNF_ERR_NOMEM:
        raise MemoryError(f"{fn}: out of memory for {what}; the outputs were not computed")
    return 0


# Values from which all_finite releases the GIL: below, the check (~0.1 us per 1000 float32
# values from cache) costs less than releasing and taking the GIL back.
cdef int64_t _FINITE_NOGIL = 1 << 16


def all_finite(x):
    """all_finite(x)
--

    Whether every value of the ndarray x is finite (no NaN, no +-Inf): the engine's check of
    predict / fit input, as nnfast/backends/_ref_checks.py. A C-contiguous, aligned, native
    float32 or float64 x is read in place by nnf_all_finite_* (csrc/nn/finite.c: an integer
    test of the exponent bits, vectorized per ISA; 256 x 784 float32 in ~5 us against ~29 us
    for the float loop it replaced and ~50 us for np.isfinite(x).all() with its boolean
    array), the GIL released from 65536 values on; any other x is handed to np.isfinite.
    TypeError for a non-ndarray x."""
    if not cnp.PyArray_Check(x):
        raise TypeError(f"all_finite: x must be a numpy.ndarray, got {type(x).__name__}")
    cdef cnp.ndarray X = <cnp.ndarray>x
    cdef int t = cnp.PyArray_TYPE(X)
    if not (cnp.PyArray_IS_C_CONTIGUOUS(X) and _behaved(X)):
        return bool(np.isfinite(X).all())
    cdef int64_t n = cnp.PyArray_SIZE(X)
    cdef const void *p = cnp.PyArray_DATA(X)
    cdef int ok
    if t == cnp.NPY_FLOAT32:
        if n < _FINITE_NOGIL:
            return nnf_all_finite_f32(<const float *>p, n) != 0
        with nogil:
            ok = nnf_all_finite_f32(<const float *>p, n)
        return ok != 0
    if t == cnp.NPY_FLOAT64:
        if n < _FINITE_NOGIL:
            return nnf_all_finite_f64(<const double *>p, n) != 0
        with nogil:
            ok = nnf_all_finite_f64(<const double *>p, n)
        return ok != 0
    return bool(np.isfinite(X).all())


def servable_input(x, dtype, shape):
    """servable_input(x, dtype, shape)
--

    Whether x can go to an inference plan as it is, as nnfast/backends/_ref_checks.py: an
    exact numpy.ndarray of dtype (float32 or float64, native byte order), C-contiguous,
    aligned, of at least one sample of per-sample shape ``shape`` (a tuple), every value
    finite. False for anything else, never an error: the caller then takes the general path,
    which converts x or raises. The engine's serving-path test (engine/inference.py,
    ``servable``), here in C-level checks: a batch-1 predict spent ~9 us in its Python
    version with the caches cold after another runtime's call."""
    if type(x) is not np.ndarray or not isinstance(dtype, np.dtype) or type(shape) is not tuple:
        return False
    cdef cnp.ndarray X = <cnp.ndarray>x
    cdef int t = cnp.PyArray_TYPE(X)
    cdef Py_ssize_t nd = len(<tuple>shape), i
    if (t != (<cnp.dtype>dtype).type_num or (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64)
            or not dtype.isnative or cnp.PyArray_NDIM(X) != nd + 1
            or cnp.PyArray_SIZE(X) == 0):
        return False
    for i in range(nd):
        if (<tuple>shape)[i] != cnp.PyArray_DIM(X, i + 1):
            return False
    if not (cnp.PyArray_IS_C_CONTIGUOUS(X) and _behaved(X)):
        return False
    cdef int64_t n = cnp.PyArray_SIZE(X)
    cdef const void *p = cnp.PyArray_DATA(X)
    cdef int ok
    if n < _FINITE_NOGIL:
        ok = nnf_all_finite_f32(<const float *>p, n) if t == cnp.NPY_FLOAT32 else \
            nnf_all_finite_f64(<const double *>p, n)
    else:
        with nogil:
            ok = nnf_all_finite_f32(<const float *>p, n) if t == cnp.NPY_FLOAT32 else \
                nnf_all_finite_f64(<const double *>p, n)
    return ok != 0
