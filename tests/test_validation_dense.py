"""dense_forward/backward: bad input -> exception type and message, NaN propagation, on both
backends."""
import numpy as np
import pytest

from nnfast import ops

rng = np.random.default_rng(0)
X, W, B = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
DY = rng.standard_normal((5, 3))


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ops.dense_forward(X.astype(np.float32), W), TypeError,
     r"dense_forward: W must have dtype float32 like the other operands, got float64"),
    (lambda: ops.dense_forward(X, W.astype(np.int32)), TypeError,
     r"dense_forward: W must have dtype float32 or float64, got int32"),
    (lambda: ops.dense_forward(X, W[:3]), ValueError,
     r"dense_forward: W must have shape \(4, M\) to match x of shape \(5, 4\), got \(3, 3\)"),
    (lambda: ops.dense_forward(X[0], W), ValueError, r"dense_forward: x must be 2-D, got 1-D"),
    (lambda: ops.dense_forward(X, W, B[:2]), ValueError,
     r"dense_forward: b must have shape \(3,\), got \(2,\)"),
    (lambda: ops.dense_forward(X, W, B.astype(np.float32)), TypeError,
     r"dense_forward: b must have dtype float64 like the other operands"),
    (lambda: ops.dense_forward(X, W, B, "mish"), ValueError,
     r"dense_forward: activation must be one of .*; got 'mish'"),
    (lambda: ops.dense_forward(X, W, out=np.empty((5, 4))), ValueError,
     r"dense_forward: out must have shape \(5, 3\), got \(5, 4\)"),
    (lambda: ops.dense_forward(X, W, z=np.empty((3, 5)).T), ValueError,
     r"dense_forward: z must be C-contiguous"),
    (lambda: ops.dense_backward(DY[:4], X, W, None, None), ValueError,
     r"dense_backward: dy must have shape \(5, 3\) \(x rows, W columns\), got \(4, 3\)"),
    (lambda: ops.dense_backward(DY.astype(np.float32), X, W, None, None), TypeError,
     r"dense_backward: x must have dtype float32 like the other operands, got float64"),
    (lambda: ops.dense_backward(DY, X, W, None, None, "relu"), ValueError,
     r"dense_backward: z is required for activation 'relu', got None"),
    (lambda: ops.dense_backward(DY, X, W, None, None, accumulate=True), ValueError,
     r"dense_backward: accumulate=True needs dW and db to add to, got dW=None, db=None"),
    (lambda: ops.dense_backward(DY, X, W, None, None, dW=np.empty((3, 4))), ValueError,
     r"dense_backward: dW must have shape \(4, 3\), got \(3, 4\)"),
    (lambda: ops.dense_backward(DY, X, W, None, None, db=np.empty(3, np.float32)), TypeError,
     r"dense_backward: db must have dtype float64 like the other operands, got float32"),
    (lambda: ops.dense_backward(DY, X, W, None, None, dx=np.empty((5, 4))[:, ::2]), ValueError,
     r"dense_backward: dx must have shape \(5, 4\), got \(5, 2\)"),
    (lambda: ops.dense_backward(DY, X, W, None, None, dz=np.empty((5, 6))[:, ::2]), ValueError,
     r"dense_backward: dz must be C-contiguous"),
])
def test_bad_arguments(backend, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_overlapping_and_read_only_outputs(backend):
    x = X.copy()
    with pytest.raises(ValueError, match="dense_forward: out overlaps an input array"):
        ops.dense_forward(x, np.eye(4), out=x)
    out = np.empty((5, 3))
    with pytest.raises(ValueError, match="dense_forward: z overlaps an input array"):
        ops.dense_forward(X, W, out=out, z=out)
    dy = DY.copy()
    with pytest.raises(ValueError, match="dense_backward: dz overlaps an input array"):
        ops.dense_backward(dy, X, W, None, None, dz=dy)
    dW = np.empty((4, 3))
    with pytest.raises(ValueError, match="dense_backward: db overlaps an input array"):
        ops.dense_backward(DY, X, W, None, None, dW=dW, db=dW[0])
    ro = np.empty((4, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="dense_backward: dW is read-only"):
        ops.dense_backward(DY, X, W, None, None, dW=ro)


def test_outputs_are_returned_and_need_dx(backend):
    out, z = np.empty((5, 3)), np.empty((5, 3))
    assert ops.dense_forward(X, W, B, "tanh", out=out, z=z) is out
    np.testing.assert_allclose(z, X @ W + B, rtol=1e-12)
    np.testing.assert_allclose(out, np.tanh(z), rtol=1e-12)
    dx, dW, db, dz = np.empty((5, 4)), np.empty((4, 3)), np.empty(3), np.empty((5, 3))
    r = ops.dense_backward(DY, X, W, z, out, "tanh", dW=dW, db=db, dx=dx, dz=dz)
    assert r[0] is dx and r[1] is dW and r[2] is db
    np.testing.assert_allclose(dz, DY * (1 - out**2), rtol=1e-12)
    assert ops.dense_backward(DY, X, W, z, out, "tanh", need_dx=False)[0] is None


@pytest.mark.parametrize("activation", ["identity", "relu", "softmax", "log_softmax"])
def test_nan_propagates_to_its_row_and_column(backend, activation):
    x = X.copy()
    x[2, 1] = np.nan
    z = np.empty((5, 3))
    y = ops.dense_forward(x, W, B, activation, z=z)
    assert np.isnan(y[2]).all() and np.isfinite(np.delete(y, 2, axis=0)).all()
    dx, dW, _ = ops.dense_backward(DY, x, W, z, y, activation)
    assert np.isnan(dW[1]).all()  # x[:, 1] holds the NaN
    assert np.isnan(dx[2]).all() or activation == "identity"


def test_transposed_inputs_read_in_place(backend):
    Xt, Wt = np.asfortranarray(X), np.asfortranarray(W)
    np.testing.assert_allclose(ops.dense_forward(Xt, Wt, B), X @ W + B, rtol=1e-12)
    dx, dW, db = ops.dense_backward(np.asfortranarray(DY), Xt, Wt, None, None)
    np.testing.assert_allclose(dW, X.T @ DY, rtol=1e-12)
    np.testing.assert_allclose(dx, DY @ W.T, rtol=1e-12)
    np.testing.assert_allclose(db, DY.sum(axis=0), rtol=1e-12)
