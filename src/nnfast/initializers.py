"""Weight initializers: seeded, reproducible, drawn with NumPy's Generator.

Each initializer is a function ``init(shape, fan_in, fan_out, rng) -> float64 array``; the layer
casts the result into its view of the model's flat parameter buffer. The variance-scaling rules:

=================  ==========================  ================================
name               distribution                scale
=================  ==========================  ================================
glorot_uniform     U(-l, l)                    l = sqrt(6 / (fan_in + fan_out))
glorot_normal      N(0, s²)                    s = sqrt(2 / (fan_in + fan_out))
he_uniform         U(-l, l)                    l = sqrt(6 / fan_in)
he_normal          N(0, s²)                    s = sqrt(2 / fan_in)
lecun_uniform      U(-l, l)                    l = sqrt(3 / fan_in)
lecun_normal       N(0, s²)                    s = sqrt(1 / fan_in)
zeros, ones        constant
=================  ==========================  ================================

The normal variants draw plain (untruncated) normals.

>>> import numpy as np
>>> from nnfast import initializers
>>> w = initializers.get("he_normal")((64, 32), 64, 32, np.random.default_rng(0))
>>> w.shape
(64, 32)
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Initializer = Callable[[tuple, int, int, np.random.Generator], np.ndarray]


def _uniform(scale: Callable[[int, int], float]) -> Initializer:
    def init(shape, fan_in, fan_out, rng):
        limit = math.sqrt(scale(max(fan_in, 1), max(fan_out, 1)))
        return rng.uniform(-limit, limit, size=shape)
    return init


def _normal(scale: Callable[[int, int], float]) -> Initializer:
    def init(shape, fan_in, fan_out, rng):
        return rng.standard_normal(size=shape) * math.sqrt(scale(max(fan_in, 1), max(fan_out, 1)))
    return init


def zeros(shape, fan_in, fan_out, rng):
    return np.zeros(shape)


def ones(shape, fan_in, fan_out, rng):
    return np.ones(shape)


_REGISTRY: dict[str, Initializer] = {
    "glorot_uniform": _uniform(lambda i, o: 6.0 / (i + o)),
    "glorot_normal": _normal(lambda i, o: 2.0 / (i + o)),
    "he_uniform": _uniform(lambda i, o: 6.0 / i),
    "he_normal": _normal(lambda i, o: 2.0 / i),
    "lecun_uniform": _uniform(lambda i, o: 3.0 / i),
    "lecun_normal": _normal(lambda i, o: 1.0 / i),
    "zeros": zeros,
    "ones": ones,
}
NAMES = tuple(_REGISTRY)


def get(name: str) -> Initializer:
    """The initializer called ``name``; ValueError listing the valid names otherwise."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown initializer {name!r}; valid initializers: "
                         f"{', '.join(NAMES)}")
    return _REGISTRY[name]


__all__ = ["Initializer", "NAMES", "get", "zeros", "ones"]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
