"""mode="auto" of EarlyStopping, ReduceLROnPlateau and ModelCheckpoint for every metric string
compile accepts, against Keras 3.15 (KERAS_BACKEND=torch): Keras drops "val_", takes "loss" as
minimized and otherwise the ``_direction`` of the compiled metric whose name is the log key.

EXPECTED was produced by compiling a keras.Sequential with each string, fitting one epoch with
validation data and calling ``_set_monitor_op()`` on each callback for the key and "val_" + key
(Top-K: keras' torch backend cannot fit k=5 on 3 classes; their ``_direction`` is "up" in
keras/src/metrics/accuracy_metrics.py)."""
import numpy as np
import pytest

import nnfast
from nnfast import callbacks as cb
from nnfast import metrics
from nnfast.layers import Dense

UP = ["accuracy", "acc", "binary_accuracy", "BinaryAccuracy", "categorical_accuracy",
      "CategoricalAccuracy", "sparse_categorical_accuracy", "SparseCategoricalAccuracy",
      "top_k_categorical_accuracy", "TopKCategoricalAccuracy",
      "sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy", "precision",
      "Precision", "recall", "Recall", "auc", "AUC", "f1_score", "F1Score", "f_beta_score",
      "FBetaScore", "r2_score", "R2Score"]
DOWN = ["mse", "mean_squared_error", "mae", "mean_absolute_error", "root_mean_squared_error",
        "RootMeanSquaredError"]
EXPECTED = {**{n: 1 for n in UP}, **{n: -1 for n in DOWN}}   # 1: max, -1: min


def test_every_compile_string_is_covered():
    accepted = set(metrics._basic._CANONICAL) | set(metrics._STRINGS)
    assert accepted == set(EXPECTED)


def _model(name):
    sparse = "sparse" in name.lower()
    model = nnfast.Sequential([Dense(3, "softmax", input_dim=3)], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy" if sparse
                  else "categorical_crossentropy", [name])
    return model


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("make", [lambda m: cb.EarlyStopping(monitor=m),
                                  lambda m: cb.ReduceLROnPlateau(monitor=m),
                                  lambda m: cb.ModelCheckpoint("x.nnf", monitor=m,
                                                               save_best_only=True)],
                         ids=["EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint"])
def test_auto_mode_resolves_every_metric_as_keras(name, make):
    model = _model(name)
    for key in (name, "val_" + name):
        callback = make(key)
        callback.set_model(model)
        callback.on_train_begin({})
        assert callback._sign == EXPECTED[name], key


def test_loss_is_minimized_and_an_uncompiled_metric_is_refused():
    model = _model("accuracy")
    for key in ("loss", "val_loss"):
        stop = cb.EarlyStopping(monitor=key)
        stop.set_model(model)
        stop.on_train_begin({})
        assert stop._sign == -1
    stop = cb.EarlyStopping(monitor="val_auc")   # auc not compiled: Keras raises too
    stop.set_model(model)
    with pytest.raises(ValueError, match=r"^EarlyStopping: cannot tell whether "
                       r"monitor='val_auc' should be minimized or maximized"):
        stop.on_train_begin({})


def test_fit_with_a_keras_metric_monitor_runs():
    # the reproducer of issue #17: refused with "cannot tell" before
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32)
    model = nnfast.Sequential([Dense(1, input_dim=3)], seed=0)
    model.compile("adam", "mse", ["root_mean_squared_error"])
    stop = cb.EarlyStopping("val_root_mean_squared_error", patience=1)
    plateau = cb.ReduceLROnPlateau("val_root_mean_squared_error", patience=1)
    history = model.fit(x, y, epochs=2, verbose=0, validation_split=0.25,
                        callbacks=[stop, plateau])
    assert history.epoch == [0, 1] and stop._sign == -1 and plateau._sign == -1


def test_metric_direction_attribute():
    assert metrics.get("mse").direction == "down"
    assert metrics.get("accuracy").direction == "up"
    assert metrics.RootMeanSquaredError().direction == "down"
    assert metrics.R2Score().direction == "up"
    m = metrics.get("mse")
    m.direction = "up"
    assert m.direction == "up"
    with pytest.raises(ValueError, match=r"^Metric 'mse': direction must be 'up' or 'down', "
                       r"got 'max'$"):
        m.direction = "max"
