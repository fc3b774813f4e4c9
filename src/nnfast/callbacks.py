"""Callbacks: hooks into :meth:`nnfast.Sequential.fit`.

Every hook receives ``logs``, a dict of the latest numbers: per batch {"batch", "size", "loss",
metrics...} (running means over the epoch so far), per epoch {"loss", metrics..., "val_loss",
"val_<metric>"...}. A callback stops training by setting ``self.model.stop_training = True``;
fit then ends after the current batch.

>>> import nnfast
>>> from nnfast.callbacks import EarlyStopping
>>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
"""
from __future__ import annotations

import inspect
import math
import warnings

import numpy as np


class Callback:
    """Base class; override any hook. ``self.model`` and ``self.params`` are set by fit.

    ``root_only = True``: in distributed fit only rank 0 runs it (callbacks that write files)."""

    root_only = False

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_batch_begin(self, batch, logs=None): ...
    def on_batch_end(self, batch, logs=None): ...


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``."""

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)


class History(Callback):
    """Records the epoch logs: ``history.history["loss"]`` is the list of epoch losses."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


def _mode(cls: str, mode: str, monitor: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{cls}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if any(k in monitor for k in ("acc", "auc")) else "min"
    return mode


class _Monitor(Callback):
    """Shared logic: is the monitored value an improvement of more than min_delta?"""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        super().__init__()
        self.monitor = monitor
        self.mode = _mode(type(self).__name__, mode, monitor)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf

    def _current(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{type(self).__name__}: the monitored quantity {self.monitor!r} is "
                          f"not in the logs (available: {', '.join(sorted(logs or {}))})",
                          RuntimeWarning, stacklevel=3)
        return value

    def _improved(self, value) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the weights of the best epoch are put back when training stops
    early (a copy of the flat parameter buffer is kept, nothing else)."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, verbose: int = 0):
        super().__init__(monitor, mode, min_delta)
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience!r}")
        self.patience, self.baseline, self.verbose = int(patience), baseline, verbose
        self.restore_best_weights = bool(restore_best_weights)
        self.wait = 0
        self.stopped_epoch = None
        self.best_epoch = None
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = self.best_epoch = None
        self.best = math.inf if self.mode == "min" else -math.inf
        if self.baseline is not None:
            self.best = float(self.baseline)

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if value is None:
            return
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                params = self.model._params
                if self.best_weights is None or self.best_weights.shape != params.shape:
                    self.best_weights = np.empty_like(params)
                np.copyto(self.best_weights, params)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                # other threads' predict: old or new weights, never a mix
                self.model._weights.write(np.copyto, self.model._params, self.best_weights)
            if self.verbose:
                best = "-" if self.best_epoch is None else self.best_epoch + 1
                print(f"Epoch {epoch + 1}: early stopping (best {self.monitor} "
                      f"{self.best:.6g} at epoch {best})")


class ModelCheckpoint(_Monitor):
    """Save the model after every epoch, or only when ``monitor`` improved (save_best_only).

    ``filepath`` may hold format fields filled from the epoch logs, e.g.
    ``"ckpt-{epoch:02d}-{val_loss:.3f}.nnf"``. Each save is atomic (see Sequential.save).
    In distributed fit only rank 0 saves."""

    root_only = True

    def __init__(self, filepath, monitor: str = "val_loss", save_best_only: bool = False,
                 mode: str = "auto", verbose: int = 0):
        super().__init__(monitor, mode, 0.0)
        self.filepath = str(filepath)
        self.save_best_only = bool(save_best_only)
        self.verbose = verbose
        self.saved: list[str] = []

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._current(logs)
            if value is None or not self._improved(value):
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        self.saved.append(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved model to {path}")


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch: ``schedule(epoch, lr) -> new lr``
    (a one-argument ``schedule(epoch)`` works too)."""

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, got {schedule!r}")
        self.schedule, self.verbose = schedule, verbose
        try:
            n = len(inspect.signature(schedule).parameters)
        except (TypeError, ValueError):
            n = 2
        self._two_args = n >= 2

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = self.schedule(epoch, opt.learning_rate) if self._two_args else self.schedule(epoch)
        if not isinstance(lr, (int, float, np.floating)) or not math.isfinite(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler: the schedule returned {lr!r} for epoch "
                             f"{epoch}; expected a finite number >= 0")
        opt.learning_rate = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: learning rate {lr:.6g}")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0, verbose: int = 0):
        super().__init__(monitor, mode, min_delta)
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        self.factor, self.patience, self.cooldown = float(factor), int(patience), int(cooldown)
        self.min_lr, self.verbose = float(min_lr), verbose
        self.wait = self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        self.wait = self.cooldown_counter = 0
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if value is None:
            return
        opt = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = opt.learning_rate
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best, self.wait = value, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience and opt.learning_rate > self.min_lr:
            opt.learning_rate = max(opt.learning_rate * self.factor, self.min_lr)
            self.cooldown_counter, self.wait = self.cooldown, 0
            if self.verbose:
                print(f"Epoch {epoch + 1}: reducing learning rate to {opt.learning_rate:.6g}")


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class CallbackList:
    """Calls a hook on every callback that overrides it, in order."""

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
             "on_batch_begin", "on_batch_end")

    def __init__(self, callbacks, model, params: dict):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be nnfast.callbacks.Callback instances, "
                                f"got {type(cb).__name__}")
            cb.set_model(model)
            cb.set_params(params)
        for hook in self.HOOKS:
            # Bound methods of the callbacks that override the hook: no calls for empty hooks.
            setattr(self, "_" + hook, [getattr(cb, hook) for cb in self.callbacks
                                       if getattr(type(cb), hook) is not getattr(Callback, hook)
                                       or hook in vars(cb)])

    def _call(self, methods, *args):
        for method in methods:
            method(*args)

    def on_train_begin(self, logs):
        self._call(self._on_train_begin, logs)

    def on_train_end(self, logs):
        self._call(self._on_train_end, logs)

    def on_epoch_begin(self, epoch, logs):
        self._call(self._on_epoch_begin, epoch, logs)

    def on_epoch_end(self, epoch, logs):
        self._call(self._on_epoch_end, epoch, logs)

    def on_batch_begin(self, batch, logs):
        self._call(self._on_batch_begin, batch, logs)

    def on_batch_end(self, batch, logs):
        self._call(self._on_batch_end, batch, logs)

    @property
    def wants_batch_logs(self) -> bool:
        return bool(self._on_batch_begin or self._on_batch_end)


__all__ = ["Callback", "CallbackList", "LambdaCallback", "History", "EarlyStopping",
           "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau", "TerminateOnNaN"]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
