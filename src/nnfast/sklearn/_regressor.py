"""MLPRegressor: scikit-learn's multi-layer perceptron regressor on nnfast kernels."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import xlogy
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from nnfast import ops
from nnfast.sklearn import _convert
from nnfast.sklearn._base import BaseMLP
from nnfast.sklearn._checks import signed_loss


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor, a drop-in for ``sklearn.neural_network.MLPRegressor``.

    Optimizes half the squared error (``loss="squared_error"``) or half the Poisson deviance
    with a log link (``loss="poisson"``) with L-BFGS, SGD or Adam; parameters, defaults,
    fitted attributes and methods are scikit-learn's. float32 input trains a float32 model.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from nnfast.sklearn import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=10, noise=1.0, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(20,), solver="lbfgs", max_iter=100,
    ...                    random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.99
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    from_sklearn = classmethod(_convert.from_sklearn)   # and back: est.to_sklearn()
    to_sklearn = _convert.to_sklearn

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _data_loss(self, logits, targets, weights, grad) -> float:
        n, m = logits.shape
        if self.loss == "poisson":
            # half Poisson deviance with log link: d/d logits = exp(logits) - y
            p = np.exp(logits)
            dev = xlogy(targets, targets / p) - targets + p
            w = np.full(n, 1.0 / n, logits.dtype) if weights is None else weights
            np.multiply(p - targets, w[:, None], out=grad)
            return float(np.sum(w @ dev.astype(np.float64)))
        # scikit-learn: loss = ½·mean over outputs and samples, gradient (p - y)/n per output
        w = np.full(n, m / (2.0 * n), logits.dtype) if weights is None else weights * (m / 2)
        return signed_loss(ops.mse, w, grad, logits, targets) / m

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def _score(self, X, y, sample_weight=None):
        return self._score_with(X, y, sample_weight, r2_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : the updated estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)
