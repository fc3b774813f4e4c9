"""The one-call training step with the image layers (issues 13 and 18): Conv2D, MaxPooling2D,
AveragePooling2D, GlobalAveragePooling2D, BatchNormalization and Reshape through the backend's
TrainStep (csrc/nn/step.c, _native/_step.pxi, backends/_ref_step.py), against the per-layer
path of nnfast/engine/training.py (engine.step.ENABLED = False). The MLP cases:
tests/test_train_step.py."""
from __future__ import annotations

import numpy as np
import pytest
from engine_probes import StepGrowth

import nnfast
from nnfast import backends, optimizers
from nnfast.engine import step as fast_step
from nnfast.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    MaxPooling2D,
    Reshape,
)


def _data(n=53, shape=(8, 8, 1), classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n,) + shape), rng.integers(0, classes, n)


def _model(build, dtype="float32", opt="adam"):
    model = nnfast.Sequential(build(), dtype=dtype, seed=3)
    model.compile(opt() if callable(opt) else opt, "sparse_categorical_crossentropy",
                  ["accuracy"])
    return model


def _fit_both(monkeypatch, build, dtype="float32", opt="adam", shape=(8, 8, 1), n=53,
              batch_size=16, shuffle=True, weights=False, epochs=2):
    """The same model fitted with the one-call step and with the per-layer path: [(model,
    history, one-call steps run)] for each. n=53, batch 16: a smaller last batch (5 rows)."""
    x, y = _data(n, shape)
    sw = np.random.default_rng(5).uniform(0, 2, n) if weights else None
    out, orig = [], fast_step.Step.run
    for enabled in (True, False):
        monkeypatch.setattr(fast_step, "ENABLED", enabled)
        calls = []

        def counted(self, *args, calls=calls):
            calls.append(1)
            return orig(self, *args)
        monkeypatch.setattr(fast_step.Step, "run", counted)
        model = _model(build, dtype, opt)
        hist = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=shuffle,
                         verbose=0, sample_weight=sw).history
        out.append((model, hist, len(calls)))
    return out


def _assert_same(fast, slow):
    (a, ha, calls), (b, hb, slow_calls) = fast, slow
    assert calls > 0 and slow_calls == 0
    assert np.array_equal(a._params, b._params)
    assert np.array_equal(a._state, b._state)        # BatchNormalization's moving statistics
    assert set(a.optimizer.state) == set(b.optimizer.state)
    for k in a.optimizer.state:
        assert np.array_equal(a.optimizer.state[k], b.optimizer.state[k]), k
    assert (a._step, a.optimizer.iterations) == (b._step, b.optimizer.iterations)
    assert ha == hb     # losses and metrics, bit for bit


def _lenet(act="relu", reg=None, shape=(8, 8, 1)):
    def build():
        return [Conv2D(4, 3, padding="same", activation=act, kernel_regularizer=reg,
                       input_shape=shape), MaxPooling2D(),
                Conv2D(6, 3, activation=act), MaxPooling2D(),
                Flatten(), Dense(10, "relu"), Dense(4, "softmax")]
    return build


OPTS = {"sgd_momentum": lambda: optimizers.SGD(0.05, momentum=0.9),
        "adam": lambda: optimizers.Adam(1e-2), "rmsprop": lambda: optimizers.RMSprop(1e-3),
        "adagrad": lambda: optimizers.Adagrad(0.05),
        "adamw_clipnorm": lambda: optimizers.AdamW(1e-2, clipnorm=0.5)}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt", list(OPTS))
def test_lenet_bit_identical(monkeypatch, opt, dtype):
    _assert_same(*_fit_both(monkeypatch, _lenet(), dtype, OPTS[opt]))


@pytest.mark.parametrize("shuffle", [True, False])
def test_sample_weights_and_batches_bit_identical(monkeypatch, shuffle):
    _assert_same(*_fit_both(monkeypatch, _lenet(), weights=True, shuffle=shuffle,
                            batch_size=7))


@pytest.mark.parametrize("kernel,strides,padding,dilation,channels", [
    (1, 1, "valid", 1, 1), (3, 1, "same", 1, 3), (3, 1, "valid", 1, 1), (5, 1, "same", 1, 3),
    (5, 1, "valid", 1, 1), (3, 2, "same", 1, 1), (3, 2, "valid", 1, 3), (2, 2, "valid", 1, 3),
    (3, 1, "same", 2, 1), (3, 1, "valid", 2, 3), ((3, 1), (2, 1), "same", 1, 3),
])
def test_conv_geometry_bit_identical(monkeypatch, kernel, strides, padding, dilation,
                                     channels):
    shape = (9, 10, channels)

    def build():
        return [Conv2D(5, kernel, strides=strides, padding=padding, dilation_rate=dilation,
                       activation="relu", input_shape=shape),
                Conv2D(3, kernel, strides=strides, padding="same", use_bias=False),
                Flatten(), Dense(4, "softmax")]
    _assert_same(*_fit_both(monkeypatch, build, shape=shape))


@pytest.mark.parametrize("act", ["identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh",
                                 "gelu", "gelu_tanh", "silu", "softplus", "softmax",
                                 "log_softmax"])
def test_every_conv_activation_bit_identical(monkeypatch, act):
    _assert_same(*_fit_both(monkeypatch, _lenet(act)))


@pytest.mark.parametrize("reg", ["l1", "l2", "l1_l2"])
def test_conv_kernel_regularizer_bit_identical(monkeypatch, reg):
    _assert_same(*_fit_both(monkeypatch, _lenet(reg=reg)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pooling_gap_dropout_activation_bit_identical(monkeypatch, dtype):
    def build():
        return [Conv2D(6, 3, padding="same", input_shape=(9, 9, 3)), Activation("elu"),
                AveragePooling2D(3, strides=2, padding="same"), Dropout(0.3),
                Conv2D(5, 2, activation="silu"), MaxPooling2D(2, strides=1, padding="same"),
                AveragePooling2D(), GlobalAveragePooling2D(), Dropout(0.2),
                Dense(4, "softmax")]
    _assert_same(*_fit_both(monkeypatch, build, dtype, shape=(9, 9, 3)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bn", [
    {}, {"momentum": 0.5, "epsilon": 1e-2}, {"center": False}, {"scale": False},
])
def test_batch_norm_and_its_moving_statistics_bit_identical(monkeypatch, bn, dtype):
    def build():
        return [Conv2D(4, 3, input_shape=(8, 8, 1)), BatchNormalization(**bn),
                Activation("relu"), MaxPooling2D(), Flatten(), Dense(12),
                BatchNormalization(**bn), Dense(4, "softmax")]
    fast, slow = _fit_both(monkeypatch, build, dtype, weights=True)
    _assert_same(fast, slow)
    assert not np.array_equal(fast[0]._state, _model(build, dtype)._state)   # they moved


def test_batch_norm_first_and_without_parameters_bit_identical(monkeypatch):
    def bn_first():     # the first trainable layer is a batch norm: it skips dx
        return [BatchNormalization(input_shape=(8, 8, 1)), Conv2D(3, 3), Flatten(),
                Dense(4, "softmax")]

    def bn_plain():     # no gamma, no beta: before the first trainable layer, forward only
        return [BatchNormalization(center=False, scale=False, input_shape=(8, 8, 1)),
                Conv2D(3, 3), BatchNormalization(center=False, scale=False), Flatten(),
                Dense(4, "softmax")]
    for build in (bn_first, bn_plain):
        _assert_same(*_fit_both(monkeypatch, build))


def test_reshape_bit_identical(monkeypatch):
    def build():        # dense features as an image, and an image regrouped
        return [Dense(48, "relu", input_shape=(6,)), Reshape((4, 4, 3)), Conv2D(4, 2),
                Reshape((-1, 4)), Flatten(), Dense(4, "softmax")]
    _assert_same(*_fit_both(monkeypatch, build, shape=(6,)))


# -------------------------------------------------------------- reference twin, threads
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compiled_step_matches_reference_twin(dtype):
    if not backends.compiled_available():
        pytest.skip("needs the compiled extension")
    x, y = _data(23, (7, 7, 3))

    def build():   # SGD: smooth in the weights, rounding differences stay rounding-sized
        return [Conv2D(5, 3, padding="same", activation="tanh", kernel_regularizer="l2",
                       input_shape=(7, 7, 3)), BatchNormalization(), MaxPooling2D(),
                Conv2D(4, 2, activation="gelu"), AveragePooling2D(1), Dropout(0.25),
                Flatten(), Dense(4, "softmax")]
    out = []
    for backend in ("c", "python"):
        with nnfast.use_backend(backend):
            model = _model(build, dtype, lambda: optimizers.SGD(0.05, momentum=0.9))
            hist = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
            assert model._workspaces._idle[0].train_step is not None
            out.append((model._params.copy(), model._state.copy(), hist.history["loss"]))
    tol = 1e-4 if dtype == "float32" else 1e-10
    for a, b in zip(out[0], out[1]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_reference_backend_fit_uses_the_twin_bit_identically(monkeypatch):
    def build():
        return [Conv2D(3, 3, padding="same", input_shape=(8, 8, 1), kernel_regularizer="l2"),
                BatchNormalization(), MaxPooling2D(), GlobalAveragePooling2D(),
                Dense(4, "softmax")]
    with nnfast.use_backend("python"):
        _assert_same(*_fit_both(monkeypatch, build, weights=True))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_call_step_is_the_same_on_one_and_two_threads(threads, dtype):
    x, y = _data(96, (16, 16, 3))
    out = []
    for n in (1, 2):
        threads(n)
        model = nnfast.Sequential([Conv2D(16, 3, padding="same", activation="relu",
                                          input_shape=(16, 16, 3)), BatchNormalization(),
                                   MaxPooling2D(), Conv2D(16, 3, activation="relu"),
                                   GlobalAveragePooling2D(), Dense(4, "softmax")],
                                  dtype=dtype, seed=0)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=48, verbose=0)
        out.append((model._params.copy(), model._state.copy()))
    assert np.array_equal(out[0][0], out[1][0]) and np.array_equal(out[0][1], out[1][1])


# ----------------------------------------------------------------------------- allocation
def test_one_call_step_allocates_nothing_after_the_first_batch():
    if not backends.compiled_available() or backends.get_backend() != "c":
        pytest.skip("needs the compiled backend (the reference allocates temporaries)")
    x, y = _data(32 * 12, (12, 12, 1))
    x = x.astype(np.float32)
    w = np.random.default_rng(1).uniform(size=len(x)).astype(np.float32)
    model = nnfast.Sequential([Conv2D(8, 3, padding="same", activation="relu",
                                      kernel_regularizer="l2", input_shape=(12, 12, 1)),
                               BatchNormalization(), MaxPooling2D(), Dropout(0.1),
                               Conv2D(8, 3), AveragePooling2D(), Flatten(),
                               Dense(10, "softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    probe = StepGrowth()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, sample_weight=w, callbacks=[probe])
    assert model._workspaces._idle[-1].train_step is not None
    # one batch's first-layer output alone is 32·12·12·8·4 B = 147 kB
    growth = probe.growth
    assert growth and max(growth) < 2048, growth


# ------------------------------------------------------------------------------ staleness
def _cnn():
    return _model(lambda: [Conv2D(3, 3, padding="same", input_shape=(8, 8, 1)),
                           BatchNormalization(), MaxPooling2D(), Flatten(),
                           Dense(4, "softmax")])


def test_fit_after_add_compile_set_weights_load_is_never_stale(monkeypatch, tmp_path):
    x, y = _data()

    def recompile(m):
        m.compile(optimizers.RMSprop(1e-2), "sparse_categorical_crossentropy", ["accuracy"])

    def new_weights(m):     # the moving statistics too (get_weights carries them)
        m.set_weights([w * 0.5 + 0.25 for w in m.get_weights()])

    def reload(m):
        path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.nnf"
        m.save(path)
        return nnfast.load_model(path)

    def add(m):
        m.add(Dense(4, "softmax"))

    for prepare in (recompile, new_weights, reload, add):
        out = []
        for enabled in (True, False):
            monkeypatch.setattr(fast_step, "ENABLED", enabled)
            model = _cnn()
            model.fit(x, y, epochs=1, batch_size=16, verbose=0)
            model = prepare(model) or model
            model.fit(x, y, epochs=2, batch_size=16, verbose=0)
            out.append(model)
        assert np.array_equal(out[0]._params, out[1]._params), prepare.__name__
        assert np.array_equal(out[0]._state, out[1]._state), prepare.__name__
        assert out[0].history.history == out[1].history.history


def test_a_callback_changing_batch_norm_or_conv_reaches_that_batch(monkeypatch):
    class Tune(nnfast.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            conv, bn = self.model.layers[:2]
            bn.momentum, bn.epsilon = (0.5, 0.1) if batch % 2 else (0.9, 1e-3)
            conv.activation = "tanh" if batch % 3 else "sigmoid"
    x, y = _data()
    out = []
    for enabled in (True, False):
        monkeypatch.setattr(fast_step, "ENABLED", enabled)
        model = _cnn()
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[Tune()])
        out.append(model)
    assert np.array_equal(out[0]._params, out[1]._params)
    assert np.array_equal(out[0]._state, out[1]._state)
    assert out[0].history.history == out[1].history.history


def test_image_models_take_the_one_call_step():
    assert fast_step.unsupported(_cnn()) is None
    model = _model(lambda: [Conv2D(2, 3, input_shape=(5, 5, 1)), Flatten(), Reshape((9, 2))])
    assert fast_step.unsupported(model) == "the output is not the rows of a layer"


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("backend", ["c", "python"])
def test_construction_names_the_layer_kinds_and_the_first_trainable(backend):
    if backend == "c" and not backends.compiled_available():
        pytest.skip("needs the compiled extension")
    model = _cnn()
    args = ({"kind": "mse"}, {"kind": "sgd"}, model._params, model._grads)
    with nnfast.use_backend(backend):
        make = backends.plan("make_train_step")
        with pytest.raises(ValueError, match=r"^TrainStep: layers\[0\]\['kind'\] must be one "
                           r"of dense, activation, dropout, flatten, conv2d, max_pool2d, "
                           r"avg_pool2d, global_avg_pool2d, batch_norm, reshape, got 'pool'$"):
            make([{"kind": "pool"}], *args, 0, 4, (8, 8, 1))
        with pytest.raises(ValueError, match=r"^TrainStep: layers\[0\] \(first\) must be the "
                                             r"first layer with parameters$"):
            make([{"kind": "reshape", "shape": (64,)}], *args, 0, 4, (8, 8, 1))


def test_construction_checks_image_geometry():
    if not backends.compiled_available():
        pytest.skip("needs the compiled extension")
    model = _cnn()
    args = ({"kind": "mse"}, {"kind": "sgd"}, model._params, model._grads)
    with nnfast.use_backend("c"):
        make = backends.plan("make_train_step")
        conv = model.layers[0]
        spec = {"kind": "conv2d", "W": conv.W, "dW": conv.dW, "b": conv.b, "db": conv.db}
        with pytest.raises(ValueError, match=r"^TrainStep: layers\[0\] needs images \(height, "
                                             r"width, channels\) per sample, got input shape "
                                             r"\(64,\)$"):
            make([spec], *args, 0, 4, (64,))
        with pytest.raises(ValueError, match=r"^TrainStep: layers\[0\]\['W'\] must be a "
                                             r"\(KH, KW, 2, F\) array$"):
            make([spec], *args, 0, 4, (8, 8, 2))
        with pytest.raises(ValueError, match=r"larger than the 2x2 input with padding "
                                             r"'valid'"):
            make([spec], *args, 0, 4, (2, 2, 1))
        with pytest.raises(ValueError, match=r"^TrainStep: layers\[0\]\['shape'\] \(5, 5\) "
                                             r"holds 25 values, its input 192$"):
            make([{"kind": "reshape", "shape": (5, 5)}], *args, 0, 4, (8, 8, 3))
