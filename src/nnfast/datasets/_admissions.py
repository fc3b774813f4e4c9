"""The two-feature toy problem: admitted iff grade and test score are both at least 50."""
from __future__ import annotations

import numbers

import numpy as np

ADMISSIONS_FEATURES = ("grade", "test_score")
ADMISSIONS_CLASSES = ("rejected", "admitted")


def make_admissions(
    n: int = 1000, seed: int | None = None, noise: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` applicants: grade and test score uniform in [0, 100].

    The label is 1 (admitted) iff both are >= 50, else 0. With ``noise`` > 0, exactly
    ``round(noise * n)`` labels, chosen at random, are flipped.

    Parameters
    ----------
    n : int
        Number of samples (>= 0).
    seed : int or None
        Seed for ``numpy.random.default_rng``; the same seed gives the same data.
    noise : float
        Fraction of labels flipped, in [0, 1].

    Returns
    -------
    x : float32 array (n, 2), columns ``ADMISSIONS_FEATURES`` (raw scale 0..100)
    y : int64 array (n,)

    Examples
    --------
    >>> x, y = make_admissions(4, seed=0)
    >>> x.shape, y.dtype
    ((4, 2), dtype('int64'))
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"make_admissions: n must be an integer >= 0, got {n!r}")
    if not isinstance(noise, numbers.Real) or not 0.0 <= float(noise) <= 1.0:
        raise ValueError(f"make_admissions: noise must be a fraction in [0, 1], got {noise!r}")
    rng = np.random.default_rng(seed)
    # labels come from the float32 values returned, so rounding can never contradict them
    x = rng.uniform(0.0, 100.0, size=(int(n), 2)).astype(np.float32)
    y = np.all(x >= 50.0, axis=1).astype(np.int64)
    n_flip = round(float(noise) * n)
    if n_flip:
        flip = rng.choice(int(n), size=n_flip, replace=False)
        y[flip] = 1 - y[flip]
    return x, y
