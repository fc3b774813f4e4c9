"""Bad arguments to the losses raise the same exception type and message on both backends;
NaN propagates where documented."""
import numpy as np
import pytest

from nnfast import ops

SCE = "softmax_cross_entropy"


def _z(n=4, c=3, dtype=np.float64):
    return np.arange(n * c, dtype=dtype).reshape(n, c) / 7.0


def _y(n=4, c=3):
    return np.arange(n) % c


BAD_SCE = [
    # (kwargs overriding the good call, exception, message regex)
    ({"logits": _z().astype(np.int64)}, TypeError, "logits must have dtype float32 or float64"),
    ({"logits": [[1.0, 2.0]]}, TypeError, "logits must be a numpy.ndarray, got list"),
    ({"logits": np.zeros(3)}, ValueError, "logits must be 2-D, got 1-D"),
    ({"logits": np.zeros((0, 3)), "targets": np.zeros(0, np.int64)}, ValueError,
     "empty batch: logits has 0 rows"),
    ({"logits": np.zeros((4, 0))}, ValueError, "logits must have at least one column"),
    ({"targets": np.array([0, 1, 5, 2])}, ValueError,
     r"targets must be class labels in \[0, 3\), got 5 at index 2"),
    ({"targets": np.array([0, -1, 1, 2], np.int32)}, ValueError,
     r"targets must be class labels in \[0, 3\), got -1 at index 1"),
    ({"targets": np.array([0, 1, 1, 2], np.uint8)}, TypeError,
     "targets must be int32/int64 class labels or float32/float64 probabilities, got uint8"),
    ({"targets": np.array([0, 1, 2])}, ValueError,
     r"targets \(class labels\) must have shape \(4,\), got \(3,\)"),
    ({"targets": np.full((4, 3), 1 / 3, np.float32)}, TypeError,
     "targets must have dtype float64 like the other operands, got float32"),
    ({"targets": np.full((4, 2), 0.5)}, ValueError,
     r"targets must have shape \(4, 3\) like logits, got \(4, 2\)"),
    ({"targets": [0, 1, 2, 0]}, TypeError, "targets must be a numpy.ndarray"),
    ({"sample_weight": np.ones(3)}, ValueError, r"sample_weight must have shape \(4,\)"),
    ({"sample_weight": np.array([1.0, -0.5, 1, 1])}, ValueError,
     r"sample_weight must be non-negative, got -0.5 at index 1"),
    ({"sample_weight": np.ones(4, np.float32)}, TypeError,
     "sample_weight must have dtype float64 like the other operands"),
    ({"class_weight": np.ones((3, 1))}, ValueError, "class_weight must be 1-D"),
    ({"class_weight": np.array([1.0, 1.0, -2.0])}, ValueError,
     "class_weight must be non-negative, got -2.0 at index 2"),
    ({"label_smoothing": 1.0}, ValueError, r"label_smoothing must be in \[0, 1\), got 1.0"),
    ({"label_smoothing": -0.1}, ValueError, r"label_smoothing must be in \[0, 1\)"),
    ({"label_smoothing": float("nan")}, ValueError, "label_smoothing must be in"),
    ({"label_smoothing": "0.1"}, TypeError, "label_smoothing must be a real number, got str"),
    ({"reduction": "avg"}, ValueError,
     "reduction must be one of 'mean', 'sum', 'none', got 'avg'"),
    ({"reduction": None}, ValueError, "reduction must be one of"),
    ({"grad": np.zeros((4, 3), np.float32)}, TypeError, "grad must have dtype float64"),
    ({"grad": np.zeros((3, 4))}, ValueError, r"grad must have shape \(4, 3\), got \(3, 4\)"),
    ({"grad": np.zeros((3, 4)).T}, ValueError, "grad must be C-contiguous"),
]


@pytest.mark.parametrize("override,exc,match", BAD_SCE)
def test_softmax_cross_entropy_rejects(backend, override, exc, match):
    kw = {"logits": _z(), "targets": _y(), **override}
    with pytest.raises(exc, match=f"^{SCE}: {match}"):
        ops.softmax_cross_entropy(**kw)


def test_grad_out_read_only_or_overlapping(backend):
    z = _z()
    g = np.zeros((4, 3))
    g.flags.writeable = False
    with pytest.raises(ValueError, match="grad is read-only"):
        ops.softmax_cross_entropy(z, _y(), grad=g)
    with pytest.raises(ValueError, match="grad overlaps an input array"):
        ops.softmax_cross_entropy(z, _y(), grad=z)
    with pytest.raises(ValueError, match="grad overlaps an input array"):
        ops.mse(z, z * 2, grad=z)


def test_grad_out_is_filled_and_returned(backend):
    g = np.full((4, 3), np.nan)
    loss, out = ops.softmax_cross_entropy(_z(), _y(), grad=g)
    assert out is g and np.isfinite(g).all() and isinstance(loss, float)


@pytest.mark.parametrize("loss,tname", [("binary_cross_entropy", "targets"), ("mse", "target"),
                                        ("huber", "target")])
def test_elementwise_losses_reject(backend, loss, tname):
    fn = getattr(ops, loss)
    x = _z()
    first = "logits" if loss == "binary_cross_entropy" else "pred"
    with pytest.raises(TypeError, match=f"^{loss}: {tname} must have dtype float64 like"):
        fn(x, x.astype(np.float32))
    with pytest.raises(ValueError, match=rf"^{loss}: {tname} must have shape \(4, 3\) like "
                                         rf"{first}, got \(4, 2\)"):
        fn(x, x[:, :2])
    with pytest.raises(ValueError, match=f"^{loss}: empty batch: {first} has 0 rows"):
        fn(x[:0], x[:0])
    with pytest.raises(ValueError, match=f"^{loss}: {first} must be 2-D"):
        fn(x[0], x[0])
    with pytest.raises(ValueError, match=f"^{loss}: sample_weight must be non-negative"):
        fn(x, x, sample_weight=-np.ones(4))
    with pytest.raises(ValueError, match=f"^{loss}: reduction must be one of"):
        fn(x, x, reduction="mean ")


@pytest.mark.parametrize("delta,exc", [(0.0, ValueError), (-1.0, ValueError),
                                       (float("inf"), ValueError), (None, TypeError)])
def test_huber_delta(backend, delta, exc):
    with pytest.raises(exc, match="^huber: delta must be"):
        ops.huber(_z(), _z(), delta=delta)


def test_non_contiguous_inputs_accepted(backend):
    z = np.asfortranarray(_z(5, 4))
    y = (np.arange(10) % 4)[::2]
    sw = np.ones(10)[::2]
    loss, g = ops.softmax_cross_entropy(z, y, sample_weight=sw)
    want, gw = ops.softmax_cross_entropy(np.ascontiguousarray(z), np.ascontiguousarray(y))
    assert loss == pytest.approx(want, rel=1e-15)
    np.testing.assert_allclose(g, gw, rtol=1e-15)


@pytest.mark.parametrize("loss", [SCE, "binary_cross_entropy", "mse", "huber"])
def test_nan_propagates(backend, loss):
    x = _z()
    x[1, 2] = np.nan
    t = _y() if loss == SCE else np.zeros_like(x)
    total, g = getattr(ops, loss)(x, t)
    assert np.isnan(total)
    rows, _ = getattr(ops, loss)(x, t, reduction="none")
    assert np.isnan(rows[1]) and np.isfinite(rows[[0, 2, 3]]).all()
    assert np.isfinite(np.delete(g, 1, axis=0)).all()
    assert np.isnan(g[1, 2])
    if loss == SCE:                    # softmax couples the row: all of it is NaN
        assert np.isnan(g[1]).all()


def test_nan_in_targets_and_weights(backend):
    p = np.full((2, 3), 1 / 3)
    p[0, 0] = np.nan
    rows, g = ops.softmax_cross_entropy(_z(2, 3), p, reduction="none")
    assert np.isnan(rows[0]) and np.isfinite(rows[1]) and np.isnan(g[0]).any()
    rows, _ = ops.mse(_z(2, 3), _z(2, 3) + 1, sample_weight=np.array([np.nan, 1.0]),
                      reduction="none")
    assert np.isnan(rows[0]) and rows[1] == pytest.approx(1.0)
