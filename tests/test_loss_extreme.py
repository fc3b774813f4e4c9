"""Losses on extreme inputs: logits of magnitude 1e4 and beyond, all-equal rows, single-class
batches, denormals. No NaN/Inf unless the input had one; both backends, both dtypes.
Then the special values (±inf, NaN, weights of 0, float32 near 1e38) and the reductions' handling
of them, against hand-derived values and torch's where torch is importable."""
import math

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


# ---------------------------------------------------------------------------------------------
# Special values (issue #16 item 5): -inf/+inf/NaN logits, terms of weight 0, float32 near 1e38.
# Conventions: src/nnfast/backends/_ref_loss.py (module docstring) and csrc/nnfast.h. The expected
# values are derived by hand; torch's, where torch is importable, is checked too.
try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the torch comparisons are skipped, the hand-derived ones still run
    torch = None

E = math.e
P0, P2 = 1 / (1 + E), E / (1 + E)     # softmax([0, -inf, 1]) = [P0, 0, P2]
L0 = math.log(1 + E)                  # cross-entropy of [0, -inf, 1] with label 0
NEG_INF_ROW = [[0.0, -np.inf, 1.0]]
LABEL_KINDS = ["int64", "int32", "onehot"]


def _targets(kind, labels, c, dtype):
    if kind == "onehot":
        return np.eye(c, dtype=dtype)[labels]
    return np.array(labels, dtype=kind)


def _torch_xent(z, labels, **kw):
    """(rows, grad) of torch's F.cross_entropy with class labels, reduction="none", float64."""
    zt = torch.tensor(np.asarray(z, np.float64), requires_grad=True)
    rows = F.cross_entropy(zt, torch.tensor(labels), reduction="none", **kw)
    rows.sum().backward()
    return rows.detach().numpy(), zt.grad.numpy()


def _rtol(dtype):
    return 1e-6 if dtype == np.float32 else 1e-15


@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_neg_inf_logit_with_target_zero_vanishes(backend, dtype, kind):
    """The issue's case: probability 0, term 0, gradient 0 (was NaN for one-hot targets and on
    the reference backend). torch with labels gives the same; with probabilities it gives NaN."""
    z = np.array(NEG_INF_ROW + [[1.0, 2.0, 3.0]], dtype)
    t = _targets(kind, [0, 2], 3, dtype)
    rows, g = ops.softmax_cross_entropy(z, t, reduction="none")
    row1 = math.log(1 + math.exp(-1) + math.exp(-2))
    np.testing.assert_allclose(rows, [L0, row1], rtol=_rtol(dtype))
    np.testing.assert_allclose(g[0], [P0 - 1, 0.0, P2], rtol=_rtol(dtype), atol=0)
    assert g[0, 1] == 0.0
    loss, _ = ops.softmax_cross_entropy(z, t)
    assert loss == pytest.approx((L0 + row1) / 2, rel=_rtol(dtype))
    if torch is not None:
        want_rows, want_g = _torch_xent(z, [0, 2])
        np.testing.assert_allclose(rows, want_rows, rtol=_rtol(dtype))
        np.testing.assert_allclose(g, want_g, rtol=_rtol(dtype), atol=1e-7)


@pytest.mark.parametrize("kind", LABEL_KINDS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_neg_inf_logit_with_positive_target_is_inf(backend, dtype, kind, smoothing):
    """Target > 0 on a -inf logit (the label itself, or any class under label smoothing): loss
    +inf, gradient softmax - t' (finite), as torch."""
    label = 1 if smoothing == 0 else 0
    z = np.array(NEG_INF_ROW, dtype)
    rows, g = ops.softmax_cross_entropy(z, _targets(kind, [label], 3, dtype),
                                        label_smoothing=smoothing, reduction="none")
    assert rows[0] == np.inf
    t = (1 - smoothing) * np.eye(3)[label] + smoothing / 3
    np.testing.assert_allclose(g[0], np.array([P0, 0.0, P2]) - t, rtol=1e-6, atol=1e-7)
    if torch is not None:
        want_rows, want_g = _torch_xent(z, [label], label_smoothing=smoothing)
        assert want_rows[0] == np.inf
        np.testing.assert_allclose(g, want_g, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", LABEL_KINDS)
@pytest.mark.parametrize("weight", ["sample", "class"])
def test_zero_weight_removes_an_infinite_row(backend, dtype, kind, weight):
    """-inf on the target of a row of weight 0: loss 0, gradient 0 (0·inf taken as 0; torch
    gives NaN for class weight 0). A NaN in a row of weight 0 still propagates."""
    z = np.array(NEG_INF_ROW + [[np.nan, 0.0, 1.0], [0.0, 1.0, 2.0]], dtype)
    t = _targets(kind, [1, 1, 2], 3, dtype)  # rows 0 and 1 have weight 0
    kw = ({"sample_weight": np.array([0.0, 0.0, 2.0], dtype)} if weight == "sample" else
          {"class_weight": np.array([0.5, 0.0, 2.0], dtype)})
    rows, g = ops.softmax_cross_entropy(z, t, reduction="none", **kw)
    assert rows[0] == 0.0 and (g[0] == 0.0).all()
    assert np.isnan(rows[1]) and np.isnan(g[1]).all()
    want = 2.0 * math.log(1 + math.exp(-1) + math.exp(-2))
    assert rows[2] == pytest.approx(want, rel=1e-6)
    total, _ = ops.softmax_cross_entropy(z[[0, 2]], t[[0, 2]], reduction="sum",
                                         **{k: v[[0, 2]] if k == "sample_weight" else v
                                            for k, v in kw.items()})
    assert total == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("kind", LABEL_KINDS)
@pytest.mark.parametrize("row", [[0.0, np.inf, 1.0], [np.inf, np.inf, 1.0], [0.0, np.nan, 1.0],
                                 [-np.inf, -np.inf, -np.inf]],
                         ids=["+inf", "two+inf", "nan", "all-inf"])
def test_nan_and_pos_inf_rows_are_nan(backend, dtype, kind, row):
    """+inf, NaN, or all logits -inf: that row's loss and gradient are NaN (as torch); the
    other rows are untouched."""
    z = np.array([row, [0.0, 1.0, 2.0]], dtype)
    t = _targets(kind, [0, 1], 3, dtype)
    rows, g = ops.softmax_cross_entropy(z, t, reduction="none")
    assert np.isnan(rows[0]) and np.isnan(g[0]).all()
    assert np.isfinite(rows[1]) and np.isfinite(g[1]).all()
    if torch is not None:
        want_rows, want_g = _torch_xent(z, [0, 1])
        assert np.isnan(want_rows[0]) and np.isnan(want_g[0]).all()
        np.testing.assert_allclose(rows[1], want_rows[1], rtol=1e-6)


def test_float32_near_max_accumulates_in_double(backend, dtype):
    """Logits +-3e38: m - z_y = 6e38 overflows float32 but not the float64 the loss is summed in;
    "sum" is finite on both backends and dtypes, the float32 "none" row is inf (6e38 > FLT_MAX),
    the gradient exact. torch (float64) gives the same sum; in float32 it gives inf."""
    big = float(dtype(3e38))
    z = np.array([[big, -big, 0.0]], dtype)
    rows, g = ops.softmax_cross_entropy(z, np.array([1]), reduction="none")
    total, _ = ops.softmax_cross_entropy(z, np.array([1]), reduction="sum")
    assert total == 2 * big
    assert rows[0] == (np.inf if dtype == np.float32 else 2 * big)
    np.testing.assert_array_equal(g, [[1.0, -1.0, 0.0]])
    p = np.array([[0.5, 0.5, 0.0]], dtype)  # probabilities: half of it, 3e38, fits float32
    rows, g = ops.softmax_cross_entropy(z, p, reduction="none")
    assert rows[0] == dtype(big)
    np.testing.assert_array_equal(g, [[0.5, -0.5, 0.0]])
    if torch is not None:
        assert _torch_xent(z, [1])[0][0] == 2 * big


def test_bce_infinite_logits_take_their_limits(backend, dtype):
    """ℓ(-inf, t) = t·inf, ℓ(+inf, t) = (1-t)·inf with 0·inf = 0; ℓ' = σ(z) - t. torch's
    gradient is the same; its loss is NaN at (-inf, 0), (-inf, 1), (+inf, 1), (-inf, 0.5)."""
    z = np.array([[-np.inf], [-np.inf], [np.inf], [np.inf], [-np.inf], [np.inf]], dtype)
    t = np.array([[0.0], [1.0], [1.0], [0.0], [0.5], [0.5]], dtype)
    rows, g = ops.binary_cross_entropy(z, t, reduction="none")
    np.testing.assert_array_equal(rows, [0.0, np.inf, 0.0, np.inf, np.inf, np.inf])
    np.testing.assert_array_equal(g[:, 0], [0.0, -1.0, 0.0, 1.0, -0.5, 0.5])
    loss, _ = ops.binary_cross_entropy(z[[0, 2]], t[[0, 2]])
    assert loss == 0.0
    if torch is not None:
        zt = torch.tensor(z.astype(np.float64), requires_grad=True)
        F.binary_cross_entropy_with_logits(zt, torch.tensor(t.astype(np.float64)),
                                           reduction="sum").backward()
        np.testing.assert_array_equal(g, zt.grad.numpy())


def test_bce_float32_near_max(backend, dtype):
    big = float(dtype(3e38))
    z, t = np.array([[big, -big]], dtype), np.array([[0.0, 1.0]], dtype)
    rows, g = ops.binary_cross_entropy(z, t, reduction="none")
    assert rows[0] == dtype(big)
    total, _ = ops.binary_cross_entropy(np.vstack([z, z]), np.vstack([t, t]), reduction="sum")
    assert total == 2 * big  # 6e38: finite as a Python float on both dtypes
    np.testing.assert_array_equal(g, [[0.5, -0.5]])


def test_mse_huber_float32_near_max(backend, dtype):
    """r = 3e38 - (-3e38) overflows float32 (and 2r would): residual, loss and gradient are
    taken in float64, so the gradient 2r/M = 3e38 is finite again in float32 (it was inf) and
    "sum" is finite; torch in float64 gives the same gradient (in float32: inf)."""
    big = float(dtype(3e38))
    p, t = np.full((1, 4), big, dtype), np.full((1, 4), -big, dtype)
    rows, g = ops.mse(p, t, reduction="none")
    total, _ = ops.mse(p, t, reduction="sum")
    assert total == (2 * big) ** 2
    assert rows[0] == (np.inf if dtype == np.float32 else (2 * big) ** 2)
    np.testing.assert_array_equal(g, np.full((1, 4), dtype(big)))
    if torch is not None:
        pt = torch.tensor(p.astype(np.float64), requires_grad=True)
        F.mse_loss(pt, torch.tensor(t.astype(np.float64))).backward()
        np.testing.assert_array_equal(pt.grad.numpy(), np.full((1, 4), big))
    total, g = ops.huber(p, t, delta=2.0, reduction="sum")
    assert total == 2.0 * (2 * big - 1.0)  # δ(|r| - δ/2), the mean of four equal elements
    np.testing.assert_array_equal(g, np.full((1, 4), 0.5))


@pytest.mark.parametrize("fn", ["mse", "huber"])
def test_mse_huber_infinite_residuals(backend, dtype, fn):
    """±inf residual: loss +inf, gradient ±inf (MSE) or ±δ/M (Huber); inf - inf: NaN (as
    torch); a row of sample weight 0 contributes 0 to loss and gradient even with an inf."""
    f = getattr(ops, fn)
    p = np.array([[np.inf, -np.inf], [np.inf, 1.0], [np.inf, 1.0]], dtype)
    t = np.array([[0.0, 0.0], [np.inf, 1.0], [0.0, 1.0]], dtype)
    rows, g = f(p, t, reduction="none", sample_weight=np.array([1.0, 1.0, 0.0], dtype))
    assert rows[0] == np.inf and np.isnan(rows[1]) and rows[2] == 0.0
    want0 = [np.inf, -np.inf] if fn == "mse" else [0.5, -0.5]
    np.testing.assert_array_equal(g[0], want0)
    assert np.isnan(g[1, 0]) and g[1, 1] == 0.0
    np.testing.assert_array_equal(g[2], [0.0, 0.0])


def test_column_sums_accumulate_in_double_row_order(backend):
    x = np.array([[3e38, 3e38], [3e38, 3e38], [-3e38, np.inf]], np.float32)
    np.testing.assert_array_equal(ops.column_sums(x), np.array([3e38, np.inf], np.float32))
    x = np.array([[3e38], [3e38]], np.float32)  # 6e38: past FLT_MAX only after rounding
    assert ops.column_sums(x)[0] == np.inf
    # float64 overflow follows the row order on both backends (NumPy's pairwise sum: NaN)
    x = np.array([[1e308], [1e308], [-1e308], [-1e308]] * 4)
    assert ops.column_sums(x)[0] == np.inf
    assert ops.column_sums(np.asfortranarray(x))[0] == np.inf


def test_argmax_with_infinities_and_nan(backend, dtype):
    """np.argmax semantics: the first maximum, the first NaN wins, a row of -inf gives 0."""
    x = np.array([[-np.inf, -np.inf, -np.inf], [-np.inf, np.nan, np.inf],
                  [np.nan, np.nan, 0.0], [-np.inf, 0.0, -np.inf], [np.inf, np.inf, 1.0],
                  [1.0, np.inf, np.nan]], dtype)
    want = [0, 1, 0, 1, 0, 2]
    np.testing.assert_array_equal(np.argmax(x, axis=1), want)
    np.testing.assert_array_equal(ops.argmax_rows(x), want)
    assert ops.accuracy(x, np.array(want)) == 1.0
