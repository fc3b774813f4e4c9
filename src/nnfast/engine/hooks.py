"""The callbacks of evaluate and predict, and of fit's validation: Keras 3's on_test_* and
on_predict_* hooks (keras/src/backend/torch/trainer.py, evaluate / predict / fit, 3.15).

Order, as Keras 3: ``on_test_begin({})``, per batch ``on_test_batch_begin(b, {})`` /
``on_test_batch_end(b, running logs)``, ``on_test_end(the returned logs)``; ``on_predict_begin
({})``, per batch ``on_predict_batch_begin(b, {})`` / ``on_predict_batch_end(b, {"outputs":
that batch's rows})``, ``on_predict_end({})``. A callback setting ``model.stop_evaluating`` /
``model.stop_predicting`` ends the pass after the running batch (both reset to False at the
start of each pass, as Keras does): evaluate then returns the logs of the batches it ran,
predict the rows it computed.

The batch hooks cost nothing without callbacks: the passes are then handed ``None`` instead of
the CallbackList, and check nothing per batch; the running logs of ``on_test_batch_end`` are
computed only when a callback overrides it (``CallbackList.wants_test_batch_logs``, as fit's
``wants_batch_logs``).
"""
from __future__ import annotations

from nnfast import callbacks as _callbacks


def checked(callbacks, fn: str) -> list:
    """``callbacks`` (None, a list or tuple of Callback instances) as a new list; TypeError
    naming the argument otherwise, before any work."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"{fn}: callbacks must be a list of nnfast.callbacks.Callback "
                        f"instances, got {type(callbacks).__name__}")
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, _callbacks.Callback):
            raise TypeError(f"{fn}: callbacks must be nnfast.callbacks.Callback instances, got "
                            f"{type(cb).__name__} at callbacks[{i}]")
    return list(callbacks)


def callback_list(callbacks: list, model, steps, batch_size, samples, verbose,
                  quiet: bool = False):
    """The CallbackList of one evaluate / predict call; params as fit's with ``epochs=1``
    (Keras: epochs=1, steps, verbose). ``quiet``: a distributed rank other than 0."""
    cbs = _callbacks.CallbackList(callbacks, model, epochs=1, steps=steps,
                                  batch_size=batch_size, samples=samples, verbose=verbose)
    if quiet:
        cbs._silence()
    return cbs


def test_pass(model, cbs, run) -> dict:
    """``on_test_begin``, ``run(hooks)`` (the logs; hooks: cbs, or None without callbacks),
    ``on_test_end(logs)``; returns the logs."""
    model.stop_evaluating = False
    cbs.on_test_begin({})
    logs = run(cbs if cbs.callbacks else None)
    cbs.on_test_end(logs)
    return logs


def predict_pass(model, cbs, run):
    """``on_predict_begin({})``, ``run(hooks)`` (hooks: cbs, or None without callbacks),
    ``on_predict_end({})``; returns what run returns."""
    model.stop_predicting = False
    cbs.on_predict_begin({})
    result = run(cbs if cbs.callbacks else None)
    cbs.on_predict_end({})
    return result


def dp_validation(model, dp, val, batch_size, ws, cbs) -> dict:
    """Distributed fit's epoch end (DataParallel.end_epoch, with fit's workspace ws): with
    validation data, on_test_begin, this rank's shard (its batch hooks), on_test_end(the global
    logs) on every rank; without, only end_epoch's weight check. Returns the val_ logs."""
    if val is None:
        return dp.end_epoch(model, val, batch_size, ws)
    vlogs = {}

    def run(hooks):
        vlogs.update(dp.end_epoch(model, val, batch_size, ws, hooks=hooks))
        return {k[len("val_"):]: v for k, v in vlogs.items()}

    test_pass(model, cbs, run)
    return vlogs
