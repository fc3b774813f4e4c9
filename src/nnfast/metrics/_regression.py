"""Keras 3 regression metrics: RootMeanSquaredError and R2Score."""
from __future__ import annotations

import numpy as np

from nnfast import _warn
from nnfast.metrics._basic import Metric
from nnfast.metrics._stat import StatMetric, integer, row_weights


class RootMeanSquaredError(Metric):
    """√(Σ_i w_i·mean_j (p_ij - y_ij)² / Σ_i w_i): the root of the weighted mse (Keras 3
    RootMeanSquaredError; compile name "root_mean_squared_error")."""
    direction = "down"   # keras.metrics.RootMeanSquaredError._direction

    def __init__(self, name="root_mean_squared_error"):
        if not isinstance(name, str) or not name:
            raise ValueError(f"RootMeanSquaredError: name must be a non-empty string, got "
                             f"{name!r}")
        super().__init__(name, "rmse")

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class R2Score(StatMetric):
    """Coefficient of determination per output, then aggregated (Keras 3 R2Score).

    Per output j, with weights w: ȳ = Σ w·y / Σ w, total = Σ w·y² - Σ w·y·ȳ, residual =
    Σ w·(y - p)²; r2_j = 1 - residual/total (±inf read as 0, as Keras; 0/0 is NaN).
    ``class_aggregation``: "uniform_average" (mean), "variance_weighted_average" (weighted by
    total) or None (the array). ``num_regressors`` > 0: adjusted R², 1 - (1 - r2)(n - 1)/(n - p
    - 1), n the number of target entries seen (with Keras' warnings when p >= n - 1)."""
    direction = "up"   # keras.metrics.R2Score._direction

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score"):
        super().__init__(name)
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError(f"R2Score: class_aggregation must be None, 'uniform_average' or "
                             f"'variance_weighted_average', got {class_aggregation!r}")
        self.class_aggregation = class_aggregation
        self.num_regressors = integer("R2Score", "num_regressors", num_regressors, 0)

    def _size(self, width):
        return 4 * width + 1     # Σ w·y, Σ w·y², Σ w·(y-p)², Σ w per output; entries seen

    def add_sums(self, sums, outputs, targets, ws, n, wb):
        if n == 0:
            return
        p, y = self.probabilities(outputs).astype(np.float64), targets.astype(np.float64)
        w = np.broadcast_to(row_weights(wb, n), y.shape)
        m = y.shape[1]
        sums[0:m] += (w * y).sum(axis=0)
        sums[m:2 * m] += (w * y * y).sum(axis=0)
        sums[2 * m:3 * m] += (w * (y - p) ** 2).sum(axis=0)
        sums[3 * m:4 * m] += w.sum(axis=0)
        sums[4 * m] += y.size

    def result(self, sums, weight):
        m = (self.size - 1) // 4
        s, sq, res, count = (np.asarray(sums[k * m:(k + 1) * m], np.float64) for k in range(4))
        with np.errstate(divide="ignore", invalid="ignore"):
            total = sq - s * (s / count)
            raw = 1 - res / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            r2 = float(np.mean(raw))
        elif self.class_aggregation == "variance_weighted_average":
            r2 = float(np.sum(total * raw) / np.sum(total))
        else:
            return raw
        n, k = float(sums[4 * m]), self.num_regressors
        if k:
            if k > n - 1:
                _warn.warn("More independent predictors than datapoints in adjusted R2 "
                           "score. Falling back to standard R2 score.")
            elif k == n - 1:
                _warn.warn("Division by zero in Adjusted R2 score. Falling back to standard "
                           "R2 score.")
            else:
                r2 = 1 - (1 - r2) * (n - 1) / (n - k - 1)
        return r2

    def get_config(self):
        return {"class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors, "name": self.name}
