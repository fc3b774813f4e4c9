"""The image layers (issue 18): Keras 3 names, defaults and shapes; build-time errors naming the
layer and the shapes; BatchNormalization's moving statistics (Keras' update rule, out of the
optimizer's reach, saved and restored); summary; a small CNN on the embedded digits."""
import io
import re
import time

import numpy as np
import pytest

import nnfast
from nnfast import layers


def test_output_shapes_and_keras_names():
    m = nnfast.Sequential([
        layers.Reshape((8, 8, 1), input_shape=(64,)),
        layers.Conv2D(6, 3, padding="same", activation="relu"),
        layers.BatchNormalization(),
        layers.MaxPooling2D(),
        layers.Conv2D(16, (3, 2), strides=(1, 2)),
        layers.AveragePooling2D(pool_size=2, strides=1, padding="same"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(10, activation="softmax"),
    ])
    assert [lay.name for lay in m.layers] == [
        "reshape", "conv2d", "batch_normalization", "max_pooling2d", "conv2d_1",
        "average_pooling2d", "global_average_pooling2d", "dense"]
    assert [lay.output_shape for lay in m.layers] == [
        (8, 8, 1), (8, 8, 6), (8, 8, 6), (4, 4, 6), (2, 2, 16), (2, 2, 16), (16,), (10,)]
    # Keras: conv 3*3*1*6 + 6, BN 4*6 (2*6 of them non-trainable), conv 3*2*6*16 + 16, dense
    assert m.count_params() == 60 + 24 + 592 + 170
    out = io.StringIO()
    m.summary(print_fn=lambda s: out.write(s + "\n"))
    text = out.getvalue()
    rows = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]
    assert ["batch_normalization (BatchNormalization)", "(None, 8, 8, 6)", "24"] in rows
    assert ["conv2d_1 (Conv2D)", "(None, 2, 2, 16)", "592"] in rows
    assert "Total params: 846" in text and "Non-trainable params: 12" in text
    assert "Trainable params: 834" in text


def test_keras_defaults():
    c = layers.Conv2D(4, 3)
    assert (c.strides, c.padding, c.dilation_rate, c.activation, c.use_bias) == \
        ((1, 1), "valid", (1, 1), "identity", True)
    assert (c.kernel_initializer, c.bias_initializer) == ("glorot_uniform", "zeros")
    p = layers.MaxPooling2D()
    assert (p.pool_size, p.strides, p.padding) == ((2, 2), (2, 2), "valid")
    assert layers.AveragePooling2D(3).strides == (3, 3)
    bn = layers.BatchNormalization()
    assert (bn.momentum, bn.epsilon, bn.center, bn.scale) == (0.99, 0.001, True, True)


@pytest.mark.parametrize("model_layers,shape,msg", [
    ([layers.Conv2D(4, 3)], (8, 8),
     "Conv2D 'conv2d': expects images of shape (height, width, channels) per sample, got "
     "input shape (8, 8)"),
    ([layers.Conv2D(4, 5)], (3, 3, 1),
     "Conv2D 'conv2d': the 5x5 window is larger than the 3x3 input with "
     "padding 'valid'; the output would have no pixels"),
    ([layers.Conv2D(4, 3, padding="same"), layers.MaxPooling2D(4), layers.MaxPooling2D()],
     (6, 6, 1),
     "MaxPooling2D 'max_pooling2d_1': the 2x2 window is larger than the "
     "1x1 input with padding 'valid'; the output would have no pixels"),
    ([layers.GlobalAveragePooling2D()], (64,),
     "GlobalAveragePooling2D 'global_average_pooling2d': expects images of shape (height, "
     "width, channels) per sample, got input shape (64,)"),
    ([layers.Reshape((7, 7, 1))], (64,),
     "Reshape 'reshape': cannot reshape input shape (64,) (64 values) to (7, 7, 1) (49 values)"),
    ([layers.Reshape((-1, 7))], (64,),
     "Reshape 'reshape': cannot reshape input shape (64,) (64 values) to (-1, 7)"),
])
def test_bad_shapes_fail_at_build_naming_layer_and_shapes(model_layers, shape, msg):
    m = nnfast.Sequential(model_layers)
    with pytest.raises(ValueError) as e:
        m.build(shape)
    assert str(e.value) == msg
    assert not m.built


@pytest.mark.parametrize("make,exc,msg", [
    (lambda: layers.Conv2D(4, 3, strides=0), ValueError, "Conv2D: strides must be positive, got 0"),
    (lambda: layers.Conv2D(0, 3), ValueError, "Conv2D: filters must be an int >= 1, got 0"),
    (lambda: layers.Conv2D(4, 3, padding="causal"), ValueError,
     "Conv2D: padding must be 'valid' or 'same', got 'causal'"),
    (lambda: layers.Conv2D(4, 3, strides=2, dilation_rate=2), ValueError,
     "Conv2D: strides > 1 cannot be combined with dilation_rate > 1 (as in Keras), got "
     "strides=(2, 2) and dilation_rate=(2, 2)"),
    (lambda: layers.MaxPooling2D(pool_size=2.5), TypeError,
     "MaxPooling2D: pool_size must be an int or a pair of ints, got 2.5"),
    # absurd sizes: refused at construction (before: a raw OverflowError from predict)
    (lambda: layers.Conv2D(4, 3, padding="same", dilation_rate=2**62), ValueError,
     "Conv2D: dilation_rate must be at most 2147483647 (2**31 - 1), got 4611686018427387904"),
    (lambda: layers.Conv2D(4, (3, 2**31)), ValueError,
     "Conv2D: kernel_size must be at most 2147483647 (2**31 - 1), got (3, 2147483648)"),
    (lambda: layers.Conv2D(4, 3, strides=(2**40, 1)), ValueError,
     "Conv2D: strides must be at most 2147483647 (2**31 - 1), got (1099511627776, 1)"),
    (lambda: layers.AveragePooling2D(2**31), ValueError,
     "AveragePooling2D: pool_size must be at most 2147483647 (2**31 - 1), got 2147483648"),
    (lambda: layers.MaxPooling2D(2, strides=2**63), ValueError,
     "MaxPooling2D: strides must be at most 2147483647 (2**31 - 1), got 9223372036854775808"),
    (lambda: layers.BatchNormalization(axis=1), ValueError,
     "BatchNormalization: only axis=-1 (channels last) is supported, got axis=1"),
    (lambda: layers.BatchNormalization(momentum=1.5), ValueError,
     "BatchNormalization: momentum must be a number in [0, 1], got 1.5"),
    (lambda: layers.Reshape((3, 0)), ValueError,
     "Reshape: target_shape must be a tuple of positive ints (one may be -1), got (3, 0)"),
])
def test_bad_arguments_fail_at_construction(make, exc, msg):
    with pytest.raises(exc) as e:
        make()
    assert str(e.value) == msg


def _bn_model(optimizer):
    m = nnfast.Sequential([layers.BatchNormalization(momentum=0.9, input_shape=(3,)),
                           layers.Dense(2, activation="softmax")], dtype="float64", seed=1)
    m.compile(optimizer, "sparse_categorical_crossentropy")
    return m


@pytest.mark.parametrize("optimizer", [
    nnfast.optimizers.AdamW(learning_rate=0.5, weight_decay=0.9),
    nnfast.optimizers.SGD(learning_rate=0.5, momentum=0.9),
])
def test_moving_statistics_follow_keras_and_never_see_the_optimizer(optimizer):
    rng = np.random.default_rng(0)
    x, y = rng.normal(2.0, 3.0, (16, 3)), rng.integers(0, 2, 16)
    m = _bn_model(optimizer)
    bn = m.layers[0]
    gamma0 = bn.gamma.copy()
    m.fit(x, y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    mean, var = x.mean(axis=0), x.var(axis=0)   # biased, as Keras 3
    mm, mv = np.zeros(3), np.ones(3)
    for _ in range(3):  # one step per epoch: moving = moving*0.9 + batch*0.1
        mm, mv = mm * 0.9 + mean * 0.1, mv * 0.9 + var * 0.1
    np.testing.assert_allclose(bn.moving_mean, mm, rtol=1e-12)
    np.testing.assert_allclose(bn.moving_variance, mv, rtol=1e-12)
    assert not np.array_equal(bn.gamma, gamma0)     # gamma is trained
    assert m._params.size == 3 + 3 + 3 * 2 + 2      # the moving statistics are not in it
    assert all(s.size == m._params.size for s in m.optimizer.state.values())
    # inference uses the moving statistics
    z = (x - mm) / np.sqrt(mv + 1e-3) * bn.gamma + bn.beta
    logits = z @ m.layers[1].W + m.layers[1].b
    want = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(m.predict(x, verbose=0), want / want.sum(1, keepdims=True),
                               rtol=1e-10)


def test_weights_and_model_file_carry_the_moving_statistics(tmp_path):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 6, 6, 2)), rng.integers(0, 3, 20)
    m = nnfast.Sequential([layers.Conv2D(4, 3, input_shape=(6, 6, 2)),
                           layers.BatchNormalization(), layers.Activation("relu"),
                           layers.MaxPooling2D(), layers.Flatten(),
                           layers.Dense(3, activation="softmax")], seed=0)
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(x, y, epochs=2, batch_size=5, verbose=0)
    w = m.get_weights()
    assert [a.shape for a in w] == [(3, 3, 2, 4), (4,), (4,), (4,), (4,), (4,), (16, 3), (3,)]
    np.testing.assert_array_equal(w[4], m.layers[1].moving_mean)   # Keras' order
    assert not np.array_equal(w[4], 0) and not np.array_equal(w[5], 1)
    path = tmp_path / "cnn.nnf"
    m.save(path)
    back = nnfast.load_model(path)
    for a, b in zip(back.get_weights(), w):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    assert [type(lay).__name__ for lay in back.layers] == [type(lay).__name__ for lay in m.layers]


def test_layer_configs_round_trip():
    for lay in (layers.Conv2D(3, (3, 5), strides=2, padding="same", activation="elu",
                              use_bias=False, kernel_regularizer="l2"),
                layers.MaxPooling2D(3, 1, "same"), layers.AveragePooling2D((2, 3)),
                layers.GlobalAveragePooling2D(), layers.Reshape((4, -1)),
                layers.BatchNormalization(momentum=0.5, epsilon=0.1, center=False)):
        entry = {"class": type(lay).__name__, "config": lay.get_config()}
        again = layers.from_config(entry)
        assert again.get_config() == lay.get_config()


def test_small_cnn_on_the_embedded_digits_reaches_98_percent(threads):
    # the dense default reaches about 97%; this net 98.3-98.6% over seeds 0-2, in 6-7 s of fit
    # on the shared 2-core machine (load average 2.7) this was written on.
    # The time bound is on this thread's CPU seconds with nnfast on one thread (the result does
    # not depend on the thread count): wall time, and CPU time with threads that spin-wait
    # (OpenMP's barriers), grow with other processes' load; one thread's own work does not.
    # Measured: 4.5-4.8 s compiled (pool and OpenMP alike), 16 s on the reference backend; the
    # same fit took 134 s of wall time on 2 OpenMP threads at load average 4.5.
    threads(1)
    (xt, yt), (xv, yv) = nnfast.datasets.load_digits()
    xt, xv = xt.reshape(-1, 8, 8, 1), xv.reshape(-1, 8, 8, 1)
    m = nnfast.Sequential([
        layers.Conv2D(16, 3, padding="same", input_shape=(8, 8, 1)),
        layers.BatchNormalization(), layers.Activation("relu"),
        layers.Conv2D(32, 3, padding="same"), layers.BatchNormalization(),
        layers.Activation("relu"), layers.MaxPooling2D(), layers.Dropout(0.25),
        layers.Flatten(), layers.Dense(128, activation="relu"), layers.Dropout(0.5),
        layers.Dense(10, activation="softmax")], seed=0)
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    t = time.thread_time()
    m.fit(xt, yt, epochs=20, batch_size=32, verbose=0)
    took = time.thread_time() - t
    acc = m.evaluate(xv, yv, verbose=0)["accuracy"]
    assert acc >= 0.98, acc
    assert took < 60, took   # CPU seconds of the one thread that ran the fit
