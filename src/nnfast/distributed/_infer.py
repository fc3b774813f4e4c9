"""``evaluate`` / ``predict`` with ``distributed=True`` on more than one rank (see
nnfast/distributed/__init__.py; one process never gets here).

Every rank holds the whole input, checks and converts it as the one-process call does, then
one allgather checks that the ranks agree (shapes, dtypes, sampled rows, model and weights) and
carries any rank's argument error to all. Each rank computes the contiguous shard of rows fit's
``shard`` gives it (sizes differ by at most one; with fewer rows than ranks some shards are
empty). evaluate: one Allreduce of [failed, rows, Σ w, Σ w·loss, Σ w·metric...] in float64.
predict: one small allgather reports failures, then one in-place Allgatherv fills the
(n, outputs) array on every rank.

Callbacks (``callbacks=``) run on every rank, as in distributed fit (only rank 0's built-in
callbacks print): ``on_*_begin`` / ``on_*_end`` once per rank (``on_test_end`` with the global
logs), the batch hooks over this rank's shard (batch indices from 0 within the shard, running
logs of the shard). ``model.stop_evaluating`` ends this rank's shard early (the result then
sums what each rank evaluated); ``model.stop_predicting`` is not honoured (every rank must
fill its shard of the returned array).

The engine's one-process pieces come in as ``local`` (nnfast/engine/inference.py hands in an
object with ``evaluate_args``, ``predict_args``, ``predict_into``, ``evaluate_sums``,
``evaluate_logs``, ``batch_bar``, ``callback_list``, ``test_pass`` and ``predict_pass``): this
part sits below the engine and imports none of it.
"""
from __future__ import annotations

import zlib

import numpy as np

from nnfast import metrics as _metrics
from nnfast.distributed._data_parallel import DataParallel, _array_sig, _without_seeds, shard
from nnfast.distributed._mpi import describe_exception, failure


def evaluate(local, model, x, y, batch_size, verbose, sample_weight, callbacks=None) -> dict:
    return DataParallel(fn="evaluate", local=local).run(_evaluate, model, x, y, batch_size,
                                                        verbose, sample_weight, callbacks)


def predict(local, model, x, batch_size, verbose, callbacks=None) -> np.ndarray:
    return DataParallel(fn="predict", local=local).run(_predict, model, x, batch_size, verbose,
                                                       callbacks)


def _evaluate(model, x, y, batch_size, verbose, sample_weight, callbacks, dp):
    local = dp.local
    x, y, w, batch_size, verbose, callbacks = local.evaluate_args(
        model, x, y, batch_size, verbose, sample_weight, callbacks)
    _agree(dp, model, x=x, y=y, w=w)
    lo, hi = dp.shard(0, len(x))
    # Callbacks on every rank (rank 0's speak); batch hooks over this rank's shard, whose
    # batches steps counts; on_test_end gets the global logs (docs/callbacks.md).
    cbs = local.callback_list(callbacks, model, -(-(hi - lo) // batch_size), batch_size,
                              hi - lo, verbose, quiet=not dp.is_root)
    buf = np.zeros(4 + _metrics.total_size(model.metrics))
    state = {"error": None}

    def run(hooks):
        try:
            with local.batch_bar(verbose == 1 and dp.is_root, hi - lo, batch_size,
                                 "evaluate (rank 0's shard)") as bar:
                buf[1:] = local.evaluate_sums(model, x[lo:hi], y[lo:hi], batch_size, bar,
                                              None if w is None else w[lo:hi], hooks=hooks)
        except Exception as exc:  # noqa: BLE001  (any error is sent to the other ranks)
            state["error"], buf[0] = exc, 1
        dp.world.allreduce_sum(buf, "evaluate: allreduce of the sums")
        if buf[0]:
            dp._raise_failure(state["error"], "evaluate")
        return local.evaluate_logs(model, buf[1:])

    return local.test_pass(model, cbs, run)


def _predict(model, x, batch_size, verbose, callbacks, dp):
    local = dp.local
    x, batch_size, verbose, callbacks = local.predict_args(model, x, batch_size, verbose,
                                                           callbacks)
    _agree(dp, model, x=x)
    n, size = len(x), dp.size
    counts = [hi - lo for lo, hi in (shard(0, n, r, size) for r in range(size))]
    lo, hi = dp.shard(0, n)
    result = np.empty((n,) + model.output_shape, dtype=model.dtype)
    cbs = local.callback_list(callbacks, model, -(-(hi - lo) // batch_size), batch_size,
                              hi - lo, verbose, quiet=not dp.is_root)

    def run(hooks):
        error = None
        try:
            with local.batch_bar(verbose == 1 and dp.is_root, hi - lo, batch_size,
                                 "predict (rank 0's shard)") as bar:
                local.predict_into(model, x[lo:hi], result[lo:hi], batch_size, bar, hooks,
                                   stoppable=False)
        except Exception as exc:  # noqa: BLE001  (any error is sent to the other ranks)
            error = exc
        msg = None if error is None else describe_exception(error)
        exc = failure(dp.world.allgather((dp.rank, msg), "predict: failure check"), "predict")
        if exc is not None:
            raise exc from error
        dp.world.allgatherv_rows(result, counts, "predict: allgatherv of the rows")
        return result

    # model.stop_predicting is not honoured here: every rank returns all n rows (the rows a
    # rank skipped would be missing from the others' results; docs/callbacks.md)
    return local.predict_pass(model, cbs, run)


def _agree(dp, model, *, x, y=None, w=None) -> None:
    """Raise on every rank unless all ranks got the same arguments and model; from here on a
    failure outside the reduced results aborts the job (DataParallel.run)."""
    loss = model.loss
    info = {"model": _without_seeds(model.get_config()["layers"]),
            "dtype": str(model.dtype),
            "parameter checksum": zlib.crc32(model._params),
            "samples": len(x), "x": _array_sig(x),
            "y": None if y is None else _array_sig(y),
            "sample weights": None if w is None else _array_sig(w),
            "loss": None if loss is None else [type(loss).__name__, repr(loss.get_config())],
            "metrics": [_metrics.serialize(m) for m in model.metrics]}
    dp._exchange(info)
    dp._phase = dp.fn
