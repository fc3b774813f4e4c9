"""Shared base of the Keras 3 metric classes: argument checks, probabilities from a fused head,
target-kind checks at compile, and the per-row weighted mean the accuracies use."""
from __future__ import annotations

import math

import numpy as np

from nnfast import ops
from nnfast.metrics._basic import Metric, divide_no_nan


def number(cls: str, name: str, value, low=-math.inf, high=math.inf, low_open=False,
           high_open=False, types=(int, float, np.integer, np.floating)) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, types) and math.isfinite(value)
          and (value > low if low_open else value >= low)
          and (value < high if high_open else value <= high))
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{cls}: {name} must be a number in {lo}{low:g}, {high:g}{hi}, got "
                         f"{value!r}")
    return float(value)


def integer(cls: str, name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{cls}: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


class StatMetric(Metric):
    """A Keras 3 metric class. ``targets``: "dense" (targets of the outputs' shape: binary,
    multi-label or one-hot) or "labels" (integer class labels, the sparse losses)."""

    targets = "dense"

    def __init__(self, name: str):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, got "
                             f"{name!r}")
        super().__init__(name, type(self).__name__)

    def bind(self, loss, out_shape, fused_head):
        super().bind(loss, out_shape, fused_head)
        self.size = self._size(out_shape[0])

    def _size(self, width: int) -> int:
        return 1

    def check_loss(self, loss) -> None:
        if (self.targets == "labels") != bool(loss.integer_targets):
            want = ("integer class labels (loss 'sparse_categorical_crossentropy')"
                    if self.targets == "labels" else
                    "targets of the outputs' shape (a loss other than "
                    "'sparse_categorical_crossentropy')")
            given = ("integer class labels" if loss.integer_targets
                     else "targets of the outputs' shape")
            raise ValueError(f"compile: metric {self.name!r} ({type(self).__name__}) needs "
                             f"{want}, but loss {loss.name!r} takes {given}")

    def probabilities(self, outputs):
        """The outputs Keras' metrics see: probabilities when the head is fused into the loss."""
        if self.fused_head is None:
            return outputs
        return ops.activation_forward(outputs, self.fused_head)

    def get_config(self) -> dict:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class RowMean(StatMetric):
    """Σ_i w_i·m_i / Σ_i w_i over a per-row value m_i (Keras' MeanMetricWrapper)."""

    def rows(self, probs, targets):
        raise NotImplementedError

    def add_sums(self, sums, outputs, targets, ws, n, wb):
        if n == 0:
            return
        m = self.rows(self.probabilities(outputs), targets).astype(np.float64, copy=False)
        sums[0] += float(m.sum()) if wb is None else float(np.dot(wb, m))

    def result(self, sums, weight):
        return divide_no_nan(float(sums[0]), weight)


def row_weights(wb, n: int) -> np.ndarray:
    """(n, 1) float64 weights to broadcast over a row's outputs (ones without weights)."""
    return np.ones((n, 1)) if wb is None else np.asarray(wb, np.float64).reshape(n, 1)
