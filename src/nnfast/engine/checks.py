"""Checks and one-time conversion of user arrays at the fit/evaluate/predict boundary.

Everything here runs before any work starts, so bad input leaves the model untouched."""
from __future__ import annotations

import numbers

import numpy as np


def as_array(a, what: str, fn: str) -> np.ndarray:
    """``a`` as an ndarray of a numeric dtype (bool/int/uint/float), without copying."""
    if isinstance(a, np.ndarray):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{fn}: {what} must be a numeric array, could not convert "
                            f"{type(a).__name__}: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{fn}: {what} must hold numbers (bool, int or float), got dtype "
                        f"{arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{fn}: {what} must be an array of samples, got a scalar")
    return arr


def as_features(x, dtype, fn: str, what: str = "x") -> np.ndarray:
    """Validated C-contiguous features in the model dtype: non-empty, at least 2-D, finite."""
    arr = as_array(x, what, fn)
    if arr.ndim < 2:
        raise ValueError(f"{fn}: {what} must be at least 2-D (n_samples, n_features), got shape "
                         f"{arr.shape}; use x.reshape(-1, 1) for a single feature")
    if arr.shape[0] == 0:
        raise ValueError(f"{fn}: {what} is empty (0 samples); nothing to do")
    if any(d == 0 for d in arr.shape[1:]):
        raise ValueError(f"{fn}: {what} has no features (shape {arr.shape})")
    with np.errstate(over="ignore", invalid="ignore"):   # overflow is reported just below
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(out).all():
        hint = ""
        if arr.dtype.kind == "f" and np.isfinite(arr).all():
            hint = f" after conversion to {np.dtype(dtype)} (values too large)"
        raise ValueError(f"{fn}: {what} contains NaN or Inf{hint}")
    return out


def check_feature_shape(x: np.ndarray, expected: tuple | None, fn: str, what: str = "x") -> None:
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"{fn}: {what} has {x.shape[1:]} features per sample, the model expects "
                         f"{tuple(expected)}")


def check_lengths(x: np.ndarray, y: np.ndarray, fn: str, xs: str = "x", ys: str = "y") -> None:
    if len(x) != len(y):
        raise ValueError(f"{fn}: {xs} and {ys} have different lengths ({len(x)} and {len(y)} "
                         f"samples)")


def positive_int(value, name: str, fn: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def seed_value(seed, fn: str) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{fn}: seed must be None or an integer >= 0, got {seed!r}")
    return int(seed)
