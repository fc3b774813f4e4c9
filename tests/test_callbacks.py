"""Every callback: History, EarlyStopping, ModelCheckpoint, LearningRateScheduler,
ReduceLROnPlateau, TerminateOnNaN, LambdaCallback, and the hook order."""
import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast import callbacks as cb

X, Y = blobs()


class Inject(cb.Callback):
    """Puts a scripted value into the epoch logs under `key` (runs before later callbacks)."""

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


def test_hook_order_and_params():
    calls = []

    class Recorder(cb.Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(f"epoch_begin {epoch}")

        def on_batch_begin(self, batch, logs=None):
            calls.append(f"batch_begin {batch} {logs['size']}")

        def on_batch_end(self, batch, logs=None):
            calls.append(f"batch_end {batch} {sorted(logs)}")

        def on_epoch_end(self, epoch, logs=None):
            calls.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    rec = Recorder()
    mlp().fit(X[:40], Y[:40], epochs=2, batch_size=32, verbose=0, callbacks=[rec])
    keys = "['accuracy', 'batch', 'loss', 'size']"
    assert calls == ["train_begin", "epoch_begin 0", "batch_begin 0 32", f"batch_end 0 {keys}",
                     "batch_begin 1 8", f"batch_end 1 {keys}", "epoch_end 0 ['accuracy', 'loss']",
                     "epoch_begin 1", "batch_begin 0 32", f"batch_end 0 {keys}",
                     "batch_begin 1 8", f"batch_end 1 {keys}", "epoch_end 1 ['accuracy', 'loss']",
                     "train_end"]
    assert rec.params == {"epochs": 2, "steps": 2, "batch_size": 32, "samples": 40, "verbose": 0}


def test_history_records_every_epoch():
    model = mlp()
    history = model.fit(X, Y, epochs=3, verbose=0, validation_data=(X[:50], Y[:50]))
    assert history is model.history and history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.history.values())
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(X[:50], Y[:50])["loss"])


def test_early_stopping_patience_and_restore_best_weights():
    weights = Weights()
    stop = cb.EarlyStopping(monitor="score", patience=2, restore_best_weights=True, mode="min")
    model = mlp()
    history = model.fit(X, Y, epochs=10, verbose=0,
                        callbacks=[Inject("score", [5, 3, 4, 3.5, 1, 0]), weights, stop])
    assert history.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and stop.best_epoch == 1
    np.testing.assert_array_equal(model._params, weights.per_epoch[1])


def test_early_stopping_mode_max_min_delta_and_baseline():
    stop = cb.EarlyStopping(monitor="val_accuracy", patience=1, min_delta=0.05)
    history = mlp().fit(X, Y, epochs=6, verbose=0,
                        callbacks=[Inject("val_accuracy", [0.5, 0.53, 0.9, 0.91, 0.99, 1]),
                                   stop])
    assert history.epoch == [0, 1]      # "auto" is "max" for accuracy; +0.03 < min_delta
    # Keras 3: improvements that miss the baseline do not reset the patience counter, and the
    # stop comes at the first epoch that is no improvement at all (values from keras 3.15)
    base = cb.EarlyStopping(monitor="score", mode="min", patience=2, baseline=0.1)
    history = mlp().fit(X, Y, epochs=6, verbose=0,
                        callbacks=[Inject("score", [5, 4, 3, 3, 3, 3]), base])
    assert history.epoch == [0, 1, 2, 3] and base.stopped_epoch == 3 and base.best_epoch == 2
    base = cb.EarlyStopping(monitor="score", mode="min", patience=2, baseline=0.1)
    history = mlp().fit(X, Y, epochs=6, verbose=0,
                        callbacks=[Inject("score", [5, 4, 3, 2, 1, 0.5]), base])
    assert history.epoch == [0, 1, 2, 3, 4, 5] and base.stopped_epoch == 0


def test_early_stopping_warns_when_the_monitor_is_missing():
    with pytest.warns(RuntimeWarning, match="'val_loss' is not in the logs"):
        history = mlp().fit(X, Y, epochs=2, verbose=0, callbacks=[cb.EarlyStopping()])
    assert history.epoch == [0, 1]


def test_model_checkpoint_every_epoch_and_best_only(tmp_path):
    every = cb.ModelCheckpoint(tmp_path / "ep{epoch:02d}-{loss:.3f}.nnf", monitor="loss")
    best = cb.ModelCheckpoint(tmp_path / "best.nnf", monitor="score", save_best_only=True,
                              mode="min")
    weights = Weights()
    model = mlp()
    model.fit(X, Y, epochs=4, verbose=0,
              callbacks=[Inject("score", [3, 2, 4, 1.5]), weights, every, best])
    assert [p.split("/")[-1][:4] for p in every.saved] == ["ep01", "ep02", "ep03", "ep04"]
    assert best.saved == [str(tmp_path / "best.nnf")] * 3      # epochs 1, 2 and 4
    loaded = nnfast.load_model(tmp_path / "best.nnf")
    np.testing.assert_array_equal(loaded._params, weights.per_epoch[3])
    first = nnfast.load_model(every.saved[0])
    np.testing.assert_array_equal(first._params, weights.per_epoch[0])


def test_learning_rate_scheduler_one_and_two_arguments():
    model = mlp(compile_with=nnfast.optimizers.SGD(0.1))
    seen = []
    spy = cb.LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(
        model.optimizer.learning_rate))
    history = model.fit(X, Y, epochs=3, verbose=0, callbacks=[
        cb.LearningRateScheduler(lambda epoch, lr: lr * 0.5), spy])
    assert seen == [0.05, 0.025, 0.0125] and history.history["learning_rate"] == seen
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[cb.LearningRateScheduler(lambda e: 0.3 + e)])
    assert model.optimizer.learning_rate == 1.3
    with pytest.raises(ValueError, match="returned nan"):
        model.fit(X, Y, epochs=1, verbose=0,
                  callbacks=[cb.LearningRateScheduler(lambda e: float("nan"))])


def test_scheduler_changes_the_updates():
    a, b = mlp(seed=1), mlp(seed=1)
    a.fit(X, Y, epochs=2, verbose=0)
    b.fit(X, Y, epochs=2, verbose=0, callbacks=[cb.LearningRateScheduler(lambda e: 0.0)])
    assert not np.array_equal(a._params, b._params)
    frozen = mlp(seed=1)
    frozen.build()
    np.testing.assert_array_equal(b._params, frozen._params)      # lr 0: nothing moved


def test_reduce_lr_on_plateau():
    model = mlp(compile_with=nnfast.optimizers.Adam(0.1))
    plateau = cb.ReduceLROnPlateau(monitor="score", factor=0.5, patience=2, min_lr=0.02,
                                   cooldown=1, mode="min")
    lrs = []
    history = model.fit(X, Y, epochs=9, verbose=0, callbacks=[
        Inject("score", [1.0] * 9), plateau,
        cb.LambdaCallback(on_epoch_end=lambda e, logs: lrs.append(model.optimizer.learning_rate))])
    assert lrs == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02]
    assert history.history["learning_rate"][0] == 0.1


def test_terminate_on_nan_ends_the_epoch_and_records_it(capsys):
    def poison(model):
        model._params[...] = np.nan

    class PoisonAt(cb.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 2:
                poison(self.model)

    # Keras 3.15: the epoch of the NaN batch is ended and recorded (NaN loss, validation
    # included), then training stops
    model = mlp()
    ends = []
    history = model.fit(X, Y, epochs=3, batch_size=16, verbose=0, validation_data=(X[:8], Y[:8]),
                        callbacks=[PoisonAt(), cb.TerminateOnNaN(), cb.LambdaCallback(
                            on_train_end=lambda logs: ends.append(logs))])
    assert model._step == 4 and history.epoch == [0] and model._epoch == 1
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert np.isnan(history.history["loss"][0]) and np.isnan(history.history["val_loss"][0])
    assert len(ends) == 1 and np.isnan(ends[0]["loss"])     # on_train_end gets the last logs
    assert capsys.readouterr().out == "Batch 3: Invalid loss, terminating training\n"


def test_stop_training_from_a_custom_callback():
    class StopAfterFirstEpoch(cb.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    history = mlp().fit(X, Y, epochs=5, verbose=0, callbacks=[StopAfterFirstEpoch()])
    assert history.epoch == [0]


def test_callback_argument_checks():
    with pytest.raises(ValueError, match="patience"):
        cb.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode"):
        cb.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\), got 2"):
        cb.ReduceLROnPlateau(factor=2)
    with pytest.raises(TypeError, match="callable"):
        cb.LearningRateScheduler(0.1)
    with pytest.raises(ValueError, match="unknown hook"):
        cb.LambdaCallback(on_step=print)
