"""Reference pooling (plain NumPy): the spec for the compiled twins (csrc/nn/pool.c).

Channels last, as Keras 3: x (N, H, W, C), y (N, OH, OW, C). pool_size, strides (default:
pool_size) and padding follow Keras' MaxPooling2D / AveragePooling2D
(nnfast/backends/_ref_geometry.py). Windows see only pixels inside the image: max pooling
skips the padding, average pooling divides by the count of pixels inside (Keras/TF "same";
torch's count_include_pad=False).
"""
from __future__ import annotations

import numpy as np

from nnfast.backends._ref_checks import _check_behaved, _check_out, _float_array, _native
from nnfast.backends._ref_geometry import geometry, pair

__all__ = ["avg_pool2d_backward", "avg_pool2d_forward", "global_avg_pool2d_backward",
           "global_avg_pool2d_forward", "max_pool2d_backward", "max_pool2d_forward"]


def _pool_geometry(fn, x, pool_size, strides, padding):
    dtype = _float_array(fn, "x", x, 4)
    if x.shape[3] == 0:
        raise ValueError(f"{fn}: x needs at least one channel, got shape {x.shape}")
    k = pair(fn, "pool_size", pool_size)
    g = geometry(fn, x.shape[1:3], k, k if strides is None else strides, padding)
    return dtype, g


def _windows(g, h, w):
    """For each output (oh, ow): the in-image rows and cols of its window (Python ranges)."""
    for oh in range(g["OH"]):
        r0 = oh * g["SH"] - g["PT"]
        rows = range(max(r0, 0), min(r0 + g["KH"], h))
        for ow in range(g["OW"]):
            c0 = ow * g["SW"] - g["PL"]
            yield oh, ow, rows, range(max(c0, 0), min(c0 + g["KW"], w))


def _check_dy(fn, dy, dtype, shape):
    _float_array(fn, "dy", dy, 4, dtype)
    if dy.shape != shape:
        raise ValueError(f"{fn}: dy must have shape {shape} (the pooled x), got {dy.shape}")


def _pooled_out(fn: str, x, g: dict, dtype, out):
    """(shape, out) of a pooling forward: (N, OH, OW, C), out checked or allocated."""
    shape = (x.shape[0], g["OH"], g["OW"], x.shape[3])
    if out is None:
        return shape, np.empty(shape, dtype)
    _check_out(fn, "out", out, shape, dtype, (x,))
    return shape, out


def max_pool2d_forward(x, pool_size=2, strides=None, padding="valid", out=None, argmax=None):
    """y = max over each window, and argmax (N, OH, OW, C) int64: (ih*W + iw)*C + c of the
    first maximum in row-major window order (the first NaN wins, so NaN propagates). Returns
    (y, argmax). A given ``argmax`` is written in place: int64 of that shape, C-contiguous,
    writeable, aligned and in native byte order (TypeError for a byte-swapped one, ValueError
    for an unaligned one, as for every float output).

    >>> y, a = max_pool2d_forward(np.arange(4.0).reshape(1, 2, 2, 1))
    >>> y.ravel(), a.ravel()
    (array([3.]), array([3]))
    """
    fn = "max_pool2d_forward"
    dtype, g = _pool_geometry(fn, x, pool_size, strides, padding)
    n, h, w, c = x.shape
    shape, out = _pooled_out(fn, x, g, dtype, out)
    if argmax is None:
        argmax = np.empty(shape, np.int64)
    else:
        _check_index_out(fn, argmax, shape, (x, out))
    chan = np.arange(c)
    for oh, ow, rows, cols in _windows(g, h, w):
        win = x[:, rows.start:rows.stop, cols.start:cols.stop, :]
        win = win.reshape(n, len(rows) * len(cols), c)
        k = np.argmax(win, axis=1)  # first maximum; the first NaN when there is one
        out[:, oh, ow, :] = np.take_along_axis(win, k[:, None, :], axis=1)[:, 0, :]
        ih, iw = rows.start + k // len(cols), cols.start + k % len(cols)
        argmax[:, oh, ow, :] = (ih * w + iw) * c + chan
    return out, argmax


def _check_index_out(fn, argmax, shape, inputs):
    if not isinstance(argmax, np.ndarray):
        raise TypeError(f"{fn}: argmax must be a numpy.ndarray, got {type(argmax).__name__}")
    if _native(argmax.dtype) != np.int64:
        raise TypeError(f"{fn}: argmax must have dtype int64, got {argmax.dtype}")
    _check_behaved(fn, "argmax", argmax)  # as the compiled backend, which writes it from C
    if argmax.shape != shape:
        raise ValueError(f"{fn}: argmax must have shape {shape}, got {argmax.shape}")
    if not argmax.flags.c_contiguous or not argmax.flags.writeable:
        raise ValueError(f"{fn}: argmax must be a writeable C-contiguous array")
    for a in inputs:
        if argmax.size and np.may_share_memory(argmax, a):
            raise ValueError(f"{fn}: argmax overlaps an input array; pass a separate buffer")


def max_pool2d_backward(dy, x, argmax, pool_size=2, strides=None, padding="valid", dx=None):
    """dx (N, H, W, C): zeros, then each dy[n, oh, ow, c] added at x's argmax element of image
    n (indices as max_pool2d_forward returns them, checked to lie inside the image).

    >>> x = np.arange(4.0).reshape(1, 2, 2, 1)
    >>> max_pool2d_backward(np.ones((1, 1, 1, 1)), x, max_pool2d_forward(x)[1]).ravel()
    array([0., 0., 0., 1.])
    """
    fn = "max_pool2d_backward"
    dtype, g = _pool_geometry(fn, x, pool_size, strides, padding)
    n, h, w, c = x.shape
    shape = (n, g["OH"], g["OW"], c)
    _check_dy(fn, dy, dtype, shape)
    if not isinstance(argmax, np.ndarray):
        raise TypeError(f"{fn}: argmax must be a numpy.ndarray, got {type(argmax).__name__}")
    if _native(argmax.dtype) != np.int64:
        raise TypeError(f"{fn}: argmax must have dtype int64, got {argmax.dtype}")
    if argmax.shape != shape:
        raise ValueError(f"{fn}: argmax must have shape {shape}, got {argmax.shape}")
    if argmax.size and (argmax.min() < 0 or argmax.max() >= h * w * c):
        raise ValueError(f"{fn}: argmax must lie in [0, {h * w * c}) (an element of one "
                         f"{h}x{w}x{c} image), got values in [{argmax.min()}, {argmax.max()}]")
    if dx is None:
        dx = np.empty(x.shape, dtype)
    else:
        _check_out(fn, "dx", dx, x.shape, dtype, (dy, x, argmax))
    flat = np.zeros((n, h * w * c), dtype)
    for i in range(n):  # np.add.at adds repeated indices in order, as the C scatter does
        np.add.at(flat[i], argmax[i].ravel(), dy[i].ravel())
    dx[...] = flat.reshape(x.shape)
    return dx


def avg_pool2d_forward(x, pool_size=2, strides=None, padding="valid", out=None):
    """y = mean over the part of each window inside the image (sum in x's dtype, then divided
    by the count).

    >>> avg_pool2d_forward(np.arange(4.0).reshape(1, 2, 2, 1)).ravel()
    array([1.5])
    """
    fn = "avg_pool2d_forward"
    dtype, g = _pool_geometry(fn, x, pool_size, strides, padding)
    h, w = x.shape[1:3]
    shape, out = _pooled_out(fn, x, g, dtype, out)
    for oh, ow, rows, cols in _windows(g, h, w):
        win = x[:, rows.start:rows.stop, cols.start:cols.stop, :]
        out[:, oh, ow, :] = win.sum(axis=(1, 2)) / dtype.type(len(rows) * len(cols))
    return out


def avg_pool2d_backward(dy, x, pool_size=2, strides=None, padding="valid", dx=None):
    """dx[pixel] = sum over the windows holding the pixel of dy / (that window's count).

    >>> avg_pool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 2, 2, 1))).ravel()
    array([0.25, 0.25, 0.25, 0.25])
    """
    fn = "avg_pool2d_backward"
    dtype, g = _pool_geometry(fn, x, pool_size, strides, padding)
    n, h, w, c = x.shape
    _check_dy(fn, dy, dtype, (n, g["OH"], g["OW"], c))
    if dx is None:
        dx = np.empty(x.shape, dtype)
    else:
        _check_out(fn, "dx", dx, x.shape, dtype, (dy, x))
    acc = np.zeros(x.shape, dtype)
    for oh, ow, rows, cols in _windows(g, h, w):
        share = dy[:, oh, ow, :] / dtype.type(len(rows) * len(cols))
        acc[:, rows.start:rows.stop, cols.start:cols.stop, :] += share[:, None, None, :]
    dx[...] = acc
    return dx


def global_avg_pool2d_forward(x, out=None):
    """y (N, C) = mean of x (N, H, W, C) over H and W (summed in float64, then rounded).

    >>> global_avg_pool2d_forward(np.arange(4.0).reshape(1, 2, 2, 1))
    array([[1.5]])
    """
    fn = "global_avg_pool2d_forward"
    dtype = _float_array(fn, "x", x, 4)
    n, h, w, c = x.shape
    if h * w == 0:
        raise ValueError(f"{fn}: the {h}x{w} input has no pixels to average")
    if out is None:
        out = np.empty((n, c), dtype)
    else:
        _check_out(fn, "out", out, (n, c), dtype, (x,))
    out[...] = (x.sum(axis=(1, 2), dtype=np.float64) / (h * w)).astype(dtype)
    return out


def global_avg_pool2d_backward(dy, x, dx=None):
    """dx (N, H, W, C) = dy (N, C) / (H*W) at every pixel.

    >>> global_avg_pool2d_backward(np.ones((1, 1)), np.zeros((1, 2, 2, 1))).ravel()
    array([0.25, 0.25, 0.25, 0.25])
    """
    fn = "global_avg_pool2d_backward"
    dtype = _float_array(fn, "x", x, 4)
    n, h, w, c = x.shape
    if h * w == 0:
        raise ValueError(f"{fn}: the {h}x{w} input has no pixels to average")
    _float_array(fn, "dy", dy, 2, dtype)
    if dy.shape != (n, c):
        raise ValueError(f"{fn}: dy must have shape {(n, c)}, got {dy.shape}")
    if dx is None:
        dx = np.empty(x.shape, dtype)
    else:
        _check_out(fn, "dx", dx, x.shape, dtype, (dy, x))
    dx[...] = (dy / dtype.type(h * w))[:, None, None, :]
    return dx
