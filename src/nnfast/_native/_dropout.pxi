# Dropout wrappers: y = x * keep / (1 - rate) with the counter-based mask of csrc/nn/dropout.c.
import numbers
from libc.stdint cimport uint64_t


cdef double _check_rate(object fn, object rate) except -1.0:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{fn}: rate must be a float, got {type(rate).__name__}")
    cdef double r = float(rate)
    if not (0.0 <= r < 1.0):  # also rejects NaN
        raise ValueError(f"{fn}: rate must be in [0, 1), got {r}")
    return r


cdef uint64_t _check_key(object fn, object name, object value) except? 0:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < 2**64:
        raise ValueError(f"{fn}: {name} must be in [0, 2**64), got {value}")
    return <uint64_t>value


cdef object _dropout(object fn, object first, object x, object rate, object seed, object step,
                     object out, bint backward):
    cdef int isz = _itemsize_of(fn, first, x)
    cdef double r = _check_rate(fn, rate)
    cdef uint64_t s = _check_key(fn, "seed", seed), t = _check_key(fn, "step", step)
    shape = x.shape
    if out is None:
        out = _empty(shape, isz)
    else:
        _check_out(fn, "out", out, shape, isz, (x,))
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    if n == 0:
        return out
    cdef cnp.ndarray X = _contig(x)
    cdef void *px = cnp.PyArray_DATA(X)
    cdef void *py = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = _nthreads
    with nogil:
        if isz == 4 and not backward:
            nnf_dropout_fwd_f32(<float *>py, <const float *>px, n, r, s, t, nt)
        elif isz == 4:
            nnf_dropout_bwd_f32(<float *>py, <const float *>px, n, r, s, t, nt)
        elif not backward:
            nnf_dropout_fwd_f64(<double *>py, <const double *>px, n, r, s, t, nt)
        else:
            nnf_dropout_bwd_f64(<double *>py, <const double *>px, n, r, s, t, nt)
    return out


def dropout_forward(x, rate, seed, step, out=None):
    """y = x * keep / (1 - rate); keep from (seed, step, flat index) (see the reference)."""
    return _dropout("dropout_forward", "x", x, rate, seed, step, out, False)


def dropout_backward(dy, rate, seed, step, out=None):
    """dx = dy * keep / (1 - rate), the mask of dropout_forward (see the reference)."""
    return _dropout("dropout_backward", "dy", dy, rate, seed, step, out, True)
