"""The network behind the estimators: all weights in one flat buffer, layers as views into it.

Layout of the flat buffer (the order of scikit-learn's packed vector, so L-BFGS sees the same
parameter vector): every coefficient matrix W_i (in_i, out_i) row-major, then every intercept
b_i (out_i,). The gradient buffer has the same layout; the first `n_coef` entries are the
L2-regularized ones. Activations and their gradients live in a workspace sized for the largest
batch, reused by every step (slices of its leading rows are contiguous views).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nnfast import ops

# scikit-learn's names → nnfast's
ACT = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


def _split(buf: np.ndarray, shapes: list) -> tuple[list, list]:
    """Views of `buf`: one (k, m) matrix per layer, then one (m,) vector per layer."""
    coefs, intercepts, start = [], [], 0
    for k, m in shapes:
        coefs.append(buf[start:start + k * m].reshape(k, m))
        start += k * m
    for _, m in shapes:
        intercepts.append(buf[start:start + m])
        start += m
    return coefs, intercepts


class Network:
    """Weights, gradients and workspaces of a fully connected net.

    units = [n_features, hidden..., n_outputs]; `activation` is the nnfast name of the hidden
    activation. forward() returns the output layer's pre-activation (logits); the estimators apply
    the output activation or a fused loss on it.
    """

    def __init__(self, units: list, activation: str, dtype) -> None:
        self.units = [int(u) for u in units]
        self.shapes = list(zip(self.units[:-1], self.units[1:]))
        self.n_layers = len(self.shapes)
        self.act = activation
        self.dtype = np.dtype(dtype)
        self.n_coef = sum(k * m for k, m in self.shapes)
        size = self.n_coef + sum(m for _, m in self.shapes)
        self.params = np.zeros(size, self.dtype)
        self.grads = np.zeros(size, self.dtype)
        self.coefs, self.intercepts = _split(self.params, self.shapes)
        self._gW, self._gb = _split(self.grads, self.shapes)
        self._rows = 0

    def __getstate__(self):  # views and workspaces are rebuilt, not pickled
        return {"units": self.units, "act": self.act, "dtype": self.dtype.str,
                "params": self.params}

    def __setstate__(self, state):
        self.__init__(state["units"], state["act"], state["dtype"])
        self.params[...] = state["params"]

    # -- workspace -------------------------------------------------------------------------
    def reserve(self, rows: int) -> None:
        """Workspaces for batches of up to `rows` rows (allocated once, then reused)."""
        if rows <= self._rows:
            return
        dt, out = self.dtype, [m for _, m in self.shapes]
        self._acts = [np.empty((rows, m), dt) for m in out]     # layer outputs (last: logits)
        self._dx = [np.empty((rows, k), dt) for k, _ in self.shapes]   # d loss / d input
        self._dz = [np.empty((rows, m), dt) for m in out]       # d loss / d pre-activation
        self.dlogits = np.empty((rows, out[-1]), dt)
        self._rows = rows

    def release(self) -> None:
        """Drop the workspaces (a fitted estimator keeps only weights and optimizer state)."""
        self._acts = self._dx = self._dz = self.dlogits = None
        self._rows = 0

    # -- passes ----------------------------------------------------------------------------
    def _layer_act(self, i: int) -> str:
        return "identity" if i == self.n_layers - 1 else self.act

    def forward(self, x) -> np.ndarray:
        """Logits of the batch x (dense or CSR, n <= reserved rows), kept for backward()."""
        n, a, sparse = x.shape[0], x, sp.issparse(x)  # only the input can be sparse
        for i in range(self.n_layers):
            out, act = self._acts[i][:n], self._layer_act(i)
            if sparse and i == 0:
                pre = out if act == "identity" else self._dz[i][:n]
                pre[...] = a @ self.coefs[i]
                pre += self.intercepts[i]
                if act != "identity":
                    ops.activation_forward(pre, act, out=out)
            else:
                ops.dense_forward(a, self.coefs[i], self.intercepts[i], act, out=out)
            a = out
        return a

    def backward(self, x, dlogits: np.ndarray) -> None:
        """Fill the gradient buffer from d loss / d logits of the last forward() batch x."""
        n, d, sparse = x.shape[0], dlogits, sp.issparse(x)
        for i in reversed(range(self.n_layers)):
            act, y = self._layer_act(i), self._acts[i][:n]
            # relu'(z) = [z > 0] = [relu(z) > 0]: the output stands in for the pre-activation
            z = y if act == "relu" else None
            inp = x if i == 0 else self._acts[i - 1][:n]
            dz = None if act == "identity" else self._dz[i][:n]
            if sparse and i == 0:
                if dz is not None:
                    d = ops.activation_backward(d, z, y, act, out=dz)
                self._gW[i][...] = inp.T @ d
                ops.column_sums(d, out=self._gb[i])
                continue
            need_dx = i > 0
            # y is passed for identity too: the reference dense_backward reads its dtype
            ops.dense_backward(d, inp, self.coefs[i], z, y, act, dW=self._gW[i], db=self._gb[i],
                               dx=self._dx[i][:n] if need_dx else None, dz=dz,
                               need_dx=need_dx)
            d = self._dx[i][:n] if need_dx else None

    def predict(self, x, out_activation: str) -> np.ndarray:
        """Output-layer activations of x, in fresh arrays (training workspaces untouched)."""
        a = x
        for i in range(self.n_layers):
            act = self._layer_act(i)
            if sp.issparse(a):
                z = np.asarray(a @ self.coefs[i])
                z += self.intercepts[i]
                a = ops.activation_forward(z, act) if act != "identity" else z
            else:
                a = ops.dense_forward(a, self.coefs[i], self.intercepts[i], act)
        if out_activation == "exp":
            return np.exp(a, out=a)
        if out_activation in ("softmax", "logistic"):
            name = "softmax" if out_activation == "softmax" else "sigmoid"
            return ops.activation_forward(a, name, out=np.empty_like(a))
        return a

    def sum_sq_coefs(self) -> float:
        """Σ‖W_i‖² over all coefficient matrices (for the L2 term of the loss)."""
        w = self.params[:self.n_coef]
        return float(np.dot(w, w))
