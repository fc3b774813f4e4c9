"""Metrics reported by fit/evaluate: accuracy, mse, mae.

A metric returns its mean over one batch from the model outputs (logits at a fused head) and
the prepared targets, writing any intermediate into workspace scratch rows so the training step
stays allocation-free. "accuracy" picks its meaning from the loss and output width, as Keras does:
class labels (argmax) for sparse/categorical targets and for several outputs, thresholded
predictions (0.5 on probabilities, 0 on logits) for binary cross-entropy and single outputs.

With sample weights, ``weighted_sum`` gives Σ_i w_i·m_i over a batch, m_i the metric of row i
(accuracy: the fraction of row i's outputs that are right; mse/mae: the mean over its outputs);
the caller divides by Σ_i w_i over all batches, as Keras' weighted metrics do.
"""
from __future__ import annotations

import numpy as np

from nnfast import ops

_CANONICAL = {"accuracy": "accuracy", "acc": "accuracy", "mse": "mse",
              "mean_squared_error": "mse", "mae": "mae", "mean_absolute_error": "mae"}


class Metric:
    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind
        self.loss = None
        self.fused_head = None   # "softmax"/"sigmoid" when outputs are logits
        self._avg = None         # (M,) of 1/M: row means as one matrix-vector product

    def bind(self, loss, out_shape: tuple, fused_head: str | None) -> None:
        self.loss, self.fused_head = loss, fused_head
        self.out_width = out_shape[0]

    def __call__(self, outputs, targets, ws, n: int) -> float:
        if self.kind == "accuracy":
            return self._accuracy(outputs, targets, ws, n)
        diff = self._errors(outputs, targets, ws, n)   # on probabilities, not logits
        return float(diff.mean()) if diff.size else 0.0

    def weighted_sum(self, outputs, targets, ws, n: int, weights) -> float:
        """Σ_i weights_i·m_i over the n rows of a batch."""
        if n == 0:
            return 0.0
        return float(np.dot(weights, self._per_row(outputs, targets, ws, n)))

    def _per_row(self, outputs, targets, ws, n):
        """The metric of each row, (n,) in the model dtype, in workspace rows. Only copies and
        dot products: NumPy's reductions (mean, sum) and casting ufuncs allocate per call."""
        row = ws.rows("metric_row", n)
        if self.kind != "accuracy":
            return self._row_means(self._errors(outputs, targets, ws, n), row)
        if self.loss.integer_targets:
            labels = targets
        elif self.loss.head == "sigmoid" or self.out_width == 1:
            hits = ws.rows("metric_hits", n, outputs.shape[1:])
            np.copyto(hits, self._binary_hits(outputs, targets, ws, n))
            return self._row_means(hits, row)
        else:
            labels = ops.argmax_rows(targets, out=ws.rows("metric_lab", n, (), np.int64))
        pred = ops.argmax_rows(outputs, out=ws.rows("metric_pred", n, (), np.int64))
        same = np.equal(pred, labels, out=ws.rows("metric_eq", n, (), np.bool_))
        np.copyto(row, same)
        return row

    def _row_means(self, values, row):
        if self._avg is None or self._avg.shape != values.shape[1:] \
                or self._avg.dtype != values.dtype:
            self._avg = np.full(values.shape[1:], 1.0 / values.shape[1], values.dtype)
        return np.dot(values, self._avg, out=row)

    def _errors(self, outputs, targets, ws, n):
        """Squared or absolute errors (n, M) on probabilities."""
        if self.fused_head is not None:
            outputs = ops.activation_forward(outputs, self.fused_head,
                                             out=ws.rows("metric_p", n, outputs.shape[1:]))
        diff = ws.rows("metric_f", n, outputs.shape[1:])
        np.subtract(outputs, targets, out=diff)
        if self.kind == "mse":
            return np.multiply(diff, diff, out=diff)
        return np.abs(diff, out=diff)

    def _binary_hits(self, outputs, targets, ws, n):
        """(n, M) bools: thresholded prediction equals thresholded target."""
        threshold = 0.0 if self.fused_head == "sigmoid" else 0.5
        pred = ws.rows("metric_b1", n, outputs.shape[1:], np.bool_)
        true = ws.rows("metric_b2", n, outputs.shape[1:], np.bool_)
        np.greater(outputs, threshold, out=pred)
        np.greater(targets, 0.5, out=true)
        return np.equal(pred, true, out=pred)

    def _accuracy(self, outputs, targets, ws, n):
        if n == 0:
            return 0.0
        if self.loss.integer_targets:
            return ops.accuracy(outputs, targets)
        if self.loss.head == "sigmoid" or self.out_width == 1:
            hits = self._binary_hits(outputs, targets, ws, n)
            return float(np.count_nonzero(hits)) / hits.size
        labels = ops.argmax_rows(targets, out=ws.rows("metric_lab", n, (), np.int64))
        return ops.accuracy(outputs, labels)


def get(spec) -> Metric:
    if isinstance(spec, str) and spec.lower() in _CANONICAL:
        return Metric(spec, _CANONICAL[spec.lower()])
    raise ValueError(f"unknown metric {spec!r}; valid metrics: {', '.join(_CANONICAL)}")


__all__ = ["Metric", "get"]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
