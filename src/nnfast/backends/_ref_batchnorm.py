"""Reference batch normalization (plain NumPy): the spec for csrc/nn/batchnorm.c.

Over the last axis (channels last, Keras 3's BatchNormalization(axis=-1)): x (..., C) is read as
(R, C), R the product of the other axes. Statistics in float64, rounded to x's dtype once.
Keras 3 semantics: the batch variance is biased (divided by R) both for normalizing and for the
moving variance, and moving = moving * momentum + batch * (1 - momentum). nnfast computes the
variance in two passes (Keras: E[x^2] - E[x]^2), so it never goes negative.
"""
from __future__ import annotations

import math

import numpy as np

from nnfast.backends._ref_checks import _check_behaved, _check_out, _float_array, _real_param

__all__ = ["batch_norm_backward", "batch_norm_forward"]


def _rows(fn, x):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{fn}: x must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{fn}: x must have at least 2 dimensions (..., channels), got "
                         f"{x.ndim}-D with shape {x.shape}")
    dtype = _float_array(fn, "x", x, x.ndim)
    return dtype, x.shape[-1]


def _vector(fn, name, v, c, dtype, allow_none=True):
    if v is None and allow_none:
        return
    _float_array(fn, name, v, 1, dtype)
    if v.shape != (c,):
        raise ValueError(f"{fn}: {name} must have shape ({c},) (one value per channel), got "
                         f"{v.shape}")


def batch_norm_forward(x, gamma, beta, moving_mean, moving_variance, training=False,
                       momentum=0.99, epsilon=1e-3, out=None, xhat=None, inv_std=None):
    """Batch normalization over the last axis; returns (y, xhat, inv_std).

    training=True: mean and (biased) var of x over every axis but the last;
    inv_std = 1/sqrt(var + epsilon); xhat = (x - mean) * inv_std; y = gamma * xhat + beta;
    moving_mean and moving_variance (C,) are updated in place:
    moving = moving * momentum + batch * (1 - momentum). xhat and inv_std are returned for
    batch_norm_backward. x must hold at least one row.
    training=False: y = gamma * ((x - moving_mean) / sqrt(moving_variance + epsilon)) + beta,
    moving statistics untouched; returns (y, None, None).
    gamma / beta None mean 1 / 0 (Keras' scale=False / center=False).

    >>> mm, mv = np.zeros(1), np.ones(1)
    >>> y, xh, s = batch_norm_forward(np.array([[1.0], [3.0]]), None, None, mm, mv, True,
    ...                               epsilon=0.0)
    >>> y.ravel(), mm, mv
    (array([-1.,  1.]), array([0.02]), array([1.]))
    """
    fn = "batch_norm_forward"
    dtype, c = _rows(fn, x)
    _vector(fn, "gamma", gamma, c, dtype)
    _vector(fn, "beta", beta, c, dtype)
    for name, v in (("moving_mean", moving_mean), ("moving_variance", moving_variance)):
        _vector(fn, name, v, c, dtype, allow_none=False)
    momentum = _real_param(fn, "momentum", momentum, 0.0, 1.0)
    epsilon = _real_param(fn, "epsilon", epsilon, 0.0)
    inputs = (x, gamma, beta, moving_mean, moving_variance)
    if out is None:
        out = np.empty(x.shape, dtype)
    else:
        _check_out(fn, "out", out, x.shape, dtype, inputs)
    x2 = x.reshape(math.prod(x.shape[:-1]), c)   # (R, C); -1 cannot infer R when C == 0
    r = x2.shape[0]
    if not training:
        scale = 1.0 / np.sqrt(moving_variance.astype(np.float64) + epsilon)
        xh = ((x2 - moving_mean.astype(np.float64)) * scale).astype(dtype)
        out[...] = _affine(xh, gamma, beta, dtype).reshape(x.shape)
        return out, None, None
    if r == 0:
        raise ValueError(f"{fn}: training needs at least one row to take statistics over, got "
                         f"x of shape {x.shape}")
    for name, v in (("moving_mean", moving_mean), ("moving_variance", moving_variance)):
        _check_behaved(fn, name, v)
        if not v.flags.writeable:
            raise ValueError(f"{fn}: {name} is read-only; it is updated in place")
    if xhat is None:
        xhat = np.empty(x.shape, dtype)
    else:
        _check_out(fn, "xhat", xhat, x.shape, dtype, inputs + (out,))
    if inv_std is None:
        inv_std = np.empty((c,), dtype)
    else:
        _check_out(fn, "inv_std", inv_std, (c,), dtype, inputs + (out, xhat))
    xd = x2.astype(np.float64)
    mean = xd.sum(axis=0) / r
    var = ((xd - mean) ** 2).sum(axis=0) / r
    inv = 1.0 / np.sqrt(var + epsilon)
    xh = ((xd - mean) * inv).astype(dtype)
    xhat[...] = xh.reshape(x.shape)
    inv_std[...] = inv
    out[...] = _affine(xh, gamma, beta, dtype).reshape(x.shape)
    moving_mean[...] = moving_mean.astype(np.float64) * momentum + mean * (1.0 - momentum)
    moving_variance[...] = moving_variance.astype(np.float64) * momentum + var * (1.0 - momentum)
    return out, xhat, inv_std


def _affine(xh, gamma, beta, dtype):
    y = xh * (gamma if gamma is not None else dtype.type(1))
    return y + beta if beta is not None else y + dtype.type(0)


def batch_norm_backward(dy, xhat, gamma, inv_std, dx=None, dgamma=None, dbeta=None,
                        accumulate=False, need_dx=True):
    """Gradients of training-mode batch_norm_forward from dy; returns (dx, dgamma, dbeta).

    dbeta = sum dy, dgamma = sum dy * xhat (over every axis but the last, float64, rounded);
    dx = gamma * inv_std * (dy - dbeta/R - xhat * dgamma/R), or None when need_dx is False.
    accumulate=True adds to the given dgamma and dbeta (both required). gamma None means 1.

    >>> dx, dg, db = batch_norm_backward(np.array([[1.0], [1.0]]), np.array([[-1.0], [1.0]]),
    ...                                  None, np.ones(1))
    >>> dx.ravel(), dg, db
    (array([0., 0.]), array([0.]), array([2.]))
    """
    fn = "batch_norm_backward"
    dtype, c = _rows(fn, dy)
    _float_array(fn, "xhat", xhat, dy.ndim, dtype)
    if xhat.shape != dy.shape:
        raise ValueError(f"{fn}: xhat must have shape {dy.shape} like dy, got {xhat.shape}")
    _vector(fn, "gamma", gamma, c, dtype)
    _vector(fn, "inv_std", inv_std, c, dtype, allow_none=False)
    if accumulate and (dgamma is None or dbeta is None):
        raise ValueError(f"{fn}: accumulate=True needs dgamma and dbeta to add to, got "
                         f"dgamma={'None' if dgamma is None else 'array'}, "
                         f"dbeta={'None' if dbeta is None else 'array'}")
    inputs = (dy, xhat, gamma, inv_std)
    written = []
    for name, arr, shp in (("dgamma", dgamma, (c,)), ("dbeta", dbeta, (c,)),
                           ("dx", dx, dy.shape)):
        if arr is not None:
            _check_out(fn, name, arr, shp, dtype, inputs + tuple(written))
            written.append(arr)
    r = math.prod(dy.shape[:-1])
    g = dy.reshape(r, c).astype(np.float64)
    h = xhat.reshape(r, c).astype(np.float64)
    sb, sg = g.sum(axis=0), (g * h).sum(axis=0)
    for cur, s in ((dgamma, sg), (dbeta, sb)):
        if cur is not None and accumulate:
            cur += s.astype(dtype)
        elif cur is not None:
            cur[...] = s
    if dgamma is None:
        dgamma = sg.astype(dtype)
    if dbeta is None:
        dbeta = sb.astype(dtype)
    if not need_dx:
        return None, dgamma, dbeta
    if dx is None:
        dx = np.empty(dy.shape, dtype)
    scale = (gamma.astype(np.float64) if gamma is not None else 1.0) * inv_std
    mb, mg = (sb / r, sg / r) if r else (sb, sg)
    dx[...] = (scale * (g - mb - h * mg)).astype(dtype).reshape(dy.shape)
    return dx, dgamma, dbeta
