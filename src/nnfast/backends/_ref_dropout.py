"""Reference dropout (plain NumPy): the spec for the compiled twins.

The mask is counter-based: element i (flat, row-major index) of a call keyed by (seed, step) is
kept or dropped by a pure function of (seed, step, i), so any thread count, any backend and any
chunking of the work give the same mask. All arithmetic is on uint64, modulo 2**64:

    mix64(z)  = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
                z ^ (z >> 31)                               (the SplitMix64 finaliser)
    key       = mix64(mix64(seed) ^ step)
    bits_i    = mix64(key + (i + 1) * 0x9E3779B97F4A7C15)   (output i of SplitMix64 from state key)
    u_i       = (bits_i >> 11) * 2**-53                     (uniform in [0, 1), float64)
    keep_i    = u_i >= rate
    y_i       = x_i * (keep_i ? scale : 0),  scale = T(1 / (1 - rate)) computed in float64

so a NaN in x stays NaN even where it is dropped. The same formula is in csrc/nnfast.h.
"""
from __future__ import annotations

import numbers

import numpy as np

from nnfast.backends._ref_checks import _check_out, _float_array

__all__ = ["dropout_backward", "dropout_forward"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _check_key(fn: str, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < 2**64:
        raise ValueError(f"{fn}: {name} must be in [0, 2**64), got {value}")
    return value


def _check_rate(fn: str, rate) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{fn}: rate must be a float, got {type(rate).__name__}")
    rate = float(rate)
    if not 0.0 <= rate < 1.0:  # also rejects NaN
        raise ValueError(f"{fn}: rate must be in [0, 1), got {rate}")
    return rate


def dropout_mask(shape: tuple, rate: float, seed: int, step: int) -> np.ndarray:
    """keep_i (bool array of `shape`) from the counter hash in the module docstring."""
    key = _mix64(_mix64(np.array([seed], dtype=np.uint64)) ^ np.uint64(step))
    i = np.arange(1, int(np.prod(shape)) + 1, dtype=np.uint64)
    bits = _mix64(key + i * _GAMMA)
    u = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return (u >= rate).reshape(shape)


def _dropout(fn: str, first: str, x, rate, seed, step, out):
    dtype = _float_array(fn, first, x, x.ndim if isinstance(x, np.ndarray) else 1)
    rate = _check_rate(fn, rate)
    seed, step = _check_key(fn, "seed", seed), _check_key(fn, "step", step)
    if out is None:
        out = np.empty(x.shape, dtype)
    else:
        _check_out(fn, "out", out, x.shape, dtype, (x,))
    if rate == 0.0:
        out[...] = x
        return out
    scale = dtype.type(1.0 / (1.0 - rate))
    keep = dropout_mask(x.shape, rate, seed, step)
    out[...] = x * np.where(keep, scale, dtype.type(0))
    return out


def dropout_forward(x, rate, seed, step, out=None):
    """y = x * keep / (1 - rate), keep from (seed, step, flat index) as in the module docstring;
    rate in [0, 1) (0 copies x); seed and step ints in [0, 2**64). x of any shape.

    >>> dropout_forward(np.ones((2, 2)), 0.0, seed=1, step=0)
    array([[1., 1.],
           [1., 1.]])
    """
    return _dropout("dropout_forward", "x", x, rate, seed, step, out)


def dropout_backward(dy, rate, seed, step, out=None):
    """dx = dy * keep / (1 - rate) with the mask of dropout_forward(·, rate, seed, step).

    >>> dropout_backward(np.ones(3), 0.5, seed=7, step=3).shape
    (3,)
    """
    return _dropout("dropout_backward", "dy", dy, rate, seed, step, out)
