"""Callbacks that watch one logged quantity: EarlyStopping, ReduceLROnPlateau (Keras 3's
keras/src/callbacks/monitor_callback.py, early_stopping.py, reduce_lr_on_plateau.py)."""
from __future__ import annotations

import math

import numpy as np

from nnfast import _warn
from nnfast.callbacks._base import Callback


def _mode(cls: str, mode) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{cls}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


def check_int(cls: str, name: str, value, minimum: int = 0, bool_ok: bool = False) -> int:
    """An integer >= minimum (Keras compares it with counters, so 2.5 or "3" would misbehave;
    a bool only where ``bool_ok``: verbose=True is common)."""
    if ((isinstance(value, bool) and not bool_ok)
            or not isinstance(value, (int, np.integer)) or value < minimum):
        raise ValueError(f"{cls}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_bool(cls: str, name: str, value) -> bool:
    """True or False (NumPy's bool too): Keras takes any truthy value, so "no" would turn the
    option on."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{cls}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_number(cls: str, name: str, value, minimum: float | None = None,
                 none_ok: bool = False):
    """A finite real number (>= minimum when given), or None when ``none_ok``. NaN is refused:
    every comparison with it is False, so a NaN bound silently disables the callback."""
    if value is None and none_ok:
        return None
    if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value) or (minimum is not None and value < minimum)):
        want = "a finite number" + (f" >= {minimum}" if minimum is not None else "")
        raise ValueError(f"{cls}: {name} must be {want}{' or None' if none_ok else ''}, got "
                         f"{value!r}")
    return float(value)


def check_monitor(cls: str, monitor) -> str:
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"{cls}: monitor must be the name of a logged quantity (a non-empty "
                        f"str such as 'val_loss'), got {monitor!r}")
    return monitor


def monitor_direction(monitor: str, model) -> str | None:
    """"up"/"down" for ``monitor`` as Keras 3's MonitorCallback._set_monitor_op finds it: the
    "val_" prefix dropped, "loss" is down, otherwise the ``direction`` of the compiled metric
    whose log key (``name``) it is; None when neither says."""
    name = monitor.removeprefix("val_")
    found = "down" if name == "loss" else None
    for metric in getattr(model, "metrics", None) or []:
        if getattr(metric, "name", None) == name and getattr(metric, "direction", None):
            found = metric.direction   # the last match wins, as in Keras' loop
    return found


class _Monitor(Callback):
    """Shared logic (Keras' MonitorCallback): is ``value`` better than ``reference`` by more
    than ``min_delta``? ``reference`` None (nothing seen yet) always is."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        super().__init__()
        cls = type(self).__name__
        self.monitor = check_monitor(cls, monitor)
        self.mode = _mode(cls, mode)
        self.min_delta = abs(check_number(cls, "min_delta", min_delta))
        self._sign = None if mode == "auto" else (1 if mode == "max" else -1)

    def _resolve_mode(self) -> None:
        """mode="auto": the direction of the monitored quantity, found at the start of fit
        (before any step) from the compiled model's metrics, as Keras 3 does; an unknown name
        raises instead of guessing."""
        if self.mode != "auto":
            return
        direction = monitor_direction(self.monitor, self.model)
        if direction is None:
            raise ValueError(f"{type(self).__name__}: cannot tell whether monitor="
                             f"{self.monitor!r} should be minimized or maximized (it is not "
                             f"'loss' nor a metric compiled into the model, with or without "
                             f"'val_'); pass mode='min' or mode='max'")
        self._sign = 1 if direction == "up" else -1

    def _current(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None and not getattr(self, "_quiet", False):   # rank 0 speaks
            _warn.warn(f"{type(self).__name__}: the monitored quantity {self.monitor!r} is "
                       f"not in the logs (available: {', '.join(sorted(logs or {}))})",
                       RuntimeWarning)
        return value

    def _is_improvement(self, value, reference) -> bool:
        if reference is None:
            return True
        return bool(self._sign * (value - reference) > self.min_delta)


class EarlyStopping(_Monitor):
    """Stop training when ``monitor`` has stopped improving (Keras 3's ``EarlyStopping``).

    Parameters (Keras 3's, same defaults): ``monitor="val_loss"``; ``min_delta=0`` (a change of
    at most min_delta is no improvement); ``patience=0`` (epochs without improvement before
    stopping; never stops after the first epoch); ``verbose=0`` (1: say when it stopped and
    restored); ``mode="auto"`` ("min", "max", or from the name: ``loss``, ``mse``, ``mae`` min,
    ``accuracy`` max, otherwise ``ValueError`` at the start of fit); ``baseline=None`` (the
    patience counter restarts only on epochs that also beat the baseline);
    ``restore_best_weights=False`` (at the end of training, however it ended, put back the
    weights of the best epoch seen; a copy of the flat parameter buffer);
    ``start_from_epoch=0`` (epochs before it are ignored).

    State (``wait``, ``best``, ``best_epoch``, ``stopped_epoch``, ``best_weights``) is reset
    at the start of every fit, so one instance can serve several fits or models.

    Differs from Keras: a ``mode`` other than the three raises ``ValueError`` (Keras warns and
    uses "auto"); negative ``patience`` or ``start_from_epoch`` raise ``ValueError``.

    >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        cls = "EarlyStopping"
        patience = check_int(cls, "patience", patience)
        start_from_epoch = check_int(cls, "start_from_epoch", start_from_epoch)
        baseline = check_number(cls, "baseline", baseline, none_ok=True)
        verbose = check_int(cls, "verbose", verbose, bool_ok=True)
        super().__init__(monitor, mode, min_delta)
        self.patience, self.baseline, self.verbose = patience, baseline, verbose
        self.restore_best_weights = check_bool(cls, "restore_best_weights",
                                               restore_best_weights)
        self.start_from_epoch = start_from_epoch
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = self.best_weights = None

    def on_train_begin(self, logs=None):
        self._resolve_mode()
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = self.best_weights = None

    def _keep_weights(self, epoch) -> None:
        params = self.model._params
        if self.best_weights is None:
            self.best_weights = params.copy()
        else:
            np.copyto(self.best_weights, params)
        self.best_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs)
        if value is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self._keep_weights(epoch)     # the first epoch seen is the best so far
        self.wait += 1
        if self._is_improvement(value, self.best):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self._keep_weights(epoch)
            if self.baseline is None or self._is_improvement(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            self._print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                self._print(f"Restoring model weights from the end of the best epoch: "
                            f"{self.best_epoch + 1}.")
            # other threads' predict: old or new weights, never a mix
            self.model._weights.write(np.copyto, self.model._params, self.best_weights)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement
    (Keras 3's ``ReduceLROnPlateau``).

    Parameters (Keras 3's, same defaults): ``monitor="val_loss"``, ``factor=0.1``,
    ``patience=10``, ``verbose=0``, ``mode="auto"`` (as EarlyStopping), ``min_delta=1e-4``,
    ``cooldown=0`` (epochs after a reduction during which nothing is counted), ``min_lr=0``
    (never below). Adds ``learning_rate`` to the epoch logs. Its counters and best value are
    reset at the start of every fit.

    Differs from Keras: ``factor`` must lie in (0, 1) (Keras refuses only ``factor >= 1``);
    negative ``patience``/``cooldown``/``min_lr`` raise ``ValueError``."""

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0):
        cls = "ReduceLROnPlateau"
        factor = check_number(cls, "factor", factor)
        if not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        patience = check_int(cls, "patience", patience)
        cooldown = check_int(cls, "cooldown", cooldown)
        min_lr = check_number(cls, "min_lr", min_lr, minimum=0)
        verbose = check_int(cls, "verbose", verbose, bool_ok=True)
        super().__init__(monitor, mode, min_delta)
        self.factor, self.patience, self.cooldown = factor, patience, cooldown
        self.min_lr, self.verbose = min_lr, verbose
        self.wait = self.cooldown_counter = 0
        self.best = None

    def on_train_begin(self, logs=None):
        self._resolve_mode()
        self.wait = self.cooldown_counter = 0
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        opt = self.model.optimizer
        if logs is not None:
            logs["learning_rate"] = opt.learning_rate
        value = self._current(logs)
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(value, self.best):
            self.best, self.wait = value, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience and opt.learning_rate > self.min_lr:
            opt.learning_rate = max(opt.learning_rate * self.factor, self.min_lr)
            self.cooldown_counter, self.wait = self.cooldown, 0
            if self.verbose:
                self._print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                            f"{opt.learning_rate}.")
