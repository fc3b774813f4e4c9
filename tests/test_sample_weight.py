"""fit / evaluate with sample_weight and class_weight (Keras 3 semantics,
nnfast/engine/sample_weights.py).

The batch loss is Σ_i w_i·l_i / N (Keras' "sum_over_batch_size"), metrics Σ_i w_i·m_i / Σ_i w_i.
The key tests run on both backends (the ``backend`` fixture); one test compares the two.
"""
import numpy as np
import pytest
from model_data import assert_unchanged, blobs, mlp, snapshot
from test_model_engine import _compiled_kernels, _TraceSteps

import nnfast
from nnfast import optimizers, regularizers
from nnfast.engine import inputs as _fit_inputs
from nnfast.engine import training
from nnfast.layers import Dense

pytestmark = pytest.mark.usefixtures("one_thread")

X, Y = blobs(n=60)                       # float64 features, labels 0..2
CW = {0: 0.5, 1: 2.0, 2: 1.5}


def _model(loss="sparse_categorical_crossentropy", outputs=3, last="softmax", lr=0.1,
           metrics=("accuracy",), dtype="float64", reg=None):
    m = nnfast.Sequential([Dense(5, "tanh", input_dim=6, kernel_regularizer=reg),
                           Dense(outputs, last)], dtype=dtype, seed=0)
    m.compile(optimizers.SGD(lr), loss, list(metrics))
    return m


def _weights(seed=1, low=0.0, high=3.0):
    return np.random.default_rng(seed).uniform(low, high, len(X))


def _one_hot(y, classes=3):
    return np.eye(classes)[y]


# ----------------------------------------------------------------------------- semantics
@pytest.mark.usefixtures("backend")
def test_integer_weights_equal_repeated_rows():
    w = np.random.default_rng(1).integers(0, 4, len(X))
    w[:4] = [0, 1, 2, 3]
    n, r = len(X), int(w.sum())
    # Keras divides the weighted sum by the batch size n, the repeated set by its own size
    # r = Σw: the weighted loss and gradient are r/n times the repeated ones. So SGD with
    # learning rate lr on the weights makes the same step as lr·r/n on the repeated rows.
    a, b = _model(lr=0.1), _model(lr=0.1 * r / n)
    ha = a.fit(X, Y, epochs=3, batch_size=n, shuffle=False, verbose=0, sample_weight=w)
    hb = b.fit(np.repeat(X, w, axis=0), np.repeat(Y, w), epochs=3, batch_size=r, shuffle=False,
               verbose=0)
    np.testing.assert_allclose(a._params, b._params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ha.history["loss"], np.multiply(hb.history["loss"], r / n),
                               rtol=1e-10)
    # Weighted accuracy Σ w·hit / Σ w is the repeated set's plain accuracy.
    np.testing.assert_allclose(ha.history["accuracy"], hb.history["accuracy"], rtol=1e-12)
    assert not np.allclose(a._params, _fit_plain(n))


def _fit_plain(n):
    m = _model(lr=0.1)
    m.fit(X, Y, epochs=3, batch_size=n, shuffle=False, verbose=0)
    return m._params


@pytest.mark.usefixtures("backend")
def test_rows_of_weight_zero_have_no_effect():
    w = _weights(low=0.5)
    w[::3] = 0
    zero = w == 0
    x2, y2 = X.copy(), Y.copy()
    x2[zero] = np.random.default_rng(2).normal(0, 30, (zero.sum(), 6))   # other features
    y2[zero] = (Y[zero] + 1) % 3                                          # and wrong labels
    a, b = _model(), _model()
    # Shuffled batches of 16: the zero weights must travel with their rows.
    ha = a.fit(X, Y, epochs=2, batch_size=16, seed=3, verbose=0, sample_weight=w)
    hb = b.fit(x2, y2, epochs=2, batch_size=16, seed=3, verbose=0, sample_weight=w)
    np.testing.assert_allclose(a._params, b._params, rtol=1e-12, atol=1e-15)
    for key in ha.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-12, err_msg=key)
    c = _model()
    c.fit(x2, y2, epochs=2, batch_size=16, seed=3, verbose=0)
    assert not np.allclose(c._params, a._params)     # without the weights the rows do count


@pytest.mark.usefixtures("backend")
def test_unit_weights_equal_no_weights():
    a, b = _model(), _model()
    ha = a.fit(X, Y, epochs=2, batch_size=16, seed=3, verbose=0, validation_split=0.2)
    hb = b.fit(X, Y, epochs=2, batch_size=16, seed=3, verbose=0, validation_split=0.2,
               sample_weight=np.ones(len(X)))
    np.testing.assert_allclose(a._params, b._params, rtol=1e-12)
    for key in ha.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-12, err_msg=key)


def _targets(kind):
    """(y, loss, outputs, last activation, class of each row, class_weight) per loss."""
    if kind == "sparse":
        return Y, "sparse_categorical_crossentropy", 3, "softmax", Y, CW
    if kind == "categorical":        # soft rows: the class is the argmax
        soft = 0.7 * _one_hot(Y) + 0.1
        return soft, "categorical_crossentropy", 3, "softmax", Y, CW
    yb = (Y == 1).astype(np.float64)
    return yb, "binary_crossentropy", 1, "sigmoid", yb.astype(int), {0: 0.5, 1: 2.0}


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("kind", ["sparse", "categorical", "binary"])
def test_class_weight_equals_the_matching_sample_weight(kind):
    y, loss, outputs, last, classes, cw = _targets(kind)
    rows = np.array([cw[c] for c in classes])
    a, b = _model(loss, outputs, last), _model(loss, outputs, last)
    ha = a.fit(X, y, epochs=2, batch_size=16, seed=3, verbose=0, class_weight=cw)
    hb = b.fit(X, y, epochs=2, batch_size=16, seed=3, verbose=0, sample_weight=rows)
    np.testing.assert_allclose(a._params, b._params, rtol=1e-12)
    for key in ha.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-12, err_msg=key)
    # Both given: the product. Classes left out of the dict weigh 1 (Keras 3).
    s = _weights(low=0.2)
    a, b = _model(loss, outputs, last), _model(loss, outputs, last)
    a.fit(X, y, epochs=1, batch_size=16, seed=3, verbose=0, sample_weight=s, class_weight={1: 3})
    b.fit(X, y, epochs=1, batch_size=16, seed=3, verbose=0,
          sample_weight=s * np.where(classes == 1, 3.0, 1.0))
    np.testing.assert_allclose(a._params, b._params, rtol=1e-12)
    plain = _model(loss, outputs, last)
    plain.fit(X, y, epochs=1, batch_size=16, seed=3, verbose=0, sample_weight=s)
    assert not np.allclose(plain._params, a._params)


def _forward(m, x):
    w1, b1, w2, b2 = m.get_weights()
    return np.tanh(x @ w1 + b1) @ w2 + b2      # logits


def _softplus(z):
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("kind", ["sparse", "categorical", "binary", "regression"])
def test_evaluate_weighted_loss_and_metrics_match_numpy(kind):
    w = _weights(seed=4)
    w[:5] = 0
    if kind == "sparse":
        m, y = _model(), Y
    elif kind == "categorical":
        m, y = _model("categorical_crossentropy", metrics=("accuracy", "mse")), _one_hot(Y)
    elif kind == "binary":
        m, y = _model("binary_crossentropy", 1, "sigmoid", metrics=("accuracy", "mae")), Y == 1
    else:
        m, y = _model("mse", 2, None, metrics=("mae",)), np.stack([X[:, 0], X[:, 1] * X[:, 2]], 1)
    m.fit(X, y, epochs=2, batch_size=16, verbose=0)          # any weights but the initial ones
    z = _forward(m, X)
    if kind in ("sparse", "categorical"):
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        loss = lse - z[np.arange(len(X)), Y]
        p = np.exp(z - lse[:, None])
        metrics = {"accuracy": z.argmax(1) == Y}
        if kind == "categorical":
            metrics["mse"] = ((p - _one_hot(Y)) ** 2).mean(1)
    elif kind == "binary":
        t = y[:, None].astype(float)
        loss = (_softplus(z) - z * t)[:, 0]
        p = 1 / (1 + np.exp(-z))
        metrics = {"accuracy": ((z > 0) == (t > 0.5))[:, 0], "mae": np.abs(p - t)[:, 0]}
    else:
        loss = ((z - y) ** 2).mean(1)
        metrics = {"mae": np.abs(z - y).mean(1)}
    got = m.evaluate(X, y, batch_size=7, sample_weight=w)     # 9 batches, the last of 4 rows
    assert got["loss"] == pytest.approx((w * loss).sum() / len(X), rel=1e-12)
    for name, values in metrics.items():
        assert got[name] == pytest.approx((w * values).sum() / w.sum(), rel=1e-12), name
    plain = m.evaluate(X, y, batch_size=7)
    assert plain["loss"] == pytest.approx(loss.mean(), rel=1e-12)
    assert got["loss"] != pytest.approx(plain["loss"], rel=1e-6)


@pytest.mark.usefixtures("backend")
def test_validation_weights_follow_validation_data_and_split():
    w = _weights(seed=5, low=0.1)
    k = 15                                           # validation_split=0.25 of 60 rows
    m = _model()
    # class_weight applies to training only: the validation rows keep their sample weights.
    h = m.fit(X, Y, epochs=1, batch_size=8, seed=3, verbose=0, validation_split=0.25,
              sample_weight=w, class_weight={0: 5.0})
    ev = m.evaluate(X[-k:], Y[-k:], sample_weight=w[-k:])
    assert h.history["val_loss"][0] == pytest.approx(ev["loss"], rel=1e-12)
    assert h.history["val_accuracy"][0] == pytest.approx(ev["accuracy"], rel=1e-12)
    ref = _model()
    ref.fit(X[:-k], Y[:-k], epochs=1, batch_size=8, seed=3, verbose=0,
            sample_weight=w[:-k] * np.where(Y[:-k] == 0, 5.0, 1.0))
    np.testing.assert_allclose(m._params, ref._params, rtol=1e-12)

    m = _model()
    h = m.fit(X[:-k], Y[:-k], epochs=1, batch_size=8, verbose=0,
              validation_data=(X[-k:], Y[-k:], w[-k:]))
    ev = m.evaluate(X[-k:], Y[-k:], sample_weight=w[-k:])
    assert h.history["val_loss"][0] == pytest.approx(ev["loss"], rel=1e-12)
    assert h.history["val_accuracy"][0] == pytest.approx(ev["accuracy"], rel=1e-12)
    assert ev["loss"] != pytest.approx(m.evaluate(X[-k:], Y[-k:])["loss"], rel=1e-6)


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("kind", ["sparse", "categorical", "binary", "mse"])
def test_weighted_loss_gradient_matches_finite_differences(kind):
    if kind == "mse":
        y, loss, outputs, last = np.stack([X[:, 0], X[:, 3]], 1), "mse", 2, None
    else:
        y, loss, outputs, last, _, _ = _targets(kind)
    m = _model(loss, outputs, last, reg=regularizers.L2(1e-2))
    m.build((6,))
    w = _weights(seed=6)
    w[0] = 0
    x, yp = _fit_inputs.prepare(m, X, y, "test")
    n = len(x)
    reported, _ = training.compute_gradients(m, m.workspace(n), x, yp, n, w)
    grad = m.layers[0].dW.copy()

    def loss_at():       # the loss evaluate reports: Σ w·l / n + the L2 penalty
        return m.evaluate(X, y, batch_size=n, sample_weight=w)["loss"]

    assert reported == pytest.approx(loss_at(), rel=1e-12)
    W, h = m.layers[0].W, 1e-6
    numeric = np.empty_like(grad)
    for idx in np.ndindex(*W.shape):
        keep = W[idx]
        W[idx] = keep + h
        up = loss_at()
        W[idx] = keep - h
        down = loss_at()
        W[idx] = keep
        numeric[idx] = (up - down) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 2e-4)])
def test_backends_agree_on_weighted_training(dtype, rtol):
    if not nnfast.backends.compiled_available():
        pytest.skip("compiled extension not built")
    runs = {}
    for name in ("c", "python"):
        with nnfast.use_backend(name):
            m = _model(dtype=dtype)
            h = m.fit(X, Y, epochs=3, batch_size=16, seed=3, verbose=0, validation_split=0.2,
                      sample_weight=_weights(seed=7), class_weight={2: 2.5})
            runs[name] = (m._params.copy(), h.history,
                          m.evaluate(X, Y, batch_size=13, sample_weight=_weights(seed=8)))
    (pc, hc, ec), (pp, hp, ep) = runs["c"], runs["python"]
    np.testing.assert_allclose(pc, pp, rtol=rtol, atol=rtol)
    for key in hc:
        np.testing.assert_allclose(hc[key], hp[key], rtol=rtol, err_msg=key)
    for key in ec:
        assert ec[key] == pytest.approx(ep[key], rel=rtol), key


# ----------------------------------------------------------------------------- data handling
def test_the_callers_arrays_and_dict_are_not_modified():
    x, y, w = X.copy(), Y.copy(), _weights(seed=9)
    wv = w[:20].copy()
    cw = dict(CW)
    for a in (x, y, w, wv):
        a.setflags(write=False)        # any write into them raises
    m = _model()
    m.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_split=0.2, sample_weight=w,
          class_weight=cw)
    m.fit(x, y, epochs=1, batch_size=16, verbose=0, sample_weight=w,
          validation_data=(x[:20], y[:20], wv))
    m.evaluate(x, y, sample_weight=w)
    f32 = mlp()                          # float32: the weights are converted, not the originals
    f32.fit(x, y, epochs=1, verbose=0, sample_weight=w, class_weight=cw)
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(y, Y)
    np.testing.assert_array_equal(w, _weights(seed=9))
    np.testing.assert_array_equal(wv, _weights(seed=9)[:20])
    assert cw == CW


def test_distributed_in_one_process_equals_plain_weighted_fit():
    kwargs = dict(epochs=2, batch_size=16, seed=3, verbose=0, sample_weight=_weights(seed=10),
                  class_weight={1: 0.25}, validation_data=(X[:20], Y[:20], _weights()[:20]))
    a, b = _model(), _model()
    ha = a.fit(X, Y, **kwargs)
    hb = b.fit(X, Y, distributed=True, **kwargs)
    np.testing.assert_array_equal(a._params, b._params)
    for key in ha.history:
        np.testing.assert_allclose(ha.history[key], hb.history[key], rtol=1e-12, err_msg=key)


def test_weighted_training_step_allocates_no_array_after_the_first_batch():
    if not _compiled_kernels():
        pytest.skip("needs the compiled backend (the reference allocates temporaries by design)")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64 * 24, 256)).astype(np.float32)
    y = np.eye(10)[rng.integers(0, 10, len(x))]
    model = nnfast.Sequential([Dense(256, "relu", input_dim=256), Dense(10, "softmax")], seed=0)
    model.compile("adam", "categorical_crossentropy", ["accuracy", "mae"])
    tracer = _TraceSteps(4, 20)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[tracer],
              sample_weight=rng.uniform(0, 2, len(x)), class_weight={3: 2.0})
    # As in test_model_engine: the batch of weights (and metric rows) come from the workspace.
    assert tracer.growth is not None and tracer.growth < 2048, tracer.growth


# ----------------------------------------------------------------------------- bad input
W60 = np.ones(len(X))
BAD_W = np.where(np.arange(len(X)) == 3, -1.0, 1.0)


def _with(i, value):
    w = np.ones(len(X))
    w[i] = value
    return w


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"sample_weight": np.ones(59)}, ValueError, r"sample_weight has 59 weights for 60 samples"),
    ({"sample_weight": np.ones((60, 1))}, ValueError,
     r"sample_weight must be 1-D, one weight per sample \(shape \(60,\)\), got shape \(60, 1\)"),
    ({"sample_weight": BAD_W}, ValueError, r"sample_weight must be non-negative, got -1.0 at "
                                           r"index 3"),
    ({"sample_weight": _with(7, np.nan)}, ValueError, "sample_weight must be finite, got nan at "
                                                      "index 7"),
    ({"sample_weight": _with(8, -np.inf)}, ValueError, "sample_weight must be finite, got -inf"),
    ({"sample_weight": np.zeros(60)}, ValueError, "sample_weight values are all zero"),
    ({"sample_weight": np.full(60, 1e300)}, ValueError, "sample_weight has values too large for "
                                                        "float32"),
    ({"sample_weight": W60.astype(str)}, TypeError, "sample_weight must hold numbers"),
    ({"sample_weight": 1.0}, ValueError, "sample_weight must be an array of samples"),
    ({"class_weight": [1.0, 2.0, 3.0]}, TypeError, r"class_weight must be a dict .* got list"),
    ({"class_weight": {"0": 1.0}}, TypeError,
     r"class_weight keys must be int class indices, got '0' \(str\)"),
    ({"class_weight": {1.0: 2.0}}, TypeError, r"keys must be int class indices, got 1.0 \(float"),
    ({"class_weight": {True: 2.0}}, TypeError, r"keys must be int class indices, got True"),
    ({"class_weight": {3: 2.0}}, ValueError,
     r"class_weight has key 3, but the classes of this model are 0 to 2"),
    ({"class_weight": {-1: 2.0}}, ValueError, r"class_weight has key -1"),
    ({"class_weight": {0: -1.0}}, ValueError, r"class_weight\[0\] must be finite and non-neg"),
    ({"class_weight": {0: np.nan}}, ValueError, r"class_weight\[0\] must be finite"),
    ({"class_weight": {0: "2"}}, TypeError, r"class_weight\[0\] must be a number"),
    ({"class_weight": {0: 0, 1: 0, 2: 0}}, ValueError,
     r"training sample weights \(sample_weight × class_weight\) are all zero"),
    ({"sample_weight": np.r_[np.zeros(45), np.ones(15)], "validation_split": 0.25}, ValueError,
     r"training sample weights .* are all zero"),
    ({"sample_weight": np.r_[np.ones(45), np.zeros(15)], "validation_split": 0.25}, ValueError,
     r"sample_weight values of the validation split \(the last 15 rows\) are all zero"),
    ({"validation_data": (X, Y, np.ones(3))}, ValueError,
     "validation_data sample_weight has 3 weights for 60 samples"),
    ({"validation_data": (X, Y, np.zeros(60))}, ValueError,
     "validation_data sample_weight values are all zero"),
    ({"validation_data": (X, Y, W60, W60)}, ValueError,
     r"validation_data must be a tuple \(x_val, y_val\) or \(x_val, y_val, sample_weight_val\)"),
])
def test_fit_rejects_bad_weights(kwargs, exc, match):
    m = mlp(inputs=6)
    m.fit(X, Y, epochs=1, verbose=0)
    before = snapshot(m)
    with pytest.raises(exc, match=match):
        m.fit(X, Y, epochs=1, verbose=0, **kwargs)
    assert_unchanged(m, before)


@pytest.mark.parametrize("loss, outputs, y, match", [
    ("mse", 3, _one_hot(Y), r"class_weight needs a classification loss .* the model's loss is "
                            r"'mse'; use sample_weight"),
    ("huber", 3, _one_hot(Y), r"class_weight needs a classification loss"),
    ("binary_crossentropy", 3, _one_hot(Y),
     r"class_weight with binary_crossentropy needs a model with one output .* has 3"),
])
def test_class_weight_needs_a_classification_loss(loss, outputs, y, match):
    m = _model(loss, outputs, "sigmoid")
    before = snapshot(m)
    with pytest.raises(ValueError, match=match):
        m.fit(X, y, epochs=1, verbose=0, class_weight={0: 2.0})
    assert_unchanged(m, before)


@pytest.mark.parametrize("w, exc, match", [
    (np.ones(3), ValueError, "evaluate: sample_weight has 3 weights for 60 samples"),
    (BAD_W, ValueError, "evaluate: sample_weight must be non-negative"),
    (np.zeros(60), ValueError, "evaluate: the sample_weight values are all zero"),
    (np.ones((60, 2)), ValueError, "evaluate: sample_weight must be 1-D"),
])
def test_evaluate_rejects_bad_weights(w, exc, match):
    m = _model()
    with pytest.raises(exc, match=match):
        m.evaluate(X, Y, sample_weight=w)


@pytest.mark.parametrize("kwargs, message", [
    ({"sample_weight": BAD_W}, "fit: sample_weight must be non-negative, got -1.0 at index 3"),
    ({"sample_weight": _with(7, np.nan)}, "fit: sample_weight must be finite, got nan at index 7"),
    ({"class_weight": {0: -1.0}},
     "fit: class_weight[0] must be finite and non-negative, got -1.0"),
])
def test_negative_and_nan_weights_differ_from_keras_on_purpose(kwargs, message):
    # Keras 3 checks no weight value: a negative weight trains (the row's gradient flipped), a
    # NaN one makes the loss NaN. nnfast refuses both before any work (docs/model.md).
    import os
    if os.environ.get("KERAS_BACKEND", "torch") != "torch":
        pytest.skip("the Keras comparison runs on the torch backend")
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    km = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    km.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    loss = km.fit(X.astype("float32"), Y, epochs=1, batch_size=60, verbose=0,
                  **kwargs).history["loss"][0]
    assert np.isnan(loss) if "nan" in message else np.isfinite(loss)
    m = _model()
    before = snapshot(m)
    with pytest.raises(ValueError) as info:
        m.fit(X, Y, epochs=1, verbose=0, **kwargs)
    assert str(info.value) == message
    assert_unchanged(m, before)
