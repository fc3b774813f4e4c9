"""evaluate / predict for :class:`nnfast.Sequential` (fit: nnfast/training.py, whose forward
pass and evaluation sums they use; distributed: nnfast/distributed/_infer.py)."""
from __future__ import annotations

import types

import numpy as np

from nnfast.distributed import _mpi
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
             distributed: bool = False) -> dict:
    if distributed and _mpi._world().size > 1:   # one process: the same as not distributed
        from nnfast.distributed import _infer
        return _infer.evaluate(_LOCAL, model, x, y, batch_size, verbose, sample_weight)
    x, y, w, batch_size, verbose = evaluate_args(model, x, y, batch_size, verbose, sample_weight)
    with batch_bar(verbose == 1, len(x), batch_size, "evaluate") as bar:
        return _evaluate(model, x, y, batch_size, bar, w)


def evaluate_args(model, x, y, batch_size, verbose, sample_weight) -> tuple:
    """Checked and converted (x, y, w, batch_size, verbose); builds the model if needed."""
    batch_size = positive_int(batch_size, "batch_size", "evaluate")
    verbose = _verbose(verbose, "evaluate")
    x, y = prepare(model, x, y, "evaluate")
    w = _weights.sample_weights(sample_weight, len(x), model.dtype, "evaluate")
    _weights.require_some_weight(w, "evaluate", "the sample_weight values")
    _ready(model, x)
    return x, y, w, batch_size, verbose


def predict(model, x, batch_size: int = 32, verbose: int = 0,
            distributed: bool = False) -> np.ndarray:
    if distributed and _mpi._world().size > 1:
        from nnfast.distributed import _infer
        return _infer.predict(_LOCAL, model, x, batch_size, verbose)
    x, batch_size, verbose = predict_args(model, x, batch_size, verbose)
    result = np.empty((len(x),) + model.output_shape, dtype=model.dtype)
    with batch_bar(verbose == 1, len(x), batch_size, "predict") as bar:
        predict_into(model, x, result, batch_size, bar)
    return result


def predict_args(model, x, batch_size, verbose) -> tuple:
    """Checked and converted (x, batch_size, verbose); builds the model if needed."""
    batch_size = positive_int(batch_size, "batch_size", "predict")
    verbose = _verbose(verbose, "predict")
    x, _ = prepare(model, x, None, "predict")
    if not model.built:
        model.build(x.shape[1:])
    return x, batch_size, verbose


def predict_into(model, x, out, batch_size: int, bar=None) -> None:
    """Outputs of the rows of x into out (len(x) rows), a tick of bar per batch; nothing to do
    for 0 rows.

    Safe from any number of threads at once: the call runs in a workspace of its own from the
    model's pool, and each batch reads the weights of one whole step when another thread fits
    the model (nnfast/engine/locks.py)."""
    if len(x) == 0:
        return
    pool, weights = model._workspaces, model._weights
    ws = pool.take(min(batch_size, len(x)))
    try:
        for start, stop in _batches(len(x), batch_size):
            # weights.read(forward, ...) spelled out: one call fewer on the batch-1 serving path
            version = weights.version
            y = forward(model, ws, x[start:stop], stop - start, "predict")
            if weights.lock.locked() or weights.version != version:
                with weights.lock:
                    y = forward(model, ws, x[start:stop], stop - start, "predict")
            out[start:stop] = y
            if bar is not None:
                bar.update(1)
    finally:
        pool.give(ws)


# What the distributed evaluate/predict (nnfast/distributed/_infer.py, a lower part that imports
# nothing of the engine) calls back for this rank's shard.
_LOCAL = types.SimpleNamespace(evaluate_args=evaluate_args, predict_args=predict_args,
                               predict_into=predict_into, evaluate_sums=evaluate_sums,
                               evaluate_logs=evaluate_logs, batch_bar=batch_bar)
