"""fit / evaluate / predict from an iterable of batches, after Keras 3's data adapters.

Accepted as x (with y left out): a generator or any iterator; a Keras-style PyDataset-like
object (``__len__`` and ``__getitem__(i)`` giving batch i, and optionally ``on_epoch_end()``);
a list (or tuple) of batch tuples; any other iterable (``iter()`` is called for each pass). Each
batch is ``(x, y)`` or ``(x, y, sample_weight)`` (predict: also ``x`` alone or ``(x,)``; y is
ignored). A list counts as batches when its items are tuples whose first element is not a
number; otherwise it is array data, as before.

Semantics, as Keras 3 (``keras.src.trainers.epoch_iterator``):

- Without ``steps_per_epoch`` an epoch is one pass: a PyDataset / list is read in full (its
  batch order shuffled per epoch when ``shuffle``, seeded by (seed, epoch), as Keras' PyDataset
  adapter shuffles batch indices); a generator is consumed by the first epoch, and the next epoch
  finds it empty: fit warns "Your input ran out of data" and stops with the History so far.
- With ``steps_per_epoch`` each epoch takes that many batches, continuing where the previous
  epoch stopped (a generator is consumed across epochs). A PyDataset / list starts a new pass at
  its end. If the data runs out mid-epoch, fit warns, ends the epoch short, and continues only
  when the data can start a new pass (PyDataset, list, iterable); a generator stops training.
  Keras keeps counting empty epochs there; nnfast stops, which is what Keras' warning says.
- ``batch_size`` must not be given (the iterable makes the batches): ValueError. (A deliberate
  difference: Keras 3.15 silently ignores it for generators and PyDatasets.)
- ``sample_weight`` and ``validation_split`` are rejected as Keras does (weights go in the
  batches); ``class_weight`` applies to each batch.
- ``validation_data``: arrays ``(x_val, y_val[, sample_weight_val])`` (a tuple or list of 2
  or 3 items, none a tuple), evaluated whole each epoch in batches of 32, or of
  ``ceil(n / validation_steps)`` rows with ``validation_steps`` (Keras 3.15's array adapter:
  batch_size and validation_batch_size are None here; nnfast has no validation_batch_size); or
  batches: a list of ``(x, y[, sample_weight])`` tuples or any other iterable, read each epoch
  for ``validation_steps`` batches (None: one pass; a generator is then consumed by the first
  epoch and later epochs have no validation logs, with a warning). A tuple holding tuples, a
  list mixing tuples and other items, or an empty list is ValueError (``batch_source.
  validation_is_batches``). Keras reads every list or tuple as arrays.
- Empty input is ValueError, not a "ran out of data" warning: an empty list or tuple x, a
  PyDataset / sized iterable of length 0 (before anything is read), a generator that gives no
  batch in the first epoch.
- Each batch is converted and checked like array input (dtype, finite values, feature shape
  against the model, targets against the loss); errors name the batch index. The model is built
  from the first batch if needed.
- ``distributed=True`` is rejected: every rank would iterate its own iterable, with no way to
  check that they agree (shard the data and pass arrays instead).

The progress bar knows its length when ``steps_per_epoch`` / ``steps`` is given or the data has
a length.
"""
from __future__ import annotations

import math
import time

import numpy as np

from nnfast import _warn
from nnfast import callbacks as _callbacks
from nnfast._threads import blas_limited
from nnfast.engine import hooks as _hooks
from nnfast.engine import plan as _plan
from nnfast.engine import stopping, training
from nnfast.engine.batch_source import (
    Source,
    _Workspaces,
    array_args,
    check_args,
    convert,
    is_batches,
    validation_is_batches,
)
from nnfast.engine.checks import check_feature_shape, positive_int, seed_value
from nnfast.engine.inference import predict_into
from nnfast.engine.inputs import validation_arrays

__all__ = ["array_args", "evaluate", "fit", "is_batches", "predict"]

def _ran_out_warning(fn, source, got, steps, epoch, stops):
    what = f"steps_per_epoch={steps}" if steps else "one pass"
    tail = ("training stops here. Make sure your dataset or generator can generate at least "
            "steps_per_epoch * epochs batches" if stops else
            "the epoch ends short and the next one starts a new pass")
    _warn.warn(f"{fn}: Your input ran out of data: {source.what} gave {got} batch(es) of "
               f"{what} in epoch {epoch + 1}; {tail}", UserWarning)


def fit(model, x, y=None, epochs=1, batch_size=None, validation_split=0.0, validation_data=None,
        shuffle=True, callbacks=None, verbose=1, seed=None, distributed=False, sample_weight=None,
        class_weight=None, steps_per_epoch=None, validation_steps=None):
    """fit over an iterable of batches (Sequential.fit's arguments; see the module docstring).
    Every argument is checked before a batch is read."""
    fn = "fit"
    if y is not None:
        raise ValueError(f"{fn}: y must not be given when x is an iterable of batches (the "
                         f"batches hold the targets), got y of type {type(y).__name__}")
    epochs = positive_int(epochs, "epochs", fn, minimum=0)
    steps_per_epoch = check_args(fn, batch_size, steps_per_epoch, "steps_per_epoch",
                                 sample_weight, validation_split, distributed)
    validation_steps = (None if validation_steps is None
                        else positive_int(validation_steps, "validation_steps", fn))
    verbose = training._verbose(verbose, fn)
    seed = seed_value(seed, fn)
    callbacks = _hooks.checked(callbacks, fn)
    if model.loss is None:
        raise ValueError("fit: the model is not compiled; call model.compile(...) first")
    if not model.layers:
        raise ValueError("fit: the model has no layers")
    if model.first_trainable is None:
        raise ValueError("fit: the model has no trainable layer (add a Dense layer)")
    val = None
    if validation_data is not None:
        val = (Source(validation_data, fn, "validation_data")
               if validation_is_batches(validation_data, fn)
               else validation_arrays(model, validation_data, fn))
    with model._training.hold(model, "fit"), blas_limited():
        return _fit(model, Source(x, fn, "x"), epochs, steps_per_epoch, val, validation_steps,
                    shuffle, callbacks, verbose, seed, class_weight)


def _fit(model, source, epochs, steps_per_epoch, val, validation_steps, shuffle, callbacks,
         verbose, seed, class_weight):
    fn = "fit"
    steps = steps_per_epoch if steps_per_epoch is not None else source.length
    seed = seed if seed is not None else model.seed
    callbacks, history = _callbacks.with_history(callbacks)
    cbs = _callbacks.CallbackList(callbacks, model, epochs=epochs, steps=steps,
                                  batch_size=None, samples=None, verbose=verbose)
    model.history, model.stop_training = history, False
    batch_logs = cbs.wants_batch_logs
    pool = _Workspaces(model)
    interrupt = stopping.CtrlC()
    bar = None
    logs = {}
    with interrupt:
        try:
            cbs.on_train_begin({})
            for epoch in range(epochs):
                if model.stop_training or interrupt.requested:
                    break
                t0 = time.perf_counter()
                rng = (np.random.default_rng([seed if seed is not None else 0, model._epoch])
                       if shuffle else None)
                seen, weight, loss_sum, sums = 0, 0.0, 0.0, None
                began = False
                for b, item in enumerate(source.batches(steps_per_epoch, rng)):
                    xb, yb, wb = convert(model, item, source.drawn - 1, fn, "x", class_weight)
                    if not began:   # the first batch may build the model: then callbacks
                        training._ready(model, xb, seed)
                        if isinstance(val, tuple):    # arrays: checked once the model is built
                            check_feature_shape(val[0], xb.shape[1:], fn, "validation_data x")
                        sums = training.metric_sums(model)
                        cbs.on_epoch_begin(epoch, {})
                        bar = (training._bar(steps, f"Epoch {epoch + 1}/{epochs}")
                               if verbose == 1 else None)
                        began = True
                    n = len(xb)
                    if batch_logs:
                        cbs.on_train_batch_begin(b, {"batch": b, "size": n})
                    ws = pool.get(n)
                    loss, out = training.train_step(model, ws, xb, yb, n, wb)
                    seen += n
                    loss_sum += loss * n
                    weight += training.add_metric_sums(model, sums, out, yb, ws, n, wb)
                    if bar is not None or batch_logs:
                        logs = training._logs(loss_sum, seen, model.metrics, sums, weight)
                        training.batch_report(cbs, bar, batch_logs, b, n, logs)
                    if model.stop_training or interrupt.requested:
                        break
                if not began:
                    if epoch == 0:  # nothing read at all: an input error, not data running out
                        raise ValueError(f"{fn}: x gave no batches (an empty or exhausted "
                                         "generator?)")
                    _ran_out_warning(fn, source, 0, steps_per_epoch, epoch, True)
                    break
                if interrupt.requested:
                    break       # Ctrl-C: the partial epoch is not recorded; fit raises below
                model._epoch += 1
                logs = training._logs(loss_sum, seen, model.metrics, sums, weight)
                if val is not None:
                    logs.update(_validate(model, val, validation_steps, pool, cbs))
                bar = training.epoch_report(bar, verbose, epoch, epochs, t0, logs)
                source.epoch_end()
                _plan.forget(model)    # a predict in on_epoch_end sees the layers as trained
                cbs.on_epoch_end(epoch, logs)
                if source.ran_out:
                    _ran_out_warning(fn, source, b + 1, steps_per_epoch, epoch,
                                     not source.restartable)
                    if not source.restartable:
                        break
        finally:
            if bar is not None:
                bar.close()
            pool.close()
    if interrupt.requested:
        raise stopping.interrupted(len(history.epoch), None)
    cbs.on_train_end(logs)
    return history


def _validate(model, val, steps, pool, cbs) -> dict:
    """The val_ logs of one epoch end, a Keras 3 evaluate with fit's callbacks (on_test_*)."""
    vlogs = {}

    def run(hooks):
        vlogs.update(_validation_logs(model, val, steps, pool, hooks))
        return {k[len("val_"):]: v for k, v in vlogs.items()}

    _hooks.test_pass(model, cbs, run)
    return vlogs


def _validation_logs(model, val, steps, pool, hooks) -> dict:
    if isinstance(val, tuple):
        # Arrays, all rows every epoch, in batches of 32, or of ceil(n / validation_steps) with
        # validation_steps: Keras 3.15's array adapter when batch_size and
        # validation_batch_size are None (they are, with x an iterable of batches).
        xv, yv, wv = val
        size = 32 if steps is None else math.ceil(len(xv) / steps)
        sums = training.evaluate_sums(model, xv, yv, size, w=wv, ws=pool.get(min(size, len(xv))),
                                      hooks=hooks)
        return {f"val_{k}": v for k, v in training.evaluate_logs(model, sums).items()}
    sums = evaluate_sums(model, val, steps, "fit", pool, hooks=hooks)
    if sums is None:
        _warn.warn("fit: validation_data gave no batches this epoch (an empty generator, or "
                   "one read by an earlier epoch: pass validation_steps, or a PyDataset or "
                   "list, to validate every epoch); no val_ logs", UserWarning)
        return {}
    return {f"val_{k}": v for k, v in training.evaluate_logs(model, sums).items()}


def evaluate_sums(model, source, steps, fn, pool, bar=None, class_weight=None, hooks=None):
    """evaluate_sums' list over ``steps`` batches of source (None: one pass), or None when it
    gave no batch. hooks: as training.evaluate_sums'."""
    total = weight = 0.0
    rows, sums = 0, None
    for b, item in enumerate(source.batches(steps)):
        if hooks is not None:   # after reading the batch, as Keras 3 (none for a missing one)
            hooks.on_test_batch_begin(b, {})
        xb, yb, wb = convert(model, item, source.drawn - 1, fn, source.what)
        if sums is None:
            training._ready(model, xb)
            sums = training.metric_sums(model)
        n = len(xb)
        ws = pool.get(n)
        out = model._weights.read(training.forward, model, ws, xb, n, "eval")
        loss, _ = model.loss(out, yb, grad=ws.rows("dout", n, out.shape[1:]), reduction="sum",
                             sample_weight=wb)
        total += loss
        weight += training.add_metric_sums(model, sums, out, yb, ws, n, wb)
        rows += n
        if bar is not None:
            bar.update(1)
        if hooks is not None:
            if hooks.wants_test_batch_logs:
                hooks.on_test_batch_end(b, training.evaluate_logs(
                    model, [rows, weight, total] + sums.tolist()))
            if model.stop_evaluating:
                break
    if source.ran_out:
        _warn.warn(f"{fn}: Your input ran out of data: {source.what} ended before "
                   f"{steps} steps", UserWarning)
    if sums is None:
        return None
    return [rows, weight, total] + sums.tolist()


def _bar(verbose, source, steps, desc):
    if verbose != 1:
        return None
    return training._bar(steps if steps is not None else source.length, desc)


def evaluate(model, x, y=None, batch_size=None, verbose=0, sample_weight=None,
             distributed=False, steps=None, callbacks=None) -> dict:
    """evaluate over ``steps`` batches of an iterable (None: one pass); callbacks as
    nnfast/engine/hooks.py (params: steps or the data's length, batch_size and samples None)."""
    fn = "evaluate"
    if y is not None:
        raise ValueError(f"{fn}: y must not be given when x is an iterable of batches, got y "
                         f"of type {type(y).__name__}")
    steps = check_args(fn, batch_size, steps, "steps", sample_weight, 0.0, distributed)
    verbose = training._verbose(verbose, fn)
    callbacks = _hooks.checked(callbacks, fn)
    if model.loss is None:
        raise ValueError(f"{fn}: the model is not compiled; call model.compile(...) first")
    if not model.layers:
        raise ValueError(f"{fn}: the model has no layers")
    source, pool = Source(x, "evaluate", "x"), _Workspaces(model)
    cbs = _hooks.callback_list(callbacks, model, steps if steps is not None else source.length,
                               None, None, verbose)
    bar = _bar(verbose, source, steps, "evaluate")

    def run(hooks):
        sums = evaluate_sums(model, source, steps, "evaluate", pool, bar, hooks=hooks)
        if sums is None:
            raise ValueError("evaluate: x gave no batches (an empty or exhausted generator?)")
        return training.evaluate_logs(model, sums)

    try:
        return _hooks.test_pass(model, cbs, run)
    finally:
        pool.close()
        if bar is not None:
            bar.close()


def predict(model, x, batch_size=None, verbose=0, distributed=False, steps=None,
            callbacks=None) -> np.ndarray:
    """Outputs of ``steps`` batches of an iterable (None: one pass), concatenated; callbacks
    as nnfast/engine/hooks.py."""
    steps = check_args("predict", batch_size, steps, "steps", distributed=distributed)
    verbose = training._verbose(verbose, "predict")
    callbacks = _hooks.checked(callbacks, "predict")
    if not model.layers:
        raise ValueError("predict: the model has no layers")
    source = Source(x, "predict", "x")
    cbs = _hooks.callback_list(callbacks, model, steps if steps is not None else source.length,
                               None, None, verbose)
    bar = _bar(verbose, source, steps, "predict")
    try:
        return _hooks.predict_pass(model, cbs, lambda hooks: _predict(model, source, steps, bar,
                                                                      hooks))
    finally:
        if bar is not None:
            bar.close()


def _predict(model, source, steps, bar, hooks) -> np.ndarray:
    parts = []
    for b, item in enumerate(source.batches(steps)):
        if hooks is not None:
            hooks.on_predict_batch_begin(b, {})
        xb = convert(model, item, source.drawn - 1, "predict", "x", need_y=False)[0]
        if not model.built:
            model.build(xb.shape[1:])
        out = np.empty((len(xb),) + model.output_shape, dtype=model.dtype)
        predict_into(model, xb, out, len(xb))
        parts.append(out)
        if bar is not None:
            bar.update(1)
        if hooks is not None:
            hooks.on_predict_batch_end(b, {"outputs": out})
            if model.stop_predicting:
                break
    if source.ran_out:
        _warn.warn(f"predict: Your input ran out of data: x ended before {steps} steps",
                   UserWarning)
    if not parts:
        raise ValueError("predict: x gave no batches (an empty or exhausted generator?)")
    return np.concatenate(parts)
