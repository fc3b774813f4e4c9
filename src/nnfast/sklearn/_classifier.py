"""MLPClassifier: scikit-learn's multi-layer perceptron classifier on nnfast kernels."""
from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target, unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

from nnfast import ops
from nnfast.sklearn import _convert
from nnfast.sklearn._base import BaseMLP
from nnfast.sklearn._checks import signed_loss


def _one_hot(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """LabelBinarizer().fit(y).transform(y) as bool, for binary or multiclass y: one column
    for two classes or fewer (true for classes[1]), else one per class.

    transform() would find y's type twice more and build a sparse matrix first (~1 ms a fit);
    classes (sorted) come from y itself, so every label is found by searchsorted, as in
    label_binarize.
    """
    col = np.searchsorted(classes, y)
    if classes.shape[0] <= 2:
        return (col == 1).reshape(-1, 1)
    out = np.zeros((y.shape[0], classes.shape[0]), bool)
    out[np.arange(y.shape[0]), col] = True
    return out


class MLPClassifier(ClassifierMixin, BaseMLP):
    """Multi-layer perceptron classifier, a drop-in for ``sklearn.neural_network.MLPClassifier``.

    Optimizes the log-loss with L-BFGS, SGD or Adam; the parameters, defaults, fitted
    attributes and methods are scikit-learn's (see its documentation), and so are the
    results for a given ``random_state`` up to floating-point rounding. float32 input trains
    a float32 model, float64 input a float64 one. ``coefs_``/``intercepts_`` are views of one
    flat parameter buffer: edit them in place or assign new arrays of the same shapes.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from nnfast.sklearn import MLPClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier((32,), learning_rate_init=0.01, max_iter=20, random_state=0)
    >>> clf.fit(X / 16, y).score(X / 16, y) > 0.95
    True
    """

    from_sklearn = classmethod(_convert.from_sklearn)   # and back: est.to_sklearn()
    to_sklearn = _convert.to_sklearn

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000):
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
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
            if self._label_binarizer.y_type_ in ("binary", "multiclass"):
                return X, _one_hot(y, self.classes_)
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in "
                        f"the previous call to fit. Previously got {self.classes_}, `y` has "
                        f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. `self.classes_` has "
                                 f"{self.classes_}. 'y' has {classes}.")
        # bool: a float label matrix would upcast float32 data
        return X, self._label_binarizer.transform(y).astype(bool)

    def _out_activation(self) -> str:
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _targets(self, y, dtype):
        if self.out_activation_ == "softmax":
            return np.argmax(y, axis=1).astype(np.int64)
        return np.ascontiguousarray(y, dtype=dtype)

    def _data_loss(self, logits, targets, weights, grad) -> float:
        if self.out_activation_ == "softmax":
            if weights is None:
                return ops.softmax_cross_entropy(logits, targets, grad=grad)[0]
            return signed_loss(ops.softmax_cross_entropy, weights, grad, logits, targets)
        # scikit-learn sums the per-output log-losses; binary_cross_entropy averages them
        n, m = logits.shape
        w = np.full(n, m / n, logits.dtype) if weights is None else weights * m
        return signed_loss(ops.binary_cross_entropy, w, grad, logits, targets)

    def _val_targets(self, y_val):
        return self._label_binarizer.inverse_transform(y_val)

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        check_is_fitted(self)
        return self._predict(X)

    def _predict(self, X, check_input=True):
        y_pred = self._forward_pass_fast(X, check_input=check_input)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return self._label_binarizer.inverse_transform(y_pred)

    def _score(self, X, y, sample_weight=None):
        return self._score_with(X, y, sample_weight, accuracy_score)

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            All classes across calls; required on the first call.

        Returns
        -------
        self : the updated estimator.
        """
        if self._first_partial_fit(classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _first_partial_fit(self, classes) -> bool:
        """scikit-learn's rule: classes are required first, and must not change later."""
        seen = getattr(self, "classes_", None)
        if seen is None and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if classes is not None:
            if seen is not None:
                if not np.array_equal(seen, unique_labels(classes)):
                    raise ValueError(f"`classes={classes!r}` is not the same as on last call "
                                     f"to partial_fit, was: {seen!r}")
            else:
                self.classes_ = unique_labels(classes)
                return True
        return False

    def predict_log_proba(self, X):
        """Log of predict_proba(X): (n_samples, n_classes), columns ordered as classes_."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X):
        """Probability estimates: (n_samples, n_classes), columns ordered as classes_."""
        check_is_fitted(self)
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags
