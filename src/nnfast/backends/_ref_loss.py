"""Reference losses (plain NumPy): the spec for nnf_*_loss_* in csrc/nn/loss.c.

Every loss returns (loss, grad) from one call. With per-sample losses l_i and weights w_i
(sample_weight, times the class weight for cross-entropy):
  reduction="mean": loss = Σ_i w_i·l_i / N  (a Python float; N, not Σ w, is the divisor)
  reduction="sum":  loss = Σ_i w_i·l_i      (a Python float)
  reduction="none": loss = w_i·l_i          (an (N,) array of the input dtype)
grad = d(loss)/d(input) (for "none": of Σ_i w_i·l_i). An empty batch (N == 0) or an input with no
columns raises ValueError on both backends.

Precision: every loss is evaluated in float64 whatever the input dtype (terms, per-row sums over
classes or elements, the total summed in row order, the gradient, rounded to the input dtype
once); only exp/log1p of arguments that cannot overflow run in the input dtype, as in
csrc/nn/loss.c. So float32 inputs near 1e38 give the same finite "mean"/"sum" on both backends
wherever the value fits a float64; "none" rows are rounded to the input dtype (+inf past its
range). torch computes float32 losses in float32 (inf there).

Special values (both backends; csrc/nnfast.h states the same):
- A weight of exactly 0 removes its term from loss and gradient even where the term is ±inf
  (0·inf is taken as 0, not NaN); NaN still propagates. The weights are w_i (sample weight times
  class weight) and, inside a row, the target t'_ic of a cross-entropy term and t, 1-t of a BCE
  element. torch differs: F.cross_entropy with probability targets and
  F.binary_cross_entropy_with_logits give NaN in these cases, and class weight 0 on a -inf
  target logit gives loss NaN (gradient 0).
- A -inf logit has probability 0: its cross-entropy term and gradient are 0 when its target is 0;
  the loss is +inf and the gradient -scale·w_i·t'_ic when its target is > 0 (so always with label
  smoothing), as torch.nn.functional.cross_entropy with class labels (e.g. logits [0, -inf, 1],
  label 0: loss 1.3133, gradient [-0.7311, 0, 0.7311]).
- A +inf or NaN logit, or a row whose logits are all -inf, makes that row's loss and gradient NaN,
  as torch. BCE at z = ±inf takes its limits: ℓ(-inf, t) = t·inf, ℓ(+inf, t) = (1-t)·inf (0 for
  t = 0 and t = 1 respectively), ℓ' = σ(z) - t. MSE/Huber: a residual of ±inf gives loss +inf and
  gradient ±inf (MSE) or ±δ (Huber); inf - inf gives NaN, as torch.
"""
from __future__ import annotations

import numpy as np

from nnfast.backends._ref_checks import _check_out, _float_array, _native, _real_param

__all__ = ["binary_cross_entropy", "huber", "mse", "softmax_cross_entropy"]

REDUCTIONS = ("mean", "sum", "none")
_LABEL_DTYPES = (np.int32, np.int64)


def _batch(fn: str, name: str, x):
    """A 2-D float input with at least one row and one column; returns (N, C, native dtype)."""
    dtype = _float_array(fn, name, x, 2)
    n, c = x.shape
    if n == 0:
        raise ValueError(f"{fn}: empty batch: {name} has 0 rows (a loss over no samples "
                         f"is undefined)")
    if c == 0:
        raise ValueError(f"{fn}: {name} must have at least one column, got shape {x.shape}")
    return n, c, dtype


def _same_shape(fn: str, name: str, t, shape: tuple, dtype, like: str) -> None:
    _float_array(fn, name, t, 2, dtype)
    if t.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape} like {like}, got {t.shape}")


def _weights(fn: str, name: str, w, n: int, dtype):
    """None, or a non-negative (n,) float vector of the operands' dtype."""
    if w is None:
        return None
    _float_array(fn, name, w, 1, dtype)
    if w.shape != (n,):
        raise ValueError(f"{fn}: {name} must have shape {(n,)}, got {w.shape}")
    neg = w < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise ValueError(f"{fn}: {name} must be non-negative, got {float(w[i])!r} at index {i}")
    return w


def _reduction_scale(fn: str, reduction, n: int) -> float:
    """The factor applied to Σ_i w_i·l_i: 1/N for "mean", 1 otherwise."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of 'mean', 'sum', 'none', "
                         f"got {reduction!r}")
    return 1.0 / n if reduction == "mean" else 1.0


def _is_labels(fn: str, targets, n: int, c: int, dtype) -> bool:
    """True for int32/int64 labels (N,) in [0, C); False for float probabilities (N, C)."""
    if not isinstance(targets, np.ndarray):
        raise TypeError(f"{fn}: targets must be a numpy.ndarray, got {type(targets).__name__}")
    if targets.dtype.kind == "f":
        _same_shape(fn, "targets", targets, (n, c), dtype, "logits")
        return False
    if _native(targets.dtype) not in _LABEL_DTYPES:
        raise TypeError(f"{fn}: targets must be int32/int64 class labels or float32/float64 "
                        f"probabilities, got {targets.dtype}")
    if targets.shape != (n,):
        raise ValueError(f"{fn}: targets (class labels) must have shape {(n,)}, "
                         f"got {targets.shape}")
    bad = (targets < 0) | (targets >= c)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{fn}: targets must be class labels in [0, {c}), "
                         f"got {int(targets[i])} at index {i}")
    return True


def _grad_out(fn: str, grad, shape: tuple, dtype, inputs: tuple):
    if grad is None:
        return np.empty(shape, dtype)
    _check_out(fn, "grad", grad, shape, dtype, inputs)
    return grad


@np.errstate(invalid="ignore")  # 0·inf where w == 0 is replaced below
def _weigh(w, k, x):
    """k·x for terms of weight w (k = w times positive factors): where w == 0 the result is 0
    even for x = ±inf, and NaN where x is NaN."""
    return np.where(w == 0, np.where(np.isnan(x), x, 0.0), k * x)


def _reduce(rows: np.ndarray, reduction: str, n: int, dtype):
    """rows = w_i·l_i in float64 → the returned loss: the float64 sum in row order (as the C) for
    "mean"/"sum", the rows rounded to the input dtype for "none"."""
    if reduction == "none":
        with np.errstate(over="ignore"):  # a float64 row past the float32 range is inf there
            return rows.astype(dtype)
    total = float(np.cumsum(rows)[-1])
    return total / n if reduction == "mean" else total


def softmax_cross_entropy(logits, targets, sample_weight=None, class_weight=None,
                          label_smoothing=0.0, reduction="mean", grad=None):
    """Softmax cross-entropy from logits z (N, C), fused with its gradient.

    t = one-hot(labels) or the given probabilities; t' = (1-ε)·t + ε/C (label smoothing ε);
    lse_i = m_i + log Σ_c exp(z_ic - m_i) with m_i = max_c z_ic;
    l_i = Σ_c t'_ic·(lse_i - z_ic)  (computed as S_i·log s_i + Σ_{c: t'_ic≠0} t'_ic·(m_i - z_ic),
    S_i = Σ_c t'_ic, so logits of magnitude 1e4 and beyond lose nothing, and a -inf logit whose
    target is 0 adds nothing; see the module docstring for the special values);
    w_i = sample_weight_i · cw_i with cw_i = class_weight[label_i]
    (probabilities: Σ_c t_ic·class_weight_c);
    grad_ic = scale·w_i·(S_i·softmax(z)_ic - t'_ic).

    >>> import numpy as np
    >>> loss, g = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6), float(g[0, 0])
    (1.386294, -0.375)
    """
    fn = "softmax_cross_entropy"
    n, c, dtype = _batch(fn, "logits", logits)
    labels = _is_labels(fn, targets, n, c, dtype)
    sw = _weights(fn, "sample_weight", sample_weight, n, dtype)
    cw = _weights(fn, "class_weight", class_weight, c, dtype)
    eps = _real_param(fn, "label_smoothing", label_smoothing, 0.0, 1.0, hi_open=True)
    scale = _reduction_scale(fn, reduction, n)
    grad = _grad_out(fn, grad, (n, c), dtype, (logits, targets, sample_weight, class_weight))

    f64 = np.float64
    if labels:
        t = np.zeros((n, c), f64)
        t[np.arange(n), targets] = 1
        w_class = cw[targets].astype(f64) if cw is not None else None
    else:
        t = targets.astype(f64)
        w_class = t @ cw.astype(f64) if cw is not None else None
    t = (1.0 - eps) * t + eps / c if eps else t
    w = np.ones(n, f64)
    if sw is not None:
        w = w * sw
    if w_class is not None:
        w = w * w_class
    rows, g = _xent(logits, t, w, scale)
    with np.errstate(over="ignore"):  # past the float32 range: inf, as the C's rounding
        grad[...] = g
    return _reduce(rows, reduction, n, dtype), grad


@np.errstate(over="ignore", invalid="ignore")  # inf - inf = NaN and 0·inf are intended/handled
def _xent(z, t, w, scale):
    """Rows w_i·l_i and the float64 gradient of softmax cross-entropy (t = t', float64)."""
    m = np.max(z, axis=1, keepdims=True)
    e = np.exp(z - m).astype(np.float64)  # in the input dtype, as the C (<= 1: cannot overflow)
    s = np.sum(e, axis=1, keepdims=True)
    S = np.sum(t, axis=1)
    d = m.astype(np.float64) - z.astype(np.float64)  # float64: 3e38 - (-3e38) stays finite
    rows = S * np.log(s[:, 0]) + np.sum(t * np.where(t == 0, 0.0, d), axis=1)
    g = _weigh(w[:, None], (scale * w)[:, None], S[:, None] * (1.0 / s) * e - t)
    return _weigh(w, w, rows), g


def _elementwise(fn, name, pred, tname, targets, sample_weight):
    """Checks shared by the per-element losses; returns (N, M, dtype, sample_weight)."""
    n, m, dtype = _batch(fn, name, pred)
    _same_shape(fn, tname, targets, (n, m), dtype, name)
    sw = _weights(fn, "sample_weight", sample_weight, n, dtype)
    return n, m, dtype, sw


def _finish(n, m, dtype, sw, reduction, grad, scale, loss_elems, dloss_elems, dfactor=1.0):
    """l_i = mean_j ℓ_ij, rows = w_i·l_i, grad_ij = (dfactor·scale·w_i/M)·ℓ'_ij (float64 in,
    the gradient rounded once to dtype; a constant factor of ℓ' goes in dfactor, so that 2·r
    cannot overflow before the scaling)."""
    w = np.ones(n) if sw is None else sw.astype(np.float64)
    rows = _weigh(w, w, np.sum(loss_elems, axis=1) / m)
    k = (dfactor * (scale * w / m))[:, None]
    with np.errstate(over="ignore"):  # past the float32 range: inf, as the C's rounding
        grad[...] = _weigh(w[:, None], k, dloss_elems)
    return _reduce(rows, reduction, n, dtype), grad


def binary_cross_entropy(logits, targets, sample_weight=None, reduction="mean", grad=None):
    """Binary cross-entropy from logits z (N, M) and targets t (N, M), fused with its gradient.

    ℓ = (z > 0 ? (1-t)·z : -t·z) + log1p(exp(-|z|))  (= -t·log σ(z) - (1-t)·log(1-σ(z)), never
    overflows; the linear part weighed so that ℓ(+inf, 1) = ℓ(-inf, 0) = 0, not NaN);
    l_i = mean_j ℓ_ij; grad_ij = scale·w_i·(σ(z_ij) - t_ij)/M. Targets are not range-checked.

    >>> import numpy as np
    >>> loss, g = binary_cross_entropy(np.zeros((1, 2)), np.array([[1.0, 0.0]]))
    >>> round(loss, 6), g.tolist()
    (0.693147, [[-0.25, 0.25]])
    """
    fn = "binary_cross_entropy"
    n, m, dtype, sw = _elementwise(fn, "logits", logits, "targets", targets, sample_weight)
    scale = _reduction_scale(fn, reduction, n)
    grad = _grad_out(fn, grad, (n, m), dtype, (logits, targets, sample_weight))
    z = logits
    e = np.exp(-np.abs(z))  # in the input dtype, as the C (<= 1)
    sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float64)
    z64, t = z.astype(np.float64), targets.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # ±inf·(1 - t), inf - inf: NaN wanted
        lin = np.where(z64 > 0, _weigh(1 - t, 1 - t, z64), _weigh(t, t, -z64))
        ell = lin + np.log1p(e).astype(np.float64)
        dell = sig - t
    return _finish(n, m, dtype, sw, reduction, grad, scale, ell, dell)


def mse(pred, target, sample_weight=None, reduction="mean", grad=None):
    """Mean squared error, fused with its gradient: l_i = mean_j (p_ij - t_ij)²,
    grad_ij = scale·w_i·2(p_ij - t_ij)/M.

    >>> import numpy as np
    >>> loss, g = mse(np.array([[1.0, 3.0]]), np.array([[0.0, 0.0]]))
    >>> loss, g.tolist()
    (5.0, [[1.0, 3.0]])
    """
    fn = "mse"
    n, m, dtype, sw = _elementwise(fn, "pred", pred, "target", target, sample_weight)
    scale = _reduction_scale(fn, reduction, n)
    grad = _grad_out(fn, grad, (n, m), dtype, (pred, target, sample_weight))
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf: NaN, as wanted
        r = pred.astype(np.float64) - target.astype(np.float64)
        ell = r * r
    return _finish(n, m, dtype, sw, reduction, grad, scale, ell, r, dfactor=2.0)


def huber(pred, target, delta=1.0, sample_weight=None, reduction="mean", grad=None):
    """Huber loss, fused with its gradient; r = p - t, δ = delta (finite and > 0, also once
    rounded to the input dtype, in which it is used):
    ℓ = ½r² if |r| ≤ δ else δ·(|r| - ½δ); ℓ' = clip(r, -δ, δ) (NaN stays NaN);
    l_i = mean_j ℓ_ij; grad_ij = scale·w_i·ℓ'_ij/M.

    >>> import numpy as np
    >>> loss, g = huber(np.array([[0.5, 3.0]]), np.array([[0.0, 0.0]]))
    >>> loss, g.tolist()
    (1.3125, [[0.25, 0.5]])
    """
    fn = "huber"
    n, m, dtype, sw = _elementwise(fn, "pred", pred, "target", target, sample_weight)
    d = _real_param(fn, "delta", delta, 0.0, float("inf"), lo_open=True, hi_open=True,
                    dtype=dtype)
    scale = _reduction_scale(fn, reduction, n)
    grad = _grad_out(fn, grad, (n, m), dtype, (pred, target, sample_weight))
    with np.errstate(over="ignore", invalid="ignore"):  # inf - inf: NaN, as wanted
        r = pred.astype(np.float64) - target.astype(np.float64)
        a = np.abs(r)
        ell = np.where(a <= d, 0.5 * r * r, d * (a - 0.5 * d))
    return _finish(n, m, dtype, sw, reduction, grad, scale, ell, np.clip(r, -d, d))
