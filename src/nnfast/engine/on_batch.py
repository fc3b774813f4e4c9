"""Keras 3's ``train_on_batch`` and ``test_on_batch`` for :class:`nnfast.Sequential`.

``train_on_batch(x, y, sample_weight=None, class_weight=None, return_dict=False)``: one
optimizer step on the whole of x, y (as fit's step: the one-call step of nnfast/engine/step.py
when the model allows it, else the per-layer path; dropout active). Returns what Keras 3's
``Trainer.train_on_batch`` returns (keras/src/trainers/trainer.py, torch backend): the loss
and metrics of this batch alone, computed from the forward pass before the update (the loss
includes the weight penalty), as

- a float (the loss) when the model has no metrics and ``return_dict`` is False,
- a list ``[loss, metric, ...]`` (in the order of ``compile(metrics=...)``) otherwise,
- a dict ``{"loss": ..., name: ...}`` with ``return_dict=True``.

``test_on_batch(x, y, sample_weight=None, return_dict=False)``: the same values without a step
and with dropout off (fit's validation / evaluate on one batch), in the same three forms.

Rows: x (N, *input_shape) of any real dtype, converted once to the model dtype; y and the
weights as for fit (nnfast/engine/inputs.py, nnfast/engine/sample_weights.py); N >= 1.
Differences from Keras, on purpose and as in nnfast's fit: ``sample_weight`` and
``class_weight`` together multiply (Keras' train_on_batch raises ValueError), and y is
required (nnfast takes no dataset objects here); ``return_dict`` must be a bool (Python's or
NumPy's): Keras takes any truthy value, nnfast raises TypeError for 1, "yes" or None.
Errors: ValueError / TypeError from fit's checks, naming ``train_on_batch`` /
``test_on_batch``; ValueError before compile, without y or on an empty batch; RuntimeError
while another thread fits the model. Nothing changes before every check has passed.
"""
from __future__ import annotations

import numpy as np

from nnfast import metrics as _metrics
from nnfast._threads import blas_limited
from nnfast.engine import sample_weights as _weights
from nnfast.engine import step as _step
from nnfast.engine import training
from nnfast.engine.inputs import fit_data, prepare


def _flag(value, name: str, fn: str) -> bool:
    """True or False, NumPy's bool too (as ``model(x, training=np.False_)`` and the callbacks'
    flags, callbacks/_monitor.check_bool). Keras takes any truthy value; nnfast refuses 1 or
    "no" so a typo cannot silently flip the option."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be True or False, got {value!r}")
    return bool(value)


def _checks(model, y, fn: str) -> None:
    if model.loss is None:
        raise ValueError(f"{fn}: the model is not compiled; call model.compile(...) first")
    if y is None:
        raise ValueError(f"{fn}: y is required (targets of the rows of x), got None")


def _result(logs: dict, return_dict: bool):
    # Keras' _flatten_metrics_in_order: one value alone is returned as is
    if return_dict:
        return logs
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def train_on_batch(model, x, y=None, sample_weight=None, class_weight=None,
                   return_dict=False):
    fn = "train_on_batch"
    return_dict = _flag(return_dict, "return_dict", fn)
    with model._training.hold(model, fn), blas_limited():
        _checks(model, y, fn)
        x, y, w, _ = fit_data(model, x, y, sample_weight, class_weight, 0.0, None, fn)
        if model.first_trainable is None:
            raise ValueError(f"{fn}: the model has no trainable layer (add a Dense layer)")
        training._ready(model, x)
        n = len(x)
        pool = model._workspaces
        ws = pool.take(n)
        try:
            fast = _step.for_fit(model, ws, x, y, w)
            if fast is not None:
                loss, out, yb, wb = fast.run(model, ws, x, y, w, None, 0, n)
            else:
                loss, out = training.train_step(model, ws, x, y, n, w)
                yb, wb = y, w
            sums = training.metric_sums(model)
            weight = training.add_metric_sums(model, sums, out, yb, ws, n, wb)
        finally:
            pool.give(ws)
        logs = {"loss": loss}
        logs.update(_metrics.results(model.metrics, sums, weight))
    return _result(logs, return_dict)


def test_on_batch(model, x, y=None, sample_weight=None, return_dict=False):
    fn = "test_on_batch"
    return_dict = _flag(return_dict, "return_dict", fn)
    _checks(model, y, fn)
    x, y = prepare(model, x, y, fn)
    w = _weights.sample_weights(sample_weight, len(x), model.dtype, fn)
    _weights.require_some_weight(w, fn, "the sample_weight values")
    training._ready(model, x)
    logs = training.evaluate_logs(model, training.evaluate_sums(model, x, y, len(x), w=w))
    return _result(logs, return_dict)
