"""The serving path of model(x), predict_on_batch(x) and predict(x) (nnfast/engine/inference.py:
``servable`` / ``serve``): an exact ndarray of the model dtype, C-contiguous, aligned, finite,
of the built model's input shape goes straight to the plan; every other x takes the general
path (``prepare``). Both give the same bits and the same errors; the backends' ``all_finite``
(the finiteness check of up to 65536 values) agree."""
import inspect

import numpy as np
import pytest

import nnfast
from nnfast import backends
from nnfast import layers as L
from nnfast.backends import _ref_checks, reference
from nnfast.engine import inference
from nnfast.engine import plan as _plan


def _mlp(dtype="float32"):
    return nnfast.Sequential([L.Dense(7, "relu", input_dim=6), L.Dense(3, "softmax")],
                             dtype=dtype, seed=0)


def _flat_in_reshape_out():
    """Samples (4, 5) flattened in, the outputs reshaped to (2, 3): an MLPPlan whose
    (n, 6) result is reshaped to the model's output shape."""
    return nnfast.Sequential([L.Flatten(input_shape=(4, 5)), L.Dense(6, "tanh"),
                              L.Reshape((2, 3))], seed=1)


def _conv():
    return nnfast.Sequential([L.Conv2D(3, 3, padding="same", activation="relu",
                                       input_shape=(6, 5, 2)), L.MaxPooling2D(), L.Flatten(),
                              L.Dense(4, "softmax")], seed=2)


class _Twice(L.Layer):
    def forward(self, x, buf, mode, step):
        return x * 2


def _no_plan():
    return nnfast.Sequential([L.Dense(3, input_dim=6), _Twice()], seed=3)


MODELS = [("mlp", _mlp), ("mlp-float64", lambda: _mlp("float64")),
          ("flatten-in-reshape-out", _flat_in_reshape_out), ("conv", _conv),
          ("no-plan", _no_plan)]
CALLS = [("model(x)", lambda m, x: m(x)), ("predict_on_batch", lambda m, x: m.predict_on_batch(x)),
         ("predict", lambda m, x: m.predict(x)),
         ("predict-batch_size=2", lambda m, x: m.predict(x, batch_size=2))]


def _x(model, rows=5, seed=0):
    return np.random.default_rng(seed).normal(size=(rows,) + model.input_shape).astype(
        model.dtype)


@pytest.mark.parametrize("call", [c[1] for c in CALLS], ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("make", [m[1] for m in MODELS], ids=[m[0] for m in MODELS])
def test_the_serving_path_gives_the_general_paths_bits(make, call, backend):
    model = make()
    x = _x(model)
    assert inference.servable(model, x)
    got = call(model, x)
    want = call(model, x.tolist())   # a list: converted by prepare, the general path
    assert type(got) is np.ndarray and got.dtype == model.dtype and got.flags.c_contiguous
    assert got.shape == (5,) + model.output_shape
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(call(model, x[:1]), call(model, x[:1].tolist()))


def test_rows_beyond_one_plan_call_take_predict_into():
    """predict's serving path calls the plan once for up to max(batch_size, CHUNK_ROWS) rows;
    more rows go through predict_into's chunks, with the same bits."""
    model = _mlp()
    x = _x(model, rows=_plan.CHUNK_ROWS + 3, seed=1)
    assert inference.servable(model, x)
    np.testing.assert_array_equal(model.predict(x, batch_size=7),
                                  model.predict(x.astype(np.float64), batch_size=7))


def _refused(model):
    """(what, x, result or None, error or None) for the x the serving path leaves to the
    general path: converted there to the same bits, or refused with the general path's error.
    ``{fn}`` in a message is the calling function."""
    x = _x(model, rows=4, seed=2)
    wide = np.repeat(x, 2, axis=1)[:, ::2]          # x's values, not C-contiguous
    raw = np.zeros(x.nbytes + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, x.dtype, x.size, offset=1).reshape(x.shape)
    unaligned[...] = x
    nan = x.copy()
    nan[2, 3] = np.nan
    inf = x.copy()
    inf[0, 0] = -np.inf
    hint = "for one sample of shape (6,) use x.reshape(1, 6)"
    return [
        ("not C-contiguous", wide, x, None),
        ("float64 into float32", x.astype(np.float64), x, None),
        ("byte-swapped", x.astype(x.dtype.newbyteorder()), x, None),
        ("unaligned", unaligned, x, None),
        ("np.matrix", np.asmatrix(x), x, None),
        ("list", x.tolist(), x, None),
        ("int", np.arange(24).reshape(4, 6), np.arange(24, dtype=x.dtype).reshape(4, 6), None),
        ("wrong feature count", x[:, :5].copy(), None,
         "{fn}: x has samples of shape (5,), the model expects (6,)"),
        ("1-D", x[0].copy(), None,
         f"{{fn}}: x must be at least 2-D (n_samples, ...), got shape (6,); {hint}"),
        ("0 rows", x[:0], None, "{fn}: x is empty (0 samples); nothing to do"),
        ("NaN", nan, None, "{fn}: x contains NaN or Inf"),
        ("-Inf", inf, None, "{fn}: x contains NaN or Inf"),
    ]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")   # np.matrix
@pytest.mark.parametrize("fn,call", [("Sequential.__call__", lambda m, x: m(x)),
                                     ("predict_on_batch", lambda m, x: m.predict_on_batch(x)),
                                     ("predict", lambda m, x: m.predict(x, batch_size=3))])
def test_what_the_serving_path_refuses_goes_the_general_path(fn, call, backend):
    model = _mlp()
    for what, x, same_as, error in _refused(model):
        assert not inference.servable(model, x), what
        if error is None:
            np.testing.assert_array_equal(call(model, x), call(model, same_as), err_msg=what)
            continue
        with pytest.raises(ValueError) as info:
            call(model, x)
        assert str(info.value) == error.format(fn=fn), what


def test_an_unbuilt_model_is_built_by_the_general_path():
    model = nnfast.Sequential([L.Dense(3, "relu"), L.Dense(2)], seed=4)
    x = np.ones((2, 5), np.float32)
    assert not inference.servable(model, x)
    got = model(x)
    assert model.built and model.input_shape == (5,)
    assert inference.servable(model, x)
    np.testing.assert_array_equal(model(x), got)


def test_predicts_other_arguments_are_still_checked_with_a_servable_x():
    """The serving path runs only for arguments it knows good: anything else is checked (and
    refused) by predict's general path, in its order."""
    model = _mlp()
    x = _x(model, rows=3)
    cases = [
        (dict(batch_size=0), ValueError, "predict: batch_size must be an integer >= 1, got 0"),
        (dict(batch_size=True), ValueError,
         "predict: batch_size must be an integer >= 1, got True"),
        (dict(verbose=3), ValueError, "predict: verbose must be 0, 1 or 2, got 3"),
        (dict(steps=2), ValueError, "predict: steps applies to an iterable of batches; with "
                                    "arrays leave it None (got steps=2)"),
        (dict(callbacks="cb"), TypeError, "predict: callbacks must be a list of "
                                          "nnfast.callbacks.Callback instances, got str"),
    ]
    for kwargs, exc, message in cases:
        with pytest.raises(exc) as info:
            model.predict(x, **kwargs)
        assert str(info.value) == message, kwargs
    want = model.predict(x)
    for kwargs in (dict(batch_size=np.int64(2)), dict(verbose=2), dict(verbose=0.0),
                   dict(callbacks=[]), dict(distributed=True)):
        np.testing.assert_array_equal(model.predict(x, **kwargs), want, err_msg=str(kwargs))


def test_training_argument_is_checked_before_the_serving_path():
    model = _mlp()
    x = _x(model, rows=2)
    with pytest.raises(TypeError) as info:
        model(x, training=0)
    assert str(info.value) == "Sequential.__call__: training must be a bool or None, got int"
    np.testing.assert_array_equal(model(x, training=False), model(x))


class _WriterDuringForward:
    """A plan whose first forward is overlapped by a weights write (as set_weights or an
    optimizer step from another thread): the bias of the last layer becomes ``bias``."""

    def __init__(self, model, bias):
        self.model, self.bias, self.plan, self.writes = model, bias, model._plan(), 0
        self.n_features, self.n_outputs = self.plan.n_features, self.plan.n_outputs

    def forward(self, x, out=None):
        out = self.plan.forward(x, out)
        if self.writes == 0:
            self.writes += 1
            self.model._weights.write(self.model.layers[-1].b.__setitem__, Ellipsis, self.bias)
        return out


@pytest.mark.parametrize("call", [c[1] for c in CALLS], ids=[c[0] for c in CALLS])
def test_a_write_during_the_forward_reruns_it_holding_the_lock(call):
    """plan.run's re-run (nnfast/engine/locks.py), with the result the plan allocates (the
    serving path) as with a given one: the outputs are those of the weights after the write."""
    model = nnfast.Sequential([L.Dense(3, input_dim=2)], seed=5)
    x = np.ones((4, 2), np.float32)
    fake = _WriterDuringForward(model, np.array([10.0, 20.0, 30.0], np.float32))
    model._plan_cache = (_plan._key(model), fake)
    got = call(model, x)
    assert fake.writes == 1
    want = x @ model.layers[0].W + np.array([10.0, 20.0, 30.0], np.float32)
    np.testing.assert_array_equal(got, want)


# ---- all_finite: the backends' twins ------------------------------------------------------
def test_both_backends_export_the_checks_with_one_signature():
    assert reference.CHECKS == ("all_finite", "servable_input")
    for name in reference.CHECKS:
        assert name not in reference.__all__ and name not in nnfast.ops.__all__
    if not backends.compiled_available():
        pytest.skip("needs the compiled extension")
    from nnfast.backends import compiled
    assert compiled.CHECKS == reference.CHECKS
    assert (list(inspect.signature(compiled.all_finite).parameters)
            == list(inspect.signature(reference.all_finite).parameters) == ["x"])
    assert (list(inspect.signature(compiled.servable_input).parameters)
            == list(inspect.signature(reference.servable_input).parameters)
            == ["x", "dtype", "shape"])


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")   # np.matrix
def test_servable_input_is_the_same_test_on_both_backends(backend):
    """Every way x can miss the plan's input (exact ndarray of the dtype, native, aligned,
    C-contiguous, >= 1 sample of the shape, finite) is False, never an error; dtype and shape
    of other types too (the general path then decides)."""
    check = backends.current().servable_input
    f32 = np.dtype(np.float32)
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    img = np.ones((2, 3, 4), np.float64)
    raw = np.zeros(x.nbytes + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, x.dtype, x.size, offset=1).reshape(x.shape)
    nan, inf = x.copy(), img.copy()
    nan[3, 5], inf[1, 2, 0] = np.nan, np.inf
    assert check(x, f32, (6,)) is True and check(x[:1], f32, (6,)) is True
    assert check(img, np.dtype(np.float64), (3, 4)) is True
    for what, args in [
            ("other dtype", (x, np.dtype(np.float64), (6,))),
            ("model dtype not a float", (x.astype(np.int32), np.dtype(np.int32), (6,))),
            ("byte-swapped", (x.astype(">f4"), np.dtype(">f4"), (6,))),
            ("byte-swapped x", (x.astype(">f4"), f32, (6,))),
            ("not C-contiguous", (np.asfortranarray(x), f32, (6,))),
            ("strided", (np.repeat(x, 2, axis=1)[:, ::2], f32, (6,))),
            ("unaligned", (unaligned, f32, (6,))),
            ("np.matrix", (np.asmatrix(x), f32, (6,))),
            ("list", (x.tolist(), f32, (6,))),
            ("0 rows", (x[:0], f32, (6,))),
            ("1-D", (x[0], f32, (6,))),
            ("other shape", (x, f32, (5,))),
            ("other rank", (img, np.dtype(np.float64), (12,))),
            ("NaN", (nan, f32, (6,))),
            ("Inf", (inf, np.dtype(np.float64), (3, 4))),
            ("dtype not a dtype", (x, np.float32, (6,))),
            ("shape a list", (x, f32, [6])),
            ("shape of strings", (x, f32, ("6",)))]:
        assert check(*args) is False, what


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_nan_and_inf(dtype, backend):
    """Every position of the C loop (eight sums, then the tail), every kind of non-finite
    value; finite values of any size (no overflow: 3e38 and -3e38 sum to nothing)."""
    check = backends.current().all_finite
    for n in (0, 1, 7, 8, 9, 17, 24):
        ok = np.full(n, np.finfo(dtype).max, dtype)
        ok[::2] *= -1
        assert check(ok) is True and check(ok.reshape(1, n)) is True
        for pos in range(n):
            for bad in (np.nan, np.inf, -np.inf):
                a = np.ones(n, dtype)
                a[pos] = bad
                assert check(a) is False, (n, pos, bad)
                assert check(a.reshape(n, 1)) is False


def test_all_finite_takes_any_ndarray(backend):
    check = backends.current().all_finite
    nan = np.array([[1.0, 2.0], [np.nan, 3.0]])
    assert check(nan[:, ::2]) is False and check(nan[:, 1::2]) is True    # strided
    assert check(nan.astype(">f8")) is False and check(np.ones(3, ">f4")) is True
    assert check(np.arange(5)) is True and check(np.array([True, False])) is True
    assert check(np.array([np.inf], np.float16)) is False
    with pytest.raises(TypeError) as info:
        check([1.0, float("nan")])
    assert str(info.value) == "all_finite: x must be a numpy.ndarray, got list"


def test_the_engines_check_of_small_x_is_the_backends(monkeypatch):
    seen = []
    monkeypatch.setattr(_ref_checks, "all_finite", lambda x: seen.append(x.shape) or True)
    monkeypatch.setattr(reference, "all_finite", _ref_checks.all_finite)
    model = _mlp()
    with nnfast.use_backend("python"):
        model(np.ones((2, 6), np.float32))
        model.predict(np.ones((3, 6)))
    assert seen == [(2, 6), (3, 6)]
