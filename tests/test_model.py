"""Sequential end to end: accuracy targets, layers, losses, optimizers, dtypes, backends, seeds."""
import numpy as np
import pytest
from model_data import admissions, blobs, digits, mlp

import nnfast
from nnfast import optimizers
from nnfast.backends import compiled_available
from nnfast.layers import Activation, Dense, Dropout, Flatten


def test_digits_64_128_10_reaches_97_percent():
    (xtr, ytr), (xte, yte) = digits()
    model = nnfast.Sequential([Dense(128, "relu", input_dim=64), Dense(10, "softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(xtr, ytr, epochs=30, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    result = model.evaluate(xte, yte)
    assert result["accuracy"] >= 0.97, result
    pred = model.predict(xte).argmax(axis=1)
    assert np.mean(pred == yte) == pytest.approx(result["accuracy"])


def test_admissions_reaches_97_percent():
    x, y = admissions(3000, seed=42)
    xs = (x - 50.0) / 50.0
    model = nnfast.Sequential([Dense(16, "relu", input_dim=2), Dense(1, "sigmoid")], seed=0)
    model.compile(optimizers.Adam(0.01), "binary_crossentropy", ["accuracy"])
    model.fit(xs[:2000], y[:2000], epochs=30, batch_size=32, verbose=0)
    result = model.evaluate(xs[2000:], y[2000:])
    assert result["accuracy"] >= 0.97, result
    proba = model.predict(xs[2000:])
    assert proba.shape == (1000, 1) and ((proba >= 0) & (proba <= 1)).all()


def test_predict_gives_probabilities_for_softmax_and_raw_outputs_otherwise():
    x, y = blobs()
    model = mlp()
    model.fit(x, y, epochs=2, verbose=0)
    p = model.predict(x)
    assert p.dtype == np.float32 and p.shape == (len(x), 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    reg = nnfast.Sequential([Dense(4, "relu", input_dim=6), Dense(2)], seed=0)
    reg.compile("sgd", "mse")
    reg.fit(x, np.c_[x[:, 0], x[:, 1]], epochs=1, verbose=0)
    assert (reg.predict(x) < 0).any()      # identity outputs are not squashed


def test_fused_softmax_head_trains_exactly_like_logits_with_the_same_loss():
    x, y = blobs()
    fused = mlp(seed=3, last="softmax")
    logits = mlp(seed=3, last=None)
    assert fused.fused_head == "softmax" and logits.fused_head is None
    h1 = fused.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=5)
    h2 = logits.fit(x, y, epochs=3, batch_size=16, verbose=0, seed=5)
    assert h1.history == h2.history
    np.testing.assert_array_equal(fused._params, logits._params)
    z = logits.predict(x).astype(np.float64)
    soft = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(fused.predict(x), soft / soft.sum(1, keepdims=True), atol=1e-6)


def test_separate_softmax_activation_layer_is_fused_too():
    x, y = blobs()
    a = nnfast.Sequential([Dense(16, "relu", input_dim=6), Dense(3), Activation("softmax")], seed=2)
    a.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    assert a.fused_head == "softmax"
    b = mlp(seed=2)
    a.fit(x, y, epochs=2, verbose=0, seed=1)
    b.fit(x, y, epochs=2, verbose=0, seed=1)
    np.testing.assert_array_equal(a._params, b._params)
    np.testing.assert_allclose(a.predict(x), b.predict(x), rtol=1e-6)


@pytest.mark.parametrize("opt", [
    optimizers.SGD(0.05), optimizers.SGD(0.05, momentum=0.9),
    optimizers.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-4),
    optimizers.Adam(), optimizers.Adam(clipnorm=1.0), optimizers.AdamW(),
    optimizers.RMSprop(), optimizers.RMSprop(momentum=0.5), optimizers.Adagrad(0.05),
], ids=lambda o: repr(o)[:40])
def test_every_optimizer_lowers_the_loss(opt):
    x, y = blobs()
    model = mlp(compile_with=opt)
    history = model.fit(x, y, epochs=6, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    assert opt.iterations == 6 * 15


@pytest.mark.parametrize("loss, last, make_y", [
    ("categorical_crossentropy", "softmax", lambda y: np.eye(3)[y]),
    (nnfast.losses.CategoricalCrossentropy(label_smoothing=0.1), "softmax",
     lambda y: np.eye(3)[y]),
    ("binary_crossentropy", "sigmoid", lambda y: np.eye(3)[y]),
    ("mse", None, lambda y: np.eye(3)[y]),
    ("huber", None, lambda y: 3.0 * np.eye(3)[y]),
    ("sparse_categorical_crossentropy", "softmax", lambda y: y.astype(np.float32)),
])
def test_every_loss_trains(loss, last, make_y):
    x, y = blobs()
    model = mlp(loss=loss, last=last, compile_with=optimizers.Adam(0.01))
    history = model.fit(x, make_y(y), epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.8


def test_mse_and_mae_metrics():
    x, y = blobs()
    t = np.eye(3)[y]
    model = mlp(last=None, loss="mse")
    model.compile("adam", "mse", metrics=["mse", "mae", "accuracy"])
    logs = model.fit(x, t, epochs=3, verbose=0).history
    result = model.evaluate(x, t)
    p = model.predict(x)
    assert result["mse"] == pytest.approx(np.mean((p - t) ** 2), rel=1e-4)
    assert result["loss"] == pytest.approx(result["mse"], rel=1e-4)
    assert result["mae"] == pytest.approx(np.mean(np.abs(p - t)), rel=1e-4)
    assert set(logs) == {"loss", "mse", "mae", "accuracy"}


def test_dropout_flatten_activation_layers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 4, 3))
    y = (x.sum(axis=(1, 2)) > 0).astype(np.int64)
    model = nnfast.Sequential([Flatten(input_shape=(4, 3)), Dense(16), Activation("tanh"),
                               Dropout(0.3), Dense(2, "softmax")], seed=0)
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] > 0.85
    np.testing.assert_array_equal(model.predict(x), model.predict(x))  # dropout off
    assert model.layers[0].output_shape == (12,)


def test_kernel_regularizer_adds_penalty_and_shrinks_weights():
    x, y = blobs()
    plain, reg = mlp(seed=1), nnfast.Sequential(
        [Dense(16, "relu", input_dim=6, kernel_regularizer="l2"), Dense(3, "softmax")], seed=1)
    reg.compile("adam", "sparse_categorical_crossentropy")
    plain.fit(x, y, epochs=10, verbose=0)
    reg.fit(x, y, epochs=10, verbose=0)
    assert np.sum(reg.layers[0].W ** 2) < np.sum(plain.layers[0].W ** 2)
    penalty = 0.01 * float(np.sum(reg.layers[0].W.astype(np.float64) ** 2))
    unpenalized = reg.evaluate(x, y)["loss"] - penalty
    assert unpenalized > 0


def test_float64_model_and_input_conversion():
    x, y = blobs()
    m64 = mlp(dtype="float64")
    m64.fit(x.astype(np.float32), y.astype(np.int32), epochs=2, verbose=0)
    assert m64._params.dtype == np.float64 and m64.predict(x).dtype == np.float64
    a, b = mlp(seed=4), mlp(seed=4)
    a.fit(x, y, epochs=2, verbose=0, seed=0)
    b.fit(x.astype(np.float32), y, epochs=2, verbose=0, seed=0)
    np.testing.assert_array_equal(a._params, b._params)


def test_input_size_from_data_and_add():
    x, y = blobs()
    model = nnfast.Sequential(seed=0)
    model.add(Dense(8, "relu"))
    model.add(Dense(3, "softmax"))
    assert not model.built
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.built and model.input_shape == (6,) and model.count_params() == 6 * 8 + 8 + 27
    kept = model.get_weights()
    model.add(Dense(2))        # Keras 3: a built model is rebuilt, the old weights kept
    assert model.count_params() == 6 * 8 + 8 + 27 + 3 * 2 + 2
    for a, b in zip(model.get_weights(), kept):
        np.testing.assert_array_equal(a, b)


def test_get_set_weights_and_flat_buffer_views():
    x, y = blobs()
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(6, 16), (16,), (16, 3), (3,)]
    for layer in (model.layers[0], model.layers[1]):
        assert np.shares_memory(layer.W, model._params) and np.shares_memory(layer.dW, model._grads)
    before = model.predict(x)
    other = mlp(seed=9)
    other.build()
    other.set_weights(weights)
    np.testing.assert_array_equal(other.predict(x), before)
    weights[0][...] = 0
    np.testing.assert_array_equal(model.predict(x), before)        # copies, not views
    with pytest.raises(ValueError, match="shape"):
        other.set_weights([np.zeros((2, 2))] + weights[1:])
    with pytest.raises(ValueError, match="expected 4 arrays"):
        other.set_weights(weights[:2])


def test_summary(capsys):
    model = mlp()                       # input_dim declared: built at construction (Keras 3)
    assert model.built and model.count_params() == 163
    model.summary()
    text = capsys.readouterr().out
    assert "(None, 16)" in text and "Total params: 163" in text
    model.summary()
    text = capsys.readouterr().out
    assert "dense (Dense)" in text and "(None, 16)" in text and "Total params: 163\n" in text
    unknown = nnfast.Sequential([Dense(4, "relu"), Dense(2)])
    unknown.summary()
    text = capsys.readouterr().out
    assert "?" in text and "Total params: ? (input shape unknown)" in text
    with pytest.raises(ValueError) as info:
        unknown.count_params()
    assert str(info.value) == ("count_params: the model is not built yet; fit it, call "
                               "build(input_shape) or give the first layer input_dim=")


def test_same_seed_same_bits_different_seed_different():
    x, y = blobs()
    a, b, c = mlp(seed=1, dropout=0.2), mlp(seed=1, dropout=0.2), mlp(seed=2, dropout=0.2)
    for m in (a, b, c):
        m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(a._params, b._params)
    assert not np.array_equal(a._params, c._params)


def test_two_fits_equal_one_longer_fit():
    x, y = blobs()
    a, b = mlp(seed=1, dropout=0.2), mlp(seed=1, dropout=0.2)
    a.fit(x, y, epochs=3, batch_size=16, verbose=0)
    b.fit(x, y, epochs=1, batch_size=16, verbose=0)
    b.fit(x, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(a._params, b._params)


@pytest.mark.skipif(not compiled_available(), reason="compiled backend not built")
def test_bit_identical_with_one_and_two_threads(threads):
    (xtr, ytr), _ = digits()
    results = []
    for n in (1, 2):
        threads(n)
        model = nnfast.Sequential([Dense(128, "relu", input_dim=64), Dropout(0.2),
                                   Dense(10, "softmax")], seed=7)
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        model.fit(xtr, ytr, epochs=2, batch_size=64, verbose=0, seed=3)
        results.append(model._params.copy())
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.skipif(not compiled_available(), reason="compiled backend not built")
def test_python_backend_gives_the_same_losses():
    x, y = blobs(n=300)
    histories, params = [], []
    for backend in ("c", "python"):
        with nnfast.use_backend(backend):
            model = mlp(seed=5, dropout=0.1)
            histories.append(model.fit(x, y, epochs=4, batch_size=32, verbose=0,
                                       validation_split=0.2).history)
            params.append(model._params.copy())
    for key in histories[0]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(params[0], params[1], rtol=1e-3, atol=1e-4)


def test_declared_input_builds_at_construction_like_keras():
    # Keras 3: Sequential([Dense(4, input_shape=(3,)), Dense(2)]) is built at construction
    # (get_weights gives 4 arrays, count_params() 26). nnfast raised "not built ... give the
    # first layer input_dim=" from get_weights/set_weights though the input was declared.
    model = nnfast.Sequential([Dense(4, input_dim=3), Dense(2)], seed=0)
    assert model.built and model.input_shape == (3,) and model.count_params() == 26
    weights = model.get_weights()
    assert [w.shape for w in weights] == [(3, 4), (4,), (4, 2), (2,)]
    model.set_weights([np.full(w.shape, 0.5) for w in weights])
    np.testing.assert_array_equal(model.predict(np.ones((1, 3))), [[4.5, 4.5]])
    # same initial weights as a model built from the data by its first fit (same seed)
    late = nnfast.Sequential([Dense(4), Dense(2)], seed=0)
    assert not late.built
    with pytest.raises(ValueError, match="count_params: the model is not built yet"):
        late.count_params()
    late.build((None, 3))               # Keras' shape with the batch dimension
    for a, b in zip(late.get_weights(), nnfast.Sequential([Dense(4, input_dim=3), Dense(2)],
                                                          seed=0).get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError) as info:
        late.build((5,))
    assert str(info.value) == ("Sequential.build: model 'sequential' is already built for "
                               "per-sample input shape (3,); it cannot be built for (5,)")
    late.build((3,))                    # the same shape: nothing to do


def test_add_after_build_keeps_weights_and_inits_the_new_layer_as_if_present_from_start():
    model = nnfast.Sequential(seed=3)
    model.add(Dense(4, input_dim=3))    # declares the input: built now
    assert model.built and model.count_params() == 16
    model.compile("adam", "mse")
    model.fit(np.ones((8, 3)), np.zeros((8, 4)), epochs=1, verbose=0)
    trained = model.get_weights()
    model.add(Dense(2))
    assert model.count_params() == 26 and model.output_shape == (2,)
    after = model.get_weights()
    for a, b in zip(after[:2], trained):
        np.testing.assert_array_equal(a, b)
    fresh = nnfast.Sequential([Dense(4, input_dim=3), Dense(2)], seed=3).get_weights()
    np.testing.assert_array_equal(after[2], fresh[2])
    assert model.optimizer.size == 26   # state rebuilt for the new buffer
    model.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="add a Flatten"):
        nnfast.Sequential([Dense(4, input_shape=(2, 3))])   # fails at construction, as Keras
    with pytest.raises(ValueError, match="already in the model"):
        model.add(model.layers[0])
    assert model.count_params() == 26
