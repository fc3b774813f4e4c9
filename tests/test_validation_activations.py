"""activation_forward/backward: bad input -> exception type and message, NaN propagation and
extreme inputs, on both backends."""
import numpy as np
import pytest
from test_gradcheck_activations import ACTIVATIONS

from nnfast import ops

X = np.linspace(-2, 2, 12).reshape(3, 4)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ops.activation_forward(X.astype(np.int64), "relu"), TypeError,
     r"activation_forward: x must have dtype float32 or float64, got int64"),
    (lambda: ops.activation_forward([[1.0]], "relu"), TypeError,
     r"activation_forward: x must be a numpy.ndarray, got list"),
    (lambda: ops.activation_forward(X[0], "relu"), ValueError,
     r"activation_forward: x must be 2-D, got 1-D"),
    (lambda: ops.activation_forward(X, "swish"), ValueError,
     r"activation_forward: activation must be one of identity, .*; got 'swish'"),
    (lambda: ops.activation_forward(X, None), TypeError,
     r"activation_forward: activation must be a str, got NoneType"),
    (lambda: ops.activation_forward(X, "relu", out=np.empty((3, 4), np.float32)), TypeError,
     r"activation_forward: out must have dtype float64 like the other operands, got float32"),
    (lambda: ops.activation_forward(X, "relu", out=np.empty((4, 3))), ValueError,
     r"activation_forward: out must have shape \(3, 4\), got \(4, 3\)"),
    (lambda: ops.activation_forward(X, "relu", out=np.empty((4, 3)).T), ValueError,
     r"activation_forward: out must be C-contiguous"),
    (lambda: ops.activation_forward(X, "relu", out=np.broadcast_to(0.0, (3, 4))), ValueError,
     r"activation_forward: out must be C-contiguous|activation_forward: out is read-only"),
    (lambda: ops.activation_backward(X, None, None, "relu"), ValueError,
     r"activation_backward: z is required for activation 'relu', got None"),
    (lambda: ops.activation_backward(X, X, None, "elu"), ValueError,
     r"activation_backward: y is required for activation 'elu', got None"),
    (lambda: ops.activation_backward(X, None, None, "softmax"), ValueError,
     r"activation_backward: y is required for activation 'softmax', got None"),
    (lambda: ops.activation_backward(X, X.astype(np.float32), None, "relu"), TypeError,
     r"activation_backward: z must have dtype float64 like the other operands, got float32"),
    (lambda: ops.activation_backward(X, X[:2], None, "relu"), ValueError,
     r"activation_backward: z must have shape \(3, 4\) like dy, got \(2, 4\)"),
])
def test_bad_arguments(backend, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_read_only_and_overlapping_out(backend):
    ro = np.empty((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="activation_forward: out is read-only"):
        ops.activation_forward(X, "tanh", out=ro)
    x = X.copy()
    with pytest.raises(ValueError, match="activation_forward: out overlaps an input array"):
        ops.activation_forward(x, "tanh", out=x)
    with pytest.raises(ValueError, match="activation_backward: out overlaps an input array"):
        ops.activation_backward(x, x.copy(), None, "relu", out=x)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_in_nan_out(backend, activation, dtype):
    x = np.array([[0.5, -1.0, 2.0], [1.0, np.nan, -3.0]], dtype)
    y = ops.activation_forward(x, activation, 0.1)
    assert np.isnan(y[1, 1])
    if activation in ("softmax", "log_softmax"):
        assert np.isnan(y[1]).all() and np.isfinite(y[0]).all()  # the whole row, only that row
    else:
        assert np.isfinite(np.delete(y.ravel(), 4)).all()
    dz = ops.activation_backward(np.ones_like(x), x, y, activation, 0.1)
    assert np.isnan(dz[1, 1]) or activation == "identity"  # identity: act' = 1, dz = dy
    assert np.isfinite(dz[0]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_exact_for_huge_logits(backend, dtype):
    x = np.array([[1e4, -1e4, 1e4 - 1], [-1e4, -1e4 + 2, -1e4], [5.0, 5.0, 5.0]], dtype)
    e = np.exp(np.array([[0, -2e4, -1], [-2, 0, -2], [0, 0, 0]], np.float64))
    want = e / e.sum(axis=1, keepdims=True)
    y = ops.activation_forward(x, "softmax")
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=0)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    ly = ops.activation_forward(x, "log_softmax")
    assert np.isfinite(ly[:, [0, 2]]).all() and ly[0, 1] < -1e4 + 1  # -2e4 exactly, no -inf
    np.testing.assert_allclose(ly[2], -np.log(3.0), rtol=1e-6)  # all-equal row: uniform


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_single_column_and_large_magnitudes(backend, dtype):
    x = np.array([[1e4], [-1e4], [0.0]], dtype)
    np.testing.assert_array_equal(ops.activation_forward(x, "softmax"), 1)
    np.testing.assert_array_equal(ops.activation_forward(x, "log_softmax"), 0)
    big = np.array([[1e4, -1e4, 800.0, -800.0]], dtype)
    for act in ("sigmoid", "tanh", "softplus", "silu", "elu", "gelu", "gelu_tanh"):
        y = ops.activation_forward(big, act, 1.0)
        assert np.isfinite(y).all(), (act, y)
        assert np.isfinite(ops.activation_backward(np.ones_like(big), big, y, act, 1.0)).all()
    np.testing.assert_array_equal(ops.activation_forward(big, "sigmoid"), [[1, 0, 1, 0]])
    np.testing.assert_array_equal(ops.activation_forward(big, "softplus"), [[1e4, 0, 800, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_denormals_and_signed_zeros(backend, dtype):
    tiny = np.finfo(dtype).tiny / 16
    x = np.array([[tiny, -tiny, 0.0, -0.0]], dtype)
    y = ops.activation_forward(x, "relu")
    np.testing.assert_array_equal(y, [[tiny, 0, 0, 0]])
    assert not np.signbit(y).any()  # relu(-0.0) is +0.0 in both backends
    np.testing.assert_array_equal(ops.activation_forward(x, "identity"), x)
    np.testing.assert_allclose(ops.activation_forward(x, "sigmoid"), 0.5)
    np.testing.assert_allclose(ops.activation_forward(x, "tanh"), x, atol=0)
