"""Shared machinery of MLPClassifier and MLPRegressor: parameters, fitting loop, prediction.

Semantics follow scikit-learn's BaseMultilayerPerceptron (same loss with the L2 term
alpha/(2·Σw)·Σ‖W‖² per batch, same random stream for initialization, shuffling and the
validation split, same convergence logic and messages); the arithmetic runs through
nnfast.ops on the flat buffers of a Network.
"""
from __future__ import annotations

from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import validate_data

from nnfast import _warn
from nnfast._threads import blas_limited
from nnfast.sklearn import _step
from nnfast.sklearn._checks import (
    batch_weight_sum,
    check_sample_weight,
    hidden_sizes,
    user_rows,
)
from nnfast.sklearn._network import ACT, Network
from nnfast.sklearn._solvers import SGD, Adam, lbfgs, sklearn_dir

_STOCHASTIC = ("sgd", "adam")


def _shuffle(idx: np.ndarray, random_state: np.random.RandomState) -> None:
    """``idx = sklearn.utils.shuffle(idx, random_state=random_state)``, in place.

    scikit-learn draws a permutation p by ``random_state.shuffle(np.arange(n))`` and returns
    idx[p]; the swaps do not depend on the values, so shuffling idx itself gives idx[p] from
    the same draws, without shuffle's input checks (~0.5 ms an epoch).
    """
    random_state.shuffle(idx)


class BaseMLP(BaseEstimator):
    """Base of the nnfast multi-layer perceptrons; use MLPClassifier or MLPRegressor."""

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
    }

    # -- hooks of the subclasses -----------------------------------------------------------
    def _validate_input(self, X, y, incremental, reset):  # -> (X, y 2-D)
        raise NotImplementedError

    def _out_activation(self) -> str:
        raise NotImplementedError

    def _targets(self, y: np.ndarray, dtype) -> np.ndarray:
        """What the loss reads: float (n, M) by default."""
        return np.ascontiguousarray(y, dtype=dtype)

    def _data_loss(self, logits, targets, weights, grad) -> float:
        """Loss of the batch without the L2 term; writes d loss/d logits into grad.
        weights = sample weights divided by their sum (None: plain mean)."""
        raise NotImplementedError

    def _score(self, X, y, sample_weight=None) -> float:
        raise NotImplementedError

    def _val_targets(self, y_val):
        return y_val

    # -- parameters as views into the flat buffer ------------------------------------------
    def _sync_params(self) -> None:
        """Copy user-assigned coefs_/intercepts_ entries into the flat buffer, so that
        `est.coefs_[0] = W` and `est.coefs_ = [...]` take effect like in-place edits do."""
        net = self._net
        for name, views in (("coefs_", net.coefs), ("intercepts_", net.intercepts)):
            current = getattr(self, name)
            if current is not None and len(current) == len(views) and all(
                    a is v for a, v in zip(current, views)):
                continue
            if current is None or len(current) != len(views):
                raise ValueError(f"{name} must be a list of {len(views)} arrays, got "
                                 f"{None if current is None else len(current)}")
            for i, (a, v) in enumerate(zip(current, views)):
                a = np.asarray(a)
                if a.shape != v.shape:
                    raise ValueError(f"{name}[{i}] must have shape {v.shape}, got {a.shape}")
                if a is not v:
                    v[...] = a
            setattr(self, name, list(views))

    def _expose(self) -> None:
        self.coefs_ = list(self._net.coefs)
        self.intercepts_ = list(self._net.intercepts)

    def __getstate__(self):
        if getattr(self, "_net", None) is not None:
            self._sync_params()
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        state.pop("coefs_", None)
        state.pop("intercepts_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if getattr(self, "_net", None) is not None:
            self._expose()

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, incremental=False):
        with blas_limited():  # our OpenMP pool and OpenBLAS's must not fight for cores
            return self._fit_unlimited(X, y, sample_weight, incremental)

    def _fit_unlimited(self, X, y, sample_weight=None, incremental=False):
        hidden = hidden_sizes(self.hidden_layer_sizes, type(self).__name__)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        if not first_pass:
            X = X.astype(self._net.dtype, copy=False)
        sample_weight = check_sample_weight(sample_weight, X, X.dtype,
                                            full_batch=self.solver not in _STOCHASTIC)
        self.n_outputs_ = y.shape[1]
        units = [X.shape[1]] + hidden + [self.n_outputs_]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(units, X.dtype)
        else:
            self._sync_params()
            if units != self._net.units:
                raise ValueError(f"layer sizes {units} differ from the fitted ones "
                                 f"{self._net.units}; refit without warm_start")
        if sp.issparse(X):
            X = X.tocsr()
        self._net.act = ACT[self.activation]
        targets = self._targets(y, X.dtype)
        if self.solver in _STOCHASTIC:
            self._fit_stochastic(X, y, targets, sample_weight, incremental)
        else:
            self._fit_lbfgs(X, targets, sample_weight)
        self._net.release()
        if not np.isfinite(self._net.params).all():
            raise ValueError("Solver produced non-finite parameter weights. The input data may"
                             " contain large values and need to be preprocessed.")
        return self

    def _initialize(self, units: list, dtype) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(units)
        self.out_activation_ = self._out_activation()
        self._net = net = Network(units, ACT[self.activation], dtype)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for W, b in zip(net.coefs, net.intercepts):
            bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
            W[...] = self._random_state.uniform(-bound, bound, W.shape)
            b[...] = self._random_state.uniform(-bound, bound, b.shape[0])
        self._expose()
        self._best_params = net.params.copy()
        if self.solver in _STOCHASTIC:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _batch_loss(self, xb, tb, swb, where=None) -> tuple[float, float]:
        """Forward, fused loss, backward for one batch; returns (loss with L2, decay).
        where() -> (the batch's rows of the user's X, epoch): called only to name a zero
        weight sum."""
        net = self._net
        n = xb.shape[0]
        sw_sum = n if swb is None else batch_weight_sum(swb, where)
        weights = None if swb is None else swb / swb.dtype.type(sw_sum)
        logits = net.forward(xb)
        grad = net.dlogits[:n]
        loss = self._data_loss(logits, tb, weights, grad)
        loss += 0.5 * self.alpha * net.sum_sq_coefs() / sw_sum
        net.backward(xb, grad)
        return loss, self.alpha / sw_sum

    def _fit_lbfgs(self, X, targets, sample_weight) -> None:
        net = self._net
        net.reserve(X.shape[0])

        def fun(x):
            net.params[...] = x
            loss, decay = self._batch_loss(X, targets, sample_weight,
                                           lambda: (np.arange(X.shape[0]), 1))
            nc = net.n_coef
            net.grads[:nc] += net.dtype.type(decay) * net.params[:nc]
            return loss, net.grads.astype(np.float64)

        x, self.loss_, self.n_iter_ = lbfgs(fun, net.params, self.max_iter, self.max_fun,
                                            self.tol, self.verbose)
        net.params[...] = x

    def _make_optimizer(self):
        size, dtype = self._net.params.size, self._net.dtype
        if self.solver == "sgd":
            return SGD(size, dtype, self.learning_rate_init, self.learning_rate, self.momentum,
                       self.nesterovs_momentum, self.power_t)
        return Adam(size, dtype, self.learning_rate_init, self.beta_1, self.beta_2,
                    self.epsilon)

    def _split(self, X, y, targets, sample_weight):
        """scikit-learn's validation split (same random draws): train and validation parts."""
        n = X.shape[0]
        stratify = y if (is_classifier(self) and self.n_outputs_ == 1) else None
        train, val = train_test_split(np.arange(n), random_state=self._random_state,
                                      test_size=self.validation_fraction, stratify=stratify)
        if val.shape[0] < 2:
            raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                             "or the size of your dataset.")
        sw_t = sw_v = None
        if sample_weight is not None:
            sw_t, sw_v = sample_weight[train], sample_weight[val]
        return ((X[train], targets[train], sw_t), (X[val], self._val_targets(y[val]), sw_v),
                train)

    def _fit_stochastic(self, X, y, targets, sample_weight, incremental) -> None:
        net = self._net
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early = self.early_stopping
        if early:
            (X, targets, sample_weight), val, train_rows = self._split(X, y, targets,
                                                                      sample_weight)
        else:
            val, train_rows = None, None
        n = X.shape[0]
        if self.batch_size == "auto":
            bs = min(200, n)
        else:
            if self.batch_size > n:
                _warn.warn("Got `batch_size` less than 1 or larger than "
                           "sample size. It is going to be clipped", skip=sklearn_dir())
            bs = int(np.clip(self.batch_size, 1, n))
        net.reserve(bs)
        dense = not sp.issparse(X)
        if dense and self.shuffle:
            xbuf = np.empty((bs,) + X.shape[1:], X.dtype)
            tbuf = np.empty((bs,) + targets.shape[1:], targets.dtype)
        idx = np.arange(n, dtype=np.int64)
        opt = self._optimizer
        fast = _step.for_fit(self, X, targets, sample_weight, opt)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    _shuffle(idx, self._random_state)
                total = 0.0
                for sl in gen_batches(n, bs):
                    if fast is not None and fast.usable():   # one call: sklearn/_step.py
                        loss = fast.run(self, X, targets, idx if self.shuffle else None,
                                        sl.start, sl.stop)
                        total += loss * (sl.stop - sl.start)
                        continue
                    if not self.shuffle:
                        xb, tb = X[sl], targets[sl]
                        swb = None if sample_weight is None else sample_weight[sl]
                    else:
                        bi = idx[sl]
                        m = bi.shape[0]
                        if dense:
                            # mode="clip": indices are valid, and "raise" buffers out=
                            xb = X.take(bi, axis=0, out=xbuf[:m], mode="clip")
                            tb = targets.take(bi, axis=0, out=tbuf[:m], mode="clip")
                        else:
                            xb, tb = X[bi], targets[bi]
                        swb = None if sample_weight is None else sample_weight[bi]
                    loss, decay = self._batch_loss(
                        xb, tb, swb, lambda sl=sl: user_rows(train_rows, idx, sl, self.shuffle,
                                                              self.n_iter_ + 1))
                    total += loss * (sl.stop - sl.start)
                    opt.step(net.params, net.grads, net.n_coef, decay)
                self.n_iter_ += 1
                self.loss_ = total / n
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                if self.verbose:
                    print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                self._update_no_improvement_count(early, val)
                opt.iteration_ends(self.t_)
                if self._no_improvement_count > self.n_iter_no_change:
                    what = ("Validation score did not improve" if early
                            else "Training loss did not improve")
                    msg = (f"{what} more than tol={self.tol:f} for "
                           f"{self.n_iter_no_change} consecutive epochs.")
                    if opt.trigger_stopping(msg, self.verbose):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    _warn.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                               "reached and the optimization hasn't converged yet.",
                               ConvergenceWarning, skip=sklearn_dir())
        except KeyboardInterrupt:
            _warn.warn("Training interrupted by user.", skip=sklearn_dir())
        if early:
            net.params[...] = self._best_params

    def _update_no_improvement_count(self, early, val) -> None:
        if early:
            score = self._score(*val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params[...] = self._net.params
        else:
            last = self.loss_curve_[-1]
            if last > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, last)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : the fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in _STOCHASTIC:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    # -- prediction ------------------------------------------------------------------------
    def _forward_pass_fast(self, X, check_input=True) -> np.ndarray:
        """Output-layer activations of X (the model's dtype)."""
        if check_input:
            X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        self._sync_params()
        self._net.act = ACT[self.activation]
        dtype = self._net.dtype
        X = X.astype(dtype, copy=False) if sp.issparse(X) else np.asarray(X, dtype=dtype)
        return self._net.predict(X, self.out_activation_)

    def _score_with(self, X, y, sample_weight, metric) -> float:
        y_pred = self._predict(X, check_input=False)
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return metric(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

