"""Solvers with scikit-learn's semantics on nnfast's flat-buffer updates.

Each stochastic solver updates the whole parameter buffer with two fused calls: the
coefficients with the L2 term as weight decay (g + alpha/Σw_batch·W), the intercepts without.

Every hyperparameter scikit-learn accepts is accepted here. Where the kernels' domain is
narrower, the step runs scikit-learn's own NumPy arithmetic instead, decided once per case:
- a negative decay (a batch whose sample weights sum to a negative number): the term is added to
  the gradient before the kernel call (the kernels take weight_decay >= 0);
- in a float32 model, a rate that rounds to 1 (beta_1, beta_2, momentum = 1 - 1e-9) or an
  epsilon that rounds to 0 (1e-50), values the kernels reject, and momentum = 1 (Adam keeps
  its moments in float64 then, so epsilon = 1e-50 still guards the division);
- SGD after the learning rate fell to 0 or so far that nnfast's velocity convention would
  overflow (invscaling with a large power_t).
"""
from __future__ import annotations

import math
import os

import numpy as np

from nnfast import _warn, ops


def sklearn_dir() -> tuple:
    """scikit-learn's directory: the estimators' fit runs under its ``_fit_context`` wrapper,
    whose frame a warning must skip to name the user's line (nnfast/_warn.py)."""
    import sklearn
    return (os.path.dirname(os.path.abspath(sklearn.__file__)) + os.sep,)


def _with_decay(params, grads, n_coef: int, decay: float) -> np.ndarray:
    """The gradient with scikit-learn's L2 term (a copy; the buffer is left as computed)."""
    g = grads.copy()
    g[:n_coef] += decay * params[:n_coef]
    return g


class Adam:
    """scikit-learn's Adam: lr_t = lr·√(1-β2^t)/(1-β1^t); W -= lr_t·m/(√v + ε).

    nnfast's adam_update divides by √v̂ + ε' with v̂ = v/(1-β2^t); ε' = ε/√(1-β2^t) makes
    the two identical.
    """

    def __init__(self, size: int, dtype, lr: float, beta_1: float, beta_2: float,
                 epsilon: float) -> None:
        self.learning_rate_init = self.learning_rate = float(lr)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.t = 0
        self.m = np.zeros(size, dtype)
        self.v = np.zeros(size, dtype)
        ft = np.dtype(dtype).type
        with np.errstate(over="ignore"):  # epsilon=1e300 is inf in float32: the kernel takes it
            self._numpy = bool(ft(beta_1) >= 1 or ft(beta_2) >= 1 or ft(epsilon) <= 0)
        if self._numpy:
            # float64 moments: epsilon = 1e-50 then counts, as in scikit-learn's MLPRegressor
            # on float32 X (its float64 targets make the gradients, hence m and v, float64)
            self.m, self.v = np.zeros(size), np.zeros(size)

    def _numpy_step(self, params, grads, n_coef: int, decay: float) -> None:
        """scikit-learn's AdamOptimizer._get_updates, the same operations on float64 moments."""
        b1, b2 = self.beta_1, self.beta_2
        g = _with_decay(params, grads, n_coef, decay).astype(np.float64)
        self.m *= b1
        self.m += (1 - b1) * g
        self.v *= b2
        self.v += (1 - b2) * (g * g)
        lr = self.learning_rate_init * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        params -= lr * self.m / (np.sqrt(self.v) + self.epsilon)

    def step(self, params: np.ndarray, grads: np.ndarray, n_coef: int, decay: float) -> None:
        self.t += 1
        if self._numpy:
            return self._numpy_step(params, grads, n_coef, decay)
        if decay < 0:
            grads[:n_coef] += grads.dtype.type(decay) * params[:n_coef]
            decay = 0.0
        eps = self.epsilon / math.sqrt(1.0 - self.beta_2 ** self.t)
        kw = {"lr": self.learning_rate_init, "beta1": self.beta_1, "beta2": self.beta_2,
              "eps": eps}
        c = slice(0, n_coef)
        b = slice(n_coef, None)
        ops.adam_update(params[c], grads[c], self.m[c], self.v[c], self.t,
                        weight_decay=decay, **kw)
        ops.adam_update(params[b], grads[b], self.m[b], self.v[b], self.t, **kw)

    def iteration_ends(self, time_step: int) -> None:
        pass

    def trigger_stopping(self, msg: str, verbose) -> bool:
        if verbose:
            print(msg + " Stopping.")
        return True


class SGD:
    """scikit-learn's SGD: v ← μv - lr·g; W += v (Nesterov: W += μv - lr·g); learning-rate
    schedules constant, invscaling (lr_init/(t+1)^power_t after each epoch) and adaptive (÷5
    when stuck). nnfast's sgd_update keeps u = -v/lr (PyTorch's convention); when lr changes,
    u is rescaled so that v, and hence every step, is scikit-learn's.
    """

    def __init__(self, size: int, dtype, lr: float, schedule: str, momentum: float,
                 nesterov: bool, power_t: float) -> None:
        self.learning_rate_init = self.learning_rate = float(lr)
        self.schedule, self.momentum, self.power_t = schedule, float(momentum), power_t
        self.nesterov = bool(nesterov) and self.momentum > 0
        self.velocity = np.zeros(size, dtype)
        # True: velocity holds scikit-learn's v and steps run its NumPy arithmetic (momentum
        # 1, or rounding to 1 in the dtype: outside the kernel's [0, 1))
        self._numpy = bool(np.dtype(dtype).type(self.momentum) >= 1)

    def step(self, params: np.ndarray, grads: np.ndarray, n_coef: int, decay: float) -> None:
        lr, mu = self.learning_rate, self.momentum
        if self._numpy:  # scikit-learn's SGDOptimizer._get_updates
            g = _with_decay(params, grads, n_coef, decay)
            v = self.velocity
            v *= mu
            v -= lr * g
            params += (mu * v - lr * g) if self.nesterov else v
            return
        if decay < 0:
            grads[:n_coef] += grads.dtype.type(decay) * params[:n_coef]
            decay = 0.0
        vel = self.velocity if mu > 0 else None
        kw = {"lr": lr, "momentum": mu, "nesterov": self.nesterov}
        c, b = slice(0, n_coef), slice(n_coef, None)
        ops.sgd_update(params[c], grads[c], None if vel is None else vel[c],
                       weight_decay=decay, **kw)
        ops.sgd_update(params[b], grads[b], None if vel is None else vel[b], **kw)

    def _set_lr(self, lr: float) -> None:
        if not self._numpy:
            # kernel convention u = -v/lr: rescale u so v is unchanged, unless that leaves the
            # dtype's range (lr -> 0); then switch to scikit-learn's v for good
            scale = self.velocity.dtype.type(self.learning_rate / lr) if lr > 0 else np.inf
            peak = float(np.max(np.abs(self.velocity), initial=0.0))
            if np.isfinite(scale) and np.isfinite(peak * float(scale)) and peak * float(scale) \
                    <= np.finfo(self.velocity.dtype).max:
                self.velocity *= scale
            else:
                self.velocity *= self.velocity.dtype.type(-self.learning_rate)
                self._numpy = True
        self.learning_rate = lr

    def iteration_ends(self, time_step: int) -> None:
        if self.schedule == "invscaling":
            try:
                lr = self.learning_rate_init / (time_step + 1) ** self.power_t
            except OverflowError:  # scikit-learn raises here (power_t = 300, 1e300); lr -> 0
                lr = 0.0
            self._set_lr(lr)

    def trigger_stopping(self, msg: str, verbose) -> bool:
        if self.schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._set_lr(self.learning_rate / 5.0)
        if verbose:
            print(f"{msg} Setting learning rate to {self.learning_rate:f}")
        return False


def lbfgs(fun, x0: np.ndarray, max_iter: int, max_fun: int, tol: float, verbose):
    """Minimize fun(x) -> (loss, grad) with SciPy's L-BFGS-B; returns (x, loss, n_iter).

    Warns ConvergenceWarning like scikit-learn when SciPy reports no convergence.
    """
    try:
        import scipy
        import scipy.optimize
    except ImportError as exc:  # pragma: no cover - scikit-learn itself needs SciPy
        raise ImportError('solver="lbfgs" needs SciPy: pip install "nnfast[sklearn]"') from exc
    from sklearn.exceptions import ConvergenceWarning

    options = {"maxfun": max_fun, "maxiter": max_iter, "gtol": tol}
    major, minor = (int(p) for p in scipy.__version__.split(".")[:2])
    if (major, minor) < (1, 15):  # iprint is deprecated from SciPy 1.15 on
        options["iprint"] = 1 if (verbose is True or verbose >= 1) else -1
    res = scipy.optimize.minimize(fun, x0.astype(np.float64), method="L-BFGS-B", jac=True,
                                  options=options)
    n_iter = min(res.nit, max_iter)
    if res.status != 0:
        msg = (f"lbfgs failed to converge after {n_iter} iteration(s) "
               f"(status={res.status}):\n{res.message}\n")
        if n_iter == max_iter:
            msg += ("\nIncrease the number of iterations to improve the convergence "
                    f"(max_iter={max_iter}).")
        msg += ("\nYou might also want to scale the data as shown in:\n"
                "    https://scikit-learn.org/stable/modules/preprocessing.html")
        _warn.warn(msg, ConvergenceWarning, skip=sklearn_dir())
    return res.x, float(res.fun), n_iter
