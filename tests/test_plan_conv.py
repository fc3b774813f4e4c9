"""The inference plan of networks with image layers (NetPlan: nnfast/engine/plan.py,
nnfast/_native/_netplan.pxi, csrc/nn/netplan.c, nnfast/backends/_ref_netplan.py).

predict, model(x) and predict_on_batch give the bits of the layer-by-layer forward for any
batch_size, thread count and number of images per C call; the compiled plan agrees with the
reference within tolerance; a plan is never stale (batch-norm statistics after training,
set_weights, add, load); nothing is allocated per call. Bad input: test_plan_conv_errors.py."""
import tracemalloc

import numpy as np
import pytest
from engine_probes import errors_of_threads_calling, forward_in_fresh_thread_without_memory

import nnfast
from nnfast import backends, ops
from nnfast import layers as L
from nnfast.backends import reference
from nnfast.backends._ref_activations import ACTIVATIONS
from nnfast.engine import training

compiled_only = pytest.mark.skipif(not backends.compiled_available(),
                                   reason="compiled extension not built")


def _layer_by_layer(model, x):
    ws = model.workspace(len(x))
    return np.array(training.forward(model, ws, x, len(x), "predict"))


def _exact() -> bool:
    return backends.get_backend() == "c"


def _tol(dtype):
    return (dict(rtol=2e-4, atol=2e-5) if np.dtype(dtype) == np.float32
            else dict(rtol=1e-10, atol=1e-11))


# ---- models: every layer kind and the combinations the brief lists ---------------------------
def _lenet(dtype):
    m = nnfast.Sequential([L.Conv2D(6, 5, padding="same", activation="relu",
                                    input_shape=(16, 16, 1)),
                           L.MaxPooling2D(), L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(),
                           L.Flatten(), L.Dense(32, "relu"), L.Dropout(0.4), L.Dense(16, "relu"),
                           L.Dense(10, "softmax")], dtype=dtype, seed=1)
    m.compile("adam", "sparse_categorical_crossentropy")    # a fused head: predict keeps softmax
    return m


def _conv(filters, kernel, channels, **kw):
    def make(dtype):
        return nnfast.Sequential([L.Conv2D(filters, kernel, input_shape=(9, 11, channels), **kw),
                                  L.GlobalAveragePooling2D()], dtype=dtype, seed=2)
    return make


def _conv_act(act):
    def make(dtype):     # the conv's output is the model's: (H, W, F), softmax over F
        alpha = {"leaky_relu": 0.2, "elu": 0.7}.get(act)
        return nnfast.Sequential([L.Conv2D(5, 3, padding="same", activation=act, alpha=alpha,
                                           input_shape=(6, 7, 2))], dtype=dtype, seed=3)
    return make


def _pools(dtype):
    return nnfast.Sequential([L.Conv2D(4, 3, activation="tanh", input_shape=(13, 11, 3)),
                              L.MaxPooling2D(3, strides=2, padding="same"),
                              L.AveragePooling2D(3, strides=2, padding="same"),
                              L.AveragePooling2D(2), L.Flatten(), L.Dense(3)],
                             dtype=dtype, seed=4)


def _bn(dtype, **kw):
    m = nnfast.Sequential([L.Conv2D(8, 3, padding="same", input_shape=(8, 8, 1)),
                           L.BatchNormalization(**kw), L.Activation("relu"),
                           L.Dropout(0.2), L.MaxPooling2D(), L.Conv2D(4, 3, activation="elu"),
                           L.GlobalAveragePooling2D(), L.BatchNormalization(momentum=0.5),
                           L.Dense(3, "softmax")], dtype=dtype, seed=5)
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


def _bn_fitted(dtype, **kw):
    m = _bn(dtype, **kw)
    rng = np.random.default_rng(9)
    x = rng.normal(2.0, 3.0, size=(40, 8, 8, 1)).astype(dtype)
    m.fit(x, rng.integers(0, 3, 40), epochs=2, batch_size=8, verbose=0)
    assert not np.allclose(m.layers[1].moving_mean, 0)     # the moving statistics were trained
    return m


def _reshape(dtype):
    return nnfast.Sequential([L.Dense(64, "relu", input_dim=20), L.Reshape((8, 8, 1)),
                              L.Conv2D(3, 3, strides=2, padding="same", activation="gelu"),
                              L.Reshape((-1,)), L.Dense(4, "log_softmax")], dtype=dtype, seed=6)


def _dense_bn(dtype):   # batch norm on features: a NetPlan without an image op
    return nnfast.Sequential([L.Dense(6, input_dim=5), L.BatchNormalization(epsilon=0.5),
                              L.Activation("sigmoid"), L.Dense(2)], dtype=dtype, seed=7)


CONVS = [("same-k1-c1", _conv(3, 1, 1, padding="same")),
         ("valid-k3-c3", _conv(4, 3, 3)),
         ("same-k5-c3-stride2", _conv(5, 5, 3, strides=2, padding="same")),
         ("valid-k3-c1-stride2", _conv(2, 3, 1, strides=(2, 1))),
         ("same-k3-c3-dilation2", _conv(4, 3, 3, dilation_rate=2, padding="same")),
         ("valid-k3-c1-dilation2", _conv(3, (3, 2), 1, dilation_rate=(2, 1))),
         ("valid-k5-c1-nobias", _conv(2, 5, 1, use_bias=False))]
ACTS = list(ACTIVATIONS)     # every one, softmax and log_softmax over a conv's filters included
MODELS = ([("lenet", _lenet), ("pools", _pools), ("bn", _bn), ("bn-fitted", _bn_fitted),
           ("bn-no-affine", lambda dt: _bn_fitted(dt, center=False, scale=False)),
           ("reshape", _reshape), ("dense-bn", _dense_bn)] + CONVS
          + [(f"conv-{a}", _conv_act(a)) for a in ACTS])


def _x(model, n, seed=0):
    return np.random.default_rng(seed).normal(size=(n,) + model.input_shape).astype(model.dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,make", MODELS, ids=[m[0] for m in MODELS])
def test_predict_is_the_layer_by_layer_forward(name, make, dtype, backend):
    model = make(dtype)
    assert type(model._plan()).__name__ == "NetPlan"
    x = _x(model, 23)
    want = _layer_by_layer(model, x)
    for batch_size in (1, 7, len(x)):
        np.testing.assert_array_equal(model.predict(x, batch_size=batch_size), want)
    np.testing.assert_array_equal(model(x), want)
    np.testing.assert_array_equal(model.predict_on_batch(x), want)
    one = model(x[1:2])
    assert one.shape == (1,) + model.output_shape and one.dtype == model.dtype
    if _exact():    # an image's bits do not depend on the images beside it
        np.testing.assert_array_equal(one, want[1:2])
    else:           # NumPy's matmul may sum another way for another row count
        np.testing.assert_allclose(one, want[1:2], **_tol(dtype))


@compiled_only
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name,make", MODELS, ids=[m[0] for m in MODELS])
def test_compiled_plan_matches_the_reference(name, make, dtype):
    model = make(dtype)
    x = _x(model, 9, seed=1)
    with nnfast.use_backend("c"):
        got = model(x)
    with nnfast.use_backend("python"):
        want = model(x)
    np.testing.assert_allclose(got, want, **_tol(dtype))


@compiled_only
@pytest.mark.parametrize("name,make", [("lenet", _lenet), ("bn-fitted", _bn_fitted),
                                       ("pools", _pools)])
def test_one_and_two_threads_give_the_same_bits(name, make, threads):
    with nnfast.use_backend("c"):
        model = make("float32")
        x = _x(model, 300, seed=2)       # large enough that the kernels split their work
        threads(1)
        one = model(x)
        threads(2)
        np.testing.assert_array_equal(model(x), one)
        np.testing.assert_array_equal(model.predict(x, batch_size=7), one)


# ---- an image's bits do not depend on the images sharing a kernel call ---------------------
@compiled_only
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_kernel_gives_an_image_the_same_bits_in_any_batch(dtype, threads):
    """The premise of the plan's blocks, checked per kernel on the compiled backend: 1 image
    against 61 (the conv's GEMM then runs m = 61 * P rows, another nest than for one image)."""
    threads(2)
    rng = np.random.default_rng(4)

    def a(*shape):
        return rng.normal(size=shape).astype(dtype)
    x = a(61, 28, 28, 3)
    Ws = {k: a(k, k, 3, 7) for k in (1, 3, 5)}
    b, Wd = a(7), a(28 * 28 * 3, 9)
    stats = [rng.uniform(0.5, 1.5, 3).astype(dtype) for _ in range(4)]
    with nnfast.use_backend("c"):
        calls = {f"conv k{k} s{s} d{d} {p}": (lambda v, k=k, s=s, d=d, p=p: ops.conv2d_forward(
                     v, Ws[k], b, s, p, d, "relu"))
                 for k, s, d, p in ((1, 1, 1, "valid"), (3, 1, 1, "same"), (5, 2, 1, "same"),
                                    (3, 1, 2, "valid"))}
        calls.update({
            "conv softmax": lambda v: ops.conv2d_forward(v, Ws[3], b, 1, "same", 1, "softmax"),
            "max pool": lambda v: ops.max_pool2d_forward(v, 3, 2, "same")[0],
            "avg pool": lambda v: ops.avg_pool2d_forward(v, 2, None, "same"),
            "global avg pool": lambda v: ops.global_avg_pool2d_forward(v),
            "batch norm": lambda v: ops.batch_norm_forward(v, *stats, False)[0],
            "dense": lambda v: ops.dense_forward(v.reshape(len(v), -1), Wd, None, "tanh")})
        for name, call in calls.items():
            whole = call(x)
            for j in (0, 30, 60):
                np.testing.assert_array_equal(call(x[j:j + 1])[0], whole[j], err_msg=name)


@compiled_only
def test_images_beyond_one_block_are_the_whole_batch_bits(threads):
    """A float64 28x28x32 activation is 200 kB: the 2 MiB rule gives 10 images per block, so
    23 images run in three blocks of the plan's one call."""
    threads(2)
    with nnfast.use_backend("c"):
        m = nnfast.Sequential([L.Conv2D(32, 3, padding="same", activation="relu",
                                        input_shape=(28, 28, 1)), L.MaxPooling2D(),
                               L.GlobalAveragePooling2D()], dtype="float64", seed=8)
        plan = m._plan()
        assert plan.block_images == (2 << 20) // (28 * 28 * 32 * 8) == 10
        x = _x(m, 23)
        want = _layer_by_layer(m, x)
        np.testing.assert_array_equal(plan.forward(x), want)
        np.testing.assert_array_equal(plan.forward(x.reshape(23, -1)), want)  # rows flattened
        for start, stop in ((0, 1), (9, 11), (19, 23)):
            np.testing.assert_array_equal(plan.forward(x[start:stop]), want[start:stop])


def test_the_engine_picks_the_mlp_plan_for_rows_of_features(backend):
    flat = nnfast.Sequential([L.Flatten(input_shape=(4, 5)), L.Dense(3), L.Reshape((3, 1)),
                              L.Flatten(), L.Dense(2)], seed=0)
    mod = reference if backend == "python" else __import__("nnfast.backends.compiled",
                                                         fromlist=["x"])
    assert type(flat._plan()) is mod.MLPPlan
    x = _x(flat, 5)
    np.testing.assert_array_equal(flat(x), _layer_by_layer(flat, x))
    cnn = nnfast.Sequential([L.Conv2D(2, 3, input_shape=(5, 5, 1))], seed=0)
    assert type(cnn._plan()) is mod.NetPlan
    assert type(_dense_bn("float32")._plan()) is mod.NetPlan


def test_zero_and_one_image(backend):
    m = _lenet("float32")
    x = _x(m, 1)
    for got in (m(x), m.predict(x), m.predict_on_batch(x), m._plan().forward(x)):
        assert got.shape == (1, 10) and got.dtype == np.float32
        np.testing.assert_array_equal(got, _layer_by_layer(m, x))
    # no images: the plan returns an empty result; the model refuses them before the plan,
    # as for every model (engine/checks.py)
    empty = m._plan().forward(_x(m, 0))
    assert empty.shape == (0, 10) and empty.dtype == np.float32
    out = np.empty((0, 10), np.float32)
    assert m._plan().forward(_x(m, 0).reshape(0, 256), out) is out
    with pytest.raises(ValueError, match=r"^Sequential.__call__: x is empty \(0 samples\); "
                                         r"nothing to do$"):
        m(_x(m, 0))


# ---- staleness ---------------------------------------------------------------------------
def test_batch_norm_statistics_after_more_training_are_seen(backend):
    m = _bn_fitted("float32")
    x = _x(m, 6)
    y = np.array([0, 1, 2, 0, 1, 2])
    plan = m._plan()
    before = m(x)
    mean = m.layers[1].moving_mean.copy()
    m.fit(x, y, epochs=3, batch_size=3, verbose=0)
    assert not np.array_equal(m.layers[1].moving_mean, mean)
    # fit drops the cached plan (it honours layer attributes a callback changes), but the
    # plan built before reads the new statistics in place all the same
    assert m._plan() is not plan
    after = m(x)
    assert not np.array_equal(after, before)
    np.testing.assert_array_equal(after, _layer_by_layer(m, x))
    old = np.empty_like(after)
    plan.forward(x.reshape(len(x), plan.n_features), old.reshape(len(old), plan.n_outputs))
    np.testing.assert_array_equal(old, after)


def test_set_weights_add_and_load_are_seen(backend, tmp_path):
    m = _bn("float64")
    x = _x(m, 4)
    plan = m._plan()
    weights = m.get_weights()     # BN: gamma, beta, moving_mean, moving_variance
    moved = [w + 0.25 for w in weights]
    m.set_weights(moved)
    assert m._plan() is plan
    np.testing.assert_array_equal(m(x), _layer_by_layer(m, x))
    np.testing.assert_array_equal(m.layers[1].moving_variance, moved[5])
    path = tmp_path / "bn.nnf"
    m.save(path)
    loaded = nnfast.load_model(path)
    np.testing.assert_array_equal(loaded(x), m(x))
    assert loaded._plan() is not plan
    m.set_weights(weights)
    assert not np.array_equal(loaded(x), m(x))          # its own buffers, its own plan
    np.testing.assert_array_equal(m(x), _layer_by_layer(m, x))
    m.add(L.Dense(2, "sigmoid"))
    added = m._plan()
    assert added is not plan and added.output_shape == (2,)
    np.testing.assert_array_equal(m(x), _layer_by_layer(m, x))


# ---- threads and allocation ----------------------------------------------------------------
def test_threads_calling_one_cnn_get_their_own_results(threads):
    threads(2)
    m = _lenet("float32")
    xs = [_x(m, n, seed=n) for n in (1, 7, 40)]
    assert errors_of_threads_calling(m, xs, repeats=10) == []


@compiled_only
def test_predict_allocates_nothing_per_call_after_the_first():
    with nnfast.use_backend("c"):
        m = _bn_fitted("float32")         # conv, batch norm, max pooling (argmax workspace), ...
        x = _x(m, 64)
        m.predict(x)
        m(x)
        plan = m._plan()
        out = np.empty((64, 3), np.float32)
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for _ in range(3):
                m.predict(x)
                m(x)
                for n in (64, 1, 63):            # smaller calls reuse the same workspace
                    plan.forward(x[:n], out[:n])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    # the results (768 B each) and small Python objects; one workspace of the first conv
    # would be 64 * 8 * 8 * 8 * 4 = 128 kB, the max pool's argmax 64 kB
    assert peak - base < 16 * 1024, peak - base


@compiled_only
def test_out_of_memory_is_a_memory_error_and_the_plan_stays_usable():
    from nnfast._native import _kernels as K
    from nnfast.backends import compiled
    rng = np.random.default_rng(8)
    W = rng.normal(size=(3, 3, 2, 16)).astype(np.float32)
    plan = compiled.NetPlan([("conv2d", W, None, 1, "same", 1, "relu", 0.0)], (30, 30, 2))
    x = rng.normal(size=(20, 30, 30, 2)).astype(np.float32)
    want = plan.forward(x)
    result = forward_in_fresh_thread_without_memory(K, plan, x)
    assert result == ["NetPlan.forward: out of memory for the layers' workspaces (GEMM packing "
                      "buffers, a convolution's im2col columns); the outputs were not computed"]
    np.testing.assert_array_equal(plan.forward(x), want)
