"""Reference dense layer (plain NumPy): the spec for the compiled twins.

Letters: N batch rows, K in-features, M out-features. W is (K, M) so forward is x @ W.
"""
from __future__ import annotations

import numpy as np

from nnfast.backends._ref_activations import (
    _check_activation,
    activation_gradient,
    apply_activation,
    check_saved,
)
from nnfast.backends._ref_checks import _check_out, _float_array

__all__ = ["dense_backward", "dense_forward"]


def _check_xW(fn: str, x, W):
    dtype = _float_array(fn, "x", x, 2)
    _float_array(fn, "W", W, 2, dtype)
    if W.shape[0] != x.shape[1]:
        raise ValueError(f"{fn}: W must have shape ({x.shape[1]}, M) to match x of shape "
                         f"{x.shape}, got {W.shape}")
    return dtype


def dense_forward(x, W, b=None, activation="identity", alpha=0.0, out=None, z=None):
    """y = act(x @ W + b); x (N, K), W (K, M), b (M,) or None, y (N, M).

    When z (N, M) is given it receives the pre-activation x @ W + b. softmax/log_softmax are
    applied row-wise after the affine map.

    >>> dense_forward(np.ones((1, 2)), np.ones((2, 3)), np.arange(3.0), "relu")
    array([[2., 3., 4.]])
    """
    fn = "dense_forward"
    dtype = _check_xW(fn, x, W)
    n, m = x.shape[0], W.shape[1]
    if b is not None:
        _float_array(fn, "b", b, 1, dtype)
        if b.shape != (m,):
            raise ValueError(f"{fn}: b must have shape ({m},), got {b.shape}")
    _check_activation(fn, activation)
    alpha = float(alpha)
    if out is None:
        out = np.empty((n, m), dtype)
    else:
        _check_out(fn, "out", out, (n, m), dtype, (x, W, b))
    if z is not None:
        _check_out(fn, "z", z, (n, m), dtype, (x, W, b, out))
    pre = x @ W
    if b is not None:
        pre += b
    if z is not None:
        z[...] = pre
    out[...] = apply_activation(activation, pre, alpha)
    return out


def dense_backward(dy, x, W, z, y, activation="identity", alpha=0.0, dW=None, db=None, dx=None,
                   dz=None, accumulate=False, need_dx=True):
    """Gradients of y = act(x @ W + b) from dy (N, M); returns (dx, dW, db).

    dz = dy * act'(z, y) (row-wise Jacobian product for softmax/log_softmax), written into the
    workspace `dz` when given; dW (K, M) = x^T dz; db (M,) = sum over rows of dz (accumulated in
    float64, then rounded); dx (N, K) = dz W^T, or None when need_dx is False.
    accumulate=True adds to the given dW and db (both required) instead of overwriting.
    z and y follow activation_backward's rules (None where the derivative does not read them).

    >>> dx, dW, db = dense_backward(np.ones((2, 1)), np.ones((2, 3)), np.ones((3, 1)), None, None)
    >>> dW.ravel(), db
    (array([2., 2., 2.]), array([2.]))
    """
    fn = "dense_backward"
    dtype = _float_array(fn, "dy", dy, 2)
    _check_xW(fn, x, W)
    _float_array(fn, "x", x, 2, dtype)
    n, k, m = x.shape[0], x.shape[1], W.shape[1]
    if dy.shape != (n, m):
        raise ValueError(f"{fn}: dy must have shape {(n, m)} (x rows, W columns), got {dy.shape}")
    _check_activation(fn, activation)
    check_saved(fn, activation, dy, z, y)
    alpha = float(alpha)
    inputs = (dy, x, W, z, y)
    if accumulate and (dW is None or db is None):
        raise ValueError(f"{fn}: accumulate=True needs dW and db to add to, got "
                         f"dW={'None' if dW is None else 'array'}, "
                         f"db={'None' if db is None else 'array'}")
    if dz is not None:
        _check_out(fn, "dz", dz, (n, m), dtype, inputs)
    written = [dz]
    for name, arr, shape in (("dW", dW, (k, m)), ("db", db, (m,)), ("dx", dx, (n, k))):
        if arr is not None:
            _check_out(fn, name, arr, shape, dtype, inputs + tuple(written))
            written.append(arr)
    g = activation_gradient(activation, dy, z, y, alpha)
    if dz is not None:
        dz[...] = g
    gW = x.T @ g
    gb = np.sum(g, axis=0, dtype=np.float64).astype(dtype)
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
        dx = np.empty((n, k), dtype)
    dx[...] = g @ W.T
    return dx, dW, db
