"""MLPClassifier/MLPRegressor.from_sklearn and .to_sklearn (nnfast/sklearn/_convert.py): the
same weights and the same predictions both ways, fitted attributes carried, clear errors."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn not installed")
import sklearn.neural_network as sk_nn  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from nnfast.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(dtype, kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5)).astype(dtype)
    s = X @ rng.normal(size=5)
    if kind == "multiclass":
        return X, np.array(["a", "b", "c"])[np.digitize(s, [-0.5, 0.5])]
    if kind == "binary":
        return X, (s > 0).astype(int)
    if kind == "multilabel":
        return X, np.stack([s > 0, X[:, 0] > 0], axis=1).astype(int)
    if kind == "poisson":
        return X, rng.poisson(np.exp(0.3 * s)).astype(dtype)
    return X, np.stack([s, X[:, 1]], axis=1)


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # ConvergenceWarning after a few iterations
        return est.fit(X, y)


def _same_fitted(a, b):
    assert [c.dtype for c in a.coefs_] == [c.dtype for c in b.coefs_]
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(x, y)
    for name in ("n_features_in_", "n_outputs_", "n_layers_", "out_activation_", "n_iter_",
                 "t_", "loss_", "loss_curve_", "best_loss_"):
        assert getattr(a, name) == getattr(b, name), name
    if hasattr(a, "classes_"):
        np.testing.assert_array_equal(a.classes_, b.classes_)
    assert a.get_params() == b.get_params()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
def test_classifier_both_ways(dtype, kind):
    X, y = _data(dtype, kind)
    sk = _fit(sk_nn.MLPClassifier(hidden_layer_sizes=(7, 4), activation="tanh", max_iter=20,
                                  random_state=0), X, y)
    ours = MLPClassifier.from_sklearn(sk)
    _same_fitted(ours, sk)
    np.testing.assert_array_equal(ours.predict(X), sk.predict(X))
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours.predict_proba(X), sk.predict_proba(X), rtol=tol, atol=tol)
    mine = _fit(MLPClassifier(hidden_layer_sizes=(6,), max_iter=15, random_state=1), X, y)
    back = mine.to_sklearn()
    assert type(back) is sk_nn.MLPClassifier
    _same_fitted(back, mine)
    np.testing.assert_array_equal(back.predict(X), mine.predict(X))
    np.testing.assert_allclose(back.predict_proba(X), mine.predict_proba(X), rtol=tol, atol=tol)
    back.coefs_[0][0, 0] += 1.0   # copies: the nnfast estimator is not changed
    assert back.coefs_[0][0, 0] != mine.coefs_[0][0, 0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_both_ways(dtype, loss):
    X, y = _data(dtype, loss)
    sk = _fit(sk_nn.MLPRegressor(loss=loss, hidden_layer_sizes=(6,), activation="logistic",
                                 max_iter=20, random_state=0), X, y)
    ours = MLPRegressor.from_sklearn(sk)
    _same_fitted(ours, sk)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours.predict(X), sk.predict(X), rtol=tol, atol=tol)
    back = ours.to_sklearn()
    _same_fitted(back, ours)
    np.testing.assert_allclose(back.predict(X), ours.predict(X), rtol=tol, atol=tol)


def test_converted_estimator_keeps_training():
    X, y = _data(np.float64, "binary")
    sk = _fit(sk_nn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0,
                                  solver="sgd"), X, y)
    ours = MLPClassifier.from_sklearn(sk)
    ours.partial_fit(X, y)   # a fresh optimizer, the converted weights
    assert ours.n_iter_ == 1 and len(ours.loss_curve_) == len(sk.loss_curve_) + 1


def test_errors():
    with pytest.raises(NotFittedError, match=r"^MLPClassifier.from_sklearn: est is not fitted; "
                                             r"call fit\(X, y\) first$"):
        MLPClassifier.from_sklearn(sk_nn.MLPClassifier())
    with pytest.raises(TypeError, match="^MLPRegressor.from_sklearn: est must be a "
                                        "sklearn.neural_network.MLPRegressor, got "
                                        "sklearn.neural_network._multilayer_perceptron."
                                        "MLPClassifier$"):
        MLPRegressor.from_sklearn(sk_nn.MLPClassifier())
    with pytest.raises(NotFittedError, match=r"^MLPRegressor.to_sklearn: this MLPRegressor is "
                                             r"not fitted; call fit\(X, y\) first$"):
        MLPRegressor().to_sklearn()
    X, y = _data(np.float64, "binary")
    sk = _fit(sk_nn.MLPClassifier(hidden_layer_sizes=(3,), max_iter=3), X, y)
    sk.activation = "softplus"
    with pytest.raises(ValueError, match="^MLPClassifier.from_sklearn: est.activation="
                                         "'softplus' is not supported; expected one of "
                                         "identity, logistic, tanh, relu$"):
        MLPClassifier.from_sklearn(sk)
