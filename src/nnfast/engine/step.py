"""The one-call training step (issue 13): fit's step as one call into the backend's TrainStep
(compiled: csrc/nn/step.c with the GIL released; reference: nnfast/backends/_ref_step.py).

It runs the same kernels in the same order as the per-layer path of nnfast/engine/training.py
(``train_step``: forward, fused loss, backward, penalties, optimizer update), so weights,
optimizer state and loss come out bit-identical (tests/test_train_step.py). Differences in
*when* things happen, none in the values:

- each layer's slice of the flat buffer (Dense and Conv2D: kernel and bias; BatchNormalization:
  gamma and beta) is updated right after its gradient is complete (the update kernels are
  elementwise, so per slice = one call over the buffer); with
  ``clipnorm`` the whole gradient is clipped, then updated, after the backward pass, as today;
- shuffled batches are gathered inside the call (into the same workspace rows np.take fills);
- the weight penalty's value is computed before the call, from the same weights the per-layer
  path reads after its backward pass (backward does not change weights);
- the whole step holds the model's weights lock (the per-layer path holds it for the update
  only): a thread predicting meanwhile waits for the step instead of running beside it. So
  BatchNormalization's moving statistics (views of ``model._state``, updated in place by the
  same kernel with the same momentum, as the layer's forward does) change under that lock too,
  where the per-layer path moves them during its forward, outside it;
- max pooling records its argmax in a workspace array (the per-layer path: the layer's own).

Used when every layer is a Dense, Activation, Dropout, Flatten, Reshape, Conv2D, MaxPooling2D,
AveragePooling2D, GlobalAveragePooling2D or BatchNormalization, the loss and optimizer are
nnfast's own classes (not subclasses) and the step is not distributed; otherwise fit keeps the
per-layer path. A built step is tied to its workspace and to the model's buffers, optimizer
(and its state arrays), the moving-statistics buffer, loss, layers, backend and dtype;
``for_fit`` rebuilds it whenever one of
these changed (add, compile, set_weights that reallocates, a dtype change, load), and
``current`` (called by fit before every batch) checks the identities and the per-step values a
callback could change between steps (optimizer hyperparameters, a layer's activation, dropout
rate, kernel regularizer and its l1/l2, BatchNormalization's momentum and epsilon, the loss'
label_smoothing/delta), so a stale step is
never used: a change made in ``on_train_batch_begin`` reaches that batch on both paths.
"""
from __future__ import annotations

import operator

import numpy as np

from nnfast import backends
from nnfast import layers as _layers
from nnfast import losses as _losses
from nnfast import optimizers as _optimizers

# False: fit always takes the per-layer path (the tests compare the two; a debugging switch).
ENABLED = True

_LAYER_KINDS = {_layers.Dense: "dense", _layers.Activation: "activation",
                _layers.Dropout: "dropout", _layers.Flatten: "flatten",
                _layers.Conv2D: "conv2d", _layers.MaxPooling2D: "max_pool2d",
                _layers.AveragePooling2D: "avg_pool2d",
                _layers.GlobalAveragePooling2D: "global_avg_pool2d",
                _layers.BatchNormalization: "batch_norm", _layers.Reshape: "reshape"}
# the layers whose training forward always writes its own output rows
_WRITERS = (_layers.Dense, _layers.Conv2D, _layers.MaxPooling2D, _layers.AveragePooling2D,
            _layers.GlobalAveragePooling2D, _layers.BatchNormalization)
# a layer's geometry and structure, fixed once built: part of the key, not watched per batch
_LAYER_SHAPE = ("strides", "padding", "dilation_rate", "pool_size", "target_shape", "center",
                "scale")
_LOSS_KINDS = {_losses.SparseCategoricalCrossentropy: "softmax_cross_entropy",
               _losses.CategoricalCrossentropy: "softmax_cross_entropy",
               _losses.BinaryCrossentropy: "binary_cross_entropy",
               _losses.MeanSquaredError: "mse", _losses.Huber: "huber"}
# What the per-layer path reads at every batch, and a built step at build time only: fit
# compares them before each batch (attribute reads and one tuple compare, ~1 µs; see current).
_OPT_WATCH = ("momentum", "nesterov", "weight_decay", "clipnorm", "beta_1", "beta_2",
              "epsilon", "rho")
_LAYER_WATCH = ("activation", "alpha", "fused_head", "rate", "seed", "kernel_regularizer",
                "momentum", "epsilon")     # the last two: BatchNormalization's
_LOSS_WATCH = ("label_smoothing", "delta")
_OPT_KINDS = {_optimizers.SGD: "sgd", _optimizers.Adam: "adam", _optimizers.AdamW: "adam",
              _optimizers.RMSprop: "rmsprop", _optimizers.Adagrad: "adagrad"}


def unsupported(model) -> str | None:
    """Why fit cannot use the one-call step for this model (None: it can)."""
    for layer in model.layers:
        if type(layer) not in _LAYER_KINDS:
            return f"layer {type(layer).__name__}"
    if type(model.loss) not in _LOSS_KINDS:
        return f"loss {type(model.loss).__name__}"
    opt = model.optimizer
    if type(opt) not in _OPT_KINDS:
        return f"optimizer {type(opt).__name__}"
    if opt.size is not None and bool(getattr(opt, "momentum", 0.0)) != ("velocity" in opt.state):
        # momentum switched on or off after build: the per-layer update handles (or rejects)
        # a velocity that does not match, the step's state layout is fixed at build
        return "momentum changed after build"
    last = _last_writer(model)
    if last is None or model.layers[last].output_shape != model.layers[-1].output_shape:
        return "the output is not the rows of a layer"
    return None


def _last_writer(model):
    """The last layer whose training forward writes its own output rows (later ones pass them
    on), or None."""
    for i in range(len(model.layers) - 1, -1, -1):
        layer = model.layers[i]
        if isinstance(layer, _WRITERS):
            return i
        if isinstance(layer, _layers.Activation) and not layer._passthrough("train"):
            return i
        if isinstance(layer, _layers.Dropout) and layer.rate != 0.0:
            return i
    return None


def _watch(model) -> list:
    """(object, getter) pairs for the values of :data:`_OPT_WATCH` / `_LAYER_WATCH` /
    `_LOSS_WATCH` these objects have (a regularizer: its l1, l2)."""
    pairs = []
    for obj, names in [(model.optimizer, _OPT_WATCH), (model.loss, _LOSS_WATCH)] + [
            (layer, _LAYER_WATCH) for layer in model.layers]:
        have = [n for n in names if hasattr(obj, n)]
        if have:
            pairs.append((obj, operator.attrgetter(*have)))
        reg = getattr(obj, "kernel_regularizer", None)
        if reg is not None:
            pairs.append((reg, operator.attrgetter("l1", "l2")))
    return pairs


def _key(model, ws) -> tuple:
    opt, loss = model.optimizer, model.loss
    parts = []
    for layer in model.layers:
        reg = getattr(layer, "kernel_regularizer", None)
        parts.append((id(layer), type(layer), getattr(layer, "activation", None),
                      getattr(layer, "alpha", None), layer.fused_head,
                      getattr(layer, "rate", None), getattr(layer, "seed", None),
                      None if reg is None else (reg.l1, reg.l2), id(getattr(layer, "W", None)),
                      getattr(layer, "momentum", None), getattr(layer, "epsilon", None),
                      id(getattr(layer, "moving_mean", None)),
                      tuple(getattr(layer, a, None) for a in _LAYER_SHAPE)))
    return (backends.get_backend(), id(ws), ws.capacity, id(model._params), id(model._grads),
            id(model._state),
            model._params.dtype, id(opt), repr({k: v for k, v in opt.get_config().items()
                                               if k != "learning_rate"}), id(opt.state),
            tuple(id(a) for a in opt.state.values()), id(loss), type(loss),
            repr(loss.get_config()), tuple(parts))


class Step:
    """The backend's TrainStep for one model and workspace, plus what fit needs around it."""

    def __init__(self, model, ws, key):
        self.key = key
        self.ws_base = ws._base
        self.params, self.opt, self.loss = model._params, model.optimizer, model.loss
        self.state_buf = model._state     # BatchNormalization's moving statistics
        self.state = model.optimizer.state
        n = ws.capacity
        bufs = ws.layer_buffers(n, True)
        regularized = model._regularized
        self.watch = _watch(model)
        self.seen = [get(obj) for obj, get in self.watch]
        specs = [_spec(layer, bufs[i], regularized) for i, layer in enumerate(model.layers)]
        extra = []    # workspace arrays the layers do not ask for themselves
        for i, spec in enumerate(specs):
            if spec["kind"] == "max_pool2d":   # the argmax, in the workspace (the layer's own
                # array is for the per-layer path)
                spec["argmax"] = ws.rows((i, "argmax"), n, model.layers[i].output_shape,
                                         np.int64)
                extra.append((i, "argmax"))
        loss = model.loss
        self.out_key = _last_writer(model)
        out_shape = model.layers[-1].output_shape
        self.out_tail = out_shape
        lspec = {"kind": _LOSS_KINDS[type(loss)], "labels": loss.integer_targets,
                 "label_smoothing": getattr(loss, "label_smoothing", 0.0),
                 "delta": getattr(loss, "delta", 1.0),
                 "dout": ws.rows("dout", n, out_shape)}
        opt = model.optimizer
        ospec = {"kind": _OPT_KINDS[type(opt)], **opt.get_config(),
                 "decoupled": getattr(opt, "_decoupled", False),
                 "state": tuple(opt.state[name] for name in opt._state_names)}
        self.penalties = [(layer.kernel_regularizer, layer.W, layer._scratch)
                          for layer in regularized if layer.kernel_regularizer is not None]
        # the workspace arrays the built step writes (a base replaced later makes it stale)
        self.bases = [(k, ws._base[k]) for k in [(i, name) for i, b in enumerate(bufs)
                                                 for name in b] + extra + ["dout"]]
        make = backends.plan("make_train_step")
        self.ts = make(specs, lspec, ospec, model._params, model._grads, model.first_trainable,
                       n, model.input_shape)

    def current(self, model) -> bool:
        """The identities and per-step values a callback could change between two steps are
        still the built ones (a list compare: equal objects, or equal values)."""
        return (model._params is self.params and model._state is self.state_buf
                and model.optimizer is self.opt
                and model.loss is self.loss and self.opt.state is self.state
                and [get(obj) for obj, get in self.watch] == self.seen
                and all(self.ws_base.get(k) is a for k, a in self.bases))

    def run(self, model, ws, x, y, w, order, lo: int, hi: int) -> tuple:
        """One step on rows lo:hi (of order[lo:hi] when shuffling); returns (loss, outputs,
        batch targets, batch weights) as train_step and the batch gather give them."""
        n, opt = hi - lo, self.opt
        if order is not None:
            xb = ws.rows("xb", ws.capacity, x.shape[1:])
            yb = ws.rows("yb", ws.capacity, y.shape[1:], y.dtype)
            wb = None if w is None else ws.rows("wb", ws.capacity, (), w.dtype)
        else:
            xb = yb = wb = None
        # the penalty of the weights before the step: what training.compute_gradients adds
        penalty = [reg.loss(W, scratch) for reg, W, scratch in self.penalties]
        lr, t = opt.learning_rate, opt.iterations + 1
        loss = model._weights.write(self.ts.run, x, y, w, order, lo, hi, xb, yb, wb, lr, t,
                                    model._step)
        for p in penalty:
            loss += p
        opt.iterations += 1
        model._step += 1
        out = ws.rows((self.out_key, "y"), n, self.out_tail)
        if order is not None:
            yb = ws.rows("yb", n, y.shape[1:], y.dtype)
            wb = None if w is None else ws.rows("wb", n, (), w.dtype)
        else:
            yb, wb = y[lo:hi], None if w is None else w[lo:hi]
        return loss, out, yb, wb


def _spec(layer, bufs: dict, regularized) -> dict:
    """The TrainStep layer dict of one layer (its kind, parameters, settings, workspace)."""
    kind = _LAYER_KINDS[type(layer)]
    spec = {"kind": kind, **bufs}
    if kind in ("dense", "conv2d"):
        # as training.compute_gradients: only the layers regularized at build
        reg = layer.kernel_regularizer if layer in regularized else None
        spec.update(W=layer.W, b=layer.b, dW=layer.dW, db=layer.db,
                    activation=layer._act("train"), alpha=layer.alpha,
                    l1=0.0 if reg is None else reg.l1, l2=0.0 if reg is None else reg.l2)
        if kind == "conv2d":
            spec.update(strides=layer.strides, padding=layer.padding,
                        dilation_rate=layer.dilation_rate)
    elif kind == "activation":
        spec.update(activation="identity" if layer._passthrough("train")
                    else layer.activation, alpha=layer.alpha)
    elif kind == "dropout":
        spec.update(rate=layer.rate, seed=layer.seed)
    elif kind in ("max_pool2d", "avg_pool2d"):
        spec.update(pool_size=layer.pool_size, strides=layer.strides, padding=layer.padding)
    elif kind == "batch_norm":
        # the arrays BatchNormalization.forward/backward hand the kernels: the moving
        # statistics (views of model._state, updated in place), inv_std (the layer's own)
        spec.update(gamma=layer.gamma, beta=layer.beta, dgamma=layer.dgamma, dbeta=layer.dbeta,
                    moving_mean=layer.moving_mean, moving_variance=layer.moving_variance,
                    inv_std=layer._inv_std, momentum=layer.momentum, epsilon=layer.epsilon)
    elif kind == "reshape":
        spec["shape"] = tuple(layer.output_shape)
    return spec


def for_fit(model, ws, x, y, w, dp=None):
    """The model's one-call step for workspace ws (built, or rebuilt when stale), or None when
    fit must keep the per-layer path (distributed, an unsupported part, non-contiguous rows)."""
    if (not ENABLED or dp is not None or unsupported(model) is not None
            or not all(a.flags.c_contiguous for a in (x, y) + (() if w is None else (w,)))):
        return None
    key = _key(model, ws)
    cached = getattr(ws, "train_step", None)
    if cached is not None and cached.key == key and cached.current(model):
        return cached
    ws.train_step = Step(model, ws, key)
    return ws.train_step


def batch_rows(x, y, w, order, lo: int, hi: int, ws) -> tuple:
    """The per-layer path's batch: rows lo:hi of x, y, w as views, or, through the
    permutation order (None: no shuffle), gathered into workspace rows with np.take (the
    one-call step gathers the same rows inside its call)."""
    if order is None:
        return x[lo:hi], y[lo:hi], None if w is None else w[lo:hi]
    idx = order[lo:hi]
    xb = np.take(x, idx, axis=0, out=ws.rows("xb", hi - lo, x.shape[1:]), mode="clip")
    yb = np.take(y, idx, axis=0, out=ws.rows("yb", hi - lo, y.shape[1:], y.dtype), mode="clip")
    wb = None if w is None else np.take(w, idx, out=ws.rows("wb", hi - lo, (), w.dtype),
                                        mode="clip")
    return xb, yb, wb
