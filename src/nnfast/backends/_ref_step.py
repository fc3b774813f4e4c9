"""The one-call training step (issue 13; image layers: issue 18), reference twin of TrainStep in
src/nnfast/_native/_step.pxi (C: nnf_mlp_train_step_*, csrc/nn/step.c); one layer's forward and
backward: _ref_step_layers.py.

It composes this backend's functions in the order the C does, so it states the step's math:

1. rows: ``index[start:stop]`` gathered from x, y, sample_weight into xb, yb, wb (np.take), or
   the rows ``start:stop`` read in place;
2. forward, training mode: dense ``y = act(x W + b)`` (z kept where act' reads it), activation
   (``identity``: passes its input on, as a fused head), dropout (rate 0: passes it on), flatten,
   reshape; conv2d ``y = act(conv(x, W) + b)``, max / average pooling, global average pooling,
   batch normalization with the batch's statistics (the moving statistics updated in place,
   ``moving = moving·momentum + batch·(1 − momentum)``, as batch_norm_forward does);
3. the fused loss, reduction "mean": ``Σ_i w_i·l_i / n`` and d loss / d outputs into dout;
4. backward from the last layer down to ``first`` (the first layer with parameters, which skips
   dx); after each dense or conv2d layer: ``dW += W·(2·l2)``, ``dW += sign(W)·l1`` (each product
   rounded to the dtype first, as nnfast.regularizers does); then each layer with parameters
   gets its optimizer update over its slices of params (W and b; batch norm: gamma and beta):
   the updates are elementwise, so per slice = one call over all; b (beta) without
   weight_decay when ``bias_decay`` is False;
5. with ``clipnorm``: clip the whole gradient buffer, then one update over it (after step 4).

Arguments (both backends):
  layers: list of dicts, one per layer: ``kind`` "dense" (``W`` (K, M), ``b`` (M,) or None,
      ``dW``, ``db`` views of params/grads, ``activation``, ``alpha``, ``l1``, ``l2``, workspace
      ``y``, ``dz``, ``z``, ``dx``), "activation" (``activation``, ``alpha``, ``y``, ``dx``),
      "dropout" (``rate``, ``seed``, ``y``, ``dx``), "flatten", "reshape" (``shape``: the
      per-sample output shape), "conv2d" (as dense with ``W`` (KH, KW, C, F), ``b`` (F,), plus
      ``strides``, ``padding``, ``dilation_rate``), "max_pool2d" (``pool_size``, ``strides``,
      ``padding``, ``y``, ``dx``, ``argmax`` int64), "avg_pool2d" (the same but argmax),
      "global_avg_pool2d" (``y``, ``dx``), "batch_norm" (``gamma``, ``beta`` (C,) or None,
      ``dgamma``, ``dbeta``, ``moving_mean``, ``moving_variance``, ``inv_std`` (C,),
      ``momentum``, ``epsilon``, ``y``, ``xhat``, ``dx``); workspace arrays hold ``capacity``
      rows of the layer's per-sample shape (channels last).
  loss: dict ``kind`` (softmax_cross_entropy, binary_cross_entropy, mse, huber), ``labels``
      (int64 class labels, not probabilities), ``label_smoothing``, ``delta``, ``dout``.
  optimizer: dict ``kind`` (sgd, adam, rmsprop, adagrad), its hyperparameters under Keras'
      names, ``decoupled`` (AdamW), ``bias_decay`` (default True: weight_decay applies to b
      too, as in Keras; False: to W only, scikit-learn's L2 term), ``clipnorm`` (None: off)
      and ``state`` (the flat state
      arrays: SGD (velocity,) when momentum > 0; Adam (m, v); RMSprop (sq,[ velocity]);
      Adagrad (acc,)).
``run(x, y, sample_weight, index, start, stop, xb, yb, wb, lr, t, dropout_step, weight_decay,
epsilon)``: x C-contiguous (N, *input_shape) of the step's dtype; y int32 or int64 class
labels (N,) (loss ``labels``) or targets (N, C) of the step's dtype; sample_weight None or
(N,) of the step's dtype, non-negative on the rows used; index None or a C-contiguous int64
vector of rows, then xb, yb, wb (wb with sample_weight) writeable C-contiguous arrays of
``capacity`` rows to gather into.
Errors: ValueError / TypeError naming TrainStep, the argument and what was expected; both
backends run the same checks in the same order with the same messages, before any work
(tests/test_train_step_checks.py).
"""
from __future__ import annotations

import numpy as np

from nnfast.backends._ref_checks import (
    _check_behaved,
    _float_array,
    _native,
    _real_param,
    _step_param,
)
from nnfast.backends._ref_loss import binary_cross_entropy, huber, mse, softmax_cross_entropy
from nnfast.backends._ref_optim import (
    adagrad_update,
    adam_update,
    clip_grad_norm,
    rmsprop_update,
    sgd_update,
)
from nnfast.backends._ref_step_layers import backward_layer, forward_layer, has_params

_KINDS = ("dense", "activation", "dropout", "flatten", "conv2d", "max_pool2d", "avg_pool2d",
          "global_avg_pool2d", "batch_norm", "reshape")
# the parameters (kernel-like, bias-like) of the layers that have them
_PARAMS = {"dense": ("W", "b"), "conv2d": ("W", "b"), "batch_norm": ("gamma", "beta")}
_LOSSES = ("softmax_cross_entropy", "binary_cross_entropy", "mse", "huber")
_OPTS = ("sgd", "adam", "rmsprop", "adagrad")


class TrainStep:
    """One training step of a Sequential MLP; see the module docstring."""

    def __init__(self, layers, loss, optimizer, params, grads, first, capacity, input_shape):
        fn = "TrainStep"
        if not isinstance(layers, list) or not layers:
            raise ValueError(f"{fn}: layers must be a non-empty list of layer dicts, "
                             f"got {layers!r}")
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"{fn}: capacity must be an int >= 1, got {capacity!r}")
        if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first < len(layers):
            raise ValueError(f"{fn}: first must be a layer index in [0, {len(layers)}), "
                             f"got {first!r}")
        for i, spec in enumerate(layers):
            if spec.get("kind") not in _KINDS:
                raise ValueError(f"{fn}: layers[{i}]['kind'] must be one of {', '.join(_KINDS)},"
                                 f" got {spec.get('kind')!r}")
            if has_params(spec) and i < first:
                raise ValueError(f"{fn}: layers[{i}] is a layer with parameters before "
                                 f"first={first}")
        if not has_params(layers[first]):
            raise ValueError(f"{fn}: layers[{first}] (first) must be the first layer with "
                             f"parameters")
        if loss.get("kind") not in _LOSSES:
            raise ValueError(f"{fn}: loss['kind'] must be one of {', '.join(_LOSSES)}, "
                             f"got {loss.get('kind')!r}")
        if optimizer.get("kind") not in _OPTS:
            raise ValueError(f"{fn}: optimizer['kind'] must be one of {', '.join(_OPTS)}, "
                             f"got {optimizer.get('kind')!r}")
        self.layers, self.loss, self.opt = layers, loss, optimizer
        self.params, self.grads, self.first = params, grads, first
        self.capacity, self.input_shape = capacity, tuple(input_shape)
        base = params.__array_interface__["data"][0]
        self._slices = []
        for spec in layers:
            if spec["kind"] in _PARAMS:
                parts = []
                wname, bname = _PARAMS[spec["kind"]]
                for name, wd in ((wname, True), (bname, optimizer.get("bias_decay", True))):
                    a = spec.get(name)
                    if a is not None:
                        off = (a.__array_interface__["data"][0] - base) // params.itemsize
                        parts.append((slice(off, off + a.size), wd))
                self._slices.append(parts)
            else:
                self._slices.append(None)
        self._wd = optimizer.get("weight_decay", 0.0)
        self._eps = optimizer.get("epsilon", 1e-7)

    def _update_layer(self, i, lr, t, wd, eps):
        for sl, decayed in self._slices[i]:
            self._update(sl, lr, t, wd if decayed else 0.0, eps)

    def _update(self, sl, lr, t, wd, eps):
        o, p, g = self.opt, self.params[sl], self.grads[sl]
        st = [s[sl] for s in o.get("state", ())]
        kind = o["kind"]
        if kind == "sgd":
            sgd_update(p, g, st[0] if st else None, lr=lr, momentum=o.get("momentum", 0.0),
                       nesterov=o.get("nesterov", False), weight_decay=wd)
        elif kind == "adam":
            adam_update(p, g, st[0], st[1], t, lr=lr, beta1=o["beta_1"], beta2=o["beta_2"],
                        eps=eps, weight_decay=wd, decoupled=o.get("decoupled", False))
        elif kind == "rmsprop":
            rmsprop_update(p, g, st[0], lr=lr, rho=o["rho"], eps=eps,
                           momentum=o.get("momentum", 0.0),
                           velocity=st[1] if len(st) > 1 else None, weight_decay=wd)
        else:
            adagrad_update(p, g, st[0], lr=lr, eps=eps, weight_decay=wd)

    def _check_run(self, x, y, w, index, start, stop, xb, yb, wb) -> tuple:
        """The compiled run's checks, in its order and with its messages; returns
        (index[start:stop] or None, n)."""
        fn, dtype = "TrainStep.run", self.params.dtype
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{fn}: x must be a numpy.ndarray, got {type(x).__name__}")
        if _native(x.dtype) not in (np.float32, np.float64):
            raise TypeError(f"{fn}: x must have dtype float32 or float64, got {x.dtype}")
        if _native(x.dtype) != dtype:
            raise TypeError(f"{fn}: x must have dtype {dtype}, got {x.dtype}")
        if not _carray(x) or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"{fn}: x must be C-contiguous of shape (N,) + {self.input_shape}, "
                             f"got {x.shape}")
        N = x.shape[0]
        if not isinstance(y, np.ndarray) or not _carray(y) or y.shape[0] != N:
            raise ValueError(f"{fn}: y must be a C-contiguous array of {N} rows")
        labels = bool(self.loss.get("labels"))
        c = self.loss["dout"].shape[1]
        if labels:
            if y.ndim != 1 or y.dtype not in (np.int64, np.int32):
                raise ValueError(f"{fn}: y must be int32 or int64 class labels of shape ({N},),"
                                 f" got {y.dtype} {y.shape}")
        else:
            _float_array(fn, "y", y, 2, dtype)
            if y.shape[1] != c:
                raise ValueError(f"{fn}: y must have shape ({N}, {c}), got {y.shape}")
        if w is not None:
            _float_array(fn, "sample_weight", w, 1, dtype)
            if w.shape[0] != N or not _carray(w):
                raise ValueError(f"{fn}: sample_weight must be C-contiguous of shape ({N},)")
        rows = N
        if index is not None:
            if (not isinstance(index, np.ndarray) or index.dtype != np.int64 or index.ndim != 1
                    or not _carray(index)):
                raise ValueError(f"{fn}: index must be a C-contiguous int64 vector")
            rows = index.shape[0]
        stop = rows if stop is None else stop
        n = stop - start
        if start < 0 or stop > rows or n < 1 or n > self.capacity:
            raise ValueError(f"{fn}: rows {start}:{stop} must be a non-empty range of at most "
                             f"{self.capacity} rows inside [0, {rows}]")
        idx = None
        if index is not None:
            idx = index[start:stop]
            bad = np.flatnonzero((idx < 0) | (idx >= N))
            if bad.size:
                r = start + int(bad[0])
                raise ValueError(f"{fn}: index[{r}] = {index[r]} is outside [0, {N})")
            _step_buf("xb", xb, (self.capacity,) + self.input_shape, dtype)
            if (not isinstance(yb, np.ndarray) or yb.dtype != y.dtype
                    or yb.shape[0] != self.capacity or yb.shape[1:] != y.shape[1:]
                    or not (_carray(yb) and yb.flags.writeable)):
                raise ValueError(f"{fn}: yb must be a writeable C-contiguous {y.dtype} array of "
                                 f"shape {(self.capacity,) + y.shape[1:]}")
            if w is not None:
                _step_buf("wb", wb, (self.capacity,), dtype)
        rows_at = np.arange(start, stop) if idx is None else idx
        if labels:
            lab = y[rows_at]
            bad = np.flatnonzero((lab < 0) | (lab >= c))
            if bad.size:
                raise ValueError(f"{fn}: labels must lie in [0, {c}), got {lab[bad[0]]}")
        if w is not None:
            bad = np.flatnonzero(w[rows_at] < 0)
            if bad.size:
                j = int(rows_at[bad[0]])
                raise ValueError(f"{fn}: sample_weight must be non-negative, got "
                                 f"{float(w[j])!r} at index {j}")
        return idx, n

    def run(self, x, y, sample_weight=None, index=None, start=0, stop=None, xb=None, yb=None,
            wb=None, lr=0.001, t=1, dropout_step=0, weight_decay=None, epsilon=None):
        """One step on rows start:stop (of index[start:stop] when given); returns the batch
        loss Σ_i w_i·l_i / n (no weight penalty). weight_decay, epsilon: this step's values
        (None: the optimizer's)."""
        fn = "TrainStep.run"
        idx, n = self._check_run(x, y, sample_weight, index, start, stop, xb, yb, wb)
        w = sample_weight
        lr = _real_param(fn, "lr", lr, 0.0)
        if weight_decay is not None:
            weight_decay = _real_param(fn, "weight_decay", weight_decay, 0.0)
        if epsilon is not None:
            epsilon = _real_param(fn, "epsilon", epsilon, 0.0, None, True, False,
                                  self.params.dtype)
        t = _step_param(fn, t)
        if index is not None:
            a = np.take(x, idx, axis=0, out=xb[:n])
            yt = np.take(y, idx, axis=0, out=yb[:n])
            w = None if w is None else np.take(w, idx, out=wb[:n])
        else:
            a, yt = x[start:stop], y[start:stop]
            w = None if w is None else w[start:stop]
        ins, outs = [], []
        for spec in self.layers:       # forward, training mode
            ins.append(a)
            a = forward_layer(spec, a, n, dropout_step)
            outs.append(a)
        ls, dout = self.loss, self.loss["dout"][:n]
        kind = ls["kind"]
        if kind == "softmax_cross_entropy":
            loss, g = softmax_cross_entropy(a, yt, sample_weight=w,
                                            label_smoothing=ls.get("label_smoothing", 0.0),
                                            grad=dout)
        elif kind == "huber":
            loss, g = huber(a, yt, delta=ls.get("delta", 1.0), sample_weight=w, grad=dout)
        else:
            loss, g = (binary_cross_entropy if kind == "binary_cross_entropy" else mse)(
                a, yt, sample_weight=w, grad=dout)
        wd = self._wd if weight_decay is None else weight_decay
        eps = self._eps if epsilon is None else epsilon
        per_layer = self.opt.get("clipnorm") is None
        for i in range(len(self.layers) - 1, self.first - 1, -1):
            spec, need_dx = self.layers[i], i > self.first
            g = backward_layer(spec, g, ins[i], outs[i], n, need_dx, dropout_step)
            if spec["kind"] in _PARAMS:
                if spec["kind"] != "batch_norm":
                    _reg_gradient(spec["W"], spec["dW"], spec.get("l1", 0.0),
                                  spec.get("l2", 0.0))
                if per_layer:
                    self._update_layer(i, lr, t, wd, eps)
        if not per_layer:
            clip_grad_norm(self.grads, self.opt["clipnorm"])
            for i in range(self.first, len(self.layers)):
                if self._slices[i]:
                    self._update_layer(i, lr, t, wd, eps)
        return float(loss)


def _carray(a) -> bool:
    """NumPy's ISCARRAY_RO, what the compiled run asks of its inputs: C-contiguous, aligned,
    native byte order."""
    return a.flags.c_contiguous and a.flags.aligned and a.dtype.isnative


def _step_buf(where: str, a, shape: tuple, dtype) -> None:
    """The compiled _step_buf: a writeable C-contiguous array of the step's dtype, this shape."""
    if a is None:
        raise ValueError(f"TrainStep: {where} is required, got None")
    if not isinstance(a, np.ndarray):
        raise TypeError(f"TrainStep: {where} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype.kind != "f" or a.dtype.itemsize != dtype.itemsize:
        raise TypeError(f"TrainStep: {where} must be {dtype}, got {a.dtype}")
    if tuple(a.shape) != shape:
        raise ValueError(f"TrainStep: {where} must have shape {shape}, got {a.shape}")
    _check_behaved("TrainStep", where, a)
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"TrainStep: {where} must be a writeable C-contiguous array")


def _reg_gradient(W, dW, l1: float, l2: float) -> None:
    """dW += W·(2·l2), then dW += sign(W)·l1, each product in W's dtype (regularizers.py)."""
    if l2:
        dW += np.multiply(W, 2.0 * l2)
    if l1:
        dW += np.sign(W) * l1


def make_train_step(layers, loss, optimizer, params, grads, first, capacity, input_shape):
    """A TrainStep of this backend (arguments: the module docstring); checks them all now, so
    each ``run`` checks only its batch."""
    return TrainStep(layers, loss, optimizer, params, grads, first, capacity, input_shape)


__all__ = ["make_train_step"]

