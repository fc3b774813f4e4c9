"""Metrics reported by fit / evaluate, with Keras 3 names and semantics.

``compile(metrics=[...])`` takes strings or metric objects (Keras-style classes with their
constructor arguments). Strings, as Keras' ``compile`` (class names and their snake_case forms;
the log key is the string itself, as Keras' ``compile_utils.get_metric`` sets it; an object's
key is its ``name``):

==============================================================  ===============================
string                                                          metric
==============================================================  ===============================
"accuracy", "acc"                                               accuracy from the loss: labels,
                                                                one-hot argmax or 0.5 threshold
"mse", "mean_squared_error", "mae", "mean_absolute_error"       row means of squared/absolute
                                                                errors (key: the string)
"root_mean_squared_error", "RootMeanSquaredError"               RootMeanSquaredError
"binary_accuracy", "BinaryAccuracy"                             BinaryAccuracy (threshold 0.5)
"categorical_accuracy", "CategoricalAccuracy"                   CategoricalAccuracy
"sparse_categorical_accuracy", ...                              SparseCategoricalAccuracy
"top_k_categorical_accuracy", "TopKCategoricalAccuracy"         TopKCategoricalAccuracy (k=5)
"sparse_top_k_categorical_accuracy", ...                        SparseTopKCategoricalAccuracy
"precision", "Precision", "recall", "Recall"                    Precision / Recall (0.5)
"auc", "AUC"                                                    AUC (ROC, 200 thresholds)
"f1_score", "F1Score", "f_beta_score", "FBetaScore"             F1Score / FBetaScore
"r2_score", "R2Score"                                           R2Score
==============================================================  ===============================

Keras accepts no "rmse" alias, and neither does nnfast. As in Keras, ``F1Score()`` averages
nothing by default: its value is an array, one per class (so are ``R2Score(
class_aggregation=None)``'s).

How they are computed: each metric adds ``size`` sufficient statistics per batch (weighted
sums, or weighted confusion counts for Precision, Recall, AUC, F1), summed over the batches
(and over the ranks by the distributed Allreduce) and finished once (``result``). So a value
over an epoch is the value over all its rows, as Keras' stateful metrics give, not a mean of
batch values. With sample weights each row's weight applies to all its outputs.

>>> from nnfast import metrics
>>> metrics.get("AUC").name, metrics.get(metrics.Precision(thresholds=0.3)).name
('AUC', 'precision')
"""
from __future__ import annotations

from nnfast.metrics._accuracy import (
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from nnfast.metrics._basic import _CANONICAL, Metric
from nnfast.metrics._confusion import AUC, F1Score, FBetaScore, Precision, Recall
from nnfast.metrics._regression import R2Score, RootMeanSquaredError

__all__ = ["AUC", "BinaryAccuracy", "CategoricalAccuracy", "F1Score", "FBetaScore", "Metric",
           "Precision", "R2Score", "Recall", "RootMeanSquaredError",
           "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
           "TopKCategoricalAccuracy", "get", "serialize", "deserialize"]

CLASSES = {cls.__name__: cls for cls in (
    AUC, BinaryAccuracy, CategoricalAccuracy, F1Score, FBetaScore, Precision, R2Score, Recall,
    RootMeanSquaredError, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy)}
_SNAKE = {"auc": AUC, "binary_accuracy": BinaryAccuracy,
          "categorical_accuracy": CategoricalAccuracy, "f1_score": F1Score,
          "f_beta_score": FBetaScore, "precision": Precision, "r2_score": R2Score,
          "recall": Recall, "root_mean_squared_error": RootMeanSquaredError,
          "sparse_categorical_accuracy": SparseCategoricalAccuracy,
          "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
          "top_k_categorical_accuracy": TopKCategoricalAccuracy}
_STRINGS = {**CLASSES, **_SNAKE}


def get(spec) -> Metric:
    """A metric from a compile() string, a metric object (returned as is) or a
    :func:`serialize` dict. Raises ValueError naming the unknown string."""
    if isinstance(spec, Metric):
        return spec
    if isinstance(spec, dict):
        return deserialize(spec)
    if isinstance(spec, str):
        if spec.lower() in _CANONICAL:
            return Metric(spec, _CANONICAL[spec.lower()])
        if spec in _STRINGS:
            metric = _STRINGS[spec]()
            metric.spec = metric.name = spec   # Keras' compile names a metric by its string
            return metric
    valid = ", ".join(list(_CANONICAL) + list(_SNAKE))
    raise ValueError(f"unknown metric {spec!r}; valid metrics: {valid} (or their Keras class "
                     "names, or an instance from nnfast.metrics)")


def serialize(metric: Metric):
    """What a model file keeps: the compile() string, or {"class": name, "config": {...}}."""
    if type(metric) is Metric:
        return metric.name
    if metric.spec is not None:
        return metric.spec
    return {"class": type(metric).__name__, "config": metric.get_config()}


def deserialize(spec: dict) -> Metric:
    """A metric from :func:`serialize`'s dict: only the classes of this module, by name."""
    if set(spec) != {"class", "config"} or not isinstance(spec["config"], dict):
        raise ValueError(f"a metric must be given as {{'class': name, 'config': {{...}}}}, got "
                         f"{spec!r}")
    cls = CLASSES.get(spec["class"])
    if cls is None:
        raise ValueError(f"unknown metric class {spec['class']!r}; valid: {', '.join(CLASSES)}")
    try:
        return cls.from_config(dict(spec["config"]))
    except TypeError as exc:
        raise ValueError(f"invalid {spec['class']} config {spec['config']!r} ({exc})") from None


def total_size(metrics) -> int:
    """How many sums the metrics keep (the length of the flat sums array)."""
    return sum(m.size for m in metrics)


def results(metrics, sums, weight: float) -> dict:
    """{name: value} from the flat sums (each metric's ``size`` entries in order) and Σ w."""
    logs, offset = {}, 0
    for m in metrics:
        logs[m.name] = m.result(sums[offset:offset + m.size], weight)
        offset += m.size
    return logs


def __dir__():  # tab completion shows the public names only
    return list(__all__)
