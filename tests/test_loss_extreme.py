"""Losses on extreme inputs: logits of magnitude 1e4 and beyond, all-equal rows, single-class
batches, denormals. No NaN/Inf unless the input had one; both backends, both dtypes."""
import numpy as np
import pytest

from nnfast import ops


@pytest.mark.parametrize("big", [1e4, 3e4, 1e30])
def test_huge_logits(backend, dtype, big):
    z = np.array([[big, -big, 0.0], [big, -big, 0.0], [-big, -big, -big]], dtype)
    y = np.array([0, 1, 2])
    rows, g = ops.softmax_cross_entropy(z, y, reduction="none")
    assert np.isfinite(rows).all() and np.isfinite(g).all()
    assert rows[0] == 0.0 and rows[1] == pytest.approx(2 * big, rel=1e-6)
    assert rows[2] == pytest.approx(np.log(3), rel=1e-6)
    np.testing.assert_allclose(g[0], [0, 0, 0], atol=1e-30)
    np.testing.assert_allclose(g[1], [1, -1, 0], atol=1e-30)
    loss, g = ops.softmax_cross_entropy(z, y, label_smoothing=0.1,
                                        class_weight=np.ones(3, dtype))
    assert np.isfinite(loss) and np.isfinite(g).all()
    p = np.full((3, 3), 1 / 3, dtype)
    loss, g = ops.softmax_cross_entropy(z, p)
    assert np.isfinite(loss) and np.isfinite(g).all()


@pytest.mark.parametrize("big", [1e4, 1e30])
def test_huge_logits_binary(backend, dtype, big):
    z = np.array([[big, -big], [-big, big]], dtype)
    t = np.array([[1.0, 0.0], [1.0, 0.0]], dtype)
    rows, g = ops.binary_cross_entropy(z, t, reduction="none")
    assert np.isfinite(rows).all() and np.isfinite(g).all()
    assert rows[0] == 0.0 and rows[1] == pytest.approx(big, rel=1e-6)
    np.testing.assert_allclose(g, [[0, 0], [-0.5, 0.5]], atol=1e-30)


def test_all_equal_rows(backend, dtype):
    z = np.full((4, 5), 7.25, dtype)
    y = np.array([0, 1, 2, 4])
    loss, g = ops.softmax_cross_entropy(z, y)
    assert loss == pytest.approx(np.log(5), rel=1e-6)
    want = (np.full((4, 5), 0.2) - np.eye(5)[y]) / 4
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-7)


def test_single_class(backend, dtype):
    z = np.array([[3.0], [-1e4], [0.0]], dtype)
    loss, g = ops.softmax_cross_entropy(z, np.zeros(3, np.int64))
    assert loss == 0.0 and (g == 0).all()
    z = np.random.default_rng(0).standard_normal((6, 4)).astype(dtype)
    loss, g = ops.softmax_cross_entropy(z, np.full(6, 2))       # every sample one class
    assert np.isfinite(loss) and (g[:, 2] <= 0).all() and (np.delete(g, 2, 1) >= 0).all()
    np.testing.assert_allclose(g.sum(1), 0, atol=1e-6)


def test_denormals(backend, dtype):
    tiny = np.finfo(dtype).smallest_subnormal
    z = np.array([[tiny, 0.0, -tiny], [tiny * 3, tiny, 0.0]], dtype)
    loss, g = ops.softmax_cross_entropy(z, np.array([0, 2]))
    assert loss == pytest.approx(np.log(3), rel=1e-6) and np.isfinite(g).all()
    for fn in (ops.binary_cross_entropy, ops.mse, ops.huber):
        loss, g = fn(z, np.zeros_like(z))
        assert np.isfinite(loss) and np.isfinite(g).all()


def test_huber_tails_and_mse_large(backend, dtype):
    r = np.array([[-1e4, -1.0, 0.25, 1e4]], dtype)
    loss, g = ops.huber(r, np.zeros_like(r), delta=1.0, reduction="sum")
    # one sample: the mean over its 4 elements of δ(|r| - δ/2) or r²/2
    assert loss == pytest.approx(((1e4 - 0.5) * 2 + 0.5 + 0.03125) / 4, rel=1e-6)
    np.testing.assert_allclose(g, [[-0.25, -0.25, 0.0625, 0.25]], rtol=1e-6)
