"""The scikit-learn drop-in's training step in one call (issue 13): the backend's TrainStep
(nnfast/backends/_ref_step.py, csrc/nn/step.c), as Sequential's fit uses it.

It covers the common case and leaves the rest on the per-layer path of _base.py
(``_batch_loss`` + the solver's ``step``), decided once per fit and, for what the solver may
change between steps, at every step:

- dense X (not sparse) and a softmax output (MLPClassifier with 3+ classes, integer labels),
  no sample_weight (so the L2 decay alpha / n is >= 0);
- the solver's kernel arithmetic (not its NumPy fallback: ``_numpy`` False).

It runs the same kernels in the same order as the per-layer path, so the coefficients, the
solver state and ``loss_curve_`` are bit-identical (tests/test_train_step.py): forward (hidden
``act``, output identity: logits), softmax cross-entropy (mean), backward, then each layer's
update right after its gradient, its coefficients with scikit-learn's L2 term as weight decay
alpha / n and its intercepts without. The L2 term of the loss is computed from the weights
before the call, as ``_batch_loss`` computes it before its backward pass. relu's backward reads
the stored pre-activation where the per-layer path reads the output (relu'(z) = [z > 0] =
[relu(z) > 0]: the same bits).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from nnfast import backends
from nnfast.sklearn._solvers import SGD, Adam

_NEEDS_Z = frozenset({"relu"})


class Step:
    def __init__(self, est, X, targets, opt):
        net = self._net = est._net
        n = net._rows
        self.opt = opt
        specs = []
        for i in range(net.n_layers):
            act = net._layer_act(i)
            m = net.shapes[i][1]
            spec = {"kind": "dense", "W": net.coefs[i], "b": net.intercepts[i],
                    "dW": net._gW[i], "db": net._gb[i], "activation": act,
                    "y": net._acts[i], "dz": net._dz[i], "dx": net._dx[i] if i else None}
            if act in _NEEDS_Z:
                spec["z"] = np.empty((n, m), net.dtype)
            specs.append(spec)
        loss = {"kind": "softmax_cross_entropy", "labels": True, "dout": net.dlogits}
        if isinstance(opt, Adam):
            ospec = {"kind": "adam", "beta_1": opt.beta_1, "beta_2": opt.beta_2,
                     "epsilon": opt.epsilon, "state": (opt.m, opt.v)}
            self.state = (opt.m, opt.v)
        else:
            ospec = {"kind": "sgd", "momentum": opt.momentum, "nesterov": opt.nesterov,
                     "state": (opt.velocity,) if opt.momentum > 0 else ()}
            self.state = (opt.velocity,)
        ospec["bias_decay"] = False       # scikit-learn's L2 term covers the coefficients only
        self.xb = np.empty((n,) + X.shape[1:], net.dtype)
        self.yb = np.empty(n, np.int64)
        self.ts = backends.plan("make_train_step")(specs, loss, ospec, net.params, net.grads, 0,
                                                   n, X.shape[1:])

    def usable(self) -> bool:
        """The solver still runs its kernels on the arrays the step was built with."""
        opt = self.opt
        state = (opt.m, opt.v) if isinstance(opt, Adam) else (opt.velocity,)
        return not opt._numpy and all(a is b for a, b in zip(state, self.state))

    def run(self, est, X, targets, idx, start: int, stop: int) -> float:
        """One step on rows start:stop (of idx when shuffling): the batch loss with the L2
        term, as ``_batch_loss`` returns it, after the solver's update."""
        n, opt, net = stop - start, self.opt, self._net
        penalty = 0.5 * est.alpha * net.sum_sq_coefs() / n
        decay = est.alpha / n
        if isinstance(opt, Adam):
            opt.t += 1
            eps = opt.epsilon / math.sqrt(1.0 - opt.beta_2 ** opt.t)
            loss = self.ts.run(X, targets, None, idx, start, stop, self.xb, self.yb, None,
                               opt.learning_rate_init, opt.t, 0, decay, eps)
        else:
            loss = self.ts.run(X, targets, None, idx, start, stop, self.xb, self.yb, None,
                               opt.learning_rate, 1, 0, decay)
        loss += penalty
        return loss


def for_fit(est, X, targets, sample_weight, opt):
    """The one-call step for this fit, or None (the per-layer path): see the module docstring."""
    if (sp.issparse(X) or sample_weight is not None or est.alpha < 0
            or getattr(est, "out_activation_", None) != "softmax"
            or not isinstance(opt, (Adam, SGD)) or opt._numpy
            or not X.flags.c_contiguous or X.dtype != est._net.dtype
            or targets.dtype != np.int64 or not targets.flags.c_contiguous):
        return None
    return Step(est, X, targets, opt)
