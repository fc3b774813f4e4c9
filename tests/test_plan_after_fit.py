"""The inference plan after fit / train_on_batch honoured a layer attribute changed by a
callback or by hand: predict, model(x) and predict_on_batch run the layers as trained, not a
plan built before (break-test 18, r3; nnfast/engine/plan.py ``forget``)."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast.callbacks import Callback
from nnfast.engine import training
from nnfast.layers import Conv2D, Dense, Flatten


class _Relu(Callback):
    def __init__(self):
        super().__init__()
        self.seen = None

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.layers[0].activation = "relu"

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.seen = self.model.predict(_X, verbose=0)


_RNG = np.random.default_rng(0)
_X = _RNG.standard_normal((8, 6, 6, 2)).astype("float32")
_Y = _RNG.standard_normal((8, 2)).astype("float32")


def _model(act):
    return nnfast.Sequential([Conv2D(4, 3, activation=act, input_shape=(6, 6, 2)), Flatten(),
                              Dense(2)], seed=0)


def _layer_by_layer(model, x):
    ws = model._workspaces.take(len(x))
    try:
        return training.forward(model, ws, x, len(x), "predict").copy()
    finally:
        model._workspaces.give(ws)


def _assert_runs_relu(m):
    fresh = _model("relu")
    fresh.compile(optimizer="sgd", loss="mse")
    fresh.set_weights(m.get_weights())
    want = fresh.predict(_X, verbose=0)
    assert not np.array_equal(want, _model("tanh").predict(_X, verbose=0))
    assert np.array_equal(m.predict(_X, verbose=0), want)
    assert np.array_equal(m(_X), want)
    assert np.array_equal(m.predict_on_batch(_X), want)
    assert np.array_equal(_layer_by_layer(m, _X), want)
    assert m.evaluate(_X, _Y, verbose=0) == fresh.evaluate(_X, _Y, verbose=0)
    return want


def test_predict_after_fit_uses_the_activation_a_callback_set():
    m = _model("tanh")
    m.compile(optimizer="sgd", loss="mse")
    before = m.predict(_X, verbose=0)          # the plan cached with tanh
    assert np.array_equal(before, _layer_by_layer(m, _X))
    cb = _Relu()
    m.fit(_X, _Y, epochs=2, batch_size=4, verbose=0, callbacks=[cb])
    want = _assert_runs_relu(m)
    # a predict in on_epoch_end saw the layers as trained (the last epoch: the final weights)
    assert np.array_equal(cb.seen, want)


@pytest.mark.parametrize("generator", [False, True])
def test_predict_after_fit_on_batches_uses_the_new_activation(generator):
    m = _model("tanh")
    m.compile(optimizer="sgd", loss="mse")
    m.predict(_X, verbose=0)
    data = [(_X[:4], _Y[:4]), (_X[4:], _Y[4:])]
    m.fit(iter(data * 2) if generator else data, epochs=2, verbose=0, callbacks=[_Relu()],
          steps_per_epoch=2 if generator else None)
    _assert_runs_relu(m)


def test_predict_after_train_on_batch_uses_an_activation_set_by_hand():
    m = _model("tanh")
    m.compile(optimizer="sgd", loss="mse")
    m.predict(_X, verbose=0)
    m.layers[0].activation = "relu"            # train_on_batch trains it as relu ...
    m.train_on_batch(_X, _Y)
    _assert_runs_relu(m)                       # ... and predict now runs it as relu too
