"""pickle and copy.deepcopy of a Sequential go through the model file (nnfast/engine/saving.py,
as Keras 3 pickles a model through its format): the copy has the same architecture, weights,
compile settings and optimizer state, shares nothing with the original, and trains on exactly
as the original would. The bytes are read with every check of load_model."""
import copy
import pickle

import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast import optimizers
from nnfast.layers import Dense, Dropout
from nnfast.optimizers import schedules


def _trained(**kw):
    x, y = blobs()
    m = mlp(dropout=0.25, **kw)
    m.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=1)
    return m, x, y


@pytest.mark.parametrize("how", ["deepcopy", "pickle", "copy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_copy_trains_on_exactly_as_the_original(how, dtype):
    m, x, y = _trained(dtype=dtype)
    c = {"deepcopy": copy.deepcopy, "copy": copy.copy,
         "pickle": lambda o: pickle.loads(pickle.dumps(o))}[how](m)
    assert type(c) is nnfast.Sequential and c is not m
    assert c.dtype == np.dtype(dtype) and c.input_shape == m.input_shape
    for a, b in zip(m.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(a, b)
        assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(m.predict(x), c.predict(x))
    assert c.optimizer.iterations == m.optimizer.iterations > 0
    for name, arr in m.optimizer.state.items():
        np.testing.assert_array_equal(arr, c.optimizer.state[name])
    # same moments, step counter and dropout stream: the next epoch is bit-identical
    m.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=1)
    c.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=1)
    for a, b in zip(m.get_weights(), c.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_copy_is_independent():
    m, x, _ = _trained()
    c = copy.deepcopy(m)
    before = m.get_weights()
    c.set_weights([w * 0 for w in c.get_weights()])
    for a, b in zip(before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_unbuilt_and_uncompiled_models_copy():
    m = nnfast.Sequential([Dense(4, "relu"), Dropout(0.5), Dense(2)], seed=3, name="tiny")
    c = pickle.loads(pickle.dumps(m))
    assert not c.built and c.name == "tiny" and c.seed == 3 and c.loss is None
    assert [type(layer).__name__ for layer in c.layers] == ["Dense", "Dropout", "Dense"]


def test_schedule_and_metrics_survive_the_copy():
    x, y = blobs()
    lr = schedules.ExponentialDecay(0.01, decay_steps=5, decay_rate=0.5)
    m = mlp(compile_with=optimizers.Adam(learning_rate=lr))
    m.compile(optimizers.Adam(learning_rate=lr), "sparse_categorical_crossentropy",
              ["accuracy", "sparse_top_k_categorical_accuracy"])
    m.fit(x, y, epochs=1, batch_size=64, verbose=0)
    c = copy.deepcopy(m)
    assert c.optimizer.learning_rate_schedule == lr
    assert c.optimizer.learning_rate == m.optimizer.learning_rate == lr(m.optimizer.iterations)
    assert c.evaluate(x, y) == m.evaluate(x, y)


def test_corrupt_pickled_bytes_raise_value_error():
    from nnfast.engine.model import _from_bytes
    data = nnfast.engine.saving.to_bytes(_trained()[0])
    with pytest.raises(ValueError, match=r"^cannot load a model from 10 bytes: "):
        _from_bytes(data[:10])
