"""Checks and one-time conversion of user arrays at the fit/evaluate/predict boundary.

Everything here runs before any work starts, so bad input leaves the model untouched."""
from __future__ import annotations

import math
import numbers

import numpy as np

from nnfast import backends


def as_array(a, what: str, fn: str) -> np.ndarray:
    """``a`` as an ndarray of a numeric dtype (bool/int/uint/float), without copying: whatever
    ``np.asarray`` accepts (nested lists, buffers such as ``memoryview``, ``__array__``
    objects). A subclass is viewed as a plain ndarray, as scikit-learn's check_array does
    (np.asarray): ``np.matrix`` rows stay 2-D through indexing and reductions."""
    if type(a) is np.ndarray:
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


def one_d_hint(n: int, expected: tuple | None) -> str:
    """What to do with a 1-D x of length ``n``. scikit-learn's rule (check_array) names both
    reshapes because it cannot tell a single feature from a single sample; a model that knows
    its input shape can say which one."""
    if expected is None:
        return ("use x.reshape(-1, 1) if it holds a single feature or x.reshape(1, -1) if it "
                "holds a single sample")
    expected = tuple(expected)
    if expected == (1,):
        return "the model takes 1 feature per sample: use x.reshape(-1, 1)"
    if math.prod(expected) == n:
        shape = ", ".join(map(str, expected))
        return f"for one sample of shape {expected} use x.reshape(1, {shape})"
    return (f"the model takes samples of shape {expected}: pass an array of shape "
            f"(n_samples, {', '.join(map(str, expected))})")


def all_finite(a: np.ndarray) -> bool:
    """Whether every element of the float array ``a`` (C-contiguous, as_features' output) is
    finite: the active backend's check, at any size. The compiled one reads a in place in C
    (csrc/nn/finite.c, ~0.1 us for 784 float32 values, ~5 us for 256 x 784); the reference
    one sums a large a first instead of building a boolean array (backends/_ref_checks.py)."""
    return backends._state["module"].all_finite(a)


def as_features(x, dtype, fn: str, what: str = "x", expected: tuple | None = None) -> np.ndarray:
    """Validated C-contiguous, aligned features in the model dtype: non-empty, at least 2-D,
    finite (a copy only when x is not all that already).
    ``expected`` (the model's per-sample input shape, when known) makes the 1-D hint exact."""
    arr = as_array(x, what, fn)
    if arr.ndim < 2:
        raise ValueError(f"{fn}: {what} must be at least 2-D (n_samples, ...), got shape "
                         f"{arr.shape}; {one_d_hint(arr.size, expected)}")
    if arr.shape[0] == 0:
        raise ValueError(f"{fn}: {what} is empty (0 samples); nothing to do")
    if any(d == 0 for d in arr.shape[1:]):
        raise ValueError(f"{fn}: {what} has no features (shape {arr.shape})")
    flags = arr.flags
    if arr.dtype == dtype and flags.c_contiguous and flags.aligned:
        out = arr            # the serving path: nothing to convert (saves ~2 us of a batch-1 call)
    else:
        # aligned too: the one-call training step refuses unaligned rows (np.frombuffer at an
        # odd offset, a memmap with an odd header), so they are copied once here
        with np.errstate(over="ignore", invalid="ignore"):   # overflow is reported just below
            out = np.require(arr, dtype, ("C", "A"))
    finite = all_finite(out)
    if not finite:
        hint = ""
        if arr.dtype.kind == "f" and np.isfinite(arr).all():
            hint = f" after conversion to {np.dtype(dtype)} (values too large)"
        raise ValueError(f"{fn}: {what} contains NaN or Inf{hint}")
    return out


def check_feature_shape(x: np.ndarray, expected: tuple | None, fn: str, what: str = "x") -> None:
    """Samples must have the model's input shape exactly; nothing is flattened or reshaped for
    the caller (Keras 3: predict takes batches of the input shape)."""
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        expected = tuple(expected)
        hint = ""
        if math.prod(x.shape[1:]) == math.prod(expected):
            hint = f"; use x.reshape(len(x), {', '.join(map(str, expected))})"
        raise ValueError(f"{fn}: {what} has samples of shape {x.shape[1:]}, the model expects "
                         f"{expected}{hint}")


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


def check_alphas(layers, dtype, fn: str) -> None:
    """A float32 model's kernels take a layer's alpha as float: one that rounds to inf there
    (1e39) is refused, naming its layer, before anything is allocated, rather than by the
    inference plan's check or not at all by the training step (the float32 kernels'
    hyperparameter rule, nnfast/_native/_validate.pxi). float64 models take any finite alpha."""
    if dtype != np.float32:
        return
    for layer in layers:
        alpha = getattr(layer, "alpha", None)
        if not isinstance(alpha, float):
            continue
        with np.errstate(over="ignore"):
            rounded = float(np.float32(alpha))
        if not math.isfinite(rounded):
            raise ValueError(f"{fn}: layer {layer.name!r} alpha={alpha!r} is out of range for "
                             f"float32: it rounds to {rounded!r}; use a smaller alpha or "
                             f"dtype='float64'")
