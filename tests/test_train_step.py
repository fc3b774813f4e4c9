"""The one-call training step (issue 13): nnfast/engine/step.py over the backend's TrainStep
(csrc/nn/step.c, _native/_step.pxi, backends/_ref_step.py) against the per-layer path of
nnfast/engine/training.py, which stays the reference it is tested against."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from engine_probes import StepGrowth

import nnfast
from nnfast import backends, optimizers, regularizers
from nnfast.engine import step as fast_step
from nnfast.layers import Activation, Dense, Dropout, Flatten
from nnfast.optimizers import schedules

os.environ.setdefault("KERAS_BACKEND", "torch")   # the installed oracle's backend


def _data(n=101, features=7, classes=3, seed=0, loss="sparse_categorical_crossentropy"):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features))
    if loss == "sparse_categorical_crossentropy":
        y = rng.integers(0, classes, n)
    elif loss == "categorical_crossentropy":
        y = np.eye(classes)[rng.integers(0, classes, n)]
    elif loss == "binary_crossentropy":
        y = (rng.uniform(size=(n, classes)) > 0.5).astype(np.float64)
    else:
        y = rng.normal(size=(n, classes))
    return x, y


def _model(layers, dtype="float32", opt="adam", loss="sparse_categorical_crossentropy",
           metrics=("accuracy",)):
    model = nnfast.Sequential(layers(), dtype=dtype, seed=3)
    model.compile(opt() if callable(opt) else opt, loss, list(metrics))
    return model


def _fit_both(monkeypatch, layers, opt="adam", loss="sparse_categorical_crossentropy",
              dtype="float32", fits=((16, True),), weights=None, class_weight=None, n=101,
              features=7, metrics=("accuracy",), x=None, classes=3):
    """Fit the same model with the one-call step and with the per-layer path; returns both
    models and their histories (and how many one-call steps ran)."""
    name = loss if isinstance(loss, str) else loss.name
    if x is None:
        x, y = _data(n, features, classes, loss=name)
    else:
        y = _data(len(x), classes=classes, loss=name)[1]
    sw = None if weights is None else np.random.default_rng(5).uniform(0, 2, len(x))
    results, orig = [], fast_step.Step.run
    for enabled in (True, False):
        monkeypatch.setattr(fast_step, "ENABLED", enabled)
        calls = []
        monkeypatch.setattr(fast_step.Step, "run", _counting(orig, calls))
        model = _model(layers, dtype, opt, loss, metrics)
        hist = [model.fit(x, y, epochs=2, batch_size=bs, shuffle=sh, verbose=0,
                          sample_weight=sw, class_weight=class_weight).history
                for bs, sh in fits]
        results.append((model, hist, len(calls)))
    return results


def _counting(run, calls):
    def counted(self, *args):
        calls.append(1)
        return run(self, *args)
    return counted


def _assert_same(fast, slow):
    (a, ha, calls), (b, hb, slow_calls) = fast, slow
    assert calls > 0 and slow_calls == 0
    assert np.array_equal(a._params, b._params)
    assert set(a.optimizer.state) == set(b.optimizer.state)
    for k in a.optimizer.state:
        assert np.array_equal(a.optimizer.state[k], b.optimizer.state[k]), k
    assert (a._step, a.optimizer.iterations) == (b._step, b.optimizer.iterations)
    assert ha == hb     # losses and metrics, bit for bit


def _mlp(act="relu", last="softmax", dropout=0.0, reg=None, out=3, features=7):
    def build():
        layers = [Dense(13, activation=act, input_dim=features, kernel_regularizer=reg)]
        if dropout:
            layers.append(Dropout(dropout))
        layers += [Dense(6, activation="tanh"), Dense(out, activation=last)]
        return layers
    return build


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", [
    lambda: optimizers.SGD(0.05), lambda: optimizers.SGD(0.05, momentum=0.9),
    lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda: optimizers.Adam(1e-2), lambda: optimizers.AdamW(1e-2),
    lambda: optimizers.Adam(1e-2, weight_decay=1e-3),
    lambda: optimizers.RMSprop(1e-2), lambda: optimizers.RMSprop(1e-2, momentum=0.5),
    lambda: optimizers.Adagrad(0.1), lambda: optimizers.Adam(1e-2, clipnorm=0.1),
    lambda: optimizers.SGD(schedules.ExponentialDecay(0.1, 3, 0.5)),
], ids=["sgd", "momentum", "nesterov_wd", "adam", "adamw", "adam_wd", "rmsprop",
        "rmsprop_momentum", "adagrad", "adam_clipnorm", "sgd_schedule"])
def test_every_optimizer_bit_identical(monkeypatch, opt, dtype):
    _assert_same(*_fit_both(monkeypatch, _mlp(), opt=opt, dtype=dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_shuffled_batches_of_few_rows_bit_identical(monkeypatch, dtype):
    """The step gathers a shuffled batch's rows itself: batches of 1 to 7 rows, and last
    batches of 1, 2 and 3 rows (101 = 20 * 5 + 1 = 25 * 4 + 1 ...), give the per-layer path's
    bits."""
    _assert_same(*_fit_both(monkeypatch, _mlp(), dtype=dtype,
                            fits=((1, True), (3, True), (4, True), (5, True), (7, True))))


@pytest.mark.parametrize("act", ["identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh",
                                 "gelu", "gelu_tanh", "silu", "softplus", "softmax",
                                 "log_softmax"])
def test_every_activation_bit_identical(monkeypatch, act):
    _assert_same(*_fit_both(monkeypatch, _mlp(act=act)))


@pytest.mark.parametrize("act", ["relu", "elu", "sigmoid", "softmax", "gelu"])
def test_activation_layers_bit_identical(monkeypatch, act):
    def build():
        return [Dense(9, input_dim=7), Activation(act), Dense(3), Activation("softmax")]
    _assert_same(*_fit_both(monkeypatch, build))


@pytest.mark.parametrize("loss, last", [
    ("sparse_categorical_crossentropy", "softmax"), ("categorical_crossentropy", "softmax"),
    ("categorical_crossentropy", "relu"),       # not a fused head: outputs taken as logits
    ("binary_crossentropy", "sigmoid"), ("mse", "identity"), ("huber", "tanh"),
    ("mse", "softmax"),                          # row-wise activation at the output, unfused
])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_loss_bit_identical(monkeypatch, loss, last, dtype):
    metrics = ("accuracy",) if "categorical" in loss else ("mae",)
    _assert_same(*_fit_both(monkeypatch, _mlp(last=last), loss=loss, dtype=dtype,
                            metrics=metrics))


def test_label_smoothing_and_huber_delta_bit_identical(monkeypatch):
    _assert_same(*_fit_both(monkeypatch, _mlp(),
                            loss=nnfast.losses.CategoricalCrossentropy(label_smoothing=0.1)))
    _assert_same(*_fit_both(monkeypatch, _mlp(last="identity"), loss=nnfast.losses.Huber(0.3),
                            metrics=()))


@pytest.mark.parametrize("reg", ["l1", "l2", "l1_l2", regularizers.L2(1e-4)])
def test_regularizers_bit_identical(monkeypatch, reg):
    _assert_same(*_fit_both(monkeypatch, _mlp(reg=reg)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_weights_and_batches_bit_identical(monkeypatch, dtype):
    # shuffled and not, sample weights, class weights, a last batch of 5 (101 = 6·16 + 5), then
    # a second fit with another batch size (the workspace is reused: capacity 16 >= 7)
    fits = ((16, True), (16, False), (7, True))
    _assert_same(*_fit_both(monkeypatch, _mlp(dropout=0.3), dtype=dtype, fits=fits,
                            weights=True))
    _assert_same(*_fit_both(monkeypatch, _mlp(dropout=0.3), dtype=dtype, fits=fits,
                            class_weight={0: 1.0, 1: 2.5, 2: 0.5}))


def test_larger_batch_size_and_flatten_bit_identical(monkeypatch):
    x = np.random.default_rng(1).normal(size=(50, 2, 3, 2))

    def build():
        return [Flatten(input_shape=(2, 3, 2)), Dropout(0.2), Dense(5, "relu"), Dense(3)]
    _assert_same(*_fit_both(monkeypatch, build, fits=((8, True), (32, True), (1, False)), x=x,
                            loss="mse", metrics=()))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_without_bias_and_fused_activation_head_bit_identical(monkeypatch, dtype):
    # (once a segfault: a bias-less Dense had no db for its column sums)
    x = np.random.default_rng(2).normal(size=(40, 2, 3))

    def build():
        return [Flatten(input_shape=(2, 3)),
                Dense(5, "leaky_relu", alpha=0.2, use_bias=False,
                      kernel_regularizer=regularizers.L1L2(1e-3, 1e-4)),
                Dropout(0.25), Dense(4, use_bias=False), Activation("softmax")]
    _assert_same(*_fit_both(monkeypatch, build, dtype=dtype, x=x,
                            loss=nnfast.losses.CategoricalCrossentropy(0.1), metrics=("acc",),
                            classes=4))


@pytest.mark.parametrize("n", [1, 2, 7, 13, 31])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_step_matches_reference_twin(monkeypatch, n, dtype):
    """Randomized shapes (rows 1 and primes, widths off the GEMM's block boundaries): the
    compiled step against the reference backend's, within rounding."""
    if not backends.compiled_available():
        pytest.skip("needs the compiled extension")
    rng = np.random.default_rng(n)
    k, h = int(rng.integers(1, 40)), int(rng.integers(1, 70))
    x = rng.normal(size=(n, k))
    y = rng.integers(0, 5, n)

    def build():
        # l2 and SGD: smooth in the weights, so rounding differences stay rounding-sized
        # (sign(W) of L1 and Adam's normalisation of near-zero gradients would amplify them)
        return [Dense(h, "gelu", input_dim=k, kernel_regularizer="l2"), Dropout(0.25),
                Dense(17, "elu"), Dense(5, "softmax")]
    params, weights = [], rng.uniform(0.5, 1.5, n) if n > 1 else None
    for backend in ("c", "python"):
        with nnfast.use_backend(backend):
            model = _model(build, dtype, lambda: optimizers.SGD(0.05, momentum=0.9))
            hist = model.fit(x, y, epochs=3, batch_size=max(1, n // 2), verbose=0,
                      sample_weight=weights)
            assert model._workspaces._idle[0].train_step is not None
            params.append((model._params.copy(), hist.history["loss"]))
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(params[0][0], params[1][0], rtol=tol, atol=tol)
    np.testing.assert_allclose(params[0][1], params[1][1], rtol=tol, atol=tol)


def test_reference_backend_fit_uses_the_twin_bit_identically(monkeypatch):
    with nnfast.use_backend("python"):
        _assert_same(*_fit_both(monkeypatch, _mlp(dropout=0.2, reg="l2"), weights=True))


# ------------------------------------------------------------------------------- staleness
def _current_step(model):
    ws = model._workspaces._idle[-1]
    return ws, getattr(ws, "train_step", None)


def test_step_is_rebuilt_after_compile_add_and_kept_otherwise(monkeypatch):
    x, y = _data()
    model = _model(_mlp())
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    ws, first = _current_step(model)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _current_step(model)[1] is first          # nothing changed: reused
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    second = _current_step(model)[1]
    assert second is not first and second.opt is model.optimizer
    model.set_weights(model.get_weights())         # copies into the same buffers: still valid
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _current_step(model)[1] is second


def _same_as_per_layer(monkeypatch, make, prepare):
    """prepare(model) then a fit, with the one-call step and without: identical results."""
    x, y = _data()
    out = []
    for enabled in (True, False):
        monkeypatch.setattr(fast_step, "ENABLED", enabled)
        model = make()
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        model = prepare(model) or model
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        out.append(model)
    assert np.array_equal(out[0]._params, out[1]._params)
    assert out[0].history.history == out[1].history.history
    return out[0]


def test_fit_after_compile_set_weights_load_is_never_stale(monkeypatch, tmp_path):
    make = lambda: _model(_mlp(dropout=0.1))   # noqa: E731

    def recompile(m):
        m.compile(optimizers.RMSprop(1e-2), "sparse_categorical_crossentropy", ["accuracy"])

    def new_weights(m):
        m.set_weights([w * 0.5 for w in m.get_weights()])

    def reload(m):
        path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.nnf"
        m.save(path)
        return nnfast.load_model(path)

    for prepare in (recompile, new_weights, reload):
        _same_as_per_layer(monkeypatch, make, prepare)


def test_step_follows_a_callback_that_recompiles_mid_epoch(monkeypatch):
    class Recompile(nnfast.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                self.model.compile(optimizers.SGD(0.1, momentum=0.5),
                                   "sparse_categorical_crossentropy")
    x, y = _data()
    out = []
    for enabled in (True, False):
        monkeypatch.setattr(fast_step, "ENABLED", enabled)
        model = _model(_mlp())
        model.build((7,))
        model.compile("adam", "sparse_categorical_crossentropy")
        # compile from a callback is refused while fitting, on both paths alike
        # (tests/test_train_step_changes.py checks the message and that nothing changed)
        with pytest.raises(RuntimeError) as err:
            model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[Recompile()])
        out.append((str(err.value), model._params.copy()))
    assert out[0][0] == out[1][0]
    assert out[0][0].startswith("compile: cannot recompile model 'sequential' while fit runs")
    assert np.array_equal(out[0][1], out[1][1])


def test_dtype_change_builds_a_step_of_the_new_dtype(monkeypatch):
    x, y = _data()
    for dtype in ("float32", "float64"):
        model = _model(_mlp(), dtype)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        assert _current_step(model)[1].params.dtype == np.dtype(dtype)


def test_unsupported_models_keep_the_per_layer_path():
    class MyDense(Dense):
        pass

    class MyLoss(nnfast.losses.MeanSquaredError):
        pass

    model = nnfast.Sequential([MyDense(3, input_dim=2)])
    model.compile("sgd", "mse")
    assert fast_step.unsupported(model) == "layer MyDense"
    model = nnfast.Sequential([Dense(3, input_dim=2)])
    model.compile("sgd", MyLoss())
    assert fast_step.unsupported(model) == "loss MyLoss"
    x = np.ones((5, 2))
    model.fit(x, np.ones((5, 3)), verbose=0)        # trains, on the per-layer path
    assert getattr(model._workspaces._idle[0], "train_step", None) is None


# ----------------------------------------------------------------------------- allocation
def test_one_call_step_allocates_nothing_after_the_first_batch():
    if not backends.compiled_available() or backends.get_backend() != "c":
        pytest.skip("needs the compiled backend (the reference allocates temporaries)")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64 * 12, 128)).astype(np.float32)
    y = rng.integers(0, 10, len(x))
    w = rng.uniform(size=len(x)).astype(np.float32)
    model = nnfast.Sequential([Dense(128, "relu", input_dim=128, kernel_regularizer="l2"),
                               Dropout(0.1), Dense(10, "softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    probe = StepGrowth()
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, sample_weight=w, callbacks=[probe])
    assert _current_step(model)[1] is not None
    growth = probe.growth
    assert growth and max(growth) < 2048, growth     # the batch's arrays alone are 5 kB+


# ------------------------------------------------------------------------------ bad input
def _built_step():
    model = _model(_mlp())
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    return model, _current_step(model)


def test_run_rejects_bad_batches_with_exact_messages():
    model, (ws, st) = _built_step()
    x, y = _data()
    x = x.astype(np.float32)
    run = st.ts.run
    with pytest.raises(ValueError, match=r"^TrainStep.run: rows 0:17 must be a non-empty range "
                                         r"of at most 16 rows inside \[0, 101\]$"):
        run(x, y, None, None, 0, 17)
    with pytest.raises(TypeError, match="^TrainStep.run: x must have dtype float32, got "
                                        "float64$"):
        run(x.astype(np.float64), y, None, None, 0, 4)
    bad = y.copy()
    bad[2] = 3
    with pytest.raises(ValueError, match=r"^TrainStep.run: labels must lie in \[0, 3\), got 3$"):
        run(x, bad, None, None, 0, 4)
    idx = np.arange(101, dtype=np.int64)
    idx[1] = 500
    xb = ws.rows("xb", 16, (7,))
    yb = ws.rows("yb", 16, (), np.int64)
    with pytest.raises(ValueError, match=r"^TrainStep.run: index\[1\] = 500 is outside "
                                         r"\[0, 101\)$"):
        run(x, y, None, idx, 0, 4, xb, yb)
    before = model._params.copy()
    assert np.array_equal(model._params, before)   # nothing ran


def test_construction_checks_the_structure():
    model, _ = _built_step()
    make = backends.plan("make_train_step")
    args = ({"kind": "mse"}, {"kind": "sgd"}, model._params, model._grads)
    with pytest.raises(ValueError, match=r"^TrainStep: layers\[0\]\['kind'\] must be one of dense, "
                       r"activation, dropout, flatten, conv2d, .*, reshape, got 'conv'$"):
        make([{"kind": "conv"}], *args, 0, 4, (7,))
    with pytest.raises(ValueError, match=r"^TrainStep: first must be a layer index in "
                                         r"\[0, 1\), got 1$"):
        make([{"kind": "flatten"}], *args, 1, 4, (7,))
    with pytest.raises(ValueError, match=r"^TrainStep: capacity must be an int >= 1, got 0$"):
        make([{"kind": "flatten"}], *args, 0, 0, (7,))


# ----------------------------------------------------------- train_on_batch / test_on_batch
def _tob_model(metrics=("accuracy",), opt=None, dtype="float32"):
    model = nnfast.Sequential([Dense(5, "relu", input_dim=4, kernel_regularizer="l2"),
                               Dense(3, "softmax")], seed=0, dtype=dtype)
    model.compile(opt or optimizers.SGD(0.1), "sparse_categorical_crossentropy", list(metrics))
    return model


def _tob_data(n=10):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n), rng.uniform(0.5, 2, n)


@pytest.mark.parametrize("one_call", [True, False])
def test_train_on_batch_is_one_fit_step_on_the_batch(monkeypatch, one_call):
    monkeypatch.setattr(fast_step, "ENABLED", one_call)
    x, y, w = _tob_data()
    a, b = _tob_model(), _tob_model()
    got = a.train_on_batch(x, y, sample_weight=w, return_dict=True)
    logs = b.fit(x, y, batch_size=len(x), shuffle=False, verbose=0, sample_weight=w).history
    assert got == {k: v[0] for k, v in logs.items()}
    assert np.array_equal(a._params, b._params)
    assert (a._step, a.optimizer.iterations, a._epoch) == (1, 1, 0)   # no epoch counted
    lst = a.train_on_batch(x, y)
    assert isinstance(lst, list) and len(lst) == 2 and all(type(v) is float for v in lst)


def test_on_batch_return_forms_follow_keras():
    x, y, _ = _tob_data()
    model = _tob_model(metrics=())
    loss = model.train_on_batch(x, y)
    assert type(loss) is float
    assert model.train_on_batch(x, y, return_dict=True).keys() == {"loss"}
    t = model.test_on_batch(x, y)
    assert type(t) is float and t == model.evaluate(x, y, batch_size=len(x))["loss"]
    model = _tob_model(metrics=("accuracy", "sparse_top_k_categorical_accuracy"))
    assert list(model.test_on_batch(x, y, return_dict=True)) == [
        "loss", "accuracy", "sparse_top_k_categorical_accuracy"]
    ev = model.evaluate(x, y, batch_size=len(x), sample_weight=_tob_data()[2])
    assert model.test_on_batch(x, y, sample_weight=_tob_data()[2]) == list(ev.values())


def test_train_on_batch_matches_keras():
    keras = pytest.importorskip("keras")
    if os.environ.get("KERAS_BACKEND", "torch") != "torch" or keras.backend.backend() != "torch":
        pytest.skip("the oracle runs with KERAS_BACKEND=torch")
    x, y, w = _tob_data(12)
    model = nnfast.Sequential([Dense(5, "tanh", input_dim=4), Dense(3, "softmax")], seed=0)
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy", ["accuracy"])
    k = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, "tanh"),
                          keras.layers.Dense(3, "softmax")])
    # nnfast weights its metrics with sample_weight as fit does: Keras' weighted_metrics
    k.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
              weighted_metrics=["accuracy"])
    k.set_weights(model.get_weights())
    for _ in range(3):
        ours = model.train_on_batch(x, y, sample_weight=w)
        theirs = k.train_on_batch(x, y, sample_weight=w)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        for p, q in zip(model.get_weights(), k.get_weights()):
            np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.test_on_batch(x, y), k.test_on_batch(x, y), rtol=1e-5)
    ours, theirs = (m.test_on_batch(x, y, return_dict=True) for m in (model, k))
    assert ours.keys() == theirs.keys()     # Keras' dict order differs; the list form agrees
    for key in ours:
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5)


@pytest.mark.parametrize("call, kwargs, exc, message", [
    ("train_on_batch", {"y": None}, ValueError,
     "train_on_batch: y is required (targets of the rows of x), got None"),
    ("test_on_batch", {"y": None}, ValueError,
     "test_on_batch: y is required (targets of the rows of x), got None"),
    ("train_on_batch", {"return_dict": 1}, TypeError,
     "train_on_batch: return_dict must be True or False, got 1"),
    ("train_on_batch", {"y": np.zeros(3, np.int64)}, ValueError,
     "train_on_batch: x and y have different lengths (10 and 3 samples)"),
    ("train_on_batch", {"y": np.full(10, 3)}, ValueError,
     "train_on_batch: y: labels must lie in [0, 3) for a model with 3 outputs, got values "
     "from 0 to 3"),
    ("train_on_batch", {"sample_weight": np.ones(4)}, ValueError, None),
    ("test_on_batch", {"x": np.zeros((0, 4)), "y": np.zeros(0, np.int64)}, ValueError,
     "test_on_batch: x is empty (0 samples); nothing to do"),
])
def test_on_batch_bad_input_raises_before_any_change(call, kwargs, exc, message):
    x, y, _ = _tob_data()
    if call == "train_on_batch" and "y" in kwargs and kwargs["y"] is not None \
            and len(kwargs["y"]) == 10:
        kwargs = {"y": np.r_[y[:9], 3]}
    model = _tob_model()
    before = model.get_weights()
    args = {"x": x, "y": y, **kwargs}
    with pytest.raises(exc) as info:
        getattr(model, call)(**args)
    if message is not None:
        assert str(info.value) == message
    else:
        assert str(info.value).startswith(f"{call}: sample_weight")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert (model._step, model.optimizer.iterations) == (0, 0)


@pytest.mark.parametrize("call", ["train_on_batch", "test_on_batch"])
def test_on_batch_return_dict_takes_numpy_bools(call):
    """np.True_ / np.False_ act as True / False (Keras takes them too); the result is the same
    as with Python's bools."""
    x, y, _ = _tob_data()
    got = [getattr(_tob_model(), call)(x, y, return_dict=flag)
           for flag in (np.True_, True, np.False_, False)]
    assert isinstance(got[0], dict) and got[0] == got[1]
    assert isinstance(got[2], list) and got[2] == got[3]
    assert list(got[0].values()) == got[2]


@pytest.mark.parametrize("call", ["train_on_batch", "test_on_batch"])
@pytest.mark.parametrize("flag", [1, 0, "yes", None, np.int64(1)])
def test_on_batch_return_dict_refuses_non_bools(call, flag):
    """Differs from Keras 3 on purpose (docs/model.md): Keras takes any truthy value, nnfast
    only bools, before any change."""
    x, y, _ = _tob_data()
    model = _tob_model()
    before = model.get_weights()
    with pytest.raises(TypeError) as info:
        getattr(model, call)(x, y, return_dict=flag)
    assert str(info.value) == f"{call}: return_dict must be True or False, got {flag!r}"
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert (model._step, model.optimizer.iterations) == (0, 0)


def test_on_batch_before_compile_raises():
    model = nnfast.Sequential([Dense(3, input_dim=4)])
    x, y, _ = _tob_data()
    for call in ("train_on_batch", "test_on_batch"):
        with pytest.raises(ValueError, match=f"^{call}: the model is not compiled; call "
                                             r"model.compile\(...\) first$"):
            getattr(model, call)(x, y)


def test_both_backends_export_the_step_builder_with_one_signature():
    import inspect

    from nnfast.backends import reference
    assert reference.PLANS == ("make_train_step",)
    assert "make_train_step" not in reference.__all__      # not an op: it returns an object
    if not backends.compiled_available():
        pytest.skip("needs the compiled extension")
    from nnfast.backends import compiled
    assert compiled.PLANS == reference.PLANS
    ref = inspect.signature(reference.make_train_step)
    got = inspect.signature(compiled.make_train_step)
    assert list(ref.parameters) == list(got.parameters)
    from nnfast.backends import _ref_step
    run_ref = inspect.signature(_ref_step.TrainStep.run)
    run_c = inspect.signature(compiled._kernels.TrainStep.run)
    assert list(run_ref.parameters) == list(run_c.parameters)
    assert [p.default for p in run_ref.parameters.values()] == \
        [p.default for p in run_c.parameters.values()]


def test_a_replaced_workspace_array_makes_the_step_stale():
    model, (ws, st) = _built_step()
    assert st.current(model)
    ws.rows("dout", 4, (5,))            # another tail: the "dout" array is reallocated
    assert not st.current(model)
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert _current_step(model)[1] is not st


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_call_step_is_the_same_on_one_and_two_threads(threads, dtype):
    x, y = _data(n=300, features=40)
    out = []
    for n in (1, 2):
        threads(n)
        model = nnfast.Sequential([Dense(97, "relu", input_dim=40), Dropout(0.2),
                                   Dense(3, "softmax")], dtype=dtype, seed=0)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=150, verbose=0)
        out.append(model._params.copy())
    assert np.array_equal(out[0], out[1])


# ------------------------------------------------------------------ scikit-learn drop-in
@pytest.mark.parametrize("kwargs", [
    {"solver": "adam"}, {"solver": "adam", "activation": "tanh", "alpha": 1e-2},
    {"solver": "sgd", "momentum": 0.9, "learning_rate": "invscaling"},
    {"solver": "sgd", "momentum": 0.0, "activation": "logistic", "shuffle": False},
    {"solver": "sgd", "nesterovs_momentum": False, "learning_rate": "adaptive",
     "activation": "identity"},
    {"solver": "adam", "early_stopping": True, "batch_size": 37},
    {"solver": "adam", "dtype": "float64"},
])
def test_sklearn_classifier_trains_through_the_step_bit_identically(monkeypatch, kwargs):
    pytest.importorskip("sklearn")
    from nnfast.sklearn import MLPClassifier
    from nnfast.sklearn import _step as sk_step
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", "float32")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 9)).astype(dtype)
    y = rng.integers(0, 4, 300)
    fits, calls, orig = [], [], sk_step.Step.run
    monkeypatch.setattr(sk_step.Step, "run", _counting(orig, calls))
    for enabled in (True, False):
        if not enabled:
            monkeypatch.setattr(sk_step, "for_fit", lambda *a: None)
        clf = MLPClassifier(hidden_layer_sizes=(13, 7), max_iter=4, random_state=0, **kwargs)
        with warnings.catch_warnings():    # ConvergenceWarning after 4 epochs
            warnings.simplefilter("ignore")
            clf.fit(x, y)
        fits.append(clf)
    assert calls
    a, b = fits
    assert a.loss_curve_ == b.loss_curve_
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.array_equal(p, q)
