"""Direct converters between nnfast's and scikit-learn's MLPs: the same weights, the same
predictions, no file in between.

``MLPClassifier.from_sklearn(est)`` / ``MLPRegressor.from_sklearn(est)`` build the nnfast
estimator from a fitted ``sklearn.neural_network`` one; ``est.to_sklearn()`` goes back. Both
copy the constructor parameters, the weights (``coefs_``, ``intercepts_``, in the dtype they
have) and the fitted attributes that mean the same in both: ``n_features_in_``,
``feature_names_in_``, ``n_outputs_``, ``n_layers_``, ``out_activation_``, ``classes_`` (and
the label binarizer behind them), ``n_iter_``, ``t_``, ``loss_``, ``loss_curve_``,
``best_loss_``, ``validation_scores_``, ``best_validation_score_``.

Not carried over (documented difference): the solver's internal state (Adam's moments, SGD's
velocities). ``partial_fit`` on the converted estimator starts a fresh optimizer, as
scikit-learn's own ``fit`` does; ``fit`` with ``warm_start=True`` continues from the weights.
"""
from __future__ import annotations

import copy

import numpy as np
import sklearn.neural_network as sk_nn
from sklearn.exceptions import NotFittedError

from nnfast.sklearn._network import ACT, Network

_STATE = ("n_features_in_", "feature_names_in_", "n_outputs_", "n_layers_", "out_activation_",
          "classes_", "_label_binarizer", "n_iter_", "t_", "loss_", "loss_curve_",
          "best_loss_", "validation_scores_", "best_validation_score_",
          "_no_improvement_count")


def _check_fitted(est, fn: str, what: str) -> None:
    coefs = getattr(est, "coefs_", None)
    if not coefs or getattr(est, "intercepts_", None) is None:
        raise NotFittedError(f"{fn}: {what} is not fitted; call fit(X, y) first")
    if est.activation not in ACT:
        raise ValueError(f"{fn}: {what}.activation={est.activation!r} is not supported; "
                         f"expected one of {', '.join(ACT)}")
    out = {"MLPClassifier": ("softmax", "logistic"), "MLPRegressor": ("identity", "exp")}
    want = out[type(est).__name__]
    if getattr(est, "out_activation_", None) not in want:
        raise ValueError(f"{fn}: {what}.out_activation_={est.out_activation_!r} is not "
                         f"supported; expected one of {', '.join(want)}")


def _copy_state(src, dst, coefs: list, intercepts: list) -> None:
    for name in _STATE:
        if hasattr(src, name):
            setattr(dst, name, copy.deepcopy(getattr(src, name)))
    dst.coefs_, dst.intercepts_ = coefs, intercepts


def from_sklearn(cls, est):
    """A fitted nnfast estimator with the parameters, weights and fitted attributes of the
    fitted scikit-learn estimator ``est`` of the same name (see nnfast/sklearn/_convert.py).

    Raises TypeError when ``est`` is not that scikit-learn class, NotFittedError (a
    ValueError) when it is not fitted, ValueError for an activation nnfast does not have.

    >>> from sklearn.neural_network import MLPClassifier as SkMLP
    >>> from nnfast.sklearn import MLPClassifier
    >>> sk = SkMLP(hidden_layer_sizes=(3,), max_iter=5).fit([[0.], [1.]], [0, 1])  # doctest: +SKIP
    >>> MLPClassifier.from_sklearn(sk).predict([[1.]])                          # doctest: +SKIP
    array([1])
    """
    fn = f"{cls.__name__}.from_sklearn"
    sk_cls = getattr(sk_nn, cls.__name__)
    if not isinstance(est, sk_cls):
        raise TypeError(f"{fn}: est must be a sklearn.neural_network.{cls.__name__}, got "
                        f"{type(est).__module__}.{type(est).__name__}")
    _check_fitted(est, fn, "est")
    params = cls().get_params()
    new = cls(**{k: v for k, v in est.get_params().items() if k in params})
    coefs = [np.asarray(c) for c in est.coefs_]
    dtype = np.result_type(*coefs, *est.intercepts_)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    units = [coefs[0].shape[0]] + [c.shape[1] for c in coefs]
    net = Network(units, ACT[est.activation], dtype)
    for view, c in zip(net.coefs, coefs):
        view[...] = c
    for view, b in zip(net.intercepts, est.intercepts_):
        view[...] = b
    _copy_state(est, new, list(net.coefs), list(net.intercepts))
    new._net = net
    new._best_params = net.params.copy()
    return new


def to_sklearn(self):
    """The fitted scikit-learn estimator of the same name with this one's parameters, weights
    (copies) and fitted attributes (see nnfast/sklearn/_convert.py). Raises NotFittedError
    when this estimator is not fitted."""
    fn = f"{type(self).__name__}.to_sklearn"
    if getattr(self, "_net", None) is None:
        raise NotFittedError(f"{fn}: this {type(self).__name__} is not fitted; call "
                             f"fit(X, y) first")
    self._sync_params()
    _check_fitted(self, fn, "the estimator")
    sk_cls = getattr(sk_nn, type(self).__name__)
    params = sk_cls().get_params()
    est = sk_cls(**{k: v for k, v in self.get_params().items() if k in params})
    _copy_state(self, est, [np.array(c) for c in self.coefs_],
                [np.array(b) for b in self.intercepts_])
    return est
