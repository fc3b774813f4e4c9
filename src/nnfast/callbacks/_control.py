"""Callbacks that steer training from outside the loop: LearningRateScheduler, TerminateOnNaN
(Keras 3's keras/src/callbacks/learning_rate_scheduler.py, terminate_on_nan.py)."""
from __future__ import annotations

import inspect
import math

import numpy as np

from nnfast.callbacks._base import Callback
from nnfast.callbacks._monitor import check_bool, check_int


def _takes_lr(schedule) -> bool:
    """Can ``schedule`` be called as schedule(epoch, lr)? Keras tries that call and falls back
    to schedule(epoch) on any TypeError, which also hides a TypeError raised inside a
    two-argument schedule; nnfast asks the signature instead (uninspectable: two)."""
    try:
        sig = inspect.signature(schedule)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(0, 0.1)
        return True
    except TypeError:
        return False


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of each epoch (Keras 3's ``LearningRateScheduler``):
    ``schedule(epoch, lr) -> new lr``, epoch 0-based and lr the current rate as a float, or
    the older ``schedule(epoch)``. ``verbose=1`` prints the new rate (Keras' wording). Adds
    ``learning_rate`` to the epoch logs.

    Raises ``TypeError`` when ``schedule`` is not callable, and ``ValueError`` when it returns
    something other than a finite number >= 0.

    Differs from Keras: an int (or NumPy integer) is accepted as a rate (Keras wants a float);
    negative or non-finite rates are refused (Keras passes them to the optimizer).

    >>> sched = LearningRateScheduler(lambda epoch, lr: lr * 0.9)
    """

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, got {schedule!r}")
        verbose = check_int("LearningRateScheduler", "verbose", verbose, bool_ok=True)
        self.schedule, self.verbose = schedule, verbose
        self._two_args = _takes_lr(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        lr = (self.schedule(epoch, float(opt.learning_rate)) if self._two_args
              else self.schedule(epoch))
        if (isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating))
                or not math.isfinite(lr) or lr < 0):
            raise ValueError(f"LearningRateScheduler: the schedule returned {lr!r} for epoch "
                             f"{epoch}; expected a finite number >= 0")
        opt.learning_rate = float(lr)
        if self.verbose:
            self._print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                        f"{float(lr)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.model.optimizer.learning_rate


class TerminateOnNaN(Callback):
    """Stop training when a batch loss is NaN or infinite (Keras 3's ``TerminateOnNaN``).

    By default it prints ``Batch <b>: Invalid loss, terminating training`` and sets
    ``model.stop_training``: fit ends the epoch (its logs, NaN loss included, reach History
    and ``on_epoch_end``) and stops, and ``on_train_end`` runs. With ``raise_error=True`` it
    raises ``RuntimeError`` at once instead (no ``on_epoch_end``/``on_train_end``)."""

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = check_bool("TerminateOnNaN", "raise_error", raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: "
                                   f"{loss}. Terminating training immediately.")
            self._print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True
