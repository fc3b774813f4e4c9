"""Metrics reported by fit/evaluate: accuracy, mse, mae.

A metric returns its mean over one batch from the model outputs (logits at a fused head) and
the prepared targets, writing any intermediate into workspace scratch rows so the training step
stays allocation-free. "accuracy" picks its meaning from the loss and output width, as Keras does:
class labels (argmax) for sparse/categorical targets and for several outputs, thresholded
predictions (0.5 on probabilities, 0 on logits) for binary cross-entropy and single outputs.
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

    def bind(self, loss, out_shape: tuple, fused_head: str | None) -> None:
        self.loss, self.fused_head = loss, fused_head
        self.out_width = out_shape[0]

    def __call__(self, outputs, targets, ws, n: int) -> float:
        if self.kind == "accuracy":
            return self._accuracy(outputs, targets, ws, n)
        if self.fused_head is not None:   # these metrics need probabilities, not logits
            outputs = ops.activation_forward(outputs, self.fused_head,
                                             out=ws.rows("metric_p", n, outputs.shape[1:]))
        diff = ws.rows("metric_f", n, outputs.shape[1:])
        np.subtract(outputs, targets, out=diff)
        if self.kind == "mse":
            np.multiply(diff, diff, out=diff)
        else:
            np.abs(diff, out=diff)
        return float(diff.mean()) if diff.size else 0.0

    def _accuracy(self, outputs, targets, ws, n):
        if n == 0:
            return 0.0
        if self.loss.integer_targets:
            return ops.accuracy(outputs, targets)
        if self.loss.head == "sigmoid" or self.out_width == 1:
            threshold = 0.0 if self.fused_head == "sigmoid" else 0.5
            pred = ws.rows("metric_b1", n, outputs.shape[1:], np.bool_)
            true = ws.rows("metric_b2", n, outputs.shape[1:], np.bool_)
            np.greater(outputs, threshold, out=pred)
            np.greater(targets, 0.5, out=true)
            np.equal(pred, true, out=pred)
            return float(np.count_nonzero(pred)) / pred.size
        labels = ops.argmax_rows(targets, out=ws.rows("metric_lab", n, (), np.int64))
        return ops.accuracy(outputs, labels)


def get(spec) -> Metric:
    if isinstance(spec, str) and spec.lower() in _CANONICAL:
        return Metric(spec, _CANONICAL[spec.lower()])
    raise ValueError(f"unknown metric {spec!r}; valid metrics: {', '.join(_CANONICAL)}")
