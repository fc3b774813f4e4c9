"""Callbacks: hooks into :meth:`nnfast.Sequential.fit`, after Keras 3's ``keras.callbacks``.

Every hook receives ``logs``, a dict of the latest numbers: per training batch {"batch",
"size", "loss", metrics...} (running means over the epoch so far; Keras 3 leaves out "batch"
and "size"), per epoch {"loss", metrics..., "val_loss", "val_<metric>"...}; ``on_train_end``
gets the last epoch's logs. A callback stops training by setting
``self.model.stop_training = True``: fit finishes the running batch, then ends that epoch as
usual (validation, ``on_epoch_end``, History) and stops, as Keras 3 does. Stateful callbacks
reset their state in ``on_train_begin``, so one instance can be reused across fits (except
ModelCheckpoint's best value, kept as in Keras). See docs/callbacks.md.

>>> import nnfast
>>> from nnfast.callbacks import EarlyStopping
>>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
"""
from nnfast.callbacks._base import (  # noqa: F401  (with_history: for the engine)
    Callback,
    CallbackList,
    History,
    LambdaCallback,
    with_history,
)
from nnfast.callbacks._checkpoint import ModelCheckpoint
from nnfast.callbacks._control import LearningRateScheduler, TerminateOnNaN
from nnfast.callbacks._monitor import EarlyStopping, ReduceLROnPlateau

__all__ = ["Callback", "CallbackList", "EarlyStopping", "History", "LambdaCallback",
           "LearningRateScheduler", "ModelCheckpoint", "ReduceLROnPlateau", "TerminateOnNaN"]


def __dir__():  # tab completion shows the public names only
    return list(__all__)
