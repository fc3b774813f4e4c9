"""Reference activations (plain NumPy): the spec for the compiled twins.

The elementwise formulas are those of csrc/nn/act_scalar.h (same branches, same stable forms), so
the two backends differ only by rounding of the libm functions. NaN in -> NaN out everywhere.

Extremes (float32 and float64, up to +-max and +-inf): every activation and derivative is finite
where its true value is and equals its limit at +-inf: gelu, gelu_tanh and silu -> z at +inf and
-0 at -inf, their derivatives -> 1 and 0; leaky_relu with alpha 0 gives -0 at -inf. A factor that
has saturated to exactly 0 (1 + erf, 1 + tanh, 1 - tanh², the Gaussian pdf, the sigmoid) makes its
product 0 rather than 0·inf = NaN; this also covers z², z³ overflowing in float32 for
|z| > 1.8e19 once tanh has saturated. torch.nn.functional gives NaN at several of these limits.
"""
from __future__ import annotations

import math

import numpy as np

from nnfast.backends._ref_checks import _check_out, _float_array, _native

__all__ = ["activation_backward", "activation_forward"]

ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "gelu_tanh",
               "silu", "softplus", "softmax", "log_softmax")
ROWWISE = ("softmax", "log_softmax")
# Which saved values the derivative reads (docs/ops_api.md, activation_backward).
NEEDS_Z = ("relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus")
NEEDS_Y = ("elu", "sigmoid", "tanh", "softmax", "log_softmax")

_SQRT1_2 = 0.70710678118654752440       # 1/sqrt(2)
_INV_SQRT_2PI = 0.39894228040143267794  # 1/sqrt(2*pi)
_SQRT_2_PI = 0.79788456080286535588     # sqrt(2/pi)
_erf = np.frompyfunc(math.erf, 1, 1)


def _check_activation(fn: str, activation) -> str:
    if not isinstance(activation, str):
        raise TypeError(f"{fn}: activation must be a str, got {type(activation).__name__}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{fn}: activation must be one of {', '.join(ACTIVATIONS)}; "
                         f"got {activation!r}")
    return activation


def _erf_like(x: np.ndarray) -> np.ndarray:
    """erf elementwise (NumPy has none): math.erf in float64, rounded to x's dtype."""
    return _erf(x.astype(np.float64)).astype(np.float64).astype(x.dtype)


def _exp_neg_abs(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.abs(z))


def _sigmoid(z):
    # z >= 0: 1/(1+e^-z); z < 0: e^z/(1+e^z); both with e = e^-|z| <= 1, so nothing overflows.
    e = _exp_neg_abs(z)
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


@np.errstate(over="ignore", invalid="ignore")  # z³ overflowing and 0·inf are handled below
def act(name: str, z: np.ndarray, a: float) -> np.ndarray:
    """y = act(z) elementwise (not for softmax/log_softmax)."""
    a = z.dtype.type(a)
    nan = np.isnan(z)
    if name == "relu":
        return np.where((z > 0) | nan, z, 0).astype(z.dtype)
    if name == "leaky_relu":  # alpha = 0 at z = -inf: -0, not 0·(-inf)
        n = a * z
        return np.where(z > 0, z, np.where(np.isnan(n) & ~nan, z.dtype.type(-0.0), n))
    if name == "elu":
        return np.where(z > 0, z, a * np.expm1(np.minimum(z, 0)))
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "gelu":  # 0.5 z (1 + erf(z/sqrt 2))
        return _half_z_times(z, 1 + _erf_like(z * _SQRT1_2))
    if name == "gelu_tanh":  # 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
        return _half_z_times(z, 1 + np.tanh(_SQRT_2_PI * (z + 0.044715 * z * z * z)))
    if name == "silu":  # z * sigmoid(z)
        e = _exp_neg_abs(z)
        return np.where(z >= 0, z / (1 + e),
                        np.where(e == 0, z.dtype.type(-0.0), z * e / (1 + e)))
    if name == "softplus":  # log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
        return np.where(z > 0, z, 0).astype(z.dtype) + np.log1p(_exp_neg_abs(z))
    return z.copy()


def _half_z_times(z, q):
    """0.5·z·q, with q = 1 + erf or 1 + tanh: q is exactly 0 only for z << 0 (z = -inf too),
    where the product is -0."""
    return np.where(q == 0, z.dtype.type(-0.0), 0.5 * z * q)


@np.errstate(over="ignore", invalid="ignore")  # z², z³ overflowing and 0·inf handled below
def dact(name: str, z, y, a: float) -> np.ndarray:
    """d act/dz given z and y = act(z) (whichever the formula needs; the other may be None).
    Not for identity (1) or the row-wise activations."""
    T = (z if z is not None else y).dtype.type
    a = T(a)
    if name == "relu":
        return np.where(z > 0, T(1), np.where(~np.isnan(z), T(0), z))
    if name == "leaky_relu":
        return np.where(z > 0, T(1), np.where(~np.isnan(z), a, z))
    if name == "elu":
        return np.where(z > 0, T(1), np.where(~np.isnan(z), y + a, z))
    if name == "sigmoid":
        return y * (1 - y)
    if name == "tanh":
        return 1 - y * y
    if name == "gelu":  # Phi(z) + z phi(z); phi = 0 for |z| >~ 39 (z = +-inf too)
        cdf = 0.5 * (1 + _erf_like(z * _SQRT1_2))
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * z * z)
        return cdf + np.where(pdf == 0, T(0), z * pdf)
    if name == "gelu_tanh":  # sech² = 1 - t² is 0 long before z² overflows
        t = np.tanh(_SQRT_2_PI * (z + 0.044715 * z * z * z))
        sech2 = 1 - t * t
        return 0.5 * (1 + t) + np.where(
            sech2 == 0, T(0), 0.5 * z * sech2 * T(_SQRT_2_PI) * (1 + T(3 * 0.044715) * z * z))
    if name == "silu":  # s (1 + z (1 - s)); s = 1 or 0 exactly at the far tails
        s = _sigmoid(z)
        q = 1 - s
        return np.where(s == 0, T(-0.0), s * (1 + np.where(q == 0, T(0), z * q)))
    if name == "softplus":
        return _sigmoid(z)
    raise ValueError(name)


def softmax_rows(z: np.ndarray, log: bool) -> np.ndarray:
    """Row-wise softmax or log_softmax, max-subtracted: exact for |z| ~ 1e4; a NaN anywhere in a
    row makes the whole row NaN (the row max is NaN)."""
    if z.size == 0:
        return z.copy()
    m = np.max(z, axis=1, keepdims=True)
    e = np.exp(z - m)
    s = np.sum(e, axis=1, keepdims=True, dtype=np.float64).astype(z.dtype)
    if log:
        return z - m - np.log(s)
    return e / s


def softmax_rows_backward(dy: np.ndarray, y: np.ndarray, log: bool) -> np.ndarray:
    """Jacobian-vector product per row: softmax dz = y (dy - sum(dy y));
    log_softmax dz = dy - exp(y) sum(dy)."""
    if dy.size == 0:
        return dy.copy()
    if log:
        s = np.sum(dy, axis=1, keepdims=True, dtype=np.float64).astype(dy.dtype)
        return dy - np.exp(y) * s
    s = np.sum(dy * y, axis=1, keepdims=True, dtype=np.float64).astype(dy.dtype)
    return y * (dy - s)


def apply_activation(name: str, z: np.ndarray, a: float) -> np.ndarray:
    if name in ROWWISE:
        return softmax_rows(z, name == "log_softmax")
    return act(name, z, a)


def activation_gradient(name: str, dy, z, y, a: float) -> np.ndarray:
    """dz = dy * act'(z) (the row-wise Jacobian product for softmax/log_softmax)."""
    if name in ROWWISE:
        return softmax_rows_backward(dy, y, name == "log_softmax")
    if name == "identity":  # act' = 1, and z, y may both be None
        return dy.copy()
    return dy * dact(name, z, y, a)


def check_saved(fn: str, activation: str, dy, z, y) -> None:
    """z and y: None or dy's shape and dtype; present when the derivative reads them."""
    for name, arr, needed in (("z", z, activation in NEEDS_Z), ("y", y, activation in NEEDS_Y)):
        if arr is None:
            if needed:
                raise ValueError(f"{fn}: {name} is required for activation {activation!r}, "
                                 "got None")
            continue
        _float_array(fn, name, arr, 2, _native(dy.dtype))
        if arr.shape != dy.shape:
            raise ValueError(f"{fn}: {name} must have shape {dy.shape} like dy, got {arr.shape}")


def check_saved_nd(fn: str, activation: str, dy, z, y) -> None:
    """check_saved for dy of any rank (convolutions: (N, OH, OW, F))."""
    for name, arr, needed in (("z", z, activation in NEEDS_Z), ("y", y, activation in NEEDS_Y)):
        if arr is None:
            if needed:
                raise ValueError(f"{fn}: {name} is required for activation {activation!r}, "
                                 "got None")
            continue
        _float_array(fn, name, arr, dy.ndim, _native(dy.dtype))
        if arr.shape != dy.shape:
            raise ValueError(f"{fn}: {name} must have shape {dy.shape} like dy, got {arr.shape}")


def activation_forward(x, activation, alpha=0.0, out=None):
    """y = act(x) for a 2-D x (N, M); softmax/log_softmax row-wise and max-subtracted.

    >>> activation_forward(np.array([[-1.0, 2.0]]), "relu")
    array([[0., 2.]])
    """
    fn = "activation_forward"
    dtype = _float_array(fn, "x", x, 2)
    _check_activation(fn, activation)
    alpha = float(alpha)
    if out is None:
        out = np.empty(x.shape, dtype)
    else:
        _check_out(fn, "out", out, x.shape, dtype, (x,))
    out[...] = apply_activation(activation, x, alpha)
    return out


def activation_backward(dy, z, y, activation, alpha=0.0, out=None):
    """dz = dy * act'(z) with z the pre-activation and y = act(z); all (N, M).

    softmax: dz = y (dy - sum_row(dy y)); log_softmax: dz = dy - exp(y) sum_row(dy).
    z may be None for identity, sigmoid, tanh, softmax, log_softmax; y may be None except for
    elu, sigmoid, tanh, softmax and log_softmax.

    >>> activation_backward(np.ones((1, 2)), np.array([[-1.0, 2.0]]), None, "relu")
    array([[0., 1.]])
    """
    fn = "activation_backward"
    dtype = _float_array(fn, "dy", dy, 2)
    _check_activation(fn, activation)
    check_saved(fn, activation, dy, z, y)
    alpha = float(alpha)
    if out is None:
        out = np.empty(dy.shape, dtype)
    else:
        _check_out(fn, "out", out, dy.shape, dtype, (dy, z, y))
    out[...] = activation_gradient(activation, dy, z, y, alpha)
    return out
