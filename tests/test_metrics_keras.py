"""Keras 3 metrics (nnfast/metrics): hand-computed tiny cases (no Keras needed), the values of
evaluate against keras.metrics on the same predictions with sample weights on both backends,
compile strings and objects, per-class arrays, saving, and argument checks."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest

import nnfast
from nnfast import losses, metrics
from nnfast.layers import Dense

os.environ.setdefault("KERAS_BACKEND", "torch")   # the installed oracle's backend


def _value(metric, probs, y, w=None, loss="binary_crossentropy"):
    """The metric over one batch of given probabilities (no fused head), through the same
    add_sums / result calls the engine makes, split in two batches to check the summing."""
    probs, y = np.asarray(probs, np.float64), np.asarray(y)
    metric.bind(losses.get(loss), probs.shape[1:], None)
    sums = np.zeros(metric.size)
    half = len(probs) // 2
    for sl in (slice(0, half), slice(half, None)):
        metric.add_sums(sums, probs[sl], y[sl], None, len(probs[sl]),
                        None if w is None else np.asarray(w, np.float64)[sl])
    return metric.result(sums, float(len(probs) if w is None else np.sum(w)))


P1 = [[0.6], [0.4], [0.5], [0.9]]
Y1 = [[1.0], [1.0], [0.0], [0.0]]
W1 = [1.0, 2.0, 3.0, 4.0]


def test_hand_computed_binary_metrics():
    # hits [1, 0, 1, 0] weighted 1, 2, 3, 4 -> (1 + 3) / 10
    assert _value(metrics.BinaryAccuracy(), P1, Y1, W1) == 0.4
    # predicted positive (> 0.5): rows 0 (true, w 1) and 3 (false, w 4)
    assert _value(metrics.Precision(), P1, Y1, W1) == 0.2
    assert _value(metrics.Recall(), P1, Y1, W1) == 1 / 3     # fn: row 1 (w 2)
    assert _value(metrics.Precision(thresholds=0.95), P1, Y1, W1) == 0.0   # no positive: 0
    # distinct buckets, so the interpolated ROC area is the exact one: 3 of 4 pairs ordered
    assert _value(metrics.AUC(), [[0.1], [0.4], [0.35], [0.8]], [[0], [0], [1], [1]]) \
        == pytest.approx(0.75, abs=1e-12)


def test_hand_computed_categorical_metrics():
    p = [[0.7, 0.2, 0.1], [0.5, 0.5, 0.0], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]]
    y = np.eye(3)[[0, 1, 1, 2]]
    assert _value(metrics.CategoricalAccuracy(), p, y, loss="categorical_crossentropy") == 0.25
    # ties as Keras' in_top_k: row 1's true class 1 ties with class 0, and counts at k=1
    assert _value(metrics.TopKCategoricalAccuracy(k=1), p, y,
                  loss="categorical_crossentropy") == 0.5
    assert _value(metrics.TopKCategoricalAccuracy(k=2), p, y,
                  loss="categorical_crossentropy") == 1.0
    assert _value(metrics.SparseTopKCategoricalAccuracy(k=1), p, [0, 1, 1, 2], [1, 2, 3, 4],
                  loss="sparse_categorical_crossentropy") == 0.3
    # threshold None: row maxima are positive (both tied outputs of row 1);
    # per class tp/fp/fn: c0 1/1/0, c1 1/1/1, c2 0/1/1
    f1 = _value(metrics.F1Score(), p, y, loss="categorical_crossentropy")
    eps = 1e-7

    def f(tp, fp, fn):
        pr, rc = tp / (tp + fp + eps), tp / (tp + fn + eps)
        return 2 * pr * rc / (pr + rc + eps)
    np.testing.assert_allclose(f1, [f(1, 1, 0), f(1, 1, 1), f(0, 1, 1)], rtol=1e-12)
    assert _value(metrics.F1Score("micro"), p, y, loss="categorical_crossentropy") == \
        pytest.approx(f(2, 3, 2), rel=1e-12)
    assert _value(metrics.F1Score("weighted"), p, y, loss="categorical_crossentropy") == \
        pytest.approx((f(1, 1, 0) + 2 * f(1, 1, 1)) / (4 + eps), rel=1e-12)


def test_hand_computed_regression_metrics():
    r2 = metrics.R2Score()
    # mean 2, total 2, residual 1
    assert _value(r2, [[1.0], [2.0], [4.0]], [[1.0], [2.0], [3.0]], loss="mse") == 0.5
    m = nnfast.Sequential([Dense(1, input_dim=1)], dtype="float64")
    m.compile("sgd", "mse", ["root_mean_squared_error", "mse"])
    m.build((1,))
    m.set_weights([np.ones((1, 1)), np.zeros(1)])     # predictions = x
    x, y = np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [5.0]])
    logs = m.evaluate(x, y)
    assert logs["root_mean_squared_error"] == math.sqrt(4 / 3) and logs["mse"] == 4 / 3
    assert m.evaluate(x, y, sample_weight=[1, 1, 2])["root_mean_squared_error"] == math.sqrt(2)


# ------------------------------------------------------------------ against Keras
def _classifier(loss, out, dtype):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(150, 5))
    labels = rng.integers(0, out, 150)
    m = nnfast.Sequential([Dense(8, "tanh", input_dim=5),
                           Dense(out, "sigmoid" if loss == "binary_crossentropy" else "softmax")],
                          dtype=dtype, seed=3)
    return m, x, labels, rng.uniform(0, 2, 150)


KERAS_CASES = [   # (nnfast metric, keras constructor, loss, outputs)
    (lambda: metrics.CategoricalAccuracy(), "CategoricalAccuracy()", "categorical", 4),
    (lambda: "categorical_accuracy", "CategoricalAccuracy()", "categorical", 4),
    (lambda: metrics.TopKCategoricalAccuracy(k=2), "TopKCategoricalAccuracy(k=2)",
     "categorical", 4),
    (lambda: "top_k_categorical_accuracy", "TopKCategoricalAccuracy()", "categorical", 6),
    (lambda: metrics.SparseTopKCategoricalAccuracy(k=2), "SparseTopKCategoricalAccuracy(k=2)",
     "sparse", 4),
    (lambda: "sparse_categorical_accuracy", "SparseCategoricalAccuracy()", "sparse", 4),
    (lambda: "precision", "Precision()", "categorical", 4),
    (lambda: metrics.Precision(thresholds=0.3, class_id=1),
     "Precision(thresholds=0.3, class_id=1)", "categorical", 4),
    (lambda: "recall", "Recall()", "binary", 3),
    (lambda: metrics.Recall(thresholds=0.7), "Recall(thresholds=0.7)", "binary", 1),
    (lambda: "auc", "AUC()", "binary", 1),
    (lambda: metrics.AUC(curve="PR"), "AUC(curve='PR')", "binary", 3),
    (lambda: metrics.AUC(num_thresholds=50, curve="PR", summation_method="minoring"),
     "AUC(num_thresholds=50, curve='PR', summation_method='minoring')", "categorical", 4),
    (lambda: metrics.AUC(summation_method="majoring"), "AUC(summation_method='majoring')",
     "binary", 1),
    (lambda: "f1_score", "F1Score()", "categorical", 4),
    (lambda: metrics.F1Score("micro"), "F1Score('micro')", "categorical", 4),
    (lambda: metrics.F1Score("macro", threshold=0.3), "F1Score('macro', threshold=0.3)",
     "binary", 3),
    (lambda: metrics.F1Score("weighted"), "F1Score('weighted')", "categorical", 4),
    (lambda: metrics.FBetaScore("macro", beta=2.0, threshold=0.4),
     "FBetaScore('macro', beta=2.0, threshold=0.4)", "binary", 3),
    (lambda: "binary_accuracy", "BinaryAccuracy()", "binary", 3),
    (lambda: metrics.BinaryAccuracy(threshold=0.7), "BinaryAccuracy(threshold=0.7)",
     "binary", 1),
]
LOSSES = {"categorical": "categorical_crossentropy", "sparse": "sparse_categorical_crossentropy",
          "binary": "binary_crossentropy"}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ours, theirs, kind, out", KERAS_CASES)
def test_evaluate_matches_keras_metric(backend, dtype, ours, theirs, kind, out):
    keras = pytest.importorskip("keras")
    m, x, labels, w = _classifier(LOSSES[kind], out, dtype)
    y = {"categorical": np.eye(out)[labels], "sparse": labels,
         "binary": (np.random.default_rng(2).uniform(size=(150, out)) < 0.4).astype(float)}[kind]
    spec = ours()
    m.compile("adam", LOSSES[kind], [spec])
    m.fit(x, y, epochs=2, batch_size=32, verbose=0)
    name = m.metrics[0].name
    probs = m.predict(x)
    for weights in (None, w):
        got = m.evaluate(x, y, batch_size=37, sample_weight=weights)[name]
        k = eval(f"keras.metrics.{theirs}")   # noqa: S307  (fixed strings above)
        k.update_state(y, probs.astype(np.float32), sample_weight=weights)
        want = keras.ops.convert_to_numpy(k.result())
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("ours, theirs", [
    (lambda: "r2_score", "R2Score()"),
    (lambda: metrics.R2Score("variance_weighted_average"),
     "R2Score('variance_weighted_average')"),
    (lambda: metrics.R2Score(None), "R2Score(None)"),
    (lambda: metrics.R2Score(num_regressors=3), "R2Score(num_regressors=3)"),
    (lambda: metrics.RootMeanSquaredError(), "RootMeanSquaredError()"),
])
def test_regression_metrics_match_keras(backend, ours, theirs):
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(90, 4))
    y = x @ rng.normal(size=(4, 2)) + rng.normal(size=(90, 2))
    w = rng.uniform(0, 3, 90)
    m = nnfast.Sequential([Dense(2, input_dim=4)], dtype="float64", seed=0)
    m.compile("sgd", "mse", [ours()])
    m.fit(x, y, epochs=3, verbose=0)
    for weights in (None, w):
        got = m.evaluate(x, y, batch_size=16, sample_weight=weights)[m.metrics[0].name]
        k = eval(f"keras.metrics.{theirs}")   # noqa: S307  (fixed strings above)
        k.update_state(y.astype(np.float32), m.predict(x).astype(np.float32),
                       sample_weight=weights)
        np.testing.assert_allclose(got, keras.ops.convert_to_numpy(k.result()), rtol=2e-5)


def test_fit_logs_are_the_epoch_totals_and_arrays_print():
    m, x, labels, _ = _classifier("categorical_crossentropy", 3, "float64")
    y = np.eye(3)[labels]
    m.compile("adam", "categorical_crossentropy", ["f1_score", metrics.AUC(name="roc")])
    h = m.fit(x, y, epochs=1, batch_size=150, shuffle=False, verbose=2,
              validation_data=(x, y))
    assert h.history["f1_score"][0].shape == (3,) and set(h.history) == {
        "loss", "f1_score", "roc", "val_loss", "val_f1_score", "val_roc"}
    # one batch of all rows, weights before the step: the training value is evaluate's
    before = nnfast.Sequential([Dense(8, "tanh", input_dim=5), Dense(3, "softmax")],
                               dtype="float64", seed=3)
    before.compile("adam", "categorical_crossentropy", ["f1_score", metrics.AUC(name="roc")])
    first = before.evaluate(x, y)
    np.testing.assert_allclose(h.history["f1_score"][0], first["f1_score"], rtol=1e-12)
    assert h.history["roc"][0] == pytest.approx(first["roc"], rel=1e-12)


def test_compile_strings_keras_names_and_errors():
    names = ["AUC", "auc", "Precision", "recall", "F1Score", "r2_score",
             "RootMeanSquaredError", "top_k_categorical_accuracy", "binary_accuracy"]
    # the log key is the string, as keras.src.trainers.compile_utils.get_metric names it
    assert [metrics.get(s).name for s in names] == names
    assert [type(metrics.get(s)).__name__ for s in names] == [
        "AUC", "AUC", "Precision", "Recall", "F1Score", "R2Score", "RootMeanSquaredError",
        "TopKCategoricalAccuracy", "BinaryAccuracy"]
    with pytest.raises(ValueError, match="unknown metric 'rmse'; valid metrics: accuracy"):
        metrics.get("rmse")     # Keras 3.15 has no such alias either
    m = nnfast.Sequential([Dense(3, "softmax", input_dim=2)])
    with pytest.raises(ValueError, match=r"compile: metric 'precision' \(Precision\) needs "
                       r"targets of the outputs' shape .*, but loss "
                       r"'sparse_categorical_crossentropy' takes integer class labels"):
        m.compile("adam", "sparse_categorical_crossentropy", ["precision"])
    with pytest.raises(ValueError, match=r"compile: metric 'sparse_top_k_categorical_accuracy' "
                       r"\(SparseTopKCategoricalAccuracy\) needs integer class labels"):
        m.compile("adam", "categorical_crossentropy", ["sparse_top_k_categorical_accuracy"])


def test_metric_objects_and_strings_survive_save_and_load(tmp_path):
    m, x, labels, _ = _classifier("binary_crossentropy", 2, "float32")
    y = np.eye(2)[labels % 2]
    m.compile("adam", "binary_crossentropy",
              ["AUC", metrics.AUC(curve="PR", name="pr"), metrics.F1Score("macro", 0.4), "acc"])
    m.fit(x, y, verbose=0)
    m.save(tmp_path / "m.nnf")
    back = nnfast.load_model(tmp_path / "m.nnf")
    assert [metrics.serialize(k) for k in back.metrics] == [
        "AUC", {"class": "AUC", "config": {"num_thresholds": 200, "curve": "PR",
                                           "summation_method": "interpolation", "name": "pr",
                                           "multi_label": False}},
        {"class": "F1Score", "config": {"average": "macro", "threshold": 0.4,
                                        "name": "f1_score"}}, "acc"]
    assert back.evaluate(x, y) == m.evaluate(x, y)


@pytest.mark.parametrize("make, message", [
    (lambda: metrics.TopKCategoricalAccuracy(k=0),
     "TopKCategoricalAccuracy: k must be an integer >= 1, got 0"),
    (lambda: metrics.Precision(thresholds=1.5),
     r"Precision: thresholds must be a number in \[0, 1\], got 1.5"),
    (lambda: metrics.Recall(top_k=2), "Recall: top_k is not supported by nnfast, got top_k=2"),
    (lambda: metrics.AUC(num_thresholds=1), "AUC: num_thresholds must be an integer >= 2, got 1"),
    (lambda: metrics.AUC(curve="ROCK"), "AUC: curve must be 'ROC' or 'PR', got 'ROCK'"),
    (lambda: metrics.AUC(multi_label=True), "AUC: multi_label=True is not supported"),
    (lambda: metrics.F1Score(average="mean"),
     "F1Score: average must be None, 'micro', 'macro' or 'weighted', got 'mean'"),
    (lambda: metrics.F1Score(threshold=0.0),
     r"F1Score: threshold must be a number in \(0, 1\], got 0.0"),
    (lambda: metrics.FBetaScore(beta=-1.0),
     r"FBetaScore: beta must be a number in \(0, inf\], got -1.0"),
    (lambda: metrics.R2Score("median"), "R2Score: class_aggregation must be None"),
    (lambda: metrics.R2Score(num_regressors=-1),
     "R2Score: num_regressors must be an integer >= 0, got -1"),
    (lambda: metrics.BinaryAccuracy(name=""), "BinaryAccuracy: name must be a non-empty string"),
    (lambda: metrics.get({"class": "os.system", "config": {}}),
     "unknown metric class 'os.system'"),
])
def test_constructor_arguments_checked(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_class_id_out_of_range_raises_once_the_output_width_is_known():
    m = nnfast.Sequential([Dense(3, "softmax", input_dim=2)])
    m.build((2,))
    with pytest.raises(ValueError, match="Precision: class_id=3 is out of range for 3 outputs"):
        m.compile("adam", "categorical_crossentropy", [metrics.Precision(class_id=3)])
