"""Reference dropout (plain NumPy): the spec for the compiled twins."""
from __future__ import annotations

import numpy as np  # noqa: F401

__all__: list = []
