"""nnfast.sklearn against scikit-learn: same data, hyperparameters and random_state give the
same training trajectory (float64: the same loss curve up to rounding) and the same accuracy."""
import gzip
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import neural_network as sknn
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

import nnfast
from nnfast import sklearn as nnsk

FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small matrix products run far slower with several threads on a busy machine (for
    OpenBLAS and nnfast alike); one thread keeps the comparison quick."""
    before = nnfast.get_num_threads()
    nnfast.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
    else:
        with threadpool_limits(1, user_api="blas"):
            yield
    finally:
        nnfast.set_num_threads(before)


def _fit_both(name, X, y, sample_weight=None, **params):
    """The fitted scikit-learn and nnfast estimators of one configuration."""
    out = []
    for module in (sknn, nnsk):
        est = getattr(module, name)(**params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y, sample_weight=sample_weight)
        out.append(est)
    return out


@pytest.mark.parametrize("seed", [0, 1, 42, 2**31 - 1])
@pytest.mark.parametrize("n", [1, 2, 7, 200, 1797])
def test_epoch_shuffle_is_sklearns(seed, n):
    from sklearn.utils import shuffle

    from nnfast.sklearn._base import _shuffle

    ours, ref = np.random.RandomState(seed), np.random.RandomState(seed)
    idx, ref_idx = np.arange(n), np.arange(n)
    for _ in range(3):  # epochs compose: each shuffles the previous order
        _shuffle(idx, ours)
        ref_idx = shuffle(ref_idx, random_state=ref)
        np.testing.assert_array_equal(idx, ref_idx)
    assert ours.randint(2**31) == ref.randint(2**31)  # the streams stay in step


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0)


def test_digits_accuracy_within_half_a_point(digits):
    X_tr, X_te, y_tr, y_te = digits
    ref, ours = _fit_both("MLPClassifier", X_tr, y_tr, hidden_layer_sizes=(100,),
                          max_iter=40, random_state=0)
    assert abs(ref.score(X_te, y_te) - ours.score(X_te, y_te)) <= 0.005
    assert ours.score(X_te, y_te) > 0.95


def _small_digits(n=300):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


CLASSIFIER_CONFIGS = [
    {},
    {"solver": "sgd", "learning_rate": "invscaling", "learning_rate_init": 0.2},
    {"solver": "sgd", "learning_rate": "adaptive", "nesterovs_momentum": False,
     "n_iter_no_change": 1, "tol": 0.5},
    {"solver": "sgd", "momentum": 0.0, "learning_rate_init": 0.1},
    {"early_stopping": True, "validation_fraction": 0.2},
    {"activation": "logistic", "hidden_layer_sizes": (20, 10), "alpha": 0.01},
    {"activation": "tanh", "batch_size": 64, "shuffle": False},
    {"activation": "identity", "solver": "lbfgs", "max_iter": 15},
    {"solver": "lbfgs", "max_iter": 15},
]


@pytest.mark.parametrize("params", CLASSIFIER_CONFIGS, ids=str)
def test_classifier_follows_sklearn_trajectory(params):
    X, y = _small_digits()
    params = {"hidden_layer_sizes": (30,), "max_iter": 8, "random_state": 0, **params}
    ref, ours = _fit_both("MLPClassifier", X, y, **params)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-6)
    if params.get("solver") != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-6)
        assert ours.t_ == ref.t_
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_)
        assert ours.best_validation_score_ == ref.best_validation_score_
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-7)


@pytest.mark.parametrize("kind", ["binary", "multilabel", "sample_weight"])
def test_classifier_targets_and_weights_follow_sklearn(kind):
    X, y = _small_digits()
    sw = None
    if kind == "binary":
        y = np.where(y > 4, "big", "small")
    elif kind == "multilabel":
        y = np.stack([y > 4, y % 2 == 0, y == 3], axis=1).astype(int)
    else:
        sw = np.random.default_rng(0).uniform(0.1, 3.0, y.shape[0])
    ref, ours = _fit_both("MLPClassifier", X, y, sample_weight=sw, hidden_layer_sizes=(20,),
                          max_iter=6, random_state=0)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-6)
    assert ours.out_activation_ == ref.out_activation_
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


@pytest.mark.parametrize("params", [
    {},
    {"solver": "lbfgs", "max_iter": 30},
    {"solver": "sgd", "learning_rate_init": 0.001, "learning_rate": "invscaling",
     "power_t": 0.25},
    {"loss": "poisson"},
    {"early_stopping": True},
], ids=str)
@pytest.mark.parametrize("outputs", [1, 2])
def test_regressor_follows_sklearn_trajectory(params, outputs):
    X, y = make_regression(n_samples=200, n_features=8, n_targets=outputs, noise=1.0,
                           random_state=0)
    y = y / 100.0
    if params.get("loss") == "poisson":
        y = np.exp(y / 2)
    params = {"hidden_layer_sizes": (16,), "max_iter": 8, "random_state": 0, **params}
    ref, ours = _fit_both("MLPRegressor", X, y, **params)
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-6)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_regressor_r2_within_001(solver):
    X, y = make_regression(n_samples=600, n_features=20, noise=10.0, random_state=0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)
    params = {"random_state": 0, "solver": solver, "max_iter": 200}
    if solver == "adam":
        params.update(learning_rate_init=0.01, max_iter=150)
    ref, ours = _fit_both("MLPRegressor", X_tr, y_tr, **params)
    r2 = ours.score(X_te, y_te)
    assert abs(r2 - ref.score(X_te, y_te)) <= 0.01
    assert r2 > 0.9


def test_float32_close_to_sklearn(digits):
    X_tr, X_te, y_tr, y_te = digits
    X_tr, X_te = X_tr.astype(np.float32), X_te.astype(np.float32)
    ref, ours = _fit_both("MLPClassifier", X_tr, y_tr, max_iter=30, random_state=0)
    assert ours.coefs_[0].dtype == np.float32
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-3)
    assert abs(ref.score(X_te, y_te) - ours.score(X_te, y_te)) <= 0.005


def _idx(path):
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(FASHION),
                    reason="Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
def test_fashion_mnist_10k_accuracy_within_half_a_point():
    X = _idx(f"{FASHION}/train-images-idx3-ubyte.gz")[:10000].reshape(10000, -1) / 255.0
    y = _idx(f"{FASHION}/train-labels-idx1-ubyte.gz")[:10000]
    X_te = _idx(f"{FASHION}/t10k-images-idx3-ubyte.gz").reshape(10000, -1) / 255.0
    y_te = _idx(f"{FASHION}/t10k-labels-idx1-ubyte.gz")
    ref, ours = _fit_both("MLPClassifier", X, y, hidden_layer_sizes=(100,), max_iter=10,
                          random_state=0)
    acc = ours.score(X_te, y_te)
    assert abs(acc - ref.score(X_te, y_te)) <= 0.005
    assert acc > 0.8
