"""Reference 2-D convolution (plain NumPy): the spec for the compiled twins (csrc/nn/conv.c).

Channels last, as Keras: x (N, H, W, C), kernel W (KH, KW, C, F), bias b (F,), y (N, OH, OW, F).
Padding, strides and dilation follow Keras 3 (nnfast/backends/_ref_geometry.py). The math is
written tap by tap: for every kernel tap (kh, kw), the input pixels it reads form a strided
slice of the zero-padded input, and the tap adds slice @ W[kh, kw].
"""
from __future__ import annotations

import numpy as np

from nnfast.backends._ref_activations import (
    _check_activation,
    activation_gradient,
    apply_activation,
    check_saved_nd,
)
from nnfast.backends._ref_checks import _check_out, _float_array, _read
from nnfast.backends._ref_geometry import geometry

__all__ = ["conv2d_backward", "conv2d_forward"]


def _check_xW(fn: str, x, W):
    dtype = _float_array(fn, "x", x, 4)
    _float_array(fn, "W", W, 4, dtype)
    if W.shape[2] != x.shape[3]:
        raise ValueError(f"{fn}: W must have shape (KH, KW, {x.shape[3]}, F) to match x of "
                         f"shape {x.shape} (channels last), got {W.shape}")
    if x.shape[3] == 0 or W.shape[3] == 0 or W.shape[0] == 0 or W.shape[1] == 0:
        raise ValueError(f"{fn}: x needs at least one channel and W a non-empty kernel and at "
                         f"least one filter, got x {x.shape} and W {W.shape}")
    return dtype


def _setup(fn, x, W, strides, padding, dilation_rate):
    dtype = _check_xW(fn, x, W)
    g = geometry(fn, x.shape[1:3], W.shape[:2], strides, padding, dilation_rate)
    return dtype, g


def _taps(g):
    """(kh, kw, rows, cols): the padded-input slices read by each kernel tap."""
    for kh in range(g["KH"]):
        r0 = kh * g["DH"]
        rows = slice(r0, r0 + (g["OH"] - 1) * g["SH"] + 1, g["SH"])
        for kw in range(g["KW"]):
            c0 = kw * g["DW"]
            yield kh, kw, rows, slice(c0, c0 + (g["OW"] - 1) * g["SW"] + 1, g["SW"])


def _padded_shape(x, g):
    n, h, w, c = x.shape
    eh, ew = (g["KH"] - 1) * g["DH"] + 1, (g["KW"] - 1) * g["DW"] + 1
    hp = max(h + g["PT"], g["PT"] + (g["OH"] - 1) * g["SH"] + eh)
    wp = max(w + g["PL"], g["PL"] + (g["OW"] - 1) * g["SW"] + ew)
    return (n, hp, wp, c)


def _pad(x, g):
    xp = np.zeros(_padded_shape(x, g), x.dtype)
    xp[:, g["PT"]:g["PT"] + x.shape[1], g["PL"]:g["PL"] + x.shape[2]] = x
    return xp


def conv2d_forward(x, W, b=None, strides=1, padding="valid", dilation_rate=1,
                   activation="identity", alpha=0.0, out=None, z=None):
    """y = act(conv2d(x, W) + b), Keras 3's Conv2D with data_format="channels_last".

    x (N, H, W, C), W (KH, KW, C, F), b (F,) or None; y and z (N, OH, OW, F). strides and
    dilation_rate: an int or a pair; padding "valid" or "same" (Keras: OH = ceil(H / stride),
    the extra padding row at the bottom). z, when given, receives the pre-activation.
    y[n, i, j, f] = sum_{kh, kw, c} xpad[n, i*SH + kh*DH, j*SW + kw*DW, c] W[kh, kw, c, f] + b[f]

    >>> conv2d_forward(np.ones((1, 3, 3, 1)), np.ones((2, 2, 1, 1)))[0, :, :, 0]
    array([[4., 4.],
           [4., 4.]])
    """
    fn = "conv2d_forward"
    dtype, g = _setup(fn, x, W, strides, padding, dilation_rate)
    n, f = x.shape[0], W.shape[3]
    if b is not None:
        _float_array(fn, "b", b, 1, dtype)
        if b.shape != (f,):
            raise ValueError(f"{fn}: b must have shape ({f},), got {b.shape}")
    _check_activation(fn, activation)
    alpha = float(alpha)
    shape = (n, g["OH"], g["OW"], f)
    if out is None:
        out = np.empty(shape, dtype)
    else:
        _check_out(fn, "out", out, shape, dtype, (x, W, b))
    if z is not None:
        _check_out(fn, "z", z, shape, dtype, (x, W, b, out))
    x, W, b = _read(x), _read(W), _read(b)
    xp = _pad(x, g)
    pre = np.zeros(shape, dtype)
    for kh, kw, rows, cols in _taps(g):
        pre += xp[:, rows, cols, :] @ W[kh, kw]
    if b is not None:
        pre += b
    if z is not None:
        z[...] = pre
    out[...] = apply_activation(activation, pre.reshape(-1, f), alpha).reshape(shape)
    return out


def conv2d_backward(dy, x, W, z, y, strides=1, padding="valid", dilation_rate=1,
                    activation="identity", alpha=0.0, dW=None, db=None, dx=None, dz=None,
                    accumulate=False, need_dx=True):
    """Gradients of conv2d_forward from dy (N, OH, OW, F); returns (dx, dW, db).

    dz = dy * act'(z, y) (written into the workspace `dz` when given); for every tap,
    dW[kh, kw] = xpad[taps]^T dz and dxpad[taps] += dz W[kh, kw]^T; db = sum of dz over
    (N, OH, OW) in float64, then rounded; dx is dxpad without its padding, or None when
    need_dx is False. accumulate=True adds to the given dW and db (both required).

    >>> dx, dW, db = conv2d_backward(np.ones((1, 2, 2, 1)), np.ones((1, 3, 3, 1)),
    ...                              np.ones((2, 2, 1, 1)), None, None)
    >>> dW[:, :, 0, 0], db
    (array([[4., 4.],
           [4., 4.]]), array([4.]))
    """
    fn = "conv2d_backward"
    dtype = _float_array(fn, "dy", dy, 4)
    _, g = _setup(fn, x, W, strides, padding, dilation_rate)
    _float_array(fn, "x", x, 4, dtype)
    n, f = x.shape[0], W.shape[3]
    shape = (n, g["OH"], g["OW"], f)
    if dy.shape != shape:
        raise ValueError(f"{fn}: dy must have shape {shape} (the output of x and W), got "
                         f"{dy.shape}")
    _check_activation(fn, activation)
    check_saved_nd(fn, activation, dy, z, y)
    alpha = float(alpha)
    inputs = (dy, x, W, z, y)
    if accumulate and (dW is None or db is None):
        raise ValueError(f"{fn}: accumulate=True needs dW and db to add to, got "
                         f"dW={'None' if dW is None else 'array'}, "
                         f"db={'None' if db is None else 'array'}")
    if dz is not None:
        _check_out(fn, "dz", dz, shape, dtype, inputs)
    written = [dz]
    for name, arr, shp in (("dW", dW, W.shape), ("db", db, (f,)), ("dx", dx, x.shape)):
        if arr is not None:
            _check_out(fn, name, arr, shp, dtype, inputs + tuple(written))
            written.append(arr)
    dy, x, W, z, y = (_read(a) for a in (dy, x, W, z, y))
    rows = [None if a is None else a.reshape(-1, f) for a in (dy, z, y)]
    gz = activation_gradient(activation, *rows, alpha).reshape(shape)
    if dz is not None:
        dz[...] = gz
    xp = _pad(x, g)
    gW = np.zeros(W.shape, dtype)
    dxp = np.zeros(xp.shape, dtype)
    g2 = gz.reshape(-1, f)
    for kh, kw, rows, cols in _taps(g):
        gW[kh, kw] = xp[:, rows, cols, :].reshape(-1, x.shape[3]).T @ g2
        dxp[:, rows, cols, :] += gz @ W[kh, kw].T
    gb = np.sum(g2, axis=0, dtype=np.float64).astype(dtype)
    if dW is None:
        dW = gW
    elif accumulate:
        dW += gW
    else:
        dW[...] = gW
    if db is None:
        db = gb
    elif accumulate:
        db += gb
    else:
        db[...] = gb
    if not need_dx:
        return None, dW, db
    if dx is None:
        dx = np.empty(x.shape, dtype)
    dx[...] = dxp[:, g["PT"]:g["PT"] + x.shape[1], g["PL"]:g["PL"] + x.shape[2]]
    return dx, dW, db
