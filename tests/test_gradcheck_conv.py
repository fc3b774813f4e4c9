"""conv2d, max/avg/global-average pooling and batch-norm backwards against central finite
differences (float64), on both backends."""
import numpy as np
import pytest
from test_gradcheck_activations import central_diff, rel_err

from nnfast import ops

# (N, H, W, C, K, F, stride, dilation, padding)
CONV = [(1, 5, 6, 1, 1, 2, 1, 1, "valid"), (2, 5, 4, 3, 3, 2, 1, 1, "same"),
        (1, 6, 7, 3, 3, 3, 2, 1, "same"), (1, 7, 7, 1, 3, 2, 1, 2, "valid"),
        (1, 6, 5, 2, 5, 2, 2, 1, "same"), (2, 4, 5, 1, 3, 1, 2, 2, "same")]


@pytest.mark.parametrize("activation", ["identity", "tanh", "softmax"])
@pytest.mark.parametrize("shape", CONV, ids=lambda s: "x".join(map(str, s)))
def test_conv2d_backward_matches_finite_differences(backend, shape, activation):
    n, h, w, c, k, f, s, d, pad = shape
    geo = dict(strides=s, padding=pad, dilation_rate=d)
    rng = np.random.default_rng(17)
    x, W, b = rng.standard_normal((n, h, w, c)), rng.standard_normal((k, k, c, f)), \
        rng.standard_normal(f)
    y0 = ops.conv2d_forward(x, W, b, **geo)
    weights = rng.standard_normal(y0.shape)

    def loss(xv, Wv, bv):
        return float(np.sum(weights * ops.conv2d_forward(xv, Wv, bv, activation=activation,
                                                         **geo)))

    z = np.empty(y0.shape)
    y = ops.conv2d_forward(x, W, b, activation=activation, z=z, **geo)
    dx, dW, db = ops.conv2d_backward(weights, x, W, z, y, activation=activation, **geo)
    assert rel_err(dx, central_diff(lambda v: loss(v, W, b), x)) < 1e-7
    assert rel_err(dW, central_diff(lambda v: loss(x, v, b), W)) < 1e-7
    assert rel_err(db, central_diff(lambda v: loss(x, W, v), b)) < 1e-7


POOL = [(1, 4, 4, 1, 2, None, "valid"), (2, 5, 7, 3, 2, None, "same"),
        (1, 7, 5, 2, 3, 2, "same"), (1, 6, 6, 1, 3, 1, "valid"), (1, 5, 5, 2, 5, 1, "same")]


@pytest.mark.parametrize("shape", POOL, ids=lambda s: "x".join(map(str, s)))
def test_pool_backwards_match_finite_differences(backend, shape):
    n, h, w, c, p, s, pad = shape
    geo = dict(pool_size=p, strides=s, padding=pad)
    rng = np.random.default_rng(5)
    # distinct values at least 0.01 apart: the max is unique and h = 1e-6 never flips it
    x = rng.permutation(n * h * w * c).reshape(n, h, w, c) * 0.01
    y, arg = ops.max_pool2d_forward(x, **geo)
    wts = rng.standard_normal(y.shape)
    dx = ops.max_pool2d_backward(wts, x, arg, **geo)
    num = central_diff(lambda v: float(np.sum(wts * ops.max_pool2d_forward(v, **geo)[0])), x)
    assert rel_err(dx, num) < 1e-7
    dx = ops.avg_pool2d_backward(wts, x, **geo)
    num = central_diff(lambda v: float(np.sum(wts * ops.avg_pool2d_forward(v, **geo))), x)
    assert rel_err(dx, num) < 1e-7


def test_global_avg_pool_backward_matches_finite_differences(backend):
    rng = np.random.default_rng(2)
    x, wts = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 5))
    dx = ops.global_avg_pool2d_backward(wts, x)
    num = central_diff(lambda v: float(np.sum(wts * ops.global_avg_pool2d_forward(v))), x)
    assert rel_err(dx, num) < 1e-8


@pytest.mark.parametrize("shape", [(2, 1), (5, 3), (2, 3, 4, 2), (1, 2, 2, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_backward_matches_finite_differences(backend, shape, affine):
    rng = np.random.default_rng(9)
    c = shape[-1]
    x, wts = rng.standard_normal(shape), rng.standard_normal(shape)
    gamma, beta = (rng.uniform(0.5, 1.5, c), rng.standard_normal(c)) if affine else (None, None)

    def loss(xv, gv, bv):
        y, _, _ = ops.batch_norm_forward(xv, gv, bv, np.zeros(c), np.ones(c), True)
        return float(np.sum(wts * y))

    _, xhat, inv = ops.batch_norm_forward(x, gamma, beta, np.zeros(c), np.ones(c), True)
    dx, dg, dbeta = ops.batch_norm_backward(wts, xhat, gamma, inv)
    assert rel_err(dx, central_diff(lambda v: loss(v, gamma, beta), x)) < 1e-6
    if affine:
        assert rel_err(dg, central_diff(lambda v: loss(x, v, beta), gamma)) < 1e-7
        assert rel_err(dbeta, central_diff(lambda v: loss(x, gamma, v), beta)) < 1e-7
