"""fit / evaluate / predict for :class:`nnfast.Sequential`.

One training step (``train_step``): forward through every layer into workspace views, the fused
loss (loss and d loss/d outputs in one op), backward in reverse down to the first trainable layer
(which skips dx), weight penalties, one fused optimizer update over the flat buffer. Batches are
views of the converted input, or, when shuffling, gathered with ``np.take(..., out=)`` into
workspace rows through a per-epoch permutation, so a step allocates no array after the first.

Ctrl-C during fit sets a flag (main thread) and training stops after the current batch; a
KeyboardInterrupt raised anywhere else in the loop (e.g. by a callback) stops it too. Either way
the model stays usable and fit returns the History of the completed epochs, with a warning.
"""
from __future__ import annotations

import math
import signal
import threading
import time
import warnings

import numpy as np

from nnfast import callbacks as _callbacks
from nnfast._data import (
    as_array,
    as_features,
    check_feature_shape,
    check_lengths,
    positive_int,
    seed_value,
)
from nnfast._threads import blas_limited


# ----------------------------------------------------------------------------- checks
def _prepare(model, x, y, fn: str, what: str = ""):
    """Convert and check x (and y against the loss) without changing the model."""
    if not model.layers:
        raise ValueError(f"{fn}: the model has no layers")
    x = as_features(x, model.dtype, fn, what + "x")
    expected = model.input_shape if model.built else model._declared_input_shape()
    check_feature_shape(x, expected, fn, what + "x")
    out_shape = model.infer_output_shape(x.shape[1:])
    if y is None:
        return x, None
    if model.loss is None:
        raise ValueError(f"{fn}: the model is not compiled; call model.compile(...) first")
    y = as_array(y, what + "y", fn)
    check_lengths(x, y, fn, what + "x", what + "y")
    y = model.loss.prepare_targets(y, out_shape, model.dtype, f"{fn}: {what}y")
    return x, y


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


def train_step(model, ws, xb, yb, n: int) -> tuple:
    """One optimisation step on a batch of n rows; returns (loss, outputs)."""
    loss, out = compute_gradients(model, ws, xb, yb, n)
    apply_gradients(model)
    return loss, out


def compute_gradients(model, ws, xb, yb, n: int) -> tuple:
    """Forward, loss, backward and penalties into the gradient buffer; returns (loss, outputs)."""
    layers = model.layers
    out = forward(model, ws, xb, n, "train")
    dout = ws.rows("dout", n, out.shape[1:])
    loss, _ = model.loss(out, yb, grad=dout)
    bufs, acts, step = ws.layer_buffers(n, True), ws.acts, model._step
    g = dout
    for i in range(len(layers) - 1, ws.first_trainable - 1, -1):
        g = layers[i].backward(g, acts[i], acts[i + 1], bufs[i], ws.need_dx(i), step)
    for layer in model._regularized:
        loss += layer.regularization(True)
    return loss, out


def apply_gradients(model) -> None:
    """One optimizer update of the flat parameter buffer from the gradient buffer."""
    model.optimizer.step(model._params, model._grads)
    model._step += 1


def regularization(model) -> float:
    return sum(layer.regularization(False) for layer in model._regularized)


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def _evaluate(model, x, y, batch_size: int, bar=None) -> dict:
    n, total, *sums = evaluate_sums(model, x, y, batch_size, bar)
    logs = {"loss": total / n + regularization(model)}
    logs.update({m.name: s / n for m, s in zip(model.metrics, sums)})
    return logs


def evaluate_sums(model, x, y, batch_size: int, bar=None) -> list:
    """[rows, sum of losses, sum of each metric·rows] over x, y (no penalty term)."""
    if len(x) == 0:
        return [0, 0.0] + [0.0] * len(model.metrics)
    ws = model.workspace(min(batch_size, len(x)))
    total = 0.0
    sums = [0.0] * len(model.metrics)
    for start, stop in _batches(len(x), batch_size):
        n = stop - start
        out = forward(model, ws, x[start:stop], n, "eval")
        yb = y[start:stop]
        loss, _ = model.loss(out, yb, grad=ws.rows("dout", n, out.shape[1:]), reduction="sum")
        total += loss
        for j, metric in enumerate(model.metrics):
            sums[j] += metric(out, yb, ws, n) * n
        if bar is not None:
            bar.update(1)
    return [len(x), total] + sums


# ----------------------------------------------------------------------------- public
def evaluate(model, x, y, batch_size: int = 32, verbose: int = 0) -> dict:
    batch_size = positive_int(batch_size, "batch_size", "evaluate")
    verbose = _verbose(verbose, "evaluate")
    x, y = _prepare(model, x, y, "evaluate")
    _ready(model, x)
    bar = _bar(math.ceil(len(x) / batch_size), "evaluate") if verbose == 1 else None
    try:
        return _evaluate(model, x, y, batch_size, bar)
    finally:
        if bar is not None:
            bar.close()


def predict(model, x, batch_size: int = 32, verbose: int = 0) -> np.ndarray:
    batch_size = positive_int(batch_size, "batch_size", "predict")
    verbose = _verbose(verbose, "predict")
    x, _ = _prepare(model, x, None, "predict")
    if not model.built:
        model.build(x.shape[1:])
    ws = model.workspace(min(batch_size, len(x)))
    result = np.empty((len(x),) + model.output_shape, dtype=model.dtype)
    for start, stop in _batches(len(x), batch_size):
        result[start:stop] = forward(model, ws, x[start:stop], stop - start, "predict")
    return result


def _ready(model, x, seed=None) -> None:
    if not model.built:
        if seed is not None and model.seed is None:
            model.seed = seed
        model.build(x.shape[1:])
    opt = model.optimizer
    if opt is not None and opt.size != model._params.size:
        opt.build(model._params.size, model.dtype)
    model._bind_metrics()


def _bar(total: int, desc: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=True, dynamic_ncols=True,
                mininterval=0.2)


def _fmt(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


def fit(model, x, y, epochs=1, batch_size=32, validation_split=0.0, validation_data=None,
        shuffle=True, callbacks=None, verbose=1, seed=None, distributed=False):
    args = (model, x, y, epochs, batch_size, validation_split, validation_data, shuffle,
            callbacks, verbose, seed)
    with blas_limited():  # callbacks' NumPy calls must not wake an OpenBLAS pool beside ours
        if not distributed:
            return _fit(*args)
        from nnfast.distributed import DataParallel  # batch_size is per rank (see there)
        return DataParallel().run(_fit, *args)


def _fit(model, x, y, epochs, batch_size, validation_split, validation_data, shuffle, callbacks,
         verbose, seed, dp=None):
    fn = "fit"
    epochs = positive_int(epochs, "epochs", fn, minimum=0)
    batch_size = positive_int(batch_size, "batch_size", fn)
    verbose = _verbose(verbose, fn)
    seed = seed_value(seed, fn)
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) \
            or not 0.0 <= validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be a number in [0, 1), got "
                         f"{validation_split!r}")
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not isinstance(cb, _callbacks.Callback):
            raise TypeError(f"fit: callbacks must be nnfast.callbacks.Callback instances, got "
                            f"{type(cb).__name__}")
    if model.loss is None:
        raise ValueError("fit: the model is not compiled; call model.compile(...) first")
    x, y = _prepare(model, x, y, fn)
    val = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("fit: validation_data must be a tuple (x_val, y_val)")
        val = _prepare(model, validation_data[0], validation_data[1], fn, "validation_data ")
        check_feature_shape(val[0], x.shape[1:], fn, "validation_data x")
    elif validation_split > 0.0:
        n_val = int(len(x) * validation_split)
        if n_val == 0 or n_val == len(x):
            raise ValueError(f"fit: validation_split={validation_split} leaves "
                             f"{len(x) - n_val} training and {n_val} validation samples; "
                             "both must be >= 1")
        x, val = x[:-n_val], (x[-n_val:], y[-n_val:])
        y = y[:-n_val]
    if model.first_trainable is None:
        raise ValueError("fit: the model has no trainable layer (add a Dense layer)")
    # ---- all checks passed: from here on the model changes
    _ready(model, x, seed)
    if dp is not None:
        verbose, callbacks, seed = dp.setup(model, x, y, val, epochs=epochs,
                                            batch_size=batch_size, shuffle=shuffle,
                                            callbacks=callbacks, verbose=verbose, seed=seed)
    return _loop(model, x, y, val, epochs, batch_size, shuffle, callbacks, verbose,
                 seed if seed is not None else model.seed, dp)


def _loop(model, x, y, val, epochs, batch_size, shuffle, callbacks, verbose, train_seed, dp=None):
    n = len(x)
    global_batch = batch_size * (dp.size if dp is not None else 1)
    steps = math.ceil(n / global_batch)
    # One capacity for the training and the validation batches: no reallocation mid-fit.
    ws = model.workspace(min(batch_size, max(n, len(val[0]) if val is not None else 0)))
    identity = np.arange(n) if shuffle else None
    order = identity.copy() if shuffle else None
    history = _callbacks.History()
    # History last, as in Keras: it records what the other callbacks added to the logs.
    cbs = _callbacks.CallbackList(callbacks + [history], model, {
        "epochs": epochs, "steps": steps, "batch_size": batch_size, "samples": n,
        "verbose": verbose})
    model.history, model.stop_training = history, False
    batch_logs = cbs.wants_batch_logs
    names = [m.name for m in model.metrics]
    interrupt = _Interrupt()
    bar = None
    with interrupt:
        try:
            cbs.on_train_begin({})
            for epoch in range(epochs):
                if model.stop_training or (interrupt.requested if dp is None
                                           else dp.stop_requested):
                    break
                cbs.on_epoch_begin(epoch, {})
                t0 = time.perf_counter()
                if shuffle:
                    np.copyto(order, identity)   # so the order depends on (seed, epoch) only
                    np.random.default_rng([train_seed, model._epoch]).shuffle(order)
                bar = _bar(steps, f"Epoch {epoch + 1}/{epochs}") if verbose == 1 else None
                seen, loss_sum, metric_sums = 0, 0.0, [0.0] * len(names)
                completed = True
                for b, (start, stop) in enumerate(_batches(n, global_batch)):
                    nb = stop - start
                    if batch_logs:
                        cbs.on_batch_begin(b, {"batch": b, "size": nb})
                    lo, hi = (start, stop) if dp is None else dp.shard(start, stop)
                    if shuffle:
                        idx = order[lo:hi]
                        xb = np.take(x, idx, axis=0, out=ws.rows("xb", hi - lo, x.shape[1:]),
                                     mode="clip")
                        yb = np.take(y, idx, axis=0,
                                     out=ws.rows("yb", hi - lo, y.shape[1:], y.dtype), mode="clip")
                    else:
                        xb, yb = x[lo:hi], y[lo:hi]
                    if dp is None:
                        loss, out = train_step(model, ws, xb, yb, nb)
                        seen += nb
                        loss_sum += loss * nb
                        for j, metric in enumerate(model.metrics):
                            metric_sums[j] += metric(out, yb, ws, nb) * nb
                    else:   # one Allreduce: gradients, then the global rows, loss and metrics
                        rows, loss_b, metric_b = dp.train_step(model, ws, xb, yb, hi - lo, nb,
                                                               interrupt.requested)
                        seen += rows
                        loss_sum += loss_b
                        metric_sums = [s + m for s, m in zip(metric_sums, metric_b)]
                    if bar is not None or batch_logs:
                        logs = {"loss": loss_sum / seen}
                        logs.update({k: s / seen for k, s in zip(names, metric_sums)})
                        if bar is not None:
                            bar.set_postfix_str(_fmt(logs), refresh=False)
                            bar.update(1)
                        if batch_logs:
                            cbs.on_batch_end(b, {"batch": b, "size": nb, **logs})
                    if model.stop_training or (interrupt.requested if dp is None
                                               else dp.stop_requested):
                        completed = stop == n
                        break
                if not completed:
                    break
                model._epoch += 1
                logs = {"loss": loss_sum / seen}
                logs.update({k: s / seen for k, s in zip(names, metric_sums)})
                if dp is not None:
                    logs.update(dp.end_epoch(model, val, batch_size))
                elif val is not None:
                    vlogs = _evaluate(model, val[0], val[1], batch_size)
                    logs.update({f"val_{k}": v for k, v in vlogs.items()})
                if bar is not None:
                    bar.set_postfix_str(_fmt(logs), refresh=False)
                    bar.close()
                    bar = None
                elif verbose == 2:
                    print(f"Epoch {epoch + 1}/{epochs} - {time.perf_counter() - t0:.2f}s - "
                          f"{_fmt(logs)}", flush=True)
                cbs.on_epoch_end(epoch, logs)
        except KeyboardInterrupt:
            interrupt.requested = True
        finally:
            if bar is not None:
                bar.close()
    if interrupt.requested:
        warnings.warn(f"fit: interrupted (KeyboardInterrupt) after {len(history.epoch)} complete "
                      f"epoch(s); the model keeps the weights of the last completed batch and the "
                      f"returned History holds the completed epochs", RuntimeWarning, stacklevel=3)
    cbs.on_train_end({})
    return history


class _Interrupt:
    """While active in the main thread, the first Ctrl-C only sets ``requested`` (training stops
    after the current batch); a second one raises KeyboardInterrupt as usual."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):
                self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
