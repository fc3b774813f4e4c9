"""evaluate / predict for :class:`nnfast.Sequential` (fit: nnfast/training.py, whose forward
pass and evaluation sums they use; distributed: nnfast/distributed/_infer.py)."""
from __future__ import annotations

import types

import numpy as np

from nnfast import backends
from nnfast.distributed import _mpi
from nnfast.engine import hooks as _hooks
from nnfast.engine import plan as _plan
from nnfast.engine import sample_weights as _weights
from nnfast.engine.checks import positive_int
from nnfast.engine.inputs import prepare
from nnfast.engine.training import (
    _batches,
    _evaluate,
    _ready,
    _verbose,
    batch_bar,
    evaluate_logs,
    evaluate_sums,
    forward,
)


def evaluate(model, x, y, batch_size: int = 32, verbose: int = 0, sample_weight=None,
             distributed: bool = False, callbacks=None) -> dict:
    if distributed and _mpi._world().size > 1:   # one process: the same as not distributed
        from nnfast.distributed import _infer
        return _infer.evaluate(_LOCAL, model, x, y, batch_size, verbose, sample_weight,
                               callbacks)
    x, y, w, batch_size, verbose, callbacks = evaluate_args(model, x, y, batch_size, verbose,
                                                            sample_weight, callbacks)
    if not callbacks and verbose != 1:     # as predict: no CallbackList without callbacks
        model.stop_evaluating = False
        return _evaluate(model, x, y, batch_size, None, w)
    cbs = _hooks.callback_list(callbacks, model, -(-len(x) // batch_size), batch_size, len(x),
                              verbose)
    with batch_bar(verbose == 1, len(x), batch_size, "evaluate") as bar:
        return _hooks.test_pass(model, cbs, lambda h: _evaluate(model, x, y, batch_size, bar, w,
                                                               hooks=h))


def evaluate_args(model, x, y, batch_size, verbose, sample_weight, callbacks=None) -> tuple:
    """Checked and converted (x, y, w, batch_size, verbose, callbacks list); builds the model
    if needed."""
    batch_size = positive_int(batch_size, "batch_size", "evaluate")
    verbose = _verbose(verbose, "evaluate")
    callbacks = _hooks.checked(callbacks, "evaluate")
    x, y = prepare(model, x, y, "evaluate")
    w = _weights.sample_weights(sample_weight, len(x), model.dtype, "evaluate")
    _weights.require_some_weight(w, "evaluate", "the sample_weight values")
    _ready(model, x)
    return x, y, w, batch_size, verbose, callbacks


def predict(model, x, batch_size: int = 32, verbose: int = 0,
            distributed: bool = False, callbacks=None) -> np.ndarray:
    if distributed and _mpi._world().size > 1:
        from nnfast.distributed import _infer
        return _infer.predict(_LOCAL, model, x, batch_size, verbose, callbacks)
    if (callbacks is None and type(batch_size) is int and batch_size >= 1
            and type(verbose) is int and (verbose == 0 or verbose == 2) and servable(model, x)):
        model.stop_predicting = False   # the serving path below, its arguments known good
        return serve(model, x, batch_size)
    x, batch_size, verbose, callbacks = predict_args(model, x, batch_size, verbose, callbacks)
    result = np.empty((len(x),) + model.output_shape, dtype=model.dtype)
    if not callbacks and verbose != 1:
        # the serving path (no callbacks, no bar): nothing can stop the pass or watch a batch,
        # so skip building a CallbackList and the hooks' wrappers (~20 µs of a batch-1 call)
        model.stop_predicting = False
        predict_into(model, x, result, batch_size)
        return result
    cbs = _hooks.callback_list(callbacks, model, -(-len(x) // batch_size), batch_size, len(x),
                              verbose)
    with batch_bar(verbose == 1, len(x), batch_size, "predict") as bar:
        rows = _hooks.predict_pass(model, cbs, lambda h: predict_into(model, x, result,
                                                                     batch_size, bar, h))
    # stopped by model.stop_predicting: the rows computed, as Keras 3
    return result if rows == len(x) else result[:rows].copy()


def predict_args(model, x, batch_size, verbose, callbacks=None) -> tuple:
    """Checked and converted (x, batch_size, verbose, callbacks list); builds the model if
    needed."""
    batch_size = positive_int(batch_size, "batch_size", "predict")
    verbose = _verbose(verbose, "predict")
    callbacks = _hooks.checked(callbacks, "predict")
    x, _ = prepare(model, x, None, "predict")
    if not model.built:
        model.build(x.shape[1:])
    return x, batch_size, verbose, callbacks


def predict_into(model, x, out, batch_size: int, bar=None, hooks=None,
                 stoppable: bool = True) -> int:
    """Outputs of the rows of x into out (len(x) rows), a tick of bar per batch; nothing to do
    for 0 rows. Returns the number of rows written: len(x), or fewer when a callback of hooks
    (a CallbackList running on_predict_batch_*, or None) set ``model.stop_predicting`` and
    ``stoppable`` (False: distributed predict, whose ranks must all fill their shards).

    The rows go through the model's inference plan (nnfast/engine/plan.py): without hooks or
    bar in calls of up to max(batch_size, plan.CHUNK_ROWS) rows, with them batch by batch so
    callbacks see their batches. A row's outputs do not depend on the rows computed with it,
    so ``batch_size`` changes no bit of the result. A model the plan cannot express runs its
    layers one by one in a workspace from the model's pool.

    Safe from any number of threads at once: each batch reads the weights of one whole step
    when another thread fits the model (nnfast/engine/locks.py)."""
    if len(x) == 0:
        return 0
    plan = _plan.get(model)
    if plan is None or not out.flags.c_contiguous:
        return _predict_layers(model, x, out, batch_size, bar, hooks, stoppable)
    if hooks is None and bar is None:
        step = max(batch_size, _plan.CHUNK_ROWS)
        if len(x) <= step:      # the serving path: no loop, no slices (~3 us of a batch-1 call)
            _plan.run(model, plan, x, out)
            return len(x)
        for start in range(0, len(x), step):
            _plan.run(model, plan, x[start:start + step], out[start:start + step])
        return len(x)
    for b, (start, stop) in enumerate(_batches(len(x), batch_size)):
        if hooks is not None:
            hooks.on_predict_batch_begin(b, {})
        _plan.run(model, plan, x[start:stop], out[start:stop])
        if bar is not None:
            bar.update(1)
        if hooks is not None:
            hooks.on_predict_batch_end(b, {"outputs": out[start:stop]})
            if stoppable and model.stop_predicting:
                return stop
    return len(x)


def _predict_layers(model, x, out, batch_size: int, bar, hooks, stoppable: bool) -> int:
    """predict_into layer by layer (training.forward), in a workspace of its own from the
    model's pool."""
    pool, weights = model._workspaces, model._weights
    ws = pool.take(min(batch_size, len(x)))
    try:
        for b, (start, stop) in enumerate(_batches(len(x), batch_size)):
            if hooks is not None:
                hooks.on_predict_batch_begin(b, {})
            # weights.read(forward, ...) spelled out: one call fewer on the batch-1 serving path
            version = weights.version
            y = forward(model, ws, x[start:stop], stop - start, "predict")
            if weights.lock.locked() or weights.version != version:
                with weights.lock:
                    y = forward(model, ws, x[start:stop], stop - start, "predict")
            out[start:stop] = y
            if bar is not None:
                bar.update(1)
            if hooks is not None:
                hooks.on_predict_batch_end(b, {"outputs": out[start:stop]})
                if stoppable and model.stop_predicting:
                    return stop
    finally:
        pool.give(ws)
    return len(x)


def call(model, x, training=None, fn: str = "Sequential.__call__") -> np.ndarray:
    """model(x, training) and model.predict_on_batch(x): the outputs of every row of x as one
    new array, through the plan, no callbacks."""
    if training is not None:   # None: Keras 3's default, nothing to check (the serving path)
        _plan.check_training(training, fn)
    if servable(model, x):
        return serve(model, x, len(x))
    x, _ = prepare(model, x, None, fn)
    if not model.built:
        model.build(x.shape[1:])
    out = np.empty((len(x),) + model.output_shape, dtype=model.dtype)
    predict_into(model, x, out, len(x))
    return out


def servable(model, x) -> bool:
    """Whether x needs nothing done to it before the plan runs: an exact ndarray of the model
    dtype, C-contiguous, aligned, finite, of at least one sample of the built model's input
    shape. Then ``prepare`` would return x itself and build nothing, so ``serve`` gives the
    same result as the general path without its Python work (most of the ~10 us a batch-1
    call spent above the plan); any other x, valid or not, goes the general path, which
    converts it or raises its error. The tests of x are the backend's ``servable_input``
    (C-level checks on the compiled backend: their Python version cost a batch-1 predict
    ~9 us with the caches cold after another runtime's call, against ~2 us warm)."""
    if not model.built or not model.layers:
        return False
    return backends._state["module"].servable_input(x, model.dtype, model.input_shape)


def serve(model, x, batch_size: int) -> np.ndarray:
    """A new array of the outputs of x (``servable``), computed as predict_into does."""
    n = len(x)
    plan = _plan.get(model)
    if plan is None or (n > batch_size and n > _plan.CHUNK_ROWS):
        out = np.empty((n,) + model.output_shape, dtype=model.dtype)
        predict_into(model, x, out, batch_size)
        return out
    shape = model.output_shape
    out = _plan.run(model, plan, x)   # predict_into's serving path, its checks known true
    return out if out.ndim == len(shape) + 1 else out.reshape((n,) + shape)


# What the distributed evaluate/predict (nnfast/distributed/_infer.py, a lower part that imports
# nothing of the engine) calls back for this rank's shard.
_LOCAL = types.SimpleNamespace(evaluate_args=evaluate_args, predict_args=predict_args,
                               predict_into=predict_into, evaluate_sums=evaluate_sums,
                               evaluate_logs=evaluate_logs, batch_bar=batch_bar,
                               callback_list=_hooks.callback_list, test_pass=_hooks.test_pass,
                               predict_pass=_hooks.predict_pass)
