"""Argument checks shared by the loaders (before any file is read)."""
from __future__ import annotations

import numpy as np


def check_bool(func: str, name: str, value) -> bool:
    """``value`` is True or False (a Python or NumPy bool); TypeError naming ``func`` and
    ``name`` otherwise. ``1``, ``"yes"`` or None are refused rather than read as truthy: a
    string such as ``"False"`` would otherwise silently mean True."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{func}: {name} must be True or False, got {value!r} "
                    f"({type(value).__name__})")
