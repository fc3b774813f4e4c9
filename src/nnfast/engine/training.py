"""fit for :class:`nnfast.Sequential`, and the passes evaluate and predict share with it
(nnfast/engine/inference.py).

One training step (``train_step``): forward through every layer into workspace views, the fused
loss (loss and d loss/d outputs in one op), backward in reverse down to the first trainable layer
(which skips dx), weight penalties, one fused optimizer update over the flat buffer. Batches are
views of the converted input, or, when shuffling, gathered with ``np.take(..., out=)`` into
workspace rows through a per-epoch permutation, so a step allocates no array after the first.

Sample weights (``sample_weight`` and ``class_weight``, see nnfast/engine/sample_weights.py) are
one per-row vector, shuffled, split and sharded with the rows and passed to the fused loss op,
which scales each row's loss and gradient rows by w_i: the batch loss is Σ_i w_i·l_i / N, Keras
3's "sum_over_batch_size" reduction, and its exact gradient is what backward propagates. The epoch
loss is the row-weighted mean of the batch losses (Σ_i w_i·l_i / rows, as Keras' loss tracker);
metrics are Σ_i w_i·m_i / Σ_i w_i (Keras' weighted metrics).

Stopping (Keras 3's semantics, docs/callbacks.md): a callback that sets ``model.stop_training``
during a batch ends training after that batch; the partial epoch is then ended as usual (its
logs, validation, ``on_epoch_end``, History) and ``on_train_end`` runs. Ctrl-C (SIGINT, main
thread) also stops after the running batch, so the model stays consistent, but then fit raises
``KeyboardInterrupt`` (the partial epoch is not recorded, ``on_train_end`` does not run, as
when Keras is interrupted; ``model.history`` holds the completed epochs); a second Ctrl-C
raises at once. A KeyboardInterrupt raised by a callback propagates as is.

Threads (nnfast/engine/locks.py): one thread fits a model at a time (a second raises); each pass
takes a workspace from the model's pool; the optimizer step is a write of the weights, so other
threads' evaluate and predict read each batch's weights from one whole step.
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import types

import numpy as np

from nnfast import callbacks as _callbacks
from nnfast import metrics as _metrics
from nnfast._threads import blas_limited
from nnfast.engine import hooks as _hooks
from nnfast.engine import plan as _plan
from nnfast.engine import step as _step
from nnfast.engine import stopping
from nnfast.engine.checks import positive_int, seed_value
from nnfast.engine.inputs import fit_data


# ----------------------------------------------------------------------------- checks
def _verbose(verbose, fn: str) -> int:
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"{fn}: verbose must be 0, 1 or 2, got {verbose!r}")
    return int(verbose)


# ----------------------------------------------------------------------------- passes
def forward(model, ws, xb, n: int, mode: str):
    """Run every layer; returns the output (logits at a fused head unless mode='predict')."""
    bufs = ws.layer_buffers(n, mode == "train")
    acts = ws.acts if mode == "train" else None
    a = xb
    step = model._step
    for i, layer in enumerate(model.layers):
        if acts is not None:
            acts[i] = a
        a = layer.forward(a, bufs[i], mode, step)
    if acts is not None:
        acts[-1] = a
    return a


def train_step(model, ws, xb, yb, n: int, wb=None) -> tuple:
    """One optimisation step on a batch of n rows (weights wb or None); returns (loss, outputs)."""
    loss, out = compute_gradients(model, ws, xb, yb, n, wb)
    apply_gradients(model)
    return loss, out


def compute_gradients(model, ws, xb, yb, n: int, wb=None) -> tuple:
    """Forward, loss, backward and penalties into the gradient buffer; returns (loss, outputs).

    With row weights wb the loss is Σ_i wb_i·l_i / n and dout its gradient (the fused op
    scales each gradient row by wb_i), so backward needs nothing else."""
    layers = model.layers
    out = forward(model, ws, xb, n, "train")
    dout = ws.rows("dout", n, out.shape[1:])
    loss, _ = model.loss(out, yb, grad=dout, sample_weight=wb)
    bufs, acts, step = ws.layer_buffers(n, True), ws.acts, model._step
    g = dout
    for i in range(len(layers) - 1, ws.first_trainable - 1, -1):
        g = layers[i].backward(g, acts[i], acts[i + 1], bufs[i], ws.need_dx(i), step)
    for layer in model._regularized:
        loss += layer.regularization(True)
    return loss, out


def apply_gradients(model) -> None:
    """One optimizer update of the flat parameter buffer from the gradient buffer (held as a
    write: threads predicting meanwhile see the weights before or after it, never a mix)."""
    model._weights.write(_optimizer_step, model)


def _optimizer_step(model) -> None:
    model.optimizer.step(model._params, model._grads)
    model._step += 1


def regularization(model) -> float:
    """The weight penalty (of one step's weights while another thread fits the model)."""
    if not model._regularized:
        return 0.0
    return model._weights.read(
        lambda: sum(layer.regularization(False) for layer in model._regularized))


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def divide_no_nan(total: float, weight: float) -> float:
    """Keras' divide_no_nan: a metric over rows of total weight 0 reads 0."""
    return total / weight if weight else 0.0


def metric_sums(model) -> np.ndarray:
    """Zeroed float64 sums for the model's metrics (nnfast/metrics: each metric's ``size``
    sufficient statistics, in order)."""
    return np.zeros(_metrics.total_size(model.metrics))


def add_metric_sums(model, sums, out, yb, ws, n: int, wb) -> float:
    """Add each metric's statistics of a batch to sums (from :func:`metric_sums`; for the
    row-mean metrics Σ_i w_i·m_i, w = 1 without weights); returns Σ_i w_i."""
    offset = 0
    for metric in model.metrics:
        metric.add_sums(sums[offset:offset + metric.size], out, yb, ws, n, wb)
        offset += metric.size
    if wb is None:
        return float(n)
    ones = ws.rows("ones", n)      # a dot product: wb.sum() would allocate every batch
    ones.fill(1)
    return float(np.dot(wb, ones))


def _evaluate(model, x, y, batch_size: int, bar=None, w=None, ws=None, hooks=None) -> dict:
    return evaluate_logs(model, evaluate_sums(model, x, y, batch_size, bar, w, ws, hooks))


def evaluate_logs(model, sums) -> dict:
    """The evaluate dict from evaluate_sums' list (summed over shards or not)."""
    n, weight, total = (float(v) for v in sums[:3])
    logs = {"loss": total / n + regularization(model)}
    logs.update(_metrics.results(model.metrics, np.asarray(sums[3:], np.float64), weight))
    return logs


def evaluate_sums(model, x, y, batch_size: int, bar=None, w=None, ws=None, hooks=None) -> list:
    """[rows, Σ w, Σ w·loss, Σ w·metric for each metric] over x, y with row weights w (None:
    all 1); no penalty term. In workspace ws (fit's), else in one from the model's pool.

    hooks: a CallbackList whose on_test_batch_* run per batch, and whose callbacks may set
    ``model.stop_evaluating`` to end the pass after a batch (rows then counts the rows
    evaluated); None: no per-batch work (nnfast/engine/hooks.py)."""
    if len(x) == 0:
        return [0, 0.0, 0.0] + [0.0] * _metrics.total_size(model.metrics)
    if ws is not None:
        return _sums(model, x, y, batch_size, bar, w, ws, hooks)
    pool = model._workspaces
    ws = pool.take(min(batch_size, len(x)))
    try:
        return _sums(model, x, y, batch_size, bar, w, ws, hooks)
    finally:
        pool.give(ws)


def _sums(model, x, y, batch_size, bar, w, ws, hooks=None) -> list:
    total = weight = 0.0
    rows = 0
    sums = metric_sums(model)
    batch_logs = hooks is not None and hooks.wants_test_batch_logs
    for b, (start, stop) in enumerate(_batches(len(x), batch_size)):
        n = stop - start
        if hooks is not None:
            hooks.on_test_batch_begin(b, {})
        out = model._weights.read(forward, model, ws, x[start:stop], n, "eval")
        yb = y[start:stop]
        wb = None if w is None else w[start:stop]
        loss, _ = model.loss(out, yb, grad=ws.rows("dout", n, out.shape[1:]), reduction="sum",
                             sample_weight=wb)
        total += loss
        weight += add_metric_sums(model, sums, out, yb, ws, n, wb)
        rows += n
        if bar is not None:
            bar.update(1)
        if hooks is not None:
            if batch_logs:   # running logs, as Keras 3's test_function returns per batch
                hooks.on_test_batch_end(b, evaluate_logs(model, [rows, weight, total]
                                                         + sums.tolist()))
            if model.stop_evaluating:
                break
    return [rows, weight, total] + sums.tolist()


# ----------------------------------------------------------------------------- fit
def _ready(model, x, seed=None) -> None:
    if not model.built:
        if seed is not None and model.seed is None:
            model.seed = seed
        model.build(x.shape[1:])
    opt = model.optimizer
    if opt is not None and opt.size != model._params.size:
        opt.build(model._params.size, model.dtype)
    model._bind_metrics()


_SIGNALS = (signal.SIGINT, getattr(signal, "SIGTERM", signal.SIGINT))


def _bar(total: int, desc: str):
    """A tqdm bar, built with SIGINT/SIGTERM held back: an interrupt raised inside tqdm's
    __init__ leaves a half-built bar whose __del__ later fails ("no attribute 'pos'") and
    prints its traceback after the interrupt's message. In the main thread (where Python runs
    signal handlers) the handlers are swapped for a recorder during the constructor, then put
    back and a recorded signal raised again, so it reaches them right after. A handler not
    set from Python (signal.getsignal is None) is left alone."""
    from tqdm.auto import tqdm
    held: list = []
    saved = {}
    if threading.current_thread() is threading.main_thread():
        for sig in set(_SIGNALS):
            if signal.getsignal(sig) is not None:
                saved[sig] = signal.signal(sig, lambda signum, frame: held.append(signum))
    try:
        return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True,
                    mininterval=0.2)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for sig in held:
            signal.raise_signal(sig)


@contextlib.contextmanager
def batch_bar(show: bool, rows: int, batch_size: int, desc: str):
    """A progress bar over the batches of ``rows`` rows when ``show``, else None; closed on
    leaving, whatever happened."""
    bar = _bar(math.ceil(rows / batch_size), desc) if show else None
    try:
        yield bar
    finally:
        if bar is not None:
            bar.close()


def _fmt(logs: dict) -> str:
    # per-class metrics (F1Score(average=None), R2Score(class_aggregation=None)) are arrays
    return " - ".join(f"{k}: {np.array2string(np.asarray(v), precision=4)}" if np.ndim(v)
                      else f"{k}: {v:.4f}" for k, v in logs.items())


def fit(model, x, y, epochs=1, batch_size=32, validation_split=0.0, validation_data=None,
        shuffle=True, callbacks=None, verbose=1, seed=None, distributed=False,
        sample_weight=None, class_weight=None):
    args = (model, x, y, epochs, batch_size, validation_split, validation_data, shuffle,
            callbacks, verbose, seed)
    weights = {"sample_weight": sample_weight, "class_weight": class_weight}
    # One thread trains a model at a time: a second fit raises instead of mixing two runs.
    # Callbacks' NumPy calls must not wake an OpenBLAS pool beside ours.
    with model._training.hold(model, "fit"), blas_limited():
        if not distributed:
            return _fit(*args, **weights)
        from nnfast.distributed import DataParallel  # batch_size is per rank (see there)
        return DataParallel(local=_LOCAL).run(_fit, *args, **weights)


def _fit(model, x, y, epochs, batch_size, validation_split, validation_data, shuffle, callbacks,
         verbose, seed, dp=None, sample_weight=None, class_weight=None):
    fn = "fit"
    epochs = positive_int(epochs, "epochs", fn, minimum=0)
    batch_size = positive_int(batch_size, "batch_size", fn)
    verbose = _verbose(verbose, fn)
    seed = seed_value(seed, fn)
    callbacks = _hooks.checked(callbacks, fn)
    if model.loss is None:
        raise ValueError("fit: the model is not compiled; call model.compile(...) first")
    x, y, w, val = fit_data(model, x, y, sample_weight, class_weight, validation_split,
                            validation_data, fn)
    if model.first_trainable is None:
        raise ValueError("fit: the model has no trainable layer (add a Dense layer)")
    # ---- all checks passed: from here on the model changes
    _ready(model, x, seed)
    if dp is not None:
        verbose, callbacks, seed = dp.setup(model, x, y, val, epochs=epochs,
                                            batch_size=batch_size, shuffle=shuffle,
                                            callbacks=callbacks, verbose=verbose, seed=seed,
                                            weights=w)
    return _loop(model, x, y, val, epochs, batch_size, shuffle, callbacks, verbose,
                 seed if seed is not None else model.seed, dp, w)


def _logs(loss_sum: float, seen: int, metrics: list, sums, weight: float) -> dict:
    logs = {"loss": loss_sum / seen}
    logs.update(_metrics.results(metrics, sums, weight))
    return logs


def _loop(model, x, y, val, epochs, batch_size, shuffle, callbacks, verbose, train_seed, dp=None,
          w=None):
    n = len(x)
    # One workspace, of one capacity, for the training and the validation batches: no
    # reallocation mid-fit; back to the model's pool at the end.
    ws = model._workspaces.take(min(batch_size, max(n, len(val[0]) if val is not None else 0)))
    try:
        return _epochs(model, x, y, val, epochs, batch_size, shuffle, callbacks, verbose,
                       train_seed, dp, w, ws)
    finally:
        model._workspaces.give(ws)


def batch_report(cbs, bar, batch_logs: bool, b: int, n: int, logs: dict) -> None:
    """After training batch b of n rows: the bar's tick and running logs, on_train_batch_end."""
    if bar is not None:
        bar.set_postfix_str(_fmt(logs), refresh=False)
        bar.update(1)
    if batch_logs:
        cbs.on_train_batch_end(b, {"batch": b, "size": n, **logs})


def epoch_report(bar, verbose: int, epoch: int, epochs: int, t0: float, logs: dict):
    """The end of an epoch on screen: the bar closed with the epoch's logs (verbose 1) or one
    line (verbose 2). Returns None, the bar to hold from now on."""
    if bar is not None:
        bar.set_postfix_str(_fmt(logs), refresh=False)
        bar.close()
    elif verbose == 2:
        print(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - t0:.2f}s - {_fmt(logs)}",
              flush=True)
    return None


def _epochs(model, x, y, val, epochs, batch_size, shuffle, callbacks, verbose, train_seed, dp,
            w, ws):
    n = len(x)
    global_batch = batch_size * (dp.size if dp is not None else 1)
    steps = math.ceil(n / global_batch)
    identity = np.arange(n) if shuffle else None
    order = identity.copy() if shuffle else None
    callbacks, history = _callbacks.with_history(callbacks)
    cbs = _callbacks.CallbackList(callbacks, model, epochs=epochs, steps=steps,
                                  batch_size=batch_size, samples=n, verbose=verbose)
    if dp is not None and not dp.is_root:
        cbs._silence()       # only rank 0 speaks
    model.history, model.stop_training = history, False
    batch_logs = cbs.wants_batch_logs
    metrics = model.metrics
    interrupt = stopping.CtrlC()
    bar = None
    logs = {}
    with interrupt:
        try:
            cbs.on_train_begin({})
            for epoch in range(epochs):
                if stopping.stop_before_epoch(model, interrupt, dp):
                    break
                cbs.on_epoch_begin(epoch, {})
                t0 = time.perf_counter()
                if shuffle:
                    np.copyto(order, identity)   # so the order depends on (seed, epoch) only
                    np.random.default_rng([train_seed, model._epoch]).shuffle(order)
                bar = _bar(steps, f"Epoch {epoch + 1}/{epochs}") if verbose == 1 else None
                fast = _step.for_fit(model, ws, x, y, w, dp)   # None: the per-layer path below
                seen, weight, loss_sum, sums = 0, 0.0, 0.0, metric_sums(model)
                for b, (start, stop) in enumerate(_batches(n, global_batch)):
                    nb = stop - start
                    if batch_logs:
                        cbs.on_train_batch_begin(b, {"batch": b, "size": nb})
                    lo, hi = (start, stop) if dp is None else dp.shard(start, stop)
                    if fast is not None and not fast.current(model):
                        fast = _step.for_fit(model, ws, x, y, w, dp)   # a callback changed it
                    if fast is not None:    # one call: gather, forward, backward, update
                        loss, out, yb, wb = fast.run(model, ws, x, y, w, order, lo, hi)
                    else:
                        xb, yb, wb = _step.batch_rows(x, y, w, order, lo, hi, ws)
                    if dp is None:
                        if fast is None:
                            loss, out = train_step(model, ws, xb, yb, nb, wb)
                        seen += nb
                        loss_sum += loss * nb
                        weight += add_metric_sums(model, sums, out, yb, ws, nb, wb)
                    else:   # one Allreduce: gradients, then the global rows, loss and metrics
                        step = dp.train_step(model, ws, xb, yb, hi - lo, nb, model.stop_training,
                                             wb, interrupted=interrupt.requested)
                        if step is None:    # a rank stopped after the last batch: all do
                            stopping.agreed_stop(model, interrupt, dp)
                            break
                        rows, loss_b, weight_b, metric_b = step
                        seen += rows
                        loss_sum += loss_b
                        weight += weight_b
                        sums += metric_b
                    if bar is not None or batch_logs:
                        logs = _logs(loss_sum, seen, metrics, sums, weight)
                        batch_report(cbs, bar, batch_logs, b, nb, logs)
                    # distributed: the next step's Allreduce carries the stop to every rank
                    if dp is None and (model.stop_training or interrupt.requested):
                        break
                if interrupt.requested or not seen:
                    break       # Ctrl-C: the partial epoch is not recorded; fit raises below
                model._epoch += 1
                logs = _logs(loss_sum, seen, metrics, sums, weight)
                if dp is not None:
                    logs.update(_hooks.dp_validation(model, dp, val, batch_size, ws, cbs))
                elif val is not None:
                    # Keras 3: validation is an evaluate with fit's callbacks (on_test_*)
                    vlogs = _hooks.test_pass(model, cbs, lambda h: _evaluate(
                        model, val[0], val[1], batch_size, w=val[2], ws=ws, hooks=h))
                    logs.update({f"val_{k}": v for k, v in vlogs.items()})
                bar = epoch_report(bar, verbose, epoch, epochs, t0, logs)
                _plan.forget(model)    # a predict in on_epoch_end sees the layers as trained
                cbs.on_epoch_end(epoch, logs)
        finally:
            if bar is not None:
                bar.close()
    if interrupt.requested:
        raise stopping.interrupted(len(history.epoch), dp)
    cbs.on_train_end(logs)
    return history


# What DataParallel (nnfast/distributed/_data_parallel.py, a lower part that imports nothing of
# the engine) calls back for this rank's share of a step and of the validation.
_LOCAL = types.SimpleNamespace(compute_gradients=compute_gradients,
                               add_metric_sums=add_metric_sums, apply_gradients=apply_gradients,
                               evaluate_sums=evaluate_sums, regularization=regularization,
                               divide_no_nan=divide_no_nan)
