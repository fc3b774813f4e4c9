"""The row-mean metrics with an allocation-free path: accuracy, mse, mae (and rmse, the root
of mse's weighted mean, Keras' RootMeanSquaredError).

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


def divide_no_nan(total: float, weight: float) -> float:
    """Keras' divide_no_nan: a metric over rows of total weight 0 reads 0."""
    return total / weight if weight else 0.0


class Metric:
    """Base of every metric. The engine calls ``bind`` once the output shape is known, then per
    batch ``add_sums(sums, ...)`` adds the metric's ``size`` sufficient statistics (a float64
    view) and, at the end, ``result(sums, weight)`` finishes them (weight: Σ_i w_i of the rows).
    Sums of shards add up, so distributed runs reduce them before finishing."""

    size = 1
    spec = None        # the compile() string this metric was made from, if any

    @property
    def direction(self) -> str:
        """"up" when larger is better, "down" when smaller is (Keras 3's ``Metric._direction``:
        the accuracies "up"; mse and mae wrap a loss, "down"). Subclasses set it as a class
        attribute; callbacks with ``mode="auto"`` read it (nnfast/callbacks/_monitor.py)."""
        return self.__dict__.get("_direction") or ("up" if self.kind == "accuracy" else "down")

    @direction.setter
    def direction(self, value: str) -> None:
        if value not in ("up", "down"):
            raise ValueError(f"Metric {self.name!r}: direction must be 'up' or 'down', got "
                             f"{value!r}")
        self._direction = value

    def __init__(self, name: str, kind: str):
        self.name, self.kind = name, kind
        self.loss = None
        self.fused_head = None   # "softmax"/"sigmoid" when outputs are logits
        self._avg = None         # (M,) of 1/M: row means as one matrix-vector product

    def bind(self, loss, out_shape: tuple, fused_head: str | None) -> None:
        self.loss, self.fused_head = loss, fused_head
        self.out_width = out_shape[0]

    def check_loss(self, loss) -> None:
        """Raise ValueError at compile when ``loss``'s targets do not suit this metric."""
        if self.kind != "accuracy" and loss.integer_targets:
            raise ValueError(
                f"compile: metric {self.name!r} compares outputs with targets of the same "
                f"shape, but loss {loss.name!r} takes integer class labels; use "
                f"'accuracy', or 'categorical_crossentropy' with one-hot targets")

    def add_sums(self, sums, outputs, targets, ws, n: int, wb) -> None:
        """sums[0] += Σ_i w_i·m_i (w = 1 without weights)."""
        sums[0] += (self(outputs, targets, ws, n) * n if wb is None
                    else self.weighted_sum(outputs, targets, ws, n, wb))

    def result(self, sums, weight: float) -> float:
        mean = divide_no_nan(float(sums[0]), weight)
        return float(np.sqrt(mean)) if self.kind == "rmse" else mean

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
        if self.kind in ("mse", "rmse"):
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

