"""nnfast.sklearn in scikit-learn's machinery: meta-estimators, clone, pickle, dtypes, the
coefs_/intercepts_ views, partial_fit/warm_start, sparse input, errors, optional import."""
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
import scipy.sparse as sp
from sklearn import neural_network as sknn
from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

import nnfast
from nnfast.sklearn import MLPClassifier, MLPRegressor

pytestmark = [pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
              pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


@pytest.fixture(scope="module")
def fitted(data):
    return MLPClassifier(hidden_layer_sizes=(20,), max_iter=5, random_state=0).fit(*data)


def test_pipeline_grid_search_cross_val(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=20,
                                                        learning_rate_init=0.01, random_state=0))
    assert pipe.fit(X, y).score(X, y) > 0.5
    grid = GridSearchCV(MLPClassifier((16,), max_iter=5, random_state=0),
                        {"alpha": [1e-4, 1e-2], "activation": ["relu", "tanh"]}, cv=2)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"alpha", "activation"}
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    scores = cross_val_score(reg, X, y / 9.0, cv=3)
    assert scores.shape == (3,)


def test_params_match_sklearn():
    for ours, ref in ((MLPClassifier(), sknn.MLPClassifier()),
                      (MLPRegressor(), sknn.MLPRegressor())):
        assert ours.get_params() == ref.get_params()
    est = MLPClassifier().set_params(alpha=0.5, hidden_layer_sizes=(3, 4))
    assert est.get_params()["alpha"] == 0.5


def test_clone_is_unfitted_with_same_params(fitted):
    c = clone(fitted)
    assert c.get_params() == fitted.get_params()
    assert not hasattr(c, "coefs_")
    with pytest.raises(NotFittedError):
        c.predict(np.zeros((1, 64)))


def test_pickle_roundtrip_keeps_predictions_and_views(fitted, data):
    X, _ = data
    other = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(other.predict_proba(X), fitted.predict_proba(X))
    assert other.loss_curve_ == fitted.loss_curve_
    other.coefs_[0][...] = 0.0  # still views of the restored flat buffer
    assert np.all(other._net.params[:other.coefs_[0].size] == 0)
    other.partial_fit(X, _)  # optimizer state survives pickling


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_follows_input(dtype, data):
    X, y = data
    X = X.astype(dtype)
    clf = MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    assert all(a.dtype == dtype for a in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X).dtype == dtype
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y.astype(dtype))
    assert reg.predict(X).dtype == dtype
    lb = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
    assert lb.coefs_[0].dtype == dtype and lb.predict(X).dtype == dtype


def test_integer_input_trains_float64(data):
    X, y = data
    clf = MLPClassifier((8,), max_iter=2, random_state=0).fit((X * 16).astype(np.int64), y)
    assert clf.coefs_[0].dtype == np.float64


def test_coefs_edit_in_place_and_assign(data):
    X, y = data
    clf = MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(64, 8), (8, 10)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (10,)]
    clf.coefs_[1][...] = 0.0
    clf.intercepts_[1][...] = 0.0
    np.testing.assert_allclose(clf.predict_proba(X), 0.1)
    clf.intercepts_[1] = np.arange(10.0)  # assigning an element works like sklearn's lists
    assert np.all(clf.predict(X) == 9)
    clf.coefs_ = [np.zeros((64, 8)), np.ones((8, 10))]
    assert np.all(clf.predict(X) == 9)
    clf.coefs_[0] = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape \(64, 8\)"):
        clf.predict(X)


def test_partial_fit_and_warm_start_follow_sklearn(data):
    X, y = data
    params = {"hidden_layer_sizes": (10,), "random_state": 0, "max_iter": 3}
    ours, ref = MLPClassifier(**params), sknn.MLPClassifier(**params)
    for est in (ours, ref):
        for i in range(3):
            sl = slice(100 * i, 100 * i + 100)
            est.partial_fit(X[sl], y[sl], classes=np.unique(y))
    assert ours.n_iter_ == ref.n_iter_ and ours.t_ == ref.t_
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-6)
    ours, ref = (MLPClassifier(warm_start=True, **params),
                 sknn.MLPClassifier(warm_start=True, **params))
    for est in (ours, ref):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-6)


@pytest.mark.parametrize("y", [
    np.arange(12) % 4, (np.arange(12) % 3 - 1) * 7, np.arange(12) % 5 - 1.0,
    (np.arange(12) % 3).astype(np.uint8), np.array(list("abcabcabcabd")),
    np.array(["x", "yy", "z"] * 4, dtype=object), np.arange(12) % 2 == 0,
    np.where(np.arange(12) % 2, "pos", "neg"), np.full(12, 3), np.full(12, "only"),
    [2, 0, 1] * 4, (np.arange(12) % 3).reshape(-1, 1),
], ids=lambda y: f"{np.asarray(y).dtype}-{len(np.unique(np.asarray(y)))}")
def test_targets_equal_label_binarizer(y):
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import column_or_1d

    X = np.random.default_rng(0).random((12, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the column vector's DataConversionWarning
        _, ours = MLPClassifier()._validate_input(X, y, incremental=False, reset=True)
        y1 = column_or_1d(np.asarray(y))
    ref = LabelBinarizer().fit(y1).transform(y1).astype(bool)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


def test_sparse_input_matches_dense(data):
    X, y = data
    params = {"hidden_layer_sizes": (10,), "max_iter": 3, "random_state": 0}
    dense = MLPClassifier(**params).fit(X, y)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        sparse = MLPClassifier(**params).fit(fmt(X), y)
        np.testing.assert_allclose(sparse.loss_curve_, dense.loss_curve_, rtol=1e-9)
        np.testing.assert_allclose(sparse.predict_proba(fmt(X)), dense.predict_proba(X),
                                   atol=1e-10)
    lin = MLPRegressor(hidden_layer_sizes=(), max_iter=3, random_state=0)
    lin.fit(sp.csr_matrix(X), y)  # no hidden layer: the output layer reads the sparse input
    assert lin.coefs_[0].shape == (64, 1)


def test_convergence_warnings(data):
    X, y = data
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier((5,), max_iter=1, random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        MLPClassifier((5,), solver="lbfgs", max_iter=1, random_state=0).fit(X, y)


def test_errors_like_sklearn(data, fitted):
    X, y = data
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(X)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :10])
    with pytest.raises(InvalidParameterError, match="activation"):
        MLPClassifier(activation="softmax").fit(X, y)
    with pytest.raises(InvalidParameterError, match="loss"):
        MLPRegressor(loss="huber").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(5, 0)).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier().fit(np.full_like(X, np.nan), y)
    with pytest.raises(AttributeError, match="partial_fit"):
        MLPClassifier(solver="lbfgs").partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(ValueError, match="classes must be passed"):
        MLPClassifier().partial_fit(X, y)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPClassifier(early_stopping=True, validation_fraction=0.001).fit(X, y)
    with pytest.raises(ValueError, match="classes not in"):
        fitted.partial_fit(X, y + 100)


def test_multioutput_regression_shapes():
    X, y = make_regression(n_samples=120, n_features=5, n_targets=3, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y / 100)
    assert reg.predict(X).shape == (120, 3) and reg.n_outputs_ == 3
    assert reg.n_layers_ == 3 and reg.out_activation_ == "identity"


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, cwd=str(Path(nnfast.__file__).parents[1]))


def test_import_nnfast_does_not_import_sklearn():
    res = _run("import sys, nnfast, nnfast.ops; print('sklearn' in sys.modules)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"


def test_missing_sklearn_names_the_extra():
    res = _run("import sys; sys.modules['sklearn'] = None\n"
               "try:\n    import nnfast.sklearn\nexcept ImportError as e:\n    print(e)")
    assert res.returncode == 0, res.stderr
    assert 'pip install "nnfast[sklearn]"' in res.stdout
