"""Reference inference plan (plain NumPy): the spec for the compiled ``MLPPlan``.

A plan is the forward pass of a stack of dense and activation layers, checked once when it is
built and then run over any number of rows. Letters: N rows, K in-features, M out-features.
"""
from __future__ import annotations

import math

import numpy as np

from nnfast.backends._ref_activations import _check_activation, apply_activation
from nnfast.backends._ref_checks import _check_out, _float_array, _native

__all__ = ["MLPPlan"]

_SHAPES = "('dense', W, b, activation, alpha) or ('activation', activation, alpha)"


def _what(entry) -> str:
    if isinstance(entry, tuple):
        head = f" starting {entry[0]!r}" if entry and isinstance(entry[0], str) else ""
        return f"a tuple of {len(entry)}{head}"
    return type(entry).__name__


def check_plan_args(layers, n_features, dtype) -> tuple:
    """(dtype, n_features, [(kind, W, b, activation, alpha)]) from the constructor's arguments;
    the messages are the compiled plan's (nnfast/_native/_plan.pxi)."""
    fn = "MLPPlan"
    if dtype not in ("float32", "float64") and not (
            isinstance(dtype, (np.dtype, type)) and np.dtype(dtype) in (np.float32, np.float64)):
        raise ValueError(f"{fn}: dtype must be 'float32' or 'float64', got {dtype!r}")
    dtype = np.dtype(dtype)
    if (isinstance(n_features, (bool, np.bool_)) or not isinstance(n_features, (int, np.integer))
            or n_features < 1):
        raise ValueError(f"{fn}: n_features must be an int >= 1, got {n_features!r}")
    if not isinstance(layers, (list, tuple)):
        raise TypeError(f"{fn}: layers must be a list of layer descriptors {_SHAPES}, got "
                        f"{type(layers).__name__}")
    width, ops = int(n_features), []
    for i, entry in enumerate(layers):
        kind = entry[0] if isinstance(entry, tuple) and entry else None
        if not ((kind == "dense" and len(entry) == 5)
                or (kind == "activation" and len(entry) == 3)):
            raise ValueError(f"{fn}: layers[{i}] must be a tuple {_SHAPES}; got {_what(entry)}")
        where = f"{fn}: layers[{i}]"
        if kind == "dense":
            _, W, b, activation, alpha = entry
            _float_array(fn, f"layers[{i}] W", W, 2, dtype)
            if W.shape[0] != width:
                raise ValueError(f"{where} W must have shape ({width}, M) to take the {width} "
                                 f"features before it, got {W.shape}")
            _in_place(where, "W", W)
            if b is not None:
                _float_array(fn, f"layers[{i}] b", b, 1, dtype)
                if b.shape != (W.shape[1],):
                    raise ValueError(f"{where} b must have shape ({W.shape[1]},), got {b.shape}")
                _in_place(where, "b", b)
        else:
            _, activation, alpha = entry
            W = b = None
        _check_activation(where, activation)
        alpha = _alpha(where, alpha, dtype)
        if W is not None:
            width = W.shape[1]
        ops.append((kind, W, b, activation, alpha))
    return dtype, int(n_features), ops


def _in_place(where: str, name: str, a) -> None:
    if not (a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative):
        raise ValueError(f"{where} {name} must be C-contiguous, aligned and in native byte "
                         f"order: the plan reads it in place, so later changes to its values "
                         f"(set_weights, training) are seen")


def _alpha(where: str, alpha, dtype: np.dtype) -> float:
    """alpha finite, like the Dense layer's, and still finite once rounded to a float32 plan's
    dtype (1e39 -> inf), as the float32 kernels' hyperparameters (_ref_checks._real_param)."""
    if isinstance(alpha, (str, bytes)) or alpha is None:
        raise TypeError(f"{where} alpha must be a real number, got {type(alpha).__name__}")
    try:
        v = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"{where} alpha must be a real number, got "
                        f"{type(alpha).__name__}") from None
    if not math.isfinite(v):
        raise ValueError(f"{where} alpha must be finite, got {v!r}")
    if dtype == np.float32:
        with np.errstate(over="ignore"):
            r = float(np.float32(v))
        if not math.isfinite(r):
            raise ValueError(f"{where} alpha={v!r} is out of range for float32: it rounds to "
                             f"{r!r}, and alpha must be finite")
    return v


class MLPPlan:
    """The forward pass of a stack of layers, checked once, run on any number of rows.

    ``layers`` lists one descriptor per op, in order:
    ``("dense", W, b, activation, alpha)``: y = act(x @ W + b), W (K, M) C-contiguous, b (M,)
    or None; ``("activation", activation, alpha)``: y = act(x), elementwise, softmax and
    log_softmax over each row. Layers that compute nothing at inference (Flatten, Dropout)
    have no descriptor. ``n_features`` is K of the first op, ``dtype`` "float32" or "float64"
    (every W and b must have it). The arrays are read in place: later changes to their
    values are seen by the next ``forward``.

    Raises, at construction: TypeError for a non-list, a non-array W or b, a W or b of
    another dtype, a non-str activation or a non-real alpha; ValueError for a bad dtype,
    n_features, descriptor, W or b shape that does not chain, a W or b the plan cannot read
    in place (byte-swapped, unaligned or not C-contiguous: it is not copied, so later changes
    are seen), an unknown activation, an alpha that is NaN or infinite, or, for a float32
    plan, one that rounds to infinity in float32 (1e39), like the Dense layer and the float32
    kernels' hyperparameters.

    >>> W = np.array([[1.0, -1.0]])
    >>> MLPPlan([("dense", W, None, "relu", 0.0)], 1, "float64").forward(np.array([[2.0]]))
    array([[2., 0.]])
    """

    def __init__(self, layers, n_features, dtype="float32"):
        self.dtype, self.n_features, self._ops = check_plan_args(layers, n_features, dtype)
        self.n_outputs = self.n_features
        for _, W, _, _, _ in self._ops:
            if W is not None:
                self.n_outputs = W.shape[1]

    def forward(self, x, out=None):
        """y (N, n_outputs) from x (N, n_features) of the plan's dtype (either byte order, any
        layout); ``out`` (N, n_outputs), C-contiguous, writeable, not overlapping x, is
        written and returned when given. Each op is ``dense_forward`` / ``activation_forward``.

        Raises TypeError for a non-array x or out, or one of another dtype; ValueError for
        another ndim, feature count or out shape, a read-only or overlapping out."""
        fn = "MLPPlan.forward"
        x, n = self._check_x(fn, x)
        shape = (n, self.n_outputs)
        if out is None:
            out = np.empty(shape, self.dtype)
        else:
            _check_out(fn, "out", out, shape, self.dtype, (x,))
        a = x
        for kind, W, b, activation, alpha in self._ops:
            if kind == "dense":
                pre = a @ W
                if b is not None:
                    pre += b
                a = apply_activation(activation, pre, alpha)
            else:
                a = apply_activation(activation, a, alpha)
        out[...] = a
        return out

    def _check_x(self, fn: str, x) -> tuple:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{fn}: x must be a numpy.ndarray, got {type(x).__name__}")
        if _native(x.dtype) != self.dtype:
            raise TypeError(f"{fn}: x must have dtype {self.dtype} like the plan, got {x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"{fn}: x must have shape (N, {self.n_features}), got {x.shape}")
        return x, x.shape[0]

    def __repr__(self):
        return (f"MLPPlan({len(self._ops)} ops, {self.n_features} -> {self.n_outputs}, "
                f"{self.dtype})")
