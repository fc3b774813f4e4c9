"""Argument checks of the estimators, before any work: hidden_layer_sizes and sample weights.

Sample weights the way scikit-learn 1.9's MLP takes them.

scikit-learn validates ``sample_weight`` with ``_check_sample_weight`` (shape, NaN, infinity,
all zeros) and nothing else: negative weights are allowed, and so are weights summing to a
negative number. Each batch's loss and gradient are divided by the batch's weight sum
(``np.average``), so a batch whose weights sum to exactly zero fails with
``ZeroDivisionError("Weights sum to zero, can't be normalized")``.

nnfast's loss kernels take non-negative weights only (for Keras-style losses a negative weight is
a mistake) and its optimizer kernels a non-negative weight decay; the helpers here keep those
kernel checks away from values the user never passed: per-batch rescaled weights, or the decay
alpha / (batch weight sum).
"""
from __future__ import annotations

import math
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import _check_sample_weight


def hidden_sizes(value, owner: str) -> list:
    """hidden_layer_sizes as a list of ints, checked before any work.

    scikit-learn's constraint is "array-like" (elements unchecked) or an int >= 1; it raises
    ValueError "hidden_layer_sizes must be > 0, got [...]" for sizes < 1 (kept word for word)
    and crashes with a TypeError inside NumPy on a float or bool size such as (5.0,). nnfast
    raises InvalidParameterError (a ValueError and a TypeError) naming the parameter there.
    """
    sizes = list(value) if hasattr(value, "__iter__") else [value]
    if not all(isinstance(h, Integral) and not isinstance(h, (bool, np.bool_)) for h in sizes):
        raise InvalidParameterError(
            f"The 'hidden_layer_sizes' parameter of {owner} must be an int in the range "
            f"[1, inf) or an array-like of such ints. Got {value!r} instead.")
    if any(h <= 0 for h in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(h) for h in sizes]


class SampleWeightSumError(ValueError, ZeroDivisionError):
    """Weights summing to zero over a batch. A ZeroDivisionError like scikit-learn's (its MLP
    raises one from ``np.average``), and a ValueError like nnfast's other argument errors."""


def check_sample_weight(sample_weight, X, dtype, full_batch: bool):
    """scikit-learn's checks (same errors and messages), cast to the model dtype.

    full_batch: the whole set is one batch in row order (L-BFGS), so a zero sum is known now and
    reported before any work rather than at the first loss evaluation.
    """
    if sample_weight is None:
        return None
    sw = _check_sample_weight(sample_weight, X).astype(dtype, copy=False)
    _check_weight_sum_finite(sw)
    if full_batch and float(sw.sum(dtype=np.float64)) == 0.0:
        raise SampleWeightSumError(
            f"sample_weight sums to zero over all {sw.shape[0]} rows (sum of the "
            f"{int((sw > 0).sum())} positive weights {float(sw[sw > 0].sum()):g}, of the "
            f"{int((sw < 0).sum())} negative ones {float(sw[sw < 0].sum()):g}); "
            "solver='lbfgs' divides the loss by that sum (as scikit-learn does: its "
            "ZeroDivisionError 'Weights sum to zero, can't be normalized')")
    return sw


def _check_weight_sum_finite(sw: np.ndarray) -> None:
    """Refuse weights whose magnitudes sum to inf in float64 (``[1e308, 1e308, 1, ...]``).

    Each batch's loss is divided by its weight sum; an inf sum makes every row weigh 0, so the
    fit would report loss_ 0.0 and not train. scikit-learn 1.9.1 runs and reports loss_ nan or
    "Solver produced non-finite parameter weights"; nnfast refuses before any work (a
    deliberate difference, docs/sklearn.md). Σ|w| is tested, not Σw, so that no batch (any
    subset of the rows) can overflow either."""
    with np.errstate(over="ignore"):
        total = float(np.abs(sw).sum(dtype=np.float64))
    if math.isfinite(total):
        return
    big = np.argsort(-np.abs(sw.astype(np.float64)), kind="stable")
    with np.errstate(over="ignore"):
        upto = int(np.argmax(~np.isfinite(np.cumsum(np.abs(sw[big]), dtype=np.float64)))) + 1
    rows = np.sort(big[:upto])
    shown = ", ".join(str(int(r)) for r in rows[:8]) + (", ..." if rows.size > 8 else "")
    raise ValueError(
        f"sample_weight sums to {total} in float64 (sum of magnitudes): the weights of rows "
        f"[{shown}] "
        f"({float(np.abs(sw[rows]).min()):g} to {float(np.abs(sw[rows]).max()):g}) alone "
        "overflow; each batch's loss is divided by its weight sum, so every row would weigh "
        "0 and nothing would be learned. Scale the weights down (only their ratios matter).")


def batch_weight_sum(swb: np.ndarray, where) -> float:
    """Σ w over a batch (float64, like np.average); a zero sum raises SampleWeightSumError
    naming the user's rows and the epoch: where() -> (indices into the X given to fit, epoch)."""
    total = float(swb.sum(dtype=np.float64))
    if total == 0.0:
        rows, epoch = where()
        rows = np.asarray(rows)
        shown = ", ".join(str(int(r)) for r in rows[:8]) + (", ..." if rows.size > 8 else "")
        raise SampleWeightSumError(
            f"sample_weight sums to zero over a training batch: rows [{shown}] ({rows.size} "
            f"rows) in epoch {epoch}; each batch's loss is divided by its weight sum (as in "
            "scikit-learn, whose ZeroDivisionError reads 'Weights sum to zero, can't be "
            "normalized'). Give these rows weights that do not cancel, or change batch_size "
            "or shuffle.")
    return total


def signed_loss(op, weights: np.ndarray, grad: np.ndarray, *args) -> float:
    """``op(*args, sample_weight=weights, reduction="sum", grad=grad)[0]`` for weights of any sign.

    The weighted loss Σ w_i·l_i and its gradient rows w_i·∂l_i are linear in each w_i: rows with
    w_i < 0 are computed with |w_i| (the kernel's domain) and then negated.
    """
    neg = weights < 0
    if not neg.any():
        return op(*args, sample_weight=weights, reduction="sum", grad=grad)[0]
    rows, _ = op(*args, sample_weight=np.abs(weights), reduction="none", grad=grad)
    rows = rows.astype(np.float64)
    rows[neg] = -rows[neg]
    grad[neg] = -grad[neg]
    return float(rows.sum())


def user_rows(train_rows, idx, sl: slice, shuffled: bool, epoch: int):
    """(The batch's rows in the X given to fit, epoch); train_rows maps the early-stopping
    training split back to the user's rows."""
    batch = idx[sl] if shuffled else np.arange(sl.start, sl.stop)
    return (batch if train_rows is None else train_rows[batch]), epoch
