"""Checks and one-time conversion of ``sample_weight`` and ``class_weight`` for fit/evaluate.

Both become one per-row weight vector in the model dtype before any work starts (so bad input
leaves the model untouched), as Keras 3 turns ``class_weight`` into sample weights in its data
adapter (``class_weight_to_sample_weights``): the class of a row is its integer label, the argmax
of a one-hot/probability row, or the rounded 0/1 target of a single-output binary model; classes
missing from the dict weigh 1. The user's arrays and dict are only read.

Deliberate difference from Keras 3 (docs/model.md): Keras checks no weight value, so a negative
weight trains with that row's gradient flipped and a NaN/Inf weight makes the loss NaN/Inf;
here both are refused before any work with the argument, the value and its row index.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from nnfast import losses as _losses
from nnfast.engine.checks import as_array

_CLASSIFICATION = (_losses.SparseCategoricalCrossentropy, _losses.CategoricalCrossentropy,
                   _losses.BinaryCrossentropy)


def sample_weights(sample_weight, n: int, dtype, fn: str, what: str = "sample_weight"):
    """None, or ``sample_weight`` checked (shape (n,), finite, >= 0) and in ``dtype``.

    Returned without a copy when it already has the dtype and layout: callers never write to it.
    """
    if sample_weight is None:
        return None
    w = as_array(sample_weight, what, fn)
    if w.ndim != 1:
        raise ValueError(f"{fn}: {what} must be 1-D, one weight per sample (shape ({n},)), got "
                         f"shape {w.shape}")
    if len(w) != n:
        raise ValueError(f"{fn}: {what} has {len(w)} weights for {n} samples; expected shape "
                         f"({n},)")
    bad = ~np.isfinite(w)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{fn}: {what} must be finite, got {w[i].item()!r} at index {i}")
    neg = w < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise ValueError(f"{fn}: {what} must be non-negative, got {w[i].item()!r} at index {i}")
    with np.errstate(over="ignore"):   # reported just below
        out = np.require(w, dtype, ("C", "A"))   # aligned: as x (checks.as_features)
    if not np.isfinite(out).all():
        raise ValueError(f"{fn}: {what} has values too large for {np.dtype(dtype)}")
    return out


def class_sample_weights(class_weight, loss, y: np.ndarray, n_outputs: int, dtype, fn: str):
    """None, or the weight of each row's class from ``class_weight`` {class index: weight}.

    ``y`` holds the prepared targets (int64 labels, or float rows for the other losses)."""
    if class_weight is None:
        return None
    if not isinstance(class_weight, Mapping):
        raise TypeError(f"{fn}: class_weight must be a dict {{class_index: weight}}, got "
                        f"{type(class_weight).__name__}")
    if not isinstance(loss, _CLASSIFICATION):
        raise ValueError(f"{fn}: class_weight needs a classification loss "
                         f"({', '.join(c.name for c in _CLASSIFICATION)}); the model's loss is "
                         f"{loss.name or type(loss).__name__!r}; use sample_weight instead")
    binary = isinstance(loss, _losses.BinaryCrossentropy)
    if binary and n_outputs != 1:
        raise ValueError(f"{fn}: class_weight with binary_crossentropy needs a model with one "
                         f"output (labels 0/1), this one has {n_outputs}; use sample_weight")
    classes = 2 if binary else n_outputs
    table = np.ones(classes, np.float64)
    for key, value in class_weight.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, numbers.Integral):
            raise TypeError(f"{fn}: class_weight keys must be int class indices, got {key!r} "
                            f"({type(key).__name__})")
        if not 0 <= key < classes:
            raise ValueError(f"{fn}: class_weight has key {key}, but the classes of this model "
                             f"are 0 to {classes - 1} ({loss.name}, {n_outputs} output(s))")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{fn}: class_weight[{key}] must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{fn}: class_weight[{key}] must be finite and non-negative, got "
                             f"{value!r}")
        table[int(key)] = value
    if isinstance(loss, _losses.SparseCategoricalCrossentropy):
        labels = y
    elif binary:
        labels = np.round(y[:, 0]).astype(np.int64)   # Keras rounds soft 0/1 targets
    else:
        labels = np.argmax(y, axis=1)
    return table[labels].astype(dtype)


def combine(sw, cw):
    """The per-row weights of sample_weight × class_weight (None when neither is given)."""
    if sw is None or cw is None:
        return cw if sw is None else sw
    return sw * cw


def require_some_weight(w, fn: str, what: str) -> None:
    """A loss weighted by all-zero weights is 0 and trains nothing: refuse it."""
    if w is not None and not w.any():
        raise ValueError(f"{fn}: {what} are all zero; at least one sample needs a positive "
                         f"weight")
