"""The inference plan under Sequential (nnfast/engine/plan.py): predict, model(x) and
predict_on_batch give the bits of the layer-by-layer forward for any batch_size; the cached
plan is rebuilt whenever it could be stale and reused when not; bad input fails as predict's;
threads share a model; no workspace is allocated per call."""
import tracemalloc

import numpy as np
import pytest
from engine_probes import errors_of_threads_calling

import nnfast
from nnfast import backends
from nnfast.backends import reference
from nnfast.callbacks import Callback
from nnfast.engine import training
from nnfast.layers import Activation, Dense, Dropout, Flatten, Layer


def _models():
    """(name, model factory, per-sample input shape): every layer kind, fused heads."""
    def flat():
        m = nnfast.Sequential([Flatten(input_shape=(4, 5)), Dense(16, "relu"), Dropout(0.5),
                               Dense(8, "leaky_relu", alpha=0.2), Activation("tanh"), Dense(3),
                               Activation("softmax")], seed=1)
        m.compile("adam", "sparse_categorical_crossentropy")   # the Activation is a fused head
        return m

    def head64():
        m = nnfast.Sequential([Dense(9, "gelu", input_dim=6), Dense(5, "softmax")],
                              dtype="float64", seed=2)
        m.compile("sgd", "sparse_categorical_crossentropy")
        return m

    def act_first():
        m = nnfast.Sequential([Activation("relu", input_shape=(6,)), Dense(4, "elu", alpha=0.7),
                               Dense(1, "sigmoid")], seed=3)
        m.compile("adam", "binary_crossentropy")
        return m

    def log_softmax():
        return nnfast.Sequential([Dense(7, input_dim=6, use_bias=False),
                                  Activation("log_softmax")], seed=4)

    return [("flatten-dropout-fused", flat, (4, 5)), ("float64-head", head64, (6,)),
            ("activation-first", act_first, (6,)), ("dense-then-log_softmax", log_softmax, (6,))]


MODELS = _models()


def _layer_by_layer(model, x):
    ws = model.workspace(len(x))
    return np.array(training.forward(model, ws, x, len(x), "predict"))


def _exact() -> bool:
    return backends.get_backend() == "c"


@pytest.mark.parametrize("name,make,shape", MODELS, ids=[m[0] for m in MODELS])
def test_predict_is_the_layer_by_layer_forward_for_any_batch_size(name, make, shape, backend):
    model = make()
    x = np.random.default_rng(0).normal(size=(301,) + shape).astype(model.dtype)
    want = _layer_by_layer(model, x)
    for batch_size in (1, 5, 32, 301, 5000):
        np.testing.assert_array_equal(model.predict(x, batch_size=batch_size), want)
    np.testing.assert_array_equal(model(x), want)
    np.testing.assert_array_equal(model.predict_on_batch(x), want)
    one = model(x[:1])
    assert type(one) is np.ndarray and one.dtype == model.dtype
    assert one.shape == (1,) + model.output_shape
    if _exact():   # the compiled plan: a row's bits do not depend on the rows beside it
        np.testing.assert_array_equal(one, want[:1])
    else:
        np.testing.assert_allclose(one, want[:1], rtol=1e-6, atol=1e-7)


class _Batches(Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_predict_batch_end(self, batch, logs=None):
        self.seen.append((batch, np.array(logs["outputs"])))


def test_callbacks_still_get_each_batch(backend):
    model = MODELS[0][1]()
    x = np.random.default_rng(1).normal(size=(7, 4, 5)).astype(np.float32)
    cb = _Batches()
    got = model.predict(x, batch_size=3, callbacks=[cb])
    assert [(b, o.shape) for b, o in cb.seen] == [(0, (3, 3)), (1, (3, 3)), (2, (1, 3))]
    np.testing.assert_array_equal(np.concatenate([o for _, o in cb.seen]), got)
    want = _layer_by_layer(model, x)
    if _exact():
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_training_argument():
    model = MODELS[1][1]()
    x = np.ones((2, 6))
    np.testing.assert_array_equal(model(x, training=False), model(x))
    np.testing.assert_array_equal(model(x, training=None), model(x))
    with pytest.raises(ValueError) as info:
        model(x, training=True)
    assert str(info.value) == (
        "Sequential.__call__: training=True (layers in training mode, dropout active) is not "
        "supported: nnfast runs training mode only inside fit; call model(x) or "
        "model(x, training=False) for inference")
    with pytest.raises(TypeError) as info:
        model(x, training="no")
    assert str(info.value) == "Sequential.__call__: training must be a bool or None, got str"


def test_bad_input_fails_as_predict_does():
    model = MODELS[1][1]()
    for call, fn in ((model, "Sequential.__call__"),
                     (model.predict_on_batch, "predict_on_batch"), (model.predict, "predict")):
        with pytest.raises(ValueError) as info:
            call(np.ones((3, 5)))
        assert str(info.value) == (f"{fn}: x has samples of shape (5,), the model expects (6,)")
        with pytest.raises(ValueError) as info:
            call(np.ones(6))
        assert str(info.value) == (f"{fn}: x must be at least 2-D (n_samples, ...), got shape "
                                   f"(6,); for one sample of shape (6,) use x.reshape(1, 6)")
    # other dtypes are converted once, as predict converts them
    ints = np.arange(12).reshape(2, 6)
    np.testing.assert_array_equal(model(ints), model.predict(ints.astype(np.float64)))
    np.testing.assert_array_equal(model.predict_on_batch(ints.astype(np.float32)),
                                  model(ints.astype(np.float64)))


# ---- staleness: every change that could make a cached plan wrong rebuilds it ------------
def _net(**kw):
    m = nnfast.Sequential([Dense(5, "relu", input_dim=4), Dense(3, "softmax")], seed=5, **kw)
    return m, np.random.default_rng(2).normal(size=(6, 4)).astype(m.dtype)


def test_set_weights_and_fit_are_seen_by_the_same_plan(backend):
    m, x = _net()
    plan = m._plan()
    before = m(x)
    m.set_weights([w * 2 for w in m.get_weights()])
    assert m._plan() is plan
    np.testing.assert_array_equal(m(x), _layer_by_layer(m, x))
    assert not np.array_equal(m(x), before)
    m.compile("sgd", "sparse_categorical_crossentropy")
    plan = m._plan()
    m.fit(x, np.array([0, 1, 2, 0, 1, 2]), epochs=2, verbose=0)
    # fit drops the plan (it honours layer attributes a callback changes: test_plan_after_fit)
    assert m._plan() is not plan
    np.testing.assert_array_equal(m(x), _layer_by_layer(m, x))


def test_add_compile_build_and_backend_rebuild_the_plan():
    m, x = _net()
    plan = m._plan()
    assert m._plan() is plan                        # cached while nothing changed
    m.add(Dense(2, "sigmoid"))
    added = m._plan()
    assert added is not plan and added.n_outputs == 2
    np.testing.assert_array_equal(m(x), _layer_by_layer(m, x))
    m.compile("adam", "binary_crossentropy")
    assert m._plan() is not added
    np.testing.assert_array_equal(m(x), _layer_by_layer(m, x))
    lazy = nnfast.Sequential([Dense(3, "tanh")], seed=0)    # built by its first call
    np.testing.assert_array_equal(lazy(x), _layer_by_layer(lazy, x))
    with nnfast.use_backend("python"):
        assert type(m._plan()) is reference.MLPPlan
        np.testing.assert_array_equal(m(x), _layer_by_layer(m, x))
    if backends.compiled_available():
        with nnfast.use_backend("c"):
            from nnfast.backends import compiled
            assert type(m._plan()) is compiled.MLPPlan


def test_a_dtype_change_misses_the_cache(monkeypatch):
    m, x = _net()
    m._plan()
    # the dtype is part of the key: the float32 plan is not returned for a float64 model (its
    # rebuild fails here because only the attribute changed, not the buffer)
    monkeypatch.setattr(m, "_dtype", np.dtype(np.float64))   # dtype is read-only
    with pytest.raises(TypeError, match=r"layers\[0\] W must have dtype float64"):
        m._plan()


def test_a_loaded_or_copied_model_has_its_own_plan(tmp_path):
    import copy
    m, x = _net()
    want = m(x)
    path = tmp_path / "m.nnf"
    m.save(path)
    loaded = nnfast.load_model(path)
    clone = copy.deepcopy(m)
    np.testing.assert_array_equal(loaded(x), want)
    np.testing.assert_array_equal(clone(x), want)
    assert loaded._plan() is not m._plan() and clone._plan() is not m._plan()
    m.set_weights([np.zeros_like(w) for w in m.get_weights()])
    np.testing.assert_array_equal(loaded(x), want)      # its own buffer, its own plan
    np.testing.assert_array_equal(m(x), np.full((6, 3), 1 / 3, np.float32))


class _Twice(Layer):
    def forward(self, x, buf, mode, step):
        return x * 2


def test_a_layer_the_plan_does_not_know_runs_layer_by_layer():
    m = nnfast.Sequential([Dense(3, input_dim=2), _Twice()], seed=0)
    x = np.ones((4, 2), np.float32)
    assert m._plan() is None
    np.testing.assert_array_equal(m(x), 2 * nnfast.ops.dense_forward(x, m.layers[0].W,
                                                                     m.layers[0].b))
    np.testing.assert_array_equal(m.predict(x, batch_size=3), m(x))


# ---- threads and allocation ---------------------------------------------------------------
def test_threads_calling_one_model_get_their_own_results(threads):
    threads(2)
    m = nnfast.Sequential([Dense(64, "relu", input_dim=32), Dense(10, "softmax")], seed=0)
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(n, 32)).astype(np.float32) for n in (1, 7, 64, 300)]
    assert errors_of_threads_calling(m, xs, repeats=30) == []


def test_predict_allocates_no_workspace_per_call():
    if backends.get_backend() != "c":
        pytest.skip("needs the compiled backend (the reference allocates temporaries by design)")
    m = nnfast.Sequential([Dense(256, "relu", input_dim=32), Dense(10, "softmax")], seed=0)
    x = np.random.default_rng(4).normal(size=(64, 32)).astype(np.float32)
    m.predict(x)
    m(x)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            m.predict(x)
            m(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the result (2.5 kB) and small Python objects are all (the finiteness check of x reads
    # it in place: no boolean array); one workspace of the hidden layer would be 64 kB. The
    # margin leaves room for objects other tests' threads or the GC allocate meanwhile (3.7 kB
    # was seen in the full suite)
    assert peak - base < 16 * 1024, peak - base


@pytest.mark.parametrize("rows", [2, 30000])   # 6 values; 90 000 (the reference sums first)
def test_finiteness_check_of_x_is_exact(rows):
    """predict's NaN/Inf check, the backend's all_finite at any size (the compiled one tests
    exponent bits, the reference one sums a large x first): a sum that overflows from finite
    values is still accepted, +inf and -inf together still refused."""
    m = nnfast.Sequential([Dense(2, input_dim=3)], seed=0)
    m.set_weights([np.full((3, 2), 1e-3), np.zeros(2)])   # outputs stay finite
    big = np.full((rows, 3), 3e38, np.float32)       # the float32 sum overflows to inf
    np.testing.assert_allclose(m(big), np.full((rows, 2), 9e35, np.float32), rtol=1e-6)
    np.testing.assert_array_equal(m(big), m.predict(big))
    for row in (np.array([np.inf, -np.inf, 0.0]), np.array([1.0, np.nan, 2.0])):
        bad = np.ones((rows, 3), np.float32)
        bad[rows // 2] = row
        for call, fn in ((m, "Sequential.__call__"), (m.predict, "predict")):
            with pytest.raises(ValueError) as info:
                call(bad)
            assert str(info.value) == f"{fn}: x contains NaN or Inf"
    with pytest.raises(ValueError) as info:
        m.predict(np.full((rows, 3), 1e39))          # finite float64, inf in float32
    assert str(info.value) == ("predict: x contains NaN or Inf after conversion to float32 "
                               "(values too large)")
