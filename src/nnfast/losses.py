"""Losses: names → fused :mod:`nnfast.ops` calls returning (loss, gradient), plus target checks.

The cross-entropies take *logits*. When the model's last layer ends in the matching activation
(softmax for the categorical losses, sigmoid for binary cross-entropy) the model feeds the
pre-activation to the loss and skips that activation in the backward pass: the fused gradient is
already with respect to the logits, and the loss stays finite for any logit. With another last
activation the outputs themselves are taken as logits.

>>> from nnfast import losses
>>> losses.get("sparse_categorical_crossentropy").head
'softmax'
"""
from __future__ import annotations

import numpy as np

from nnfast import ops


def _finite(y: np.ndarray, where: str) -> None:
    if not np.isfinite(y).all():
        raise ValueError(f"{where} contains NaN or Inf")


class Loss:
    """Base class. ``head`` is the last-layer activation folded into this loss, if any."""

    name = ""
    head: str | None = None
    integer_targets = False

    def prepare_targets(self, y: np.ndarray, out_shape: tuple, dtype, where: str) -> np.ndarray:
        """Validate targets against the model output shape and convert them once."""
        y = self._as_2d(y, out_shape, where)
        y = np.ascontiguousarray(y, dtype=dtype)
        _finite(y, where)
        return y

    def _as_2d(self, y, out_shape, where):
        m = out_shape[0]
        if y.ndim == 1 and m == 1:
            y = y.reshape(-1, 1)
        if y.shape[1:] != tuple(out_shape):
            raise ValueError(f"{where} has shape {y.shape}; the {self.name} loss needs targets "
                             f"of shape (n, {m}) to match the model output")
        return y

    def __call__(self, outputs, targets, grad=None, reduction="mean", sample_weight=None):
        """(loss, d loss/d outputs) in one fused op. With row weights w (sample_weight, (N,))
        "mean" gives Σ_i w_i·l_i / N, Keras' "sum_over_batch_size" (N, not Σ w, divides),
        and "sum" gives Σ_i w_i·l_i."""
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    def __repr__(self):
        return f"{type(self).__name__}({self.get_config()})"


class SparseCategoricalCrossentropy(Loss):
    """Integer class labels (n,) in [0, C) against C logits per row."""

    name = "sparse_categorical_crossentropy"
    head = "softmax"
    integer_targets = True

    def prepare_targets(self, y, out_shape, dtype, where):
        c = out_shape[0]
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"{where} has shape {y.shape}; {self.name} needs integer class "
                             f"labels of shape (n,)")
        if y.dtype.kind == "f":
            _finite(y, where)
            if y.size and not (np.floor(y) == y).all():
                raise ValueError(f"{where}: {self.name} needs integer class labels, got "
                                 f"non-integer floats")
        elif y.dtype.kind not in "iub":
            raise TypeError(f"{where} must hold integer class labels, got dtype {y.dtype}")
        if y.size:
            lo, hi = y.min(), y.max()
            if lo < 0 or hi >= c:
                raise ValueError(f"{where}: labels must lie in [0, {c}) for a model with {c} "
                                 f"outputs, got values from {lo} to {hi}")
        return np.ascontiguousarray(y, dtype=np.int64)

    def __call__(self, outputs, targets, grad=None, reduction="mean", sample_weight=None):
        return ops.softmax_cross_entropy(outputs, targets, sample_weight=sample_weight,
                                         reduction=reduction, grad=grad)


class CategoricalCrossentropy(Loss):
    """Probability (e.g. one-hot) targets (n, C) against C logits per row."""

    name = "categorical_crossentropy"
    head = "softmax"

    def __init__(self, label_smoothing: float = 0.0):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"{self.name}: label_smoothing must be in [0, 1), "
                             f"got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, out_shape, dtype, where):
        y = super().prepare_targets(y, out_shape, dtype, where)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{where}: {self.name} targets must be probabilities in [0, 1] "
                             f"(one-hot rows); for integer labels use "
                             f"'sparse_categorical_crossentropy'")
        return y

    def __call__(self, outputs, targets, grad=None, reduction="mean", sample_weight=None):
        return ops.softmax_cross_entropy(outputs, targets, sample_weight=sample_weight,
                                         label_smoothing=self.label_smoothing,
                                         reduction=reduction, grad=grad)

    def get_config(self):
        return {"label_smoothing": self.label_smoothing}


class BinaryCrossentropy(Loss):
    """Targets in [0, 1] of shape (n, M) (or (n,) for one output) against M logits per row."""

    name = "binary_crossentropy"
    head = "sigmoid"

    def prepare_targets(self, y, out_shape, dtype, where):
        y = super().prepare_targets(y, out_shape, dtype, where)
        if y.size and (y.min() < 0 or y.max() > 1):
            raise ValueError(f"{where}: {self.name} targets must lie in [0, 1], got values from "
                             f"{y.min()} to {y.max()}")
        return y

    def __call__(self, outputs, targets, grad=None, reduction="mean", sample_weight=None):
        return ops.binary_cross_entropy(outputs, targets, sample_weight=sample_weight,
                                        reduction=reduction, grad=grad)


class MeanSquaredError(Loss):
    name = "mse"

    def __call__(self, outputs, targets, grad=None, reduction="mean", sample_weight=None):
        return ops.mse(outputs, targets, sample_weight=sample_weight,
                       reduction=reduction, grad=grad)


class Huber(Loss):
    name = "huber"

    def __init__(self, delta: float = 1.0):
        if not delta > 0:
            raise ValueError(f"huber: delta must be > 0, got {delta!r}")
        self.delta = float(delta)

    def __call__(self, outputs, targets, grad=None, reduction="mean", sample_weight=None):
        return ops.huber(outputs, targets, delta=self.delta, sample_weight=sample_weight,
                         reduction=reduction, grad=grad)

    def get_config(self):
        return {"delta": self.delta}


LOSSES = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mse": MeanSquaredError,
    "huber": Huber,
}
_ALIASES = {"mean_squared_error": "mse"}
_BY_CLASS = {cls.__name__: cls for cls in LOSSES.values()}


def get(spec) -> Loss:
    """A loss from its name or an instance (returned as is)."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        key = _ALIASES.get(spec.lower(), spec.lower())
        if key in LOSSES:
            return LOSSES[key]()
    raise ValueError(f"unknown loss {spec!r}; valid losses: {', '.join(LOSSES)}")


def from_config(class_name: str, config: dict) -> Loss:
    cls = _BY_CLASS.get(class_name)
    if cls is None:
        raise ValueError(f"unknown loss class {class_name!r}; valid: {', '.join(_BY_CLASS)}")
    return cls(**config)


__all__ = ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
           "BinaryCrossentropy", "MeanSquaredError", "Huber", "get", "from_config"]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
