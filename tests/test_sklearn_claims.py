"""The numbers README.md and docs/sklearn.md state about nnfast.sklearn against scikit-learn
1.9, one test per claim (digits, hidden_layer_sizes=(100,), random_state=0, one thread).

Measured (tools: the same fits as below, full digits set, max differences):

=====================================  ==============  ===============  ==================
case                                   loss curve rel  weights rel      predictions
=====================================  ==============  ===============  ==================
float64, features in [0, 1], adam/sgd  5e-16           6e-16            equal
float64, features in [0, 1], lbfgs     6e-12 (loss_)   3e-13            equal
float64, unscaled 0..16, adam          1.4e-3 (0.0155  1e-14            equal
                                       abs; 0.105 abs
                                       full-batch)
float32, features in [0, 1], adam/sgd  1e-5            3e-4             equal
float32, features in [0, 1], lbfgs     2.5e-2 (loss_)  2e-3             equal
=====================================  ==============  ===============  ==================

Why the unscaled loss curves differ while the weights do not: scikit-learn clips each
predicted probability to [eps, 1 - eps] before the log (eps = machine epsilon of the dtype), so
a confidently wrong sample's loss is capped at -log(eps) (36.04 in float64); nnfast computes
the loss from the logits, uncapped. The gradient, p - y, is the same in both, so the training
runs, weights and predictions agree; only the reported loss is larger in nnfast.
"""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn import neural_network as sknn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from nnfast import sklearn as nnsk

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def _both(cls, X, y, **params):
    params = {"hidden_layer_sizes": (100,), "random_state": 0, **params}
    out = []
    for module in (sknn, nnsk):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            out.append(getattr(module, cls)(**params).fit(X, y))
    return out


def _weights_rel(ref, ours) -> float:
    return max(float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
               for a, b in zip(ref.coefs_ + ref.intercepts_, ours.coefs_ + ours.intercepts_))


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_float64_scaled_inputs_loss_curves_and_weights_agree_to_1e_12(digits, solver):
    X, y = digits
    ref, ours = _both("MLPClassifier", X / 16, y, solver=solver, max_iter=10)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-12, atol=0)
    assert _weights_rel(ref, ours) < 1e-12
    np.testing.assert_array_equal(ours.predict(X / 16), ref.predict(X / 16))


def test_float64_lbfgs_loss_and_weights_agree_to_1e_9(digits):
    X, y = digits
    ref, ours = _both("MLPClassifier", X / 16, y, solver="lbfgs", max_iter=50)
    np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=1e-9, atol=0)
    assert _weights_rel(ref, ours) < 1e-9 and ours.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("batch_size", ["auto", 1797])
def test_float64_unscaled_inputs_same_weights_larger_uncapped_loss(digits, batch_size):
    X, y = digits
    ref, ours = _both("MLPClassifier", X, y, max_iter=10, batch_size=batch_size)
    assert _weights_rel(ref, ours) < 1e-12
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    gap = np.array(ours.loss_curve_) - np.array(ref.loss_curve_)
    # scikit-learn's clipped loss is never above the true one (up to its 1 - eps clip, ~1e-16)
    assert gap.min() > -1e-12
    expected = {"auto": (0.01, 0.02), 1797: (0.09, 0.12)}[batch_size]
    assert expected[0] < gap.max() < expected[1], gap.max()


# lbfgs stops at 30 iterations: by 50 its loss (1e-4) nears float32's resolution and the runs
# part by rounding (measured 1% on the C backend, 19% on the reference backend at 50).
@pytest.mark.parametrize("solver, loss_rtol, weights_rel", [
    ("adam", 1e-4, 1e-3), ("sgd", 1e-4, 1e-3), ("lbfgs", 1e-4, 1e-4)])
def test_float32_agreement(digits, solver, loss_rtol, weights_rel):
    X, y = digits
    Xf = (X / 16).astype(np.float32)
    ref, ours = _both("MLPClassifier", Xf, y, solver=solver, max_iter=20 if solver != "lbfgs"
                      else 30)
    if solver == "lbfgs":
        np.testing.assert_allclose(ours.loss_, ref.loss_, rtol=loss_rtol)
    else:
        np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=loss_rtol)
    assert _weights_rel(ref, ours) < weights_rel
    np.testing.assert_array_equal(ours.predict(Xf), ref.predict(Xf))
