"""Callback constructor arguments (issue #17): every argument is checked at construction with a
ValueError/TypeError naming it; NaN bounds and fractional counts are refused (Keras takes them
and then never improves, or compares counters with 2.5). Plus the Keras 3 differences matched
or pinned: fit returns the user's History, LambdaCallback's positional order, unknown keywords
of ReduceLROnPlateau, and stop_training set in on_train_begin."""
import math

import numpy as np
import pytest
from model_data import blobs, mlp

from nnfast import callbacks as cb

X, Y = blobs()


@pytest.mark.parametrize("make, exc, message", [
    (lambda: cb.EarlyStopping(monitor=None), TypeError,
     "EarlyStopping: monitor must be the name of a logged quantity (a non-empty str such as "
     "'val_loss'), got None"),
    (lambda: cb.ReduceLROnPlateau(monitor=""), TypeError,
     "ReduceLROnPlateau: monitor must be the name of a logged quantity (a non-empty str such as "
     "'val_loss'), got ''"),
    (lambda: cb.ReduceLROnPlateau(patience="3"), ValueError,
     "ReduceLROnPlateau: patience must be an integer >= 0, got '3'"),
    (lambda: cb.ReduceLROnPlateau(patience=2.5), ValueError,
     "ReduceLROnPlateau: patience must be an integer >= 0, got 2.5"),
    (lambda: cb.ReduceLROnPlateau(cooldown=None), ValueError,
     "ReduceLROnPlateau: cooldown must be an integer >= 0, got None"),
    (lambda: cb.ReduceLROnPlateau(min_lr=math.nan), ValueError,
     "ReduceLROnPlateau: min_lr must be a finite number >= 0, got nan"),
    (lambda: cb.ReduceLROnPlateau(min_lr=-1e-3), ValueError,
     "ReduceLROnPlateau: min_lr must be a finite number >= 0, got -0.001"),
    (lambda: cb.ReduceLROnPlateau(factor="0.5"), ValueError,
     "ReduceLROnPlateau: factor must be a finite number, got '0.5'"),
    (lambda: cb.ReduceLROnPlateau(factor=math.nan), ValueError,
     "ReduceLROnPlateau: factor must be a finite number, got nan"),
    (lambda: cb.ReduceLROnPlateau(verbose="1"), ValueError,
     "ReduceLROnPlateau: verbose must be an integer >= 0, got '1'"),
    (lambda: cb.EarlyStopping(min_delta=math.nan), ValueError,
     "EarlyStopping: min_delta must be a finite number, got nan"),
    (lambda: cb.EarlyStopping(min_delta="0.1"), ValueError,
     "EarlyStopping: min_delta must be a finite number, got '0.1'"),
    (lambda: cb.EarlyStopping(baseline=math.nan), ValueError,
     "EarlyStopping: baseline must be a finite number or None, got nan"),
    (lambda: cb.EarlyStopping(patience=True), ValueError,
     "EarlyStopping: patience must be an integer >= 0, got True"),
    (lambda: cb.ModelCheckpoint(3), TypeError,
     "ModelCheckpoint: filepath must be a str, bytes or os.PathLike path, got 3"),
    (lambda: cb.ModelCheckpoint("m.nnf", initial_value_threshold=math.nan), ValueError,
     "ModelCheckpoint: initial_value_threshold must be a finite number or None, got nan"),
    (lambda: cb.ModelCheckpoint("m.nnf", monitor=None), TypeError,
     "ModelCheckpoint: monitor must be the name of a logged quantity (a non-empty str such as "
     "'val_loss'), got None"),
    (lambda: cb.ModelCheckpoint(""), ValueError, "ModelCheckpoint: filepath must not be empty"),
    (lambda: cb.ModelCheckpoint("{epoch:bad}.nnf"), ValueError,
     "ModelCheckpoint: filepath '{epoch:bad}.nnf' is not a usable format string (Invalid "
     "format specifier 'bad' for object of type 'int')"),
    (lambda: cb.ModelCheckpoint("m.nnf", save_best_only="yes"), TypeError,
     "ModelCheckpoint: save_best_only must be True or False, got 'yes'"),
    (lambda: cb.EarlyStopping(restore_best_weights="no"), TypeError,
     "EarlyStopping: restore_best_weights must be True or False, got 'no'"),
    (lambda: cb.TerminateOnNaN(raise_error=3), TypeError,
     "TerminateOnNaN: raise_error must be True or False, got 3"),
    (lambda: cb.LearningRateScheduler(lambda e: 0.1, verbose="x"), ValueError,
     "LearningRateScheduler: verbose must be an integer >= 0, got 'x'"),
])
def test_bad_arguments_name_the_argument(make, exc, message):
    with pytest.raises(exc) as info:
        make()
    assert str(info.value) == message


def test_accepted_arguments_as_keras():
    stop = cb.EarlyStopping(patience=np.int64(2), min_delta=-0.5, verbose=True, baseline=1)
    assert (stop.patience, stop.min_delta, stop.verbose, stop.baseline) == (2, 0.5, True, 1.0)
    plateau = cb.ReduceLROnPlateau(factor=np.float32(0.5), min_lr=1, cooldown=np.int32(1))
    assert (plateau.factor, plateau.min_lr, plateau.cooldown) == (0.5, 1.0, 1)
    assert cb.ModelCheckpoint(b"ckpt-{epoch}.nnf").filepath == "ckpt-{epoch}.nnf"


def test_reduce_lr_unknown_keyword_is_refused():
    # Keras 3 swallows **kwargs silently; nnfast lets Python refuse a misspelt argument
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'epsilon'"):
        cb.ReduceLROnPlateau(epsilon=1e-4)


def test_fit_returns_the_last_history_of_several_as_keras():
    # Keras 3's CallbackList keeps the last History it finds
    model, first, last = mlp(), cb.History(), cb.History()
    assert model.fit(X, Y, epochs=1, verbose=0, callbacks=[first, last]) is last


def test_checkpoint_format_fields_are_tried_at_construction():
    ok = cb.ModelCheckpoint("m-{epoch:03d}-{val_loss:.2f}-{batch}.nnf", save_freq=2)
    assert ok.filepath == "m-{epoch:03d}-{val_loss:.2f}-{batch}.nnf"


def test_fit_returns_the_users_history():
    model, mine = mlp(), cb.History()
    returned = model.fit(X, Y, epochs=2, verbose=0, callbacks=[mine])
    assert returned is mine and model.history is mine and mine.epoch == [0, 1]
    assert sorted(mine.history) == ["accuracy", "loss"]


def test_lambda_callback_positional_order_is_keras():
    seen = []
    cbk = cb.LambdaCallback(lambda epoch, logs: seen.append(("begin", epoch)),
                            lambda epoch, logs: seen.append(("end", epoch)))
    mlp().fit(X, Y, epochs=2, verbose=0, callbacks=[cbk])
    assert seen == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]
    with pytest.raises(ValueError, match=r"^LambdaCallback: unknown hook 'on_epoch_ends'"):
        cb.LambdaCallback(on_epoch_ends=print)


def test_stop_training_in_on_train_begin_runs_no_step():
    # Keras 3 checks stop_training only after a batch, so it runs one step of epoch 0 and
    # records it; nnfast checks before each epoch: nothing runs (docs/callbacks.md)
    class StopAtOnce(cb.Callback):
        def on_train_begin(self, logs=None):
            self.model.stop_training = True

    model = mlp()
    before = model.get_weights()
    history = model.fit(X, Y, epochs=3, verbose=0, callbacks=[StopAtOnce()])
    assert history.epoch == [] and history.history == {} and model._step == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
