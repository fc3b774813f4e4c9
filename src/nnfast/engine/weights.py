"""The parameter arrays of a model's layers, and the checks on arrays given to set_weights."""
from __future__ import annotations

import numpy as np


def layer_params(layer) -> list:
    """The layer's weight arrays as get_weights lists them: views into the flat parameter buffer
    ([W] or [W, b]; [] without any), then into the state buffer (BatchNormalization's moving
    statistics): Layer.weight_arrays."""
    return layer.weight_arrays()


def checked_weights(weights, targets: list) -> list:
    """``weights`` as arrays matching ``targets`` one for one (shape, numeric, finite), checked
    whole before anything is copied. Raises ValueError naming the array."""
    weights = list(weights)
    if len(weights) != len(targets):
        raise ValueError(f"set_weights: expected {len(targets)} arrays, got {len(weights)}")
    arrays = []
    for i, (w, t) in enumerate(zip(weights, targets)):
        w = np.asarray(w)
        if w.shape != t.shape or w.dtype.kind not in "biuf":
            raise ValueError(f"set_weights: array {i} must be numeric with shape {t.shape}, "
                             f"got {w.dtype} {w.shape}")
        if not np.isfinite(w).all():
            raise ValueError(f"set_weights: array {i} contains NaN or Inf")
        arrays.append(w)
    return arrays
