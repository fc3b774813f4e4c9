"""scikit-learn's own estimator checks on nnfast.sklearn's estimators."""
import warnings

import pytest

pytest.importorskip("sklearn")
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from nnfast.sklearn import MLPClassifier, MLPRegressor

# Checks expected to fail, with the reason: none. (Checks that scikit-learn itself skips for a
# missing optional dependency — pandas, SCIPY_ARRAY_API — or for a method the estimator does not
# have, such as decision_function, show up as skipped with scikit-learn's reason.)
EXPECTED_FAILED_CHECKS: dict = {}


def _expected_failed(estimator) -> dict:
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


pytestmark = pytest.mark.usefixtures("one_thread")


# Small max_iter keeps the suite fast; the checks only need a fitted model.
@parametrize_with_checks([MLPClassifier(max_iter=50), MLPRegressor(max_iter=50)],
                         expected_failed_checks=_expected_failed)
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
