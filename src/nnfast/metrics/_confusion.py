"""Keras 3 metrics from weighted confusion counts: Precision, Recall, AUC, FBetaScore, F1Score.

Counts are Σ w_i over the entries (row i's weight on each of its outputs) with y true when
nonzero (Keras casts targets to bool); they add up over batches and shards, and the result is
computed from the totals. Predictions are probabilities (a fused head is applied first).
"""
from __future__ import annotations

import numpy as np

from nnfast.metrics._stat import StatMetric, integer, number, row_weights

MAX_THRESHOLDS = 10**6   # AUC.num_thresholds: see AUC's docstring


class _Thresholded(StatMetric):
    """tp plus fp (Precision) or fn (Recall) at one threshold: positive when p > threshold."""
    direction = "up"   # keras.metrics.Precision/Recall._direction

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None):
        super().__init__(name)
        cls = type(self).__name__
        if top_k is not None:
            raise ValueError(f"{cls}: top_k is not supported by nnfast, got top_k={top_k!r}; "
                             "leave it None")
        self.thresholds = 0.5 if thresholds is None else number(cls, "thresholds", thresholds,
                                                                0.0, 1.0)
        self.class_id = None if class_id is None else integer(cls, "class_id", class_id, 0)

    def bind(self, loss, out_shape, fused_head):
        super().bind(loss, out_shape, fused_head)
        if self.class_id is not None and self.class_id >= out_shape[0]:
            raise ValueError(f"{type(self).__name__}: class_id={self.class_id} is out of range "
                             f"for {out_shape[0]} outputs")

    def _size(self, width):
        return 2

    def add_sums(self, sums, outputs, targets, ws, n, wb):
        if n == 0:
            return
        p, y = self.probabilities(outputs), targets
        if self.class_id is not None:
            p, y = p[:, self.class_id:self.class_id + 1], y[:, self.class_id:self.class_id + 1]
        w = row_weights(wb, n)
        pos, true = p > self.thresholds, y != 0
        sums[0] += float((w * (pos & true)).sum())
        sums[1] += float((w * (pos & ~true if self._other == "fp" else ~pos & true)).sum())

    def result(self, sums, weight):
        tp, other = float(sums[0]), float(sums[1])
        return tp / (tp + other) if tp + other else 0.0

    def get_config(self):
        return {"thresholds": self.thresholds, "top_k": None, "class_id": self.class_id,
                "name": self.name}


class Precision(_Thresholded):
    """tp / (tp + fp) at ``thresholds`` (one number, default 0.5); ``class_id`` limits it to one
    output column. 0 when nothing is predicted positive (Keras' divide_no_nan)."""

    _other = "fp"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision"):
        super().__init__(thresholds, top_k, class_id, name)


class Recall(_Thresholded):
    """tp / (tp + fn) at ``thresholds`` (one number, default 0.5); ``class_id`` as Precision."""

    _other = "fn"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall"):
        super().__init__(thresholds, top_k, class_id, name)


class AUC(StatMetric):
    """Area under the ROC or PR curve from counts at ``num_thresholds`` thresholds (Keras 3).

    Thresholds: ``-1e-7, 1/(T-1), 2/(T-1), ..., (T-2)/(T-1), 1 + 1e-7``; p (clipped to [0, 1])
    falls in bucket ``max(ceil(p·(T-1)) - 1, 0)`` (computed in the outputs' dtype, as Keras does
    in float32) and counts as positive for every threshold up to its bucket. ROC:
    Σ (fpr_i - fpr_{i+1})·(tpr_i + tpr_{i+1})/2. PR with "interpolation": Davis & Goadrich's
    interpolation (Keras' ``interpolate_pr_auc``). "minoring"/"majoring" take the lower/upper
    of the two heights. Statistics: tp and fp per threshold, Σ w over true and false entries.
    ``multi_label`` is not supported (entries are flattened, Keras' default).

    ``num_thresholds``: an integer in [2, 10**6] (default 200). Keras 3 requires > 1 and sets
    no upper bound; nnfast bounds it because the statistics (2·T + 2 float64) and each batch's
    per-threshold counts grow with T: 10**6 holds 16 MB and costs milliseconds per batch, while
    a model file asking for 2**31 - 1 would allocate 32 GiB at the first evaluate.
    Raises ValueError for a value outside that range."""
    direction = "up"   # keras.metrics.AUC._direction

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name="auc", multi_label=False):
        super().__init__(name)
        self.num_thresholds = integer("AUC", "num_thresholds", num_thresholds, 2)
        if self.num_thresholds > MAX_THRESHOLDS:
            raise ValueError(f"AUC: num_thresholds must be at most {MAX_THRESHOLDS} (nnfast's "
                             f"bound; Keras has none), got {num_thresholds!r}")
        if not isinstance(curve, str) or curve.upper() not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        self.curve = curve.upper()
        if not isinstance(summation_method, str) or summation_method.lower() not in (
                "interpolation", "minoring", "majoring"):
            raise ValueError(f"AUC: summation_method must be 'interpolation', 'minoring' or "
                             f"'majoring', got {summation_method!r}")
        self.summation_method = summation_method.lower()
        if multi_label is not False:
            raise ValueError(f"AUC: multi_label=True is not supported by nnfast, got "
                             f"multi_label={multi_label!r}")

    def _size(self, width):
        return 2 * self.num_thresholds + 2

    def add_sums(self, sums, outputs, targets, ws, n, wb):
        if n == 0:
            return
        t = self.num_thresholds
        p = np.clip(self.probabilities(outputs), 0, 1)
        bucket = np.ceil(p * p.dtype.type(t - 1)).astype(np.int64) - 1
        np.maximum(bucket, 0, out=bucket)
        w = np.broadcast_to(row_weights(wb, n), p.shape).ravel()
        true = (targets != 0).ravel()
        bucket = bucket.ravel()
        for k, mask in ((0, true), (1, ~true)):
            counts = np.bincount(bucket[mask], weights=w[mask], minlength=t)
            sums[k * t:(k + 1) * t] += np.cumsum(counts[::-1])[::-1]
            sums[2 * t + k] += float(w[mask].sum())

    def result(self, sums, weight):
        t = self.num_thresholds
        tp, fp = np.asarray(sums[:t], np.float64), np.asarray(sums[t:2 * t], np.float64)
        fn, tn = sums[2 * t] - tp, sums[2 * t + 1] - fp
        if self.curve == "PR" and self.summation_method == "interpolation":
            return _interpolate_pr_auc(tp, fp, fn)
        recall = _div(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _div(fp, fp + tn), recall
        else:
            x, y = recall, _div(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return float(np.sum((x[:-1] - x[1:]) * heights))

    def get_config(self):
        return {"num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "name": self.name,
                "multi_label": False}


def _div(a, b):
    """Keras' divide_no_nan, elementwise."""
    b = np.asarray(b, np.float64)
    return np.divide(a, b, out=np.zeros_like(b), where=b != 0)


def _interpolate_pr_auc(tp, fp, fn) -> float:
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = _div(dtp, np.maximum(dp, 0))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = np.where(both, _div(p[:-1], np.maximum(p[1:], 0)), 1.0)
    increment = _div(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
    return float(np.sum(increment))


class FBetaScore(StatMetric):
    """F-beta from per-class counts (Keras 3 FBetaScore).

    ``threshold=None``: the largest output of each row is predicted positive (all outputs equal
    to the row's maximum and larger than 1e-9 in magnitude); else p > threshold. Per class:
    p = tp/(tp+fp+ε), r = tp/(tp+fn+ε), f = (1+β²)·p·r/(β²·p + r + ε), ε = 1e-7. ``average``:
    None (one value per class, an array), "micro" (counts summed over classes first), "macro"
    (mean over classes), "weighted" (weighted by each class's Σ w·y)."""
    direction = "up"   # keras.metrics.FBetaScore._direction

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score"):
        super().__init__(name)
        cls = type(self).__name__
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{cls}: average must be None, 'micro', 'macro' or 'weighted', "
                             f"got {average!r}")
        self.average = average
        self.beta = number(cls, "beta", beta, 0.0, low_open=True)
        self.threshold = None if threshold is None else number(
            cls, "threshold", threshold, 0.0, 1.0, low_open=True)

    def _size(self, width):
        return 4 * width    # tp, fp, fn, Σ w·y per class

    def add_sums(self, sums, outputs, targets, ws, n, wb):
        if n == 0:
            return
        p = self.probabilities(outputs)
        if self.threshold is None:
            pred = (p >= p.max(axis=1, keepdims=True)) & (np.abs(p) > 1e-9)
        else:
            pred = p > self.threshold
        pred, y = pred.astype(np.float64), targets.astype(np.float64)
        w = row_weights(wb, n)
        m = p.shape[1]
        sums[0:m] += (w * pred * y).sum(axis=0)
        sums[m:2 * m] += (w * pred * (1 - y)).sum(axis=0)
        sums[2 * m:3 * m] += (w * (1 - pred) * y).sum(axis=0)
        sums[3 * m:] += (w * y).sum(axis=0)

    def result(self, sums, weight):
        m = self.size // 4
        tp, fp, fn, support = (np.asarray(sums[k * m:(k + 1) * m], np.float64) for k in range(4))
        if self.average == "micro":
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        eps, b2 = 1e-7, self.beta ** 2
        precision, recall = tp / (tp + fp + eps), tp / (tp + fn + eps)
        f = (1 + b2) * precision * recall / (b2 * precision + recall + eps)
        if self.average == "weighted":
            return float(np.sum(f * support / (support.sum() + eps)))
        if self.average is not None:
            return float(np.mean(f))
        return f

    def get_config(self):
        return {"average": self.average, "beta": self.beta, "threshold": self.threshold,
                "name": self.name}


class F1Score(FBetaScore):
    """F1 (β = 1), Keras 3 F1Score; see :class:`FBetaScore`."""

    def __init__(self, average=None, threshold=None, name="f1_score"):
        super().__init__(average, 1.0, threshold, name)

    def get_config(self):
        return {"average": self.average, "threshold": self.threshold, "name": self.name}
