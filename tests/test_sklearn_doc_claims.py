"""nnfast's estimators where they deliberately differ from scikit-learn 1.9.1 (docs/sklearn.md):
warm_start with changed layer sizes raises; weights whose sum overflows are refused."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from nnfast.sklearn import MLPClassifier  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 4))
Y = (X[:, 0] > 0).astype(int)


def test_warm_start_with_new_layer_sizes_raises():
    clf = MLPClassifier(hidden_layer_sizes=(5,), warm_start=True, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, Y)
    clf.set_params(hidden_layer_sizes=(7,))
    with pytest.raises(ValueError, match=r"^layer sizes \[4, 7, 1\] differ from the fitted "
                       r"ones \[4, 5, 1\]; refit without warm_start$"):
        clf.fit(X, Y)


def test_overflowing_weight_sum_is_refused_before_any_work():
    w = np.ones(60)
    w[:2] = 1e308
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=5, random_state=0)
    with pytest.raises(ValueError) as e:
        clf.fit(X, Y, sample_weight=w)
    assert str(e.value) == (
        "sample_weight sums to inf in float64 (sum of magnitudes): the weights of rows [0, 1] "
        "(1e+308 to 1e+308) alone overflow; each batch's loss is divided by its weight sum, "
        "so every row would weigh 0 and nothing would be learned. Scale the weights down "
        "(only their ratios matter).")
    assert not hasattr(clf, "coefs_")
