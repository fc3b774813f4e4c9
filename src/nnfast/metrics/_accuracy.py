"""Keras 3 accuracy metrics: BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy. Each is a row value m_i averaged with
the sample weights (Σ w·m / Σ w), on probabilities when the head is fused into the loss."""
from __future__ import annotations

import numpy as np

from nnfast.metrics._stat import RowMean, integer, number


class BinaryAccuracy(RowMean):
    """m_i = mean over row i's outputs of [y == (p > threshold)] (Keras: targets compared as
    numbers, so soft targets never match)."""
    direction = "up"   # keras.metrics.BinaryAccuracy._direction

    def __init__(self, name="binary_accuracy", threshold=0.5):
        super().__init__(name)
        self.threshold = number("BinaryAccuracy", "threshold", threshold)

    def rows(self, probs, targets):
        hits = targets == (probs > self.threshold)
        return hits.mean(axis=1)

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


class CategoricalAccuracy(RowMean):
    """m_i = [argmax y_i == argmax p_i] (first index on ties, as NumPy and torch)."""
    direction = "up"   # keras.metrics.CategoricalAccuracy._direction

    def __init__(self, name="categorical_accuracy"):
        super().__init__(name)

    def rows(self, probs, targets):
        return targets.argmax(axis=1) == probs.argmax(axis=1)


class SparseCategoricalAccuracy(RowMean):
    """m_i = [label_i == argmax p_i]; integer class labels."""
    direction = "up"   # keras.metrics.SparseCategoricalAccuracy._direction

    targets = "labels"

    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(name)

    def rows(self, probs, targets):
        return targets == probs.argmax(axis=1)


class TopKCategoricalAccuracy(RowMean):
    """m_i = 1 when the true class is among the k highest outputs of row i. Ties as Keras
    (``ops.in_top_k``): the true class counts when its output is >= the k-th largest, i.e.
    fewer than k outputs are strictly greater. k >= the number of classes: always 1 (Keras'
    torch backend raises there, TensorFlow gives 1)."""
    direction = "up"   # keras.metrics.TopKCategoricalAccuracy._direction

    def __init__(self, k=5, name="top_k_categorical_accuracy"):
        super().__init__(name)
        self.k = integer(type(self).__name__, "k", k, 1)

    def _labels(self, targets):
        return targets.argmax(axis=1)

    def rows(self, probs, targets):
        labels = np.asarray(self._labels(targets), np.int64)
        true = np.take_along_axis(probs, labels[:, None], axis=1)
        return np.count_nonzero(probs > true, axis=1) < self.k

    def get_config(self):
        return {"name": self.name, "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """:class:`TopKCategoricalAccuracy` with integer class labels."""

    targets = "labels"

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy"):
        super().__init__(k, name)

    def _labels(self, targets):
        return targets
