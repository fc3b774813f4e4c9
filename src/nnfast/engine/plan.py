"""The inference plan of a :class:`nnfast.Sequential`: its whole forward pass in one call.

``get(model)`` returns the model's plan, built on first use and cached: the active backend's
``MLPPlan`` for a stack of Dense / Activation (/ Flatten, Dropout) layers, its ``NetPlan`` when
there are image layers too (Conv2D, the poolings, BatchNormalization, Reshape). Either is one C
call with the GIL released on the compiled backend, plain NumPy on the reference one. The
cache is keyed on everything a plan depends on, so a stale plan is never used:

- the parameter buffer (``model._params``, by identity): a new one after ``build``, ``add``
  and in a loaded model (a file is read into a new model); ``set_weights``, the optimizer and
  restoring best weights write into the same buffer, which the plan reads in place, so they
  need no rebuild; BatchNormalization's moving statistics live in ``model._state``, made with
  ``_params`` (so covered by the same identity) and likewise updated in place by training,
  set_weights and loading into a model: the plan reads them in place too;
- ``model._structure``, a counter bumped when layers are added, the model is (re)built or
  compiled (a compile changes no predict output today: a fused head folds the last activation
  into the loss in training only, see ``Dense._act``; the counter keeps that an implementation
  detail);
- the dtype and the active backend module (``nnfast.set_backend``).

A layer's attributes are not in the key (reading them would cost the batch-1 serving path a
walk over the layers). Instead, assigning a built layer's ``activation``, ``alpha`` or
``epsilon`` (what a plan copies) calls ``forget`` through the layer's model
(nnfast/_layer_base.py), and its geometry cannot be assigned once built. fit and
train_on_batch also call ``forget`` when they end and at every epoch end (before
``on_epoch_end``): predict after them runs the layers fit trained, never a plan built before.

A model whose layers the plan cannot express (a user-defined Layer subclass) has no plan:
``get`` returns None and the engine runs the layers one by one (training.forward).

``run`` is predict's, ``model(x)``'s and ``predict_on_batch``'s way in: the plan over the rows,
re-run holding the weights' lock when a writer overlapped it (nnfast/engine/locks.py), as
predict_into's layer-by-layer path does.
"""
from __future__ import annotations

import math

import numpy as np

from nnfast import backends
from nnfast import layers as _layers

# Rows per plan call from predict's serving path: the compiled plan bounds its own memory
# (row blocks, csrc/nn/plan.c), the reference plan allocates a few arrays of this many rows.
CHUNK_ROWS = 4096


def descriptors(model) -> list | None:
    """The ops of model's forward pass in predict mode, as NetPlan takes them (MLPPlan takes
    them once the reshapes are dropped, see ``_build``); None when a layer is of a class the
    plan does not know."""
    ops: list = []
    for layer in model.layers:
        kind = type(layer)
        if kind is _layers.Dense:
            ops.append(("dense", layer.W, layer.b, layer._act("predict"), layer.alpha))
        elif kind is _layers.Activation:
            if layer._passthrough("predict"):
                continue
            if ops and ops[-1][0] == "dense" and ops[-1][3] == "identity":
                # Dense then Activation: one op, act in the GEMM epilogue (softmax after it),
                # the same bits as two kernels (act_scalar.h serves both)
                ops[-1] = ops[-1][:3] + (layer.activation, layer.alpha)
            else:
                ops.append(("activation", layer.activation, layer.alpha))
        elif kind is _layers.Dropout:
            continue   # the identity at inference
        elif kind is _layers.Flatten or kind is _layers.Reshape:
            ops.append(("reshape", layer.output_shape))   # the same contiguous values
        elif kind is _layers.Conv2D:
            ops.append(("conv2d", layer.W, layer.b, layer.strides, layer.padding,
                        layer.dilation_rate, layer._act("predict"), layer.alpha))
        elif kind is _layers.MaxPooling2D or kind is _layers.AveragePooling2D:
            name = "max_pool2d" if kind is _layers.MaxPooling2D else "avg_pool2d"
            ops.append((name, layer.pool_size, layer.strides, layer.padding))
        elif kind is _layers.GlobalAveragePooling2D:
            ops.append(("global_avg_pool2d",))
        elif kind is _layers.BatchNormalization:
            # the moving statistics are views of model._state, read in place like W
            ops.append(("batch_norm", layer.gamma, layer.beta, layer.moving_mean,
                        layer.moving_variance, layer.epsilon))
        else:
            return None
    return ops


_MLP_KINDS = ("dense", "activation", "reshape")


def _key(model) -> tuple:
    return (model._params, model._structure, model.dtype, backends.current())


def get(model, locked: bool = False):
    """The cached plan of a built model (None: see ``descriptors``). A new plan is built
    holding the weights' lock (``locked``: the caller holds it), so it never reads layers that
    an ``add`` in another thread is rebuilding."""
    cached = model._plan_cache
    if cached is not None:
        key = cached[0]
        if (key[0] is model._params and key[1] == model._structure and key[2] == model.dtype
                and key[3] is backends._state["module"]):
            return cached[1]
    if not locked:
        with model._weights.lock:
            return _build(model)
    return _build(model)


def _build(model):
    key = _key(model)
    ops = descriptors(model)
    if ops is None:
        plan = None
    elif all(op[0] in _MLP_KINDS for op in ops):
        # rows of features throughout: the MLP plan (row blocks, batch-1 path); its x is the
        # rows flattened, so the reshapes (Flatten, Reshape) are nothing to it
        plan = key[3].MLPPlan([op for op in ops if op[0] != "reshape"],
                              math.prod(model.input_shape), model.dtype.name)
    else:
        plan = key[3].NetPlan(ops, model.input_shape, model.dtype.name)
    model._plan_cache = (key, plan)
    return plan


def forget(model) -> None:
    """Drop the model's cached plan; the next predict builds it from the layers as they are
    now (an attribute fit or train_on_batch honoured may have changed, see the module doc)."""
    model._plan_cache = None


def run(model, plan, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """out (n, *output_shape) = the model's outputs for the rows of x (n, *input_shape), both
    C-contiguous in the model dtype, through plan (= get(model), not None); returns out.
    ``out=None``: a new array the plan allocates, (n, plan.n_outputs) from an MLPPlan (the
    caller reshapes it to the model's output shape), (n, *output_shape) from a NetPlan. Both
    plans take the samples flattened to rows (NetPlan: as well as in their own shape)."""
    x2 = x if x.ndim == 2 else x.reshape(len(x), plan.n_features)
    out2 = out if out is None or out.ndim == 2 else out.reshape(len(out), plan.n_outputs)
    weights = model._weights
    version = weights.version       # weights.read(...) spelled out: the batch-1 serving path
    if out2 is None:
        out = out2 = plan.forward(x2)   # a C allocation: ~0.4 us less than np.empty's
    else:
        plan.forward(x2, out2)
    if weights.lock.locked() or weights.version != version:
        with weights.lock:
            get(model, locked=True).forward(x2, out2)
    return out


def check_training(training, fn: str) -> None:
    """model(x, training=...): False or None (Keras 3's default) run inference; True would run
    dropout in training mode, which nnfast does only inside fit (see Sequential.__call__)."""
    if training is None or training is False or training is np.False_:
        return
    if training is True or training is np.True_:
        raise ValueError(f"{fn}: training=True (layers in training mode, dropout active) is not "
                         f"supported: nnfast runs training mode only inside fit; call "
                         f"model(x) or model(x, training=False) for inference")
    raise TypeError(f"{fn}: training must be a bool or None, got {type(training).__name__}")
