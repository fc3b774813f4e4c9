"""fit / evaluate / predict from iterables of batches (nnfast/engine/iterables.py): the same
results as arrays, Keras 3's epoch semantics for generators and PyDataset-like objects, and the
argument and per-batch errors."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import nnfast
from nnfast.callbacks import Callback
from nnfast.layers import Dense

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
W = RNG.uniform(0.5, 2.0, 40)


def _model(seed=0):
    m = nnfast.Sequential([Dense(5, "tanh"), Dense(2, "softmax")], dtype="float64", seed=seed)
    m.compile("adam", "sparse_categorical_crossentropy",
              ["accuracy", "sparse_top_k_categorical_accuracy"])
    return m


def _batches(k=5, size=8, weights=False):
    return [(X[i * size:(i + 1) * size], Y[i * size:(i + 1) * size])
            + ((W[i * size:(i + 1) * size],) if weights else ()) for i in range(k)]


def _gen(k=5, log=None):
    for i, b in enumerate(_batches(k)):
        if log is not None:
            log.append(i)
        yield b


class _Count(Callback):
    def on_train_begin(self, logs=None):
        self.per_epoch, self.n = [], 0

    def on_batch_end(self, batch, logs=None):
        self.n += 1

    def on_epoch_end(self, epoch, logs=None):
        self.per_epoch.append(self.n)
        self.n = 0


class _DS:
    """A Keras-style PyDataset: __len__, __getitem__, on_epoch_end."""

    def __init__(self, k=3):
        self.k, self.got, self.ends = k, [], 0

    def __len__(self):
        return self.k

    def __getitem__(self, i):
        self.got.append(i)
        return _batches(self.k)[i]

    def on_epoch_end(self):
        self.ends += 1


@pytest.mark.parametrize("weights", [False, True])
def test_list_of_batches_trains_as_the_same_arrays(backend, weights):
    a, b = _model(), _model()
    ha = a.fit(X, Y, epochs=2, batch_size=8, shuffle=False, verbose=0,
               sample_weight=W if weights else None, class_weight={1: 2.0})
    hb = b.fit(_batches(weights=weights), epochs=2, shuffle=False, verbose=0,
               class_weight={1: 2.0})
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert ha.history == hb.history
    assert b.evaluate(_batches(weights=weights)) == a.evaluate(
        X, Y, batch_size=8, sample_weight=W if weights else None)
    np.testing.assert_array_equal(b.predict(_gen()), a.predict(X))


def test_generator_without_steps_is_consumed_by_the_first_epoch():
    m, log, count = _model(), [], _Count()
    with pytest.warns(UserWarning, match=re.escape(
            "fit: Your input ran out of data: x gave 0 batch(es) of one pass in epoch 2; "
            "training stops here")):
        h = m.fit(_gen(5, log), epochs=3, verbose=0, callbacks=[count])
    assert h.epoch == [0] and count.per_epoch == [5] and log == [0, 1, 2, 3, 4]


def test_generator_with_steps_per_epoch_is_consumed_across_epochs():
    m, log, count = _model(), [], _Count()
    with pytest.warns(UserWarning, match=re.escape(
            "x gave 1 batch(es) of steps_per_epoch=2 in epoch 3; training stops here")):
        h = m.fit(_gen(5, log), epochs=4, steps_per_epoch=2, verbose=0, callbacks=[count])
    # Keras 3 gives [2, 2, 1] too, then keeps counting empty epochs; nnfast stops
    assert h.epoch == [0, 1, 2] and count.per_epoch == [2, 2, 1] and m.optimizer.iterations == 5


def test_pydataset_with_steps_continues_then_restarts_like_keras():
    m, ds, count = _model(), _DS(3), _Count()
    with pytest.warns(UserWarning, match=re.escape(
            "x gave 1 batch(es) of steps_per_epoch=2 in epoch 2; the epoch ends short and the "
            "next one starts a new pass")):
        h = m.fit(ds, epochs=3, steps_per_epoch=2, shuffle=False, verbose=0, callbacks=[count])
    # the order keras.Model.fit reads a PyDataset of 3 batches with steps_per_epoch=2
    assert ds.got == [0, 1, 2, 0, 1] and count.per_epoch == [2, 1, 2] and ds.ends == 3
    assert h.epoch == [0, 1, 2]


def test_pydataset_batch_order_shuffled_per_epoch_by_the_seed():
    orders = []
    for _ in range(2):
        ds = _DS(5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _model().fit(ds, epochs=2, seed=3, verbose=0)
        orders.append(ds.got)
    assert orders[0] == orders[1] and sorted(orders[0][:5]) == [0, 1, 2, 3, 4]
    assert orders[0][:5] != [0, 1, 2, 3, 4] or orders[0][5:] != [0, 1, 2, 3, 4]


def test_validation_data_as_an_iterable():
    m = _model()
    h = m.fit(_batches(), epochs=2, verbose=0, validation_data=_batches(2))
    val = m.evaluate(X[:16], Y[:16], batch_size=8)
    assert h.history["val_loss"][-1] == val["loss"]
    assert h.history["val_accuracy"][-1] == val["accuracy"]
    m2 = _model()
    with pytest.warns(UserWarning, match="fit: validation_data gave no batches this epoch"):
        h2 = m2.fit(_batches(), epochs=2, verbose=0, validation_data=_gen(2))
    assert len(h2.history["val_loss"]) == 1 and len(h2.history["loss"]) == 2
    h3 = _model().fit(_batches(), epochs=2, verbose=0, validation_data=_gen(4),
                      validation_steps=2)
    assert len(h3.history["val_loss"]) == 2


def test_validation_data_arrays_with_an_iterable_x():
    # Keras 3.15 accepts (x_val, y_val[, w_val]) arrays with a generator x and evaluates every
    # row each epoch, in batches of 32 (validation_batch_size and batch_size are None), or of
    # ceil(n / validation_steps) rows with validation_steps.
    m = _model()
    h = m.fit(_gen(), epochs=1, verbose=0, validation_data=(X, Y))
    val = m.evaluate(X, Y, batch_size=32)
    assert h.history["val_loss"] == [val["loss"]]
    assert h.history["val_accuracy"] == [val["accuracy"]]
    m = _model()
    h = m.fit(_batches(), epochs=2, verbose=0, validation_data=[X[:30], Y[:30], W[:30]],
              validation_steps=4)
    val = m.evaluate(X[:30], Y[:30], batch_size=8, sample_weight=W[:30])
    assert h.history["val_loss"][-1] == val["loss"] and len(h.history["val_loss"]) == 2
    assert h.history["val_sparse_top_k_categorical_accuracy"][-1] == val[
        "sparse_top_k_categorical_accuracy"]


def test_validation_arrays_are_checked_against_the_model_built_from_the_first_batch():
    m, fresh = _model(), _model()
    fresh.build((3,))
    with pytest.raises(ValueError, match=re.escape(
            "fit: validation_data x has samples of shape (2,), the model expects (3,)")):
        m.fit(_batches(), validation_data=(X[:, :2], Y), verbose=0)
    for a, b in zip(m.get_weights(), fresh.get_weights()):   # no step was taken
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("val, message", [
    (((X[:8], Y[:8]), (X[8:16], Y[8:16])),
     "fit: validation_data is ambiguous: a tuple of 2 items, 2 of them tuples, could be arrays "
     "or batches; pass arrays as a tuple (x_val, y_val[, sample_weight_val]) of NumPy arrays, "
     "or batches as a list of (x, y[, sample_weight]) tuples or a generator"),
    ([(X[:8], Y[:8]), X[8:16]],
     "fit: validation_data is ambiguous: a list of 2 items, 1 of them tuples, could be arrays"),
    ((X, Y, W, W), "fit: validation_data must be (x_val, y_val) or (x_val, y_val, "
                   "sample_weight_val), got a tuple of 4 arrays"),
    ([], "fit: validation_data is an empty list; expected (x_val, y_val[, sample_weight_val]) "
         "arrays or a list of (x, y[, sample_weight]) batches"),
    (X, "fit: validation_data must be a tuple (x_val, y_val[, sample_weight_val]) or an "
        "iterable of (x, y[, sample_weight]) batches, got ndarray"),
    ((X, Y[:5]), "fit: validation_data x"),
])
def test_validation_data_that_is_neither_clearly_arrays_nor_batches_raises(val, message):
    m = _model()
    with pytest.raises(ValueError, match=re.escape(message)):
        m.fit(_gen(), validation_data=val, verbose=0)
    assert not m.built       # refused before the first batch was read


def _empty():
    return
    yield


@pytest.mark.parametrize("call, message", [
    (lambda m: m.fit([]), "fit: x is an empty list: it holds no (x, y) batches and no samples"),
    (lambda m: m.fit(()), "fit: x is an empty tuple: it holds no (x, y) batches and no samples"),
    (lambda m: m.evaluate([]), "evaluate: x is an empty list: it holds no (x, y) batches"),
    (lambda m: m.predict([]), "predict: x is an empty list: it holds no (x, y) batches"),
    (lambda m: m.fit(_empty()), "fit: x gave no batches (an empty or exhausted generator?)"),
    (lambda m: m.fit(_DS(0)), "fit: x has no batches (len(x) is 0)"),
    (lambda m: m.evaluate(_DS(0)), "evaluate: x has no batches (len(x) is 0)"),
    (lambda m: m.predict(_DS(0)), "predict: x has no batches (len(x) is 0)"),
    (lambda m: m.fit(_batches(), validation_data=_DS(0)),
     "fit: validation_data has no batches (len(validation_data) is 0)"),
    (lambda m: m.fit(_empty(), steps_per_epoch=0),
     "fit: steps_per_epoch must be an integer >= 1, got 0"),
])
def test_empty_inputs_say_they_are_empty(call, message):
    m = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # an error, not a "ran out of data" warning
        with pytest.raises(ValueError, match=re.escape(message)):
            call(m)
    assert not m.built


def test_evaluate_and_predict_steps_and_batch_forms():
    m = _model()
    m.fit(X, Y, verbose=0)
    assert m.evaluate(_gen(5), steps=2) == m.evaluate(X[:16], Y[:16], batch_size=8)
    with pytest.warns(UserWarning, match="evaluate: Your input ran out of data: x ended "
                                         "before 9 steps"):
        m.evaluate(_gen(5), steps=9)
    want = m.predict(X[:16])
    for form in ([(X[:8],), (X[8:16],)], iter([X[:8], X[8:16]]), _gen(2)):
        np.testing.assert_array_equal(m.predict(form), want)
    np.testing.assert_array_equal(m.predict(_gen(5), steps=2), want)


def test_unbuilt_model_is_built_from_the_first_batch():
    m = _model()
    assert not m.built
    m.fit(_gen(2), verbose=0)
    assert m.input_shape == (3,)


def test_progress_bar_is_sized_when_the_length_is_known(capsys):
    _model().fit(_batches(), epochs=1, verbose=1)
    assert "5/5" in capsys.readouterr().err
    _model().fit(_gen(5), epochs=1, steps_per_epoch=3, verbose=1)
    assert "3/3" in capsys.readouterr().err


@pytest.mark.parametrize("call, message", [
    (lambda m: m.fit(_batches(), batch_size=8),
     "fit: batch_size must not be given when x is an iterable of batches (the iterable makes "
     "the batches), got batch_size=8"),
    (lambda m: m.fit(_batches(), sample_weight=W),
     "fit: sample_weight must not be given when x is an iterable of batches"),
    (lambda m: m.fit(_batches(), validation_split=0.2),
     "fit: validation_split=0.2 needs array data"),
    (lambda m: m.fit(_batches(), distributed=True),
     "fit: distributed=True needs array data (each rank would iterate its own iterable)"),
    (lambda m: m.fit(_batches(), Y), "fit: y must not be given when x is an iterable"),
    (lambda m: m.fit(_batches(), steps_per_epoch=0),
     "fit: steps_per_epoch must be an integer >= 1, got 0"),
    (lambda m: m.fit(X, Y, steps_per_epoch=3),
     "fit: steps_per_epoch applies to an iterable of batches; with arrays leave it None "
     "(got steps_per_epoch=3)"),
    (lambda m: m.fit(X), "fit: y is required when x is an array"),
    (lambda m: m.evaluate(_batches(), batch_size=4), "evaluate: batch_size must not be given"),
    (lambda m: m.evaluate(X), "evaluate: y is required when x is an array"),
    (lambda m: m.predict(_gen(), steps=-1), "predict: steps must be an integer >= 1, got -1"),
    (lambda m: m.predict(X, steps=2), "predict: steps applies to an iterable of batches"),
    (lambda m: m.fit([(X[:8], Y[:8]), (X[8:16, :2], Y[8:16])]),
     "fit: batch 1 x has samples of shape (2,), the model expects (3,)"),
    (lambda m: m.fit([(X[:8], Y[:8]), (X[8:16], Y[8:16] + 0.5)]), "fit: batch 1 y"),
    (lambda m: m.fit([(X[:8], Y[:8]), (X[8:16],)]),
     "fit: batch 1 of x must be a tuple (x, y) or (x, y, sample_weight), got a tuple of 1"),
    (lambda m: m.fit(iter([(X[:8], Y[:8]), X[8:16]])),
     "fit: batch 1 of x must be a tuple (x, y) or (x, y, sample_weight), got ndarray"),
    (lambda m: m.fit(_batches(), validation_data=[(X[:8], Y[:8]), (X[:8, :1], Y[:8])]),
     "fit: validation_data batch 1 x has samples of shape (1,), the model expects (3,)"),
    (lambda m: m.fit([(X[:8], Y[:8], -W[:8])]), "fit: batch 0 sample_weight"),
    (lambda m: m.evaluate(iter([])),
     "evaluate: x gave no batches (an empty or exhausted generator?)"),
])
def test_bad_arguments_and_batches_raise_value_error(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call(_model())


def test_inconsistent_dtype_names_the_batch():
    bad = [(X[:8], Y[:8]), (np.full((8, 3), "a"), Y[8:16])]
    with pytest.raises(TypeError, match=re.escape("fit: batch 1 x must hold numbers")):
        _model().fit(bad, verbose=0)


def test_a_list_of_row_tuples_is_still_array_data():
    m = _model()
    rows = [tuple(r) for r in X[:8]]
    np.testing.assert_array_equal(m.predict(rows), m.predict(X[:8]))
