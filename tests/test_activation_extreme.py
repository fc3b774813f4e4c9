"""Elementwise activations and their derivatives at the extremes of each dtype: +-inf, +-max,
the magnitudes where z², z³ overflow (float32 |z| > 1.8e19 and 2e13, float64 1.3e154 and
1.6e103), signed zeros, subnormals and NaN; both backends, both dtypes, forward and backward, the
activation kernels and the GEMM epilogue (dense_forward/backward). The expected values are the
limits (gelu, gelu_tanh, silu -> z and 0, derivatives -> 1 and 0), exact in floating point there,
and first-order values at zeros and subnormals. torch gives NaN at several of these points
(gelu(-inf), silu(-inf), gelu_tanh'(1e38) in float32); see csrc/nn/act_scalar.h."""
import math

import numpy as np
import pytest

from nnfast import ops

ELEMENTWISE = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu",
               "softplus")
ALPHA = {"leaky_relu": 0.1, "elu": 1.3}
LN2 = math.log(2.0)

# (y, dy/dz) far out on each side, as functions of z and alpha: the exact floating-point values,
# because every saturating factor (erf, tanh, exp) is exactly 0 or +-1 there.
FAR_POS = {name: (lambda z, a: z, 1.0) for name in ("relu", "leaky_relu", "elu", "gelu",
                                                      "gelu_tanh", "silu", "softplus")}
FAR_POS.update(sigmoid=(lambda z, a: 1.0, 0.0), tanh=(lambda z, a: 1.0, 0.0))
FAR_NEG = {name: (lambda z, a: 0.0, 0.0) for name in ("relu", "gelu", "gelu_tanh", "silu",
                                                      "softplus", "sigmoid")}
FAR_NEG.update(leaky_relu=(None, "alpha"), elu=(lambda z, a: -a, 0.0),
               tanh=(lambda z, a: -1.0, 0.0))
# At +-0 and +-subnormal s: y ~ y(0) + y'(0)·s, y' ~ y'(0) (relu, leaky: by the sign of z).
AT_ZERO = {"relu": (0.0, None), "leaky_relu": (None, None), "elu": (None, None),
           "sigmoid": (0.5, 0.25), "tanh": (0.0, 1.0), "gelu": (0.0, 0.5),
           "gelu_tanh": (0.0, 0.5), "silu": (0.0, 0.5), "softplus": (LN2, 0.5)}


def far_values(dtype):
    """Magnitudes beyond which every activation has saturated (exp(-|z|) underflows to 0),
    including the overflow points of z², z³ in each dtype."""
    if dtype == np.float32:
        mags = [200.0, 2e13, 1e19, 2e19, 1e38, float(np.finfo(np.float32).max)]
    else:
        mags = [800.0, 2e103, 1e154, 2e154, 1e308, float(np.finfo(np.float64).max)]
    return np.array(mags + [np.inf], dtype)


def run(backend_path, name, z, alpha):
    """(y, dz/dz·1) through the activation kernels or the GEMM epilogue of dense_forward."""
    if backend_path == "activation":
        y = ops.activation_forward(z, name, alpha)
        d = ops.activation_backward(np.ones_like(z), z, y, name, alpha)
        return y, d
    # dense: z = 0 @ 0 + b with b = the inputs, one row; db = column sums of dy·act'(z) = act'.
    m = z.shape[1]
    x, W = np.zeros((1, 3), z.dtype), np.zeros((3, m), z.dtype)
    zz = np.empty((1, m), z.dtype)
    y = ops.dense_forward(x, W, z[0], activation=name, alpha=alpha, z=zz)
    _, _, db = ops.dense_backward(np.ones_like(y), x, W, zz, y, activation=name, alpha=alpha)
    return y, db[None, :]


def tol(dtype):
    return {"rtol": 2e-6 if dtype == np.float32 else 1e-14,
            "atol": 4 * float(np.finfo(dtype).smallest_subnormal)}


@pytest.mark.parametrize("path", ["activation", "dense"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_far_tails_are_the_limits(backend, dtype, name, path):
    alpha = ALPHA.get(name, 0.0)
    for sign, table in ((1, FAR_POS), (-1, FAR_NEG)):
        z = (sign * far_values(dtype))[None, :]
        y, d = run(path, name, z, alpha)
        fy, fd = table[name]
        if fy is None:  # leaky_relu: alpha·z in the dtype (-inf at -inf)
            want_y = dtype(alpha) * z[0]
        else:
            want_y = np.array([fy(v, dtype(alpha)) for v in z[0]], dtype)
        want_d = np.full(z.shape[1], dtype(alpha) if fd == "alpha" else fd, dtype)
        # exact: no NaN (assert_array_equal would accept NaN == NaN, want_* have none)
        np.testing.assert_array_equal(y[0], want_y, err_msg=f"{name} forward at {sign}·big")
        np.testing.assert_array_equal(d[0], want_d, err_msg=f"{name} backward at {sign}·big")


@pytest.mark.parametrize("path", ["activation", "dense"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zeros_and_subnormals(backend, dtype, name, path):
    alpha = ALPHA.get(name, 0.0)
    s = float(np.finfo(dtype).smallest_subnormal)
    tiny = float(np.finfo(dtype).tiny) / 4  # a subnormal with a few bits of precision
    zs = np.array([0.0, -0.0, s, -s, tiny, -tiny], dtype)
    y, d = run(path, name, zs[None, :], alpha)
    y0, d0 = AT_ZERO[name]
    want_y, want_d = [], []
    for v in zs.astype(np.float64):
        if name == "relu":
            want_y.append(max(v, 0.0))
            want_d.append(1.0 if v > 0 else 0.0)
        elif name in ("leaky_relu", "elu"):
            want_y.append(v if v > 0 else alpha * v)
            want_d.append(1.0 if v > 0 else alpha)
        else:
            want_y.append(y0 + d0 * v)
            want_d.append(d0)
    np.testing.assert_allclose(y[0], want_y, **tol(dtype), err_msg=f"{name} forward")
    np.testing.assert_allclose(d[0], want_d, **tol(dtype), err_msg=f"{name} backward")


@pytest.mark.parametrize("path", ["activation", "dense"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_nan_in_nan_out(backend, dtype, name, path):
    z = np.array([[np.nan, 1.0, -np.inf, np.inf]], dtype)
    y, d = run(path, name, z, ALPHA.get(name, 0.0))
    assert np.isnan(y[0, 0]) and np.isnan(d[0, 0])
    assert not np.isnan(y[0, 1:]).any() and not np.isnan(d[0, 1:]).any()


def test_leaky_relu_alpha_zero_at_minus_inf(backend, dtype):
    """alpha = 0: 0·(-inf) would be NaN; the limit (relu) is 0."""
    z = np.array([[-np.inf, -3.0, np.inf, np.nan]], dtype)
    y = ops.activation_forward(z, "leaky_relu", 0.0)
    d = ops.activation_backward(np.ones_like(z), z, None, "leaky_relu", 0.0)
    np.testing.assert_array_equal(y[0, :3], [0.0, 0.0, np.inf])
    np.testing.assert_array_equal(d[0, :3], [0.0, 0.0, 1.0])
    assert np.isnan(y[0, 3]) and np.isnan(d[0, 3])


def test_gelu_tanh_float32_beyond_1p8e19(backend):
    """The issue's case: z² overflows float32 for |z| > 1.8e19; 1 - tanh² is exactly 0 there."""
    z = np.array([[1.8e19, 2e19, -2e19, 1e30, -1e30]], np.float32)
    y = ops.activation_forward(z, "gelu_tanh")
    d = ops.activation_backward(np.ones_like(z), z, None, "gelu_tanh")
    np.testing.assert_array_equal(y[0], np.maximum(z[0], 0))
    np.testing.assert_array_equal(d[0], [1.0, 1.0, 0.0, 1.0, 0.0])


def test_moderate_tails_match_closed_forms(backend, dtype):
    """Where exp(+-z) is large or tiny but nothing has saturated, against the closed forms in
    double (math.exp, math.log1p, math.expm1)."""
    z = np.array([[-80.0, -30.0, -12.0, -5.0, 5.0, 12.0, 30.0, 80.0]], dtype)
    zf = z[0].astype(np.float64)

    def sig(v):
        return 1.0 / (1.0 + math.exp(-v))

    # sigmoid' is read from y as y(1 - y) (as torch): for z > 0 that is exact only to an
    # absolute ulp of 1, hence its absolute tolerance; the others are relative.
    closed = {
        "sigmoid": (sig, lambda v: sig(v) * (1 - sig(v))),
        "silu": (lambda v: v * sig(v), lambda v: sig(v) * (1 + v * (1 - sig(v)))),
        "softplus": (lambda v: max(v, 0.0) + math.log1p(math.exp(-abs(v))), sig),
        "elu": (lambda v: v if v > 0 else 1.3 * math.expm1(v), None),
    }
    for name, (f, df) in closed.items():
        alpha = ALPHA.get(name, 0.0)
        y = ops.activation_forward(z, name, alpha)
        np.testing.assert_allclose(y[0], [f(v) for v in zf], rtol=2e-5 if dtype == np.float32
                                   else 1e-13, atol=1e-30, err_msg=name)
        if df is not None:
            d = ops.activation_backward(np.ones_like(z), z, y, name, alpha)
            eps = float(np.finfo(dtype).eps)
            np.testing.assert_allclose(d[0], [df(v) for v in zf],
                                       rtol=1e-4 if dtype == np.float32 else 1e-12,
                                       atol=4 * eps if name == "sigmoid" else 1e-30,
                                       err_msg=name)
