"""Weight penalties added to the loss: L1 (λ·Σ|W|), L2 (λ·Σ W²) and both (L1L2).

``Dense(kernel_regularizer="l2")`` uses λ = 0.01, as Keras does; pass ``L2(1e-4)`` for another λ.
A regularizer adds its gradient into the layer's view of the flat gradient buffer in place,
through a scratch array the layer owns, so a training step still allocates nothing.

>>> from nnfast import regularizers
>>> regularizers.get("l2").get_config()
{'l1': 0.0, 'l2': 0.01}
"""
from __future__ import annotations

import numpy as np


class L1L2:
    """λ1·Σ|W| + λ2·Σ W²."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        for name, v in (("l1", l1), ("l2", l2)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v >= 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a number >= 0, got {v!r}")
        self.l1, self.l2 = float(l1), float(l2)

    def loss(self, w: np.ndarray, scratch: np.ndarray | None) -> float:
        """The penalty; L1 writes |w| into scratch (None: a new array)."""
        total = 0.0
        if self.l2:
            flat = w.reshape(-1)
            total += self.l2 * float(np.dot(flat, flat))
        if self.l1:
            total += self.l1 * float(np.abs(w, out=scratch).sum())
        return total

    def add_gradient(self, w: np.ndarray, dw: np.ndarray, scratch: np.ndarray) -> None:
        """dw += ∂penalty/∂w, in place."""
        if self.l2:
            np.multiply(w, 2.0 * self.l2, out=scratch)
            dw += scratch
        if self.l1:
            np.sign(w, out=scratch)
            scratch *= self.l1
            dw += scratch

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)


class L2(L1L2):
    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)


_NAMES = {"l1": L1, "l2": L2, "l1_l2": lambda: L1L2(0.01, 0.01)}


def get(spec) -> L1L2 | None:
    """None, a name ("l1", "l2", "l1_l2"), a config dict or an instance → a regularizer."""
    if spec is None or isinstance(spec, L1L2):
        return spec
    if isinstance(spec, str) and spec in _NAMES:
        return _NAMES[spec]()
    if isinstance(spec, dict) and set(spec) <= {"l1", "l2"}:
        return L1L2(**spec)
    raise ValueError(f"unknown regularizer {spec!r}; valid regularizers: "
                     f"{', '.join(_NAMES)}, or an instance of L1, L2, L1L2")


__all__ = ["L1L2", "L1", "L2", "get"]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
