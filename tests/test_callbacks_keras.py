"""The callbacks against Keras 3 (keras/src/callbacks/): reuse across fits, restoring the best
weights however training ended, baseline, start_from_epoch, mode="auto", ModelCheckpoint's
save_freq / initial_value_threshold, the hook names, and the deliberate differences.

The expected values were produced by keras 3.15 (KERAS_BACKEND=torch) with the same monitored
values injected into the epoch logs; test_keras_oracle_decisions reruns that comparison live
when keras is installed."""
import os

import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast import callbacks as cb

X, Y = blobs()


class Inject(cb.Callback):
    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


class Weights(cb.Callback):
    def __init__(self):
        super().__init__()
        self.per_epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.per_epoch.append(self.model._params.copy())


def _fit(model, values, *callbacks, epochs=None, **kw):
    weights = Weights()
    history = model.fit(X, Y, epochs=epochs or len(values), verbose=0,
                        callbacks=[Inject("score", values), weights, *callbacks], **kw)
    final = [i for i, w in enumerate(weights.per_epoch) if np.array_equal(w, model._params)]
    return history, final


# (EarlyStopping arguments, injected values) -> (epochs run, stopped_epoch, best_epoch, the
# epoch whose weights the model ends with); from keras 3.15
EARLY = [
    (dict(patience=10, restore_best_weights=True), [5, 1, 2, 3], ([0, 1, 2, 3], 0, 1, 1)),
    (dict(patience=2, restore_best_weights=True), [5, 3, 4, 3.5, 1, 0], ([0, 1, 2, 3], 3, 1, 1)),
    (dict(patience=2, baseline=0.1, restore_best_weights=True), [5, 4, 3, 2, 1, 0.5],
     ([0, 1, 2, 3, 4, 5], 0, 5, 5)),
    (dict(patience=2, baseline=0.1, restore_best_weights=True), [5, 4, 3, 3, 3, 3],
     ([0, 1, 2, 3], 3, 2, 2)),
    (dict(patience=0, baseline=0.1), [5, 4, 3, 3, 3, 3], ([0, 1, 2, 3], 3, 2, 3)),
    (dict(patience=0), [5, 4, 3, 3, 3, 3], ([0, 1, 2, 3], 3, 2, 3)),
    (dict(patience=1, start_from_epoch=2, restore_best_weights=True), [5, 6, 7, 8, 1, 9, 9, 9],
     ([0, 1, 2, 3], 3, 2, 2)),
    (dict(patience=1, min_delta=0.5), [5, 4, 4.5, 4, 4, 4], ([0, 1, 2], 2, 1, 2)),
]


@pytest.mark.parametrize("kwargs, values, expected", EARLY)
def test_early_stopping_matches_keras(kwargs, values, expected):
    stop = cb.EarlyStopping(monitor="score", mode="min", **kwargs)
    history, final = _fit(mlp(), values, stop)
    assert (history.epoch, stop.stopped_epoch, stop.best_epoch, final) == (
        expected[0], expected[1], expected[2], [expected[3]])


def test_restore_best_weights_when_the_epochs_run_out(capsys):
    # issue #17 item 1: nothing stopped training, the best epoch's weights come back anyway
    stop = cb.EarlyStopping(monitor="score", mode="min", patience=10,
                            restore_best_weights=True, verbose=1)
    history, final = _fit(mlp(), [5, 1, 2, 3], stop)
    assert history.epoch == [0, 1, 2, 3] and final == [1] and stop.stopped_epoch == 0
    assert capsys.readouterr().out == \
        "Restoring model weights from the end of the best epoch: 2.\n"


def test_early_stopping_verbose_when_it_stops(capsys):
    stop = cb.EarlyStopping(monitor="score", mode="min", patience=1, verbose=1)
    _fit(mlp(), [3, 4, 5], stop)
    assert capsys.readouterr().out == "Epoch 2: early stopping\n"


def test_one_early_stopping_across_models_of_different_sizes():
    # issue #17 item 2: a cross-validation loop reuses one callback; state resets per fit
    stop = cb.EarlyStopping(monitor="score", mode="min", patience=1, baseline=2,
                            restore_best_weights=True)
    big, small = mlp(hidden=16), mlp(hidden=4)
    history, final = _fit(big, [3, 1, 2, 2], stop)
    assert history.epoch == [0, 1, 2] and stop.best_epoch == 1 and final == [1]
    history, final = _fit(small, [4, 3, 5, 5], stop)      # was: could not broadcast
    assert history.epoch == [0, 1, 2] and stop.best_epoch == 1 and final == [1]
    assert small._params.shape == (4 * 6 + 4 + 4 * 3 + 3,)


def test_reduce_lr_on_plateau_cooldown_min_delta_and_reuse():
    plateau = cb.ReduceLROnPlateau(monitor="score", mode="min", factor=0.5, patience=1,
                                   cooldown=2, min_delta=0.1)
    model = mlp(compile_with=nnfast.optimizers.Adam(0.1))
    history, _ = _fit(model, [1.0, 0.95, 0.8, 0.8, 0.8, 0.8, 0.5, 0.5, 0.5], plateau)
    # the rate each epoch ended with (logged before the reduction, as Keras does)
    assert history.history["learning_rate"] == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125,
                                                0.0125, 0.00625]
    assert plateau.cooldown_counter == 1
    # reused: counters and best start afresh (keras 3.15: 0.1, 0.05, 0.05)
    other = mlp(compile_with=nnfast.optimizers.Adam(0.1))
    lrs = []
    _fit(other, [1.0] * 3, plateau,
         cb.LambdaCallback(on_epoch_end=lambda e, logs: lrs.append(other.optimizer.learning_rate)))
    assert lrs == [0.1, 0.05, 0.05]


def test_reduce_lr_logs_the_rate_even_without_the_monitor():
    with pytest.warns(RuntimeWarning, match="'val_loss' is not in the logs"):
        history = mlp().fit(X, Y, epochs=1, verbose=0, callbacks=[cb.ReduceLROnPlateau()])
    assert history.history["learning_rate"] == [0.001]


@pytest.mark.parametrize("monitor, direction", [("val_loss", -1), ("loss", -1), ("mse", -1),
                                                ("val_accuracy", 1), ("acc", 1),
                                                ("val_mae", -1)])
def test_auto_mode_by_name(monitor, direction):
    # resolved at the start of fit from the compiled metrics, as Keras 3 does
    model = nnfast.Sequential([nnfast.layers.Dense(1, "sigmoid", input_dim=2)], seed=0)
    model.compile("sgd", "binary_crossentropy", ["mse", "acc", "mae", "accuracy"])
    stop = cb.EarlyStopping(monitor=monitor)
    assert stop._sign is None
    stop.set_model(model)
    stop._resolve_mode()
    assert stop._sign == direction


def test_auto_mode_unknown_name_raises_before_training():
    model = mlp()
    for callback in (cb.EarlyStopping(monitor="score"), cb.ReduceLROnPlateau(monitor="score"),
                     cb.ModelCheckpoint("x.nnf", monitor="score", save_best_only=True)):
        with pytest.raises(ValueError, match=rf"^{type(callback).__name__}: cannot tell whether "
                           r"monitor='score' should be minimized or maximized \(it is not 'loss' "
                           r"nor a metric compiled into the model, with or without 'val_'\); "
                           r"pass mode='min' or mode='max'$"):
            model.fit(X, Y, epochs=1, verbose=0, callbacks=[callback])
        assert model._step == 0


def test_auto_mode_reads_a_metric_direction():
    model = mlp()
    model.metrics[0].direction = "down"        # a metric object may state its direction
    stop = cb.EarlyStopping(monitor="val_accuracy")
    stop.set_model(model)
    stop._resolve_mode()
    assert stop._sign == -1


def test_argument_errors_name_the_argument_and_value():
    with pytest.raises(ValueError, match=r"^EarlyStopping: mode must be 'auto', 'min' or 'max', "
                       r"got 'up'$"):
        cb.EarlyStopping(mode="up")      # Keras warns and uses "auto": nnfast refuses
    with pytest.raises(ValueError, match=r"^EarlyStopping: start_from_epoch must be an integer "
                       r">= 0, got -1$"):
        cb.EarlyStopping(start_from_epoch=-1)
    with pytest.raises(ValueError, match=r"^ReduceLROnPlateau: cooldown must be an integer >= 0, "
                       r"got -2$"):
        cb.ReduceLROnPlateau(cooldown=-2)
    with pytest.raises(ValueError, match=r"^ModelCheckpoint: save_freq must be 'epoch' or an "
                       r"integer >= 1, got 'batch'$"):
        cb.ModelCheckpoint("m.nnf", save_freq="batch")
    with pytest.raises(TypeError, match=r"^LambdaCallback: on_epoch_end must be callable, got 3$"):
        cb.LambdaCallback(on_epoch_end=3)


# ----------------------------------------------------------------------------- ModelCheckpoint
def test_checkpoint_save_freq_in_batches(tmp_path):
    # 240 rows, batch 32: 8 batches per epoch; every 5 batches, counted across epochs (Keras)
    ckpt = cb.ModelCheckpoint(os.path.join(tmp_path, "sub", "e{epoch}-b{batch}.nnf"),
                              save_freq=5)
    mlp().fit(X, Y, epochs=2, batch_size=32, verbose=0, callbacks=[ckpt])
    assert [os.path.basename(p) for p in ckpt.saved] == ["e1-b5.nnf", "e2-b2.nnf",
                                                          "e2-b7.nnf"]
    assert sorted(os.listdir(tmp_path / "sub")) == ["e1-b5.nnf", "e2-b2.nnf", "e2-b7.nnf"]


def test_checkpoint_initial_value_threshold_and_best_kept_across_fits(tmp_path, capsys):
    ckpt = cb.ModelCheckpoint(tmp_path / "best.nnf", monitor="score", mode="min",
                              save_best_only=True, initial_value_threshold=2.5, verbose=1)
    _fit(mlp(), [3, 2, 2.2], ckpt)
    assert len(ckpt.saved) == 1 and ckpt.best == 2
    _fit(mlp(), [2.1, 1.5], ckpt)          # Keras keeps best across fits: 2.1 is no better
    assert len(ckpt.saved) == 2 and ckpt.best == 1.5
    path = tmp_path / "best.nnf"
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 1: score did not improve from 2.50000",
        f"Epoch 2: score improved from 2.50000 to 2.00000, saving model to {path}",
        "Epoch 3: score did not improve from 2.00000",
        "Epoch 1: score did not improve from 2.00000",
        f"Epoch 2: score improved from 2.00000 to 1.50000, saving model to {path}"]


def test_checkpoint_missing_field_and_missing_monitor(tmp_path):
    bad = cb.ModelCheckpoint(tmp_path / "m-{val_acc:.2f}.nnf")
    model = mlp()
    with pytest.raises(ValueError, match=r"ModelCheckpoint: filepath '.*m-\{val_acc:.2f\}.nnf' "
                       r"names the field 'val_acc', which is not in the logs \(available: "
                       r"accuracy, epoch, loss\)"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[bad])
    best = cb.ModelCheckpoint(tmp_path / "b.nnf", save_best_only=True)      # no val_loss
    with pytest.warns(RuntimeWarning, match="can save best model only with 'val_loss' "
                      "available"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[best])
    assert best.saved == [str(tmp_path / "b.nnf")]       # Keras saves anyway


# ----------------------------------------------------------------------------- schedules, NaN
def test_scheduler_arity_from_the_signature():
    def keyword_only(epoch, *, base=0.2):       # Keras would call it (epoch, lr): TypeError,
        return base / (epoch + 1)               # then fall back; nnfast asks the signature

    def bad_two_args(epoch, lr):
        raise TypeError("my bug")               # Keras hides this by retrying schedule(epoch)

    model = mlp(compile_with=nnfast.optimizers.SGD(0.1))
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[cb.LearningRateScheduler(keyword_only)])
    assert model.optimizer.learning_rate == 0.1
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[cb.LearningRateScheduler(lambda e, lr=0: 1)])
    assert model.optimizer.learning_rate == 1.0            # an int is accepted (Keras: floats)
    with pytest.raises(TypeError, match="my bug"):
        model.fit(X, Y, epochs=1, verbose=0, callbacks=[cb.LearningRateScheduler(bad_two_args)])
    with pytest.raises(ValueError, match=r"^LearningRateScheduler: the schedule returned -0.5 for "
                       r"epoch 0; expected a finite number >= 0$"):
        model.fit(X, Y, epochs=1, verbose=0,
                  callbacks=[cb.LearningRateScheduler(lambda e: -0.5)])


def test_scheduler_verbose(capsys):
    mlp().fit(X, Y, epochs=2, verbose=0,
              callbacks=[cb.LearningRateScheduler(lambda e: 0.5 ** e, verbose=1)])
    assert capsys.readouterr().out == ("Epoch 1: LearningRateScheduler setting learning rate to "
                                       "1.0.\nEpoch 2: LearningRateScheduler setting learning "
                                       "rate to 0.5.\n")


def test_terminate_on_nan_raise_error():
    class Poison(cb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model._params[...] = np.nan

    ends = []
    with pytest.raises(RuntimeError, match=r"^NaN or Inf loss encountered at batch 1\. Loss "
                       r"value: nan\. Terminating training immediately\.$"):
        mlp().fit(X, Y, epochs=2, verbose=0, callbacks=[
            Poison(), cb.TerminateOnNaN(raise_error=True),
            cb.LambdaCallback(on_train_end=lambda logs: ends.append(1))])
    assert ends == []


# ----------------------------------------------------------------------------- hooks
def test_train_batch_hooks_and_their_old_names():
    calls = []

    class New(cb.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            calls.append(("new begin", batch))

        def on_train_batch_end(self, batch, logs=None):
            calls.append(("new end", batch, round(logs["loss"], 3) > 0))

    class Old(cb.Callback):
        def on_batch_end(self, batch, logs=None):
            calls.append(("old end", batch))

    lam = cb.LambdaCallback(on_train_batch_end=lambda b, logs: calls.append(("lambda", b)),
                            on_batch_begin=lambda b, logs: calls.append(("lambda old", b)),
                            on_epoch_begin=None)
    mlp().fit(X[:40], Y[:40], epochs=1, batch_size=32, verbose=0, callbacks=[New(), Old(), lam])
    assert calls == [("new begin", 0), ("lambda old", 0), ("new end", 0, True), ("old end", 0),
                     ("lambda", 0), ("new begin", 1), ("lambda old", 1), ("new end", 1, True),
                     ("old end", 1), ("lambda", 1)]


def test_callback_list_like_keras():
    model = mlp()
    seen = []
    rec = cb.LambdaCallback(on_train_batch_begin=lambda b, logs: seen.append(b),
                            on_test_begin=lambda logs: seen.append("test"))
    cbs = cb.CallbackList([], model=model, epochs=3, verbose=0)
    cbs.append(rec)
    assert rec.model is model and rec.params == {"epochs": 3, "verbose": 0}
    cbs.on_batch_begin(4)                        # Keras' alias of on_train_batch_begin
    cbs.on_test_begin()
    cbs.on_predict_batch_end(0, {})              # no callback uses it: nothing happens
    assert seen == [4, "test"] and cbs.wants_batch_logs
    with pytest.raises(TypeError, match="got int"):
        cb.CallbackList([1])


def test_history_resets_its_epochs_per_fit():
    history = cb.History()
    model = mlp()
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[history])
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[history])
    assert history.epoch == [0] and len(history.history["loss"]) == 3      # as Keras 3


# ----------------------------------------------------------------------------- live oracle
def test_keras_oracle_decisions():
    pytest.importorskip("torch")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras runs on another backend")
    kx = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    ky = kx[:, :1]

    class KInject(keras.callbacks.Callback):
        def __init__(self, values):
            super().__init__()
            self.values = values

        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = self.values[epoch]

    for kwargs, values, expected in EARLY:
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        m.compile("sgd", "mse")
        stop = keras.callbacks.EarlyStopping(monitor="score", mode="min", **kwargs)
        h = m.fit(kx, ky, epochs=len(values), verbose=0, callbacks=[KInject(values), stop])
        assert (h.epoch, stop.stopped_epoch, stop.best_epoch) == expected[:3], kwargs


def test_silenced_callbacks_print_and_warn_nothing(capsys):
    # what distributed fit does on ranks other than 0
    import warnings
    stop, nan = cb.EarlyStopping(verbose=1), cb.TerminateOnNaN()
    cbs = cb.CallbackList([stop, nan], model=mlp())
    cbs._silence()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stop._current({"loss": 1.0}) is None
    nan.on_batch_end(0, {"loss": float("nan")})
    assert capsys.readouterr().out == "" and nan.model.stop_training
