"""Solvers with scikit-learn's semantics on nnfast's flat-buffer updates.

Each stochastic solver updates the whole parameter buffer with two fused calls: the
coefficients with the L2 term as weight decay (g + alpha/n_batch·W), the intercepts without.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from nnfast import ops


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

    def step(self, params: np.ndarray, grads: np.ndarray, n_coef: int, decay: float) -> None:
        self.t += 1
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

    def step(self, params: np.ndarray, grads: np.ndarray, n_coef: int, decay: float) -> None:
        lr, mu = self.learning_rate, self.momentum
        if mu >= 1.0:  # allowed by scikit-learn, outside the kernel's [0, 1) range
            g = grads.copy()
            g[:n_coef] += decay * params[:n_coef]
            self.velocity *= mu
            self.velocity += g
            params -= lr * (g + mu * self.velocity if self.nesterov else self.velocity)
            return
        vel = self.velocity if mu > 0 else None
        kw = {"lr": lr, "momentum": mu, "nesterov": self.nesterov}
        c, b = slice(0, n_coef), slice(n_coef, None)
        ops.sgd_update(params[c], grads[c], None if vel is None else vel[c],
                       weight_decay=decay, **kw)
        ops.sgd_update(params[b], grads[b], None if vel is None else vel[b], **kw)

    def _set_lr(self, lr: float) -> None:
        if lr > 0:
            self.velocity *= self.velocity.dtype.type(self.learning_rate / lr)
        self.learning_rate = lr

    def iteration_ends(self, time_step: int) -> None:
        if self.schedule == "invscaling":
            self._set_lr(self.learning_rate_init / (time_step + 1) ** self.power_t)

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
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)
    return res.x, float(res.fun), n_iter
