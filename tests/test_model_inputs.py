"""Bad input: a clear error before any work, the model unchanged (issue 5, "Bad input")."""
import re

import numpy as np
import pytest
from model_data import assert_unchanged, blobs, mlp, snapshot

import nnfast
from nnfast import optimizers
from nnfast.layers import Activation, Dense


@pytest.fixture(params=["fresh", "trained"])
def model(request):
    m = mlp()
    if request.param == "trained":
        x, y = blobs()
        m.fit(x, y, epochs=1, verbose=0)
    return m


def _fails(model, exc, match, call):
    before = snapshot(model)
    with pytest.raises(exc, match=match):
        call()
    assert_unchanged(model, before)


X, Y = blobs()


@pytest.mark.parametrize("x, y, exc, match", [
    (X, Y[:-1], ValueError, r"different lengths \(240 and 239"),
    (X[:, :5], Y, ValueError, r"has samples of shape \(5,\), the model expects \(6,\)$"),
    (X, np.where(Y == 2, 3, Y), ValueError, r"labels must lie in \[0, 3\).*to 3"),
    (X, Y - 1, ValueError, r"labels must lie in \[0, 3\).*from -1"),
    (X, Y + 0.5, ValueError, "non-integer"),
    (np.where(np.arange(240)[:, None] == 7, np.nan, X), Y, ValueError, "x contains NaN or Inf"),
    (np.where(np.arange(240)[:, None] == 7, np.inf, X), Y, ValueError, "x contains NaN or Inf"),
    (X, np.where(np.arange(240) == 3, np.nan, Y), ValueError, "y contains NaN or Inf"),
    (X.astype(str), Y, TypeError, "x must hold numbers"),
    (X, Y.astype(str), TypeError, "y must hold numbers"),
    (X.astype(object), Y, TypeError, "x must hold numbers"),
    (np.empty((0, 6)), np.empty(0, np.int64), ValueError, "empty"),
    (X[:, 0], Y, ValueError, "at least 2-D"),
    (np.full((240, 6), 1e300), Y, ValueError, "values too large"),
    ([[1, 2], [3]], [0, 1], TypeError, "numeric array"),
])
def test_fit_rejects_bad_data(model, x, y, exc, match):
    _fails(model, exc, match, lambda: model.fit(x, y, epochs=1, verbose=0))


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"batch_size": -3}, "batch_size must be an integer >= 1"),
    ({"batch_size": 2.5}, "batch_size must be an integer >= 1"),
    ({"epochs": -1}, "epochs must be an integer >= 0"),
    ({"verbose": 3}, "verbose must be 0, 1 or 2"),
    ({"validation_split": 1.0}, r"validation_split must be a number in \[0, 1\)"),
    ({"validation_split": 0.001}, "both must be >= 1"),
    ({"validation_data": (X,)}, "validation_data must be a tuple"),
    ({"validation_data": (X[:, :4], Y)}, "validation_data x has"),
    ({"validation_data": (X, Y + 5)}, "validation_data y: labels must lie"),
    ({"seed": -1}, "seed must be None or an integer >= 0"),
])
def test_fit_rejects_bad_arguments(model, kwargs, match):
    _fails(model, ValueError, match, lambda: model.fit(X, Y, **{"verbose": 0, **kwargs}))


def test_fit_rejects_non_callbacks(model):
    _fails(model, TypeError, "Callback instances",
           lambda: model.fit(X, Y, verbose=0, callbacks=[lambda: None]))


def test_targets_checked_for_each_loss():
    onehot = np.eye(3)[Y]
    cat = mlp(loss="categorical_crossentropy")
    _fails(cat, ValueError, r"targets of shape \(n, 3\)", lambda: cat.fit(X, Y, verbose=0))
    _fails(cat, ValueError, "probabilities in", lambda: cat.fit(X, 2 * onehot, verbose=0))
    bce = mlp(loss="binary_crossentropy", last="sigmoid")
    _fails(bce, ValueError, r"must lie in \[0, 1\]", lambda: bce.fit(X, 3 * onehot, verbose=0))
    mse = mlp(loss="mse", last=None)
    _fails(mse, ValueError, r"targets of shape \(n, 3\)", lambda: mse.fit(X, onehot[:, :2],
                                                                            verbose=0))


def test_predict_and_evaluate_check_their_input(model):
    _fails(model, ValueError, r"the model expects \(6,\)", lambda: model.predict(X[:, :4]))
    _fails(model, ValueError, "NaN or Inf", lambda: model.predict(np.full((3, 6), np.nan)))
    _fails(model, ValueError, "empty", lambda: model.predict(np.empty((0, 6))))
    _fails(model, ValueError, "batch_size", lambda: model.predict(X, batch_size=0))
    _fails(model, ValueError, "different lengths", lambda: model.evaluate(X, Y[:5]))
    _fails(model, ValueError, "labels must lie", lambda: model.evaluate(X, Y + 3))


@pytest.mark.parametrize("make, match", [
    (lambda: nnfast.Sequential([Dense(3, "relu", input_dim=2)]).compile("adamm", "mse"),
     "unknown optimizer 'adamm'; valid optimizers: sgd, adam, adamw, rmsprop, adagrad"),
    (lambda: nnfast.Sequential([Dense(3, input_dim=2)]).compile("adam", "crossentropy"),
     ("unknown loss 'crossentropy'; valid losses: sparse_categorical_crossentropy, "
      "categorical_crossentropy, binary_crossentropy, mse, huber")),
    (lambda: nnfast.Sequential([Dense(3, input_dim=2)]).compile("adam", "mse", ["f1"]),
     "unknown metric 'f1'; valid metrics: accuracy"),
    (lambda: Dense(3, activation="relu6"), ("unknown activation 'relu6'; valid activations: "
                                            "identity, relu, leaky_relu, elu, sigmoid, tanh")),
    (lambda: Activation("swishy"), "unknown activation 'swishy'"),
    (lambda: Dense(3, kernel_initializer="xavier"), "unknown initializer 'xavier'; valid"),
    (lambda: Dense(0), "units must be an int >= 1"),
    (lambda: nnfast.layers.Dropout(1.0), "rate must be a number in [0, 1)"),
    (lambda: optimizers.Adam(learning_rate=-1), "learning_rate must be a finite number"),
    (lambda: optimizers.SGD(momentum=1.0), "momentum must be a finite number"),
    (lambda: nnfast.Sequential(dtype="float16"), "dtype must be 'float32' or 'float64'"),
    (lambda: nnfast.Sequential(seed=1.5), "seed must be None or an integer"),
])
def test_unknown_names_and_bad_settings_list_the_valid_ones(make, match):
    with pytest.raises(ValueError, match=re.escape(match)):
        make()


def test_compile_failure_keeps_previous_settings():
    model = mlp()
    loss, opt = model.loss, model.optimizer
    with pytest.raises(ValueError):
        model.compile("adam", "nope")
    assert model.loss is loss and model.optimizer is opt


@pytest.mark.parametrize("metric", ["mse", "mae", "mean_squared_error"])
def test_error_metrics_against_integer_labels_are_refused_at_compile(metric):
    model = mlp()
    loss, metrics = model.loss, model.metrics
    with pytest.raises(ValueError, match=re.escape(
            f"compile: metric {metric!r} compares outputs with targets of the same shape, but "
            "loss 'sparse_categorical_crossentropy' takes integer class labels")):
        model.compile("adam", "sparse_categorical_crossentropy", ["accuracy", metric])
    assert model.loss is loss and model.metrics is metrics
    model.compile("adam", "categorical_crossentropy", [metric])  # one-hot targets: fine
    assert [m.name for m in model.metrics] == [metric]


def test_fit_before_compile_and_unbuilt_access():
    model = nnfast.Sequential([Dense(3, "softmax", input_dim=6)])
    params = model.get_weights()        # built at construction: its input is declared
    with pytest.raises(ValueError, match="not compiled"):
        model.fit(X, Y, verbose=0)
    for a, b in zip(model.get_weights(), params):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="not built"):
        nnfast.Sequential([Dense(3)]).get_weights()
    with pytest.raises(ValueError, match="add a Flatten"):
        nnfast.Sequential([Dense(3)]).predict(np.zeros((2, 3, 4)))
    with pytest.raises(TypeError, match="expected a layer"):
        nnfast.Sequential(["dense"])
    frozen = nnfast.Sequential([Activation("softmax")])
    frozen.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="no trainable layer"):
        frozen.fit(np.zeros((4, 3)), np.zeros(4, np.int64), verbose=0)
    assert not frozen.built


@pytest.mark.parametrize("make, message", [
    (lambda: optimizers.Adam(epsilon=0.0),
     "Adam: epsilon must be a finite number in (0.0, inf], got 0.0"),
    (lambda: optimizers.RMSprop(epsilon=-1e-7),
     "RMSprop: epsilon must be a finite number in (0.0, inf], got -1e-07"),
    (lambda: optimizers.Adagrad(epsilon=0),
     "Adagrad: epsilon must be a finite number in (0.0, inf], got 0"),
])
def test_optimizer_epsilon_must_be_positive_at_construction(make, message):
    # Accepted before, then refused at the first step by the kernel ("adam_update: eps ...")
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


@pytest.mark.parametrize("opt, message", [
    (optimizers.Adam(learning_rate=1e39),
     "Adam: learning_rate=1e+39 is out of range for a float32 model: it rounds to inf in "
     "float32; use a value float32 can hold, or a float64 model"),
    (optimizers.Adam(epsilon=1e-50),
     "Adam: epsilon=1e-50 is out of range for a float32 model: it rounds to 0.0, and it must "
     "be > 0 in float32; use a value float32 can hold, or a float64 model"),
    (optimizers.Adam(beta_2=1 - 1e-9),
     "Adam: beta_2=0.999999999 is out of range for a float32 model: it rounds to 1.0, and it "
     "must be < 1 in float32; use a value float32 can hold, or a float64 model"),
    (optimizers.SGD(momentum=1 - 1e-9),
     "SGD: momentum=0.999999999 is out of range for a float32 model: it rounds to 1.0, and it "
     "must be < 1 in float32; use a value float32 can hold, or a float64 model"),
    (optimizers.RMSprop(weight_decay=1e300),
     "RMSprop: weight_decay=1e+300 is out of range for a float32 model: it rounds to inf in "
     "float32; use a value float32 can hold, or a float64 model"),
])
def test_optimizer_values_a_float32_model_cannot_hold_fail_at_compile(opt, message):
    # Keras 3 accepts them all and trains to NaN/Inf (Adam(learning_rate=1e39): params -inf
    # after one step); nnfast trained to NaN or failed at the first step with a kernel name.
    model = nnfast.Sequential([Dense(3, "softmax", input_dim=6)], seed=0)
    with pytest.raises(ValueError) as info:
        model.compile(opt, "sparse_categorical_crossentropy")
    assert str(info.value) == message
    assert model.optimizer is None and not model.compiled
    unbuilt = nnfast.Sequential([Dense(3, "softmax")])
    with pytest.raises(ValueError):
        unbuilt.compile(opt, "sparse_categorical_crossentropy")
    # the same values are fine in float64
    m64 = nnfast.Sequential([Dense(3, "softmax", input_dim=6)], dtype="float64", seed=0)
    m64.compile(opt, "sparse_categorical_crossentropy")
    assert m64.optimizer is opt


def _as_float32_memoryview(a):
    return memoryview(np.ascontiguousarray(a, np.float32))


def _as_array_array(a):
    """array.array is 1-D: a buffer np.asarray reads as 1-D, so every entry point refuses it
    with the same 1-D message."""
    import array
    return array.array("f", np.asarray(a, np.float32).ravel())


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix's own
@pytest.mark.parametrize("convert", [_as_float32_memoryview, np.asmatrix],
                         ids=["memoryview", "matrix"])
def test_every_entry_point_reads_what_np_asarray_reads(convert):
    """predict, evaluate, fit, train/test_on_batch, predict_on_batch and model(x) take a 2-D
    memoryview and an np.matrix as np.asarray reads them (scikit-learn's check_array converts
    np.matrix with np.asarray too): the same results, bit for bit, as the plain float32 array.
    A memoryview used to be taken for an iterable of batches (NotImplementedError from its
    sub-views) and an np.matrix broke the finite check (TypeError from NumPy)."""
    x32, y = X.astype(np.float32), Y
    results = []
    for xin in (x32, convert(x32)):
        m = mlp()
        got = [m(xin), m.predict(xin, verbose=0), m.predict_on_batch(xin),
               m.evaluate(xin, y, verbose=0), m.test_on_batch(xin, y)]
        got.append(m.train_on_batch(xin, y))
        got.append(m.fit(xin, y, epochs=2, batch_size=64, verbose=0, shuffle=False).history)
        got.append(m.predict(xin, verbose=0))
        results.append(got)
    for w, g in zip(*results):
        if isinstance(w, np.ndarray):
            assert type(g) is np.ndarray and g.dtype == np.float32
            np.testing.assert_array_equal(g, w)
        else:
            assert g == w


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_matrix_labels_are_read_as_their_array():
    """y as an np.matrix of shape (n, 1) is y.reshape(n, 1), as for the plain array."""
    x32 = X.astype(np.float32)
    want = mlp().evaluate(x32, Y[:, None], verbose=0)
    assert mlp().evaluate(x32, np.asmatrix(Y[:, None]), verbose=0) == want


@pytest.mark.parametrize("call", ["predict", "evaluate", "fit", "model", "predict_on_batch",
                                  "train_on_batch", "test_on_batch"])
def test_one_d_buffer_is_refused_the_same_way_everywhere(model, call):
    fn = {"model": "Sequential.__call__"}.get(call, call)
    x = _as_array_array(X)
    run = {"predict": lambda: model.predict(x, verbose=0),
           "evaluate": lambda: model.evaluate(x, Y, verbose=0),
           "fit": lambda: model.fit(x, Y, verbose=0),
           "model": lambda: model(x),
           "predict_on_batch": lambda: model.predict_on_batch(x),
           "train_on_batch": lambda: model.train_on_batch(x, Y),
           "test_on_batch": lambda: model.test_on_batch(x, Y)}[call]
    _fails(model, ValueError, "^" + re.escape(
        f"{fn}: x must be at least 2-D (n_samples, ...), got shape (1440,); the model takes "
        "samples of shape (6,): pass an array of shape (n_samples, 6)") + "$", run)


@pytest.mark.parametrize("alpha, rounded", [(1e39, "inf"), (-1e39, "-inf")])
def test_float32_model_refuses_an_alpha_float32_cannot_hold(alpha, rounded):
    """The float32 kernels take alpha as float (1e39 -> inf): refused when the model is built
    or the layer added, naming the layer; a float64 model takes it and applies it."""
    msg = (f"layer 'dense' alpha={alpha!r} is out of range for float32: it rounds to {rounded}; "
           "use a smaller alpha or dtype='float64'")
    with pytest.raises(ValueError, match="^" + re.escape(f"Sequential.build: {msg}") + "$"):
        nnfast.Sequential([Dense(2, "leaky_relu", alpha=alpha, input_dim=1)])
    m = mlp()
    before = snapshot(m)
    with pytest.raises(ValueError, match="^" + re.escape(
            f"Sequential.add: {msg.replace('dense', 'dense_x')}") + "$"):
        m.add(Dense(2, "leaky_relu", alpha=alpha, name="dense_x"))
    assert_unchanged(m, before)
    assert len(m.layers) == 2
    m64 = nnfast.Sequential([Dense(1, "leaky_relu", alpha=alpha, input_dim=1)], dtype="float64")
    m64.set_weights([np.ones((1, 1)), np.zeros(1)])
    np.testing.assert_array_equal(m64.predict(np.array([[-2.0], [3.0]]), verbose=0),
                                  [[-2.0 * alpha], [3.0]])


@pytest.mark.parametrize("value", ["float64", np.float64, "float32", np.float16])
def test_dtype_is_read_only_as_in_keras_and_the_model_keeps_working(model, value):
    # Keras 3's Layer.dtype has no setter. nnfast's weights, optimizer state and plans are laid
    # out in the dtype, so a late assignment used to break predict with internal messages.
    before = snapshot(model)
    x = np.ones((2, 6), np.float32)
    want = model.predict(x)
    with pytest.raises(AttributeError, match=re.escape(
            f"Sequential.dtype is read-only (it is float32; assigned {value!r}): the dtype is "
            "fixed at construction")):
        model.dtype = value
    assert model.dtype == np.dtype(np.float32) and isinstance(model.dtype, np.dtype)
    assert_unchanged(model, before)
    np.testing.assert_array_equal(model.predict(x), want)
