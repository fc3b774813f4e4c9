"""dense_backward (dx, dW, db) and dropout_backward against central finite differences
(float64), on both backends."""
import numpy as np
import pytest
from test_gradcheck_activations import ALPHA, central_diff, rel_err

from nnfast import ops


@pytest.mark.parametrize("activation", ["identity", "relu", "elu", "sigmoid", "tanh", "gelu",
                                        "softplus", "softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (4, 3, 5), (2, 6, 3)])
def test_dense_backward_matches_finite_differences(backend, activation, shape):
    n, k, m = shape
    rng = np.random.default_rng(11)
    alpha = ALPHA.get(activation, 0.0)
    x, W, b = rng.standard_normal((n, k)), rng.standard_normal((k, m)), rng.standard_normal(m)
    if activation in ("relu", "elu"):  # every pre-activation well away from the kink at 0
        x *= 0.02
        b = rng.uniform(1.0, 2.0, m) * rng.choice([-1.0, 1.0], m)
        assert np.abs(x @ W + b).min() > 0.1
    weights = rng.standard_normal((n, m))

    def loss(xv, Wv, bv):
        return float(np.sum(weights * ops.dense_forward(xv, Wv, bv, activation, alpha)))

    z = np.empty((n, m))
    y = ops.dense_forward(x, W, b, activation, alpha, z=z)
    dx, dW, db = ops.dense_backward(weights, x, W, z, y, activation, alpha)
    assert rel_err(dx, central_diff(lambda v: loss(v, W, b), x)) < 1e-6
    assert rel_err(dW, central_diff(lambda v: loss(x, v, b), W)) < 1e-6
    assert rel_err(db, central_diff(lambda v: loss(x, W, v), b)) < 1e-6


def test_dense_backward_accumulate_adds(backend):
    rng = np.random.default_rng(3)
    x, W, dy = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal((5, 3))
    _, dW1, db1 = ops.dense_backward(dy, x, W, None, None)
    dW, db = np.ones((4, 3)), np.ones(3)
    dx, dW2, db2 = ops.dense_backward(dy, x, W, None, None, dW=dW, db=db, accumulate=True,
                                      need_dx=False)
    assert dx is None and dW2 is dW and db2 is db
    np.testing.assert_allclose(dW, dW1 + 1, rtol=1e-12)
    np.testing.assert_allclose(db, db1 + 1, rtol=1e-12)


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.8])
def test_dropout_backward_matches_finite_differences(backend, rate):
    rng = np.random.default_rng(5)
    x, weights = rng.standard_normal((3, 7)), rng.standard_normal((3, 7))
    dx = ops.dropout_backward(weights, rate, 42, 3)
    num = central_diff(lambda v: float(np.sum(weights * ops.dropout_forward(v, rate, 42, 3))), x)
    assert rel_err(dx, num) < 1e-6
