"""nnfast.sklearn takes every sample weight and hyperparameter scikit-learn 1.9 takes, and fails
where it fails with its message: never with a kernel's message about a value the user did not
pass (a per-batch rescaled weight, a negative weight decay, a beta rounded to 1 in float32)."""
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import neural_network as sknn
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from nnfast import sklearn as nnsk
from nnfast.sklearn._checks import SampleWeightSumError

pytestmark = pytest.mark.usefixtures("one_thread")

RNG = np.random.RandomState(0)
X = RNG.randn(40, 3)
Y = {"binary": (X[:, 0] > 0).astype(int), "multiclass": RNG.randint(0, 3, 40),
     "regression": X @ [1.0, 2.0, 3.0]}


def _est(module, kind, **params):
    cls = module.MLPRegressor if kind == "regression" else module.MLPClassifier
    kw = {"hidden_layer_sizes": (5,), "max_iter": 5, "random_state": 0, "batch_size": 16}
    return cls(**{**kw, **params})


def _fit(est, X, y, **fit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **fit)


def _outcome(module, kind, X, y, sample_weight=None, **params):
    try:
        return _fit(_est(module, kind, **params), X, y, sample_weight=sample_weight)
    except Exception as exc:  # noqa: BLE001 - the comparison is the point
        return exc


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("weights", ["a few -0.5", "all -1"])
def test_negative_sample_weights_fit_like_sklearn(solver, kind, weights):
    # scikit-learn accepts negative weights (batch sums may be negative too); nnfast used to
    # fail with "binary_cross_entropy: sample_weight must be non-negative, got -0.0384... at
    # index 3" or "adam_update: weight_decay must be >= 0, got -6.25e-06"
    sw = -np.ones(40) if weights == "all -1" else np.where(np.arange(40) % 7 == 0, -0.5, 1.0)
    ref = _fit(_est(sknn, kind, solver=solver), X, Y[kind], sample_weight=sw)
    ours = _fit(_est(nnsk, kind, solver=solver), X, Y[kind], sample_weight=sw)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
    if solver == "lbfgs":
        np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=1e-6)
    else:
        np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-6)


@pytest.mark.parametrize("sw, message", [
    (np.zeros(40), "Sample weights must contain at least one non-zero number."),
    (np.r_[np.nan, np.ones(39)], "Input sample_weight contains NaN."),
    (np.r_[np.ones(39), np.inf], "Input sample_weight contains infinity or a value too large "
                                 "for dtype('float64')."),
    (np.ones(39), r"sample_weight.shape == (39,), expected (40,)!"),
])
def test_invalid_sample_weights_fail_like_sklearn_before_any_work(sw, message):
    for module in (sknn, nnsk):
        est = _est(module, "regression")
        with pytest.raises(ValueError) as info:
            est.fit(X, Y["regression"], sample_weight=sw)
        assert str(info.value) == message
        assert not hasattr(est, "coefs_")


def test_zero_weight_sum_over_the_whole_set_fails_before_any_work_with_lbfgs():
    sw = np.r_[np.ones(20), -np.ones(20)]
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):  # scikit-learn's
        _fit(_est(sknn, "regression", solver="lbfgs"), X, Y["regression"], sample_weight=sw)
    est = _est(nnsk, "regression", solver="lbfgs")
    with pytest.raises(SampleWeightSumError) as info:
        est.fit(X, Y["regression"], sample_weight=sw)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ZeroDivisionError)
    assert str(info.value) == (
        "sample_weight sums to zero over all 40 rows (sum of the 20 positive weights 20, of "
        "the 20 negative ones -20); solver='lbfgs' divides the loss by that sum (as "
        "scikit-learn does: its ZeroDivisionError 'Weights sum to zero, can't be normalized')")
    assert not hasattr(est, "coefs_")


@pytest.mark.parametrize("early_stopping", [False, True])
def test_zero_weight_sum_over_a_batch_names_the_users_rows(early_stopping):
    # Rows 0-7 cancel; without shuffling they are one batch (with early stopping, the batch is
    # the first 8 rows of the training split, named by their index in the user's X)
    sw = np.r_[np.ones(4), -np.ones(4), np.ones(32)]
    est = _est(nnsk, "regression", batch_size=8, shuffle=False, early_stopping=early_stopping)
    if early_stopping:
        from sklearn.model_selection import train_test_split
        rs = np.random.RandomState(0)  # the initial weights' draws come first, then the split
        for shape in [(3, 5), 5, (5, 1), 1]:
            rs.uniform(size=shape)
        train, _ = train_test_split(np.arange(40), random_state=rs, test_size=0.1)
        X2, sw2 = X, np.ones(40)
        sw2[train[4:8]] = -1.0
        rows = train[:8]
    else:
        X2, sw2, rows = X, sw, np.arange(8)
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero"):
        _fit(_est(sknn, "regression", batch_size=8, shuffle=False,
                  early_stopping=early_stopping), X2, Y["regression"], sample_weight=sw2)
    with pytest.raises(SampleWeightSumError) as info:
        est.fit(X2, Y["regression"], sample_weight=sw2)
    shown = ", ".join(str(r) for r in rows)
    assert str(info.value) == (
        f"sample_weight sums to zero over a training batch: rows [{shown}] (8 rows) in epoch "
        "1; each batch's loss is divided by its weight sum (as in scikit-learn, whose "
        "ZeroDivisionError reads 'Weights sum to zero, can't be normalized'). Give these rows "
        "weights that do not cancel, or change batch_size or shuffle.")


# -- hyperparameters -----------------------------------------------------------------------
@pytest.mark.parametrize("param, value", [
    ("alpha", -1e-9), ("alpha", np.inf), ("alpha", np.nan),
    ("learning_rate_init", 0), ("learning_rate_init", np.inf),
    ("beta_1", 1.0), ("beta_2", 1), ("epsilon", 0), ("epsilon", np.inf),
    ("momentum", 1.0 + 1e-12), ("momentum", -0.1), ("batch_size", 0), ("batch_size", 2.0),
    ("max_iter", 0), ("max_iter", 2.0), ("tol", -1), ("tol", np.inf),
    ("n_iter_no_change", 0), ("n_iter_no_change", 2.5), ("validation_fraction", 1),
    ("power_t", -1), ("power_t", np.inf), ("max_fun", 0), ("solver", "newton"),
])
def test_invalid_parameters_fail_with_sklearns_message(param, value):
    ref = _outcome(sknn, "binary", X, Y["binary"], **{param: value})
    ours = _outcome(nnsk, "binary", X, Y["binary"], **{param: value})
    assert isinstance(ref, InvalidParameterError) and isinstance(ours, InvalidParameterError)
    assert _sorted_sets(str(ours)) == _sorted_sets(str(ref))


def _sorted_sets(message: str) -> str:
    """The message with each {...} of options sorted: two equal sets may print in different
    orders (str of a set follows its hash table, not its contents alone)."""
    return re.sub(r"\{([^}]*)\}", lambda m: "{" + ", ".join(sorted(m.group(1).split(", ")))
                  + "}", message)


@pytest.mark.parametrize("param, value, solver", [
    ("beta_1", 1 - 1e-9, "adam"), ("beta_2", 1 - 1e-9, "adam"),
    ("momentum", 1 - 1e-9, "sgd"), ("momentum", 1.0, "sgd"),
    ("learning_rate_init", 1e-300, "adam"), ("epsilon", 1e300, "adam"),
    ("n_iter_no_change", np.inf, "adam"), ("batch_size", 10**9, "sgd"),
    ("max_fun", 10**20, "lbfgs"), ("hidden_layer_sizes", (), "adam"),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_edge_values_sklearn_accepts_are_accepted(param, value, solver, dtype, kind):
    # float32 used to fail on the first three: "adam_update: beta1=0.999999999 is out of range
    # for float32: it rounds to 1.0, and beta1 must be in [0, 1)"
    Xd = X.astype(dtype)
    ref = _fit(_est(sknn, kind, solver=solver, **{param: value}), Xd, Y[kind])
    ours = _fit(_est(nnsk, kind, solver=solver, **{param: value}), Xd, Y[kind])
    tol = {"rtol": 1e-6, "atol": 1e-9} if dtype == np.float64 else {"rtol": 1e-3, "atol": 1e-4}
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, **tol)


def test_float32_epsilon_below_float32s_range_still_guards_the_division():
    # epsilon=1e-50 is 0 in float32: scikit-learn's MLPRegressor (float64 targets, so float64
    # moments) trains; nnfast's kernel rejected "eps=3.16e-49 ... rounds to 0.0". Now Adam
    # keeps float64 moments in that case, like scikit-learn's regressor.
    Xf = X.astype(np.float32)
    ref = _fit(_est(sknn, "regression", epsilon=1e-50), Xf, Y["regression"])
    ours = _fit(_est(nnsk, "regression", epsilon=1e-50), Xf, Y["regression"])
    for a, b in zip(ours.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("power_t", [50, 300, 1e300])
def test_invscaling_learning_rate_that_vanishes(power_t):
    # lr = lr0 / (t+1)**power_t. scikit-learn raises OverflowError at power_t=300 or 1e300
    # (deliberate difference: nnfast takes the limit, lr = 0, and keeps the momentum's
    # velocity); at 50 in float32 nnfast's velocity rescaling used to overflow to NaN.
    for dtype in (np.float64, np.float32):
        ours = _fit(_est(nnsk, "regression", solver="sgd", learning_rate="invscaling",
                         power_t=power_t), X.astype(dtype), Y["regression"])
        assert ours._optimizer.learning_rate == (0.0 if power_t != 50 else 0.001 / 201 ** 50)
        if power_t == 50:
            ref = _fit(_est(sknn, "regression", solver="sgd", learning_rate="invscaling",
                            power_t=power_t), X.astype(dtype), Y["regression"])
            for a, b in zip(ours.coefs_, ref.coefs_):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        else:
            with pytest.raises(OverflowError):
                _fit(_est(sknn, "regression", solver="sgd", learning_rate="invscaling",
                          power_t=power_t), X, Y["regression"])
            assert np.isfinite(ours.coefs_[0]).all()


@pytest.mark.parametrize("sizes", [(5.0,), (True,), (4, 2.5)])
def test_hidden_layer_sizes_of_floats_or_bools_name_the_parameter(sizes):
    # scikit-learn crashes inside NumPy: TypeError "'float' object cannot be interpreted as an
    # integer"; nnfast raises InvalidParameterError (a TypeError too) before any work
    with pytest.raises(TypeError):
        _fit(_est(sknn, "binary", hidden_layer_sizes=sizes), X, Y["binary"])
    est = _est(nnsk, "binary", hidden_layer_sizes=sizes)
    with pytest.raises(InvalidParameterError) as info:
        est.fit(X, Y["binary"])
    assert str(info.value) == (
        "The 'hidden_layer_sizes' parameter of MLPClassifier must be an int in the range "
        f"[1, inf) or an array-like of such ints. Got {sizes!r} instead.")
    assert isinstance(info.value, TypeError) and not hasattr(est, "coefs_")


def test_hidden_layer_sizes_below_one_keep_sklearns_message():
    for module in (sknn, nnsk):
        with pytest.raises(ValueError) as info:
            _est(module, "binary", hidden_layer_sizes=np.array([4, 0])).fit(X, Y["binary"])
        assert str(info.value) == "hidden_layer_sizes must be > 0, got [np.int64(4), np.int64(0)]."
