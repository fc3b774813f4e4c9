"""A layer belongs to one model (nnfast/engine/layer_owner.py): Keras 3 shares a layer's weights
between the models holding it; nnfast keeps each model's weights in one flat buffer, so a second
model would silently take the layer's W over. Also Dense's input arguments and bytes paths."""
import copy
import gc
import pickle

import numpy as np
import pytest

import nnfast
from nnfast.layers import Dense, Dropout

SHARED = (r"^{fn}: layer 'dense' \(Dense\) already belongs to model 'first'; nnfast layers "
          r"cannot be shared between models \(each model keeps its weights in one flat buffer; "
          r"Keras would share them\): create a new layer, e\.g\. "
          r"Dense\.from_config\(layer\.get_config\(\)\), and copy weights with "
          r"get_weights\(\)/set_weights\(\) on the models if you want the same values$")


def _first():
    shared = Dense(4, input_dim=3)
    m1 = nnfast.Sequential([shared, Dense(1)], seed=0, name="first")
    return shared, m1


def test_second_model_construction_is_refused_and_first_model_untouched():
    shared, m1 = _first()
    x = np.ones((2, 3), np.float32)
    before = m1.predict(x)
    with pytest.raises(ValueError, match=SHARED.format(fn="Sequential")):
        nnfast.Sequential([shared, Dense(1)], seed=1)
    assert np.array_equal(m1.predict(x), before)
    assert np.shares_memory(shared.W, m1._params)


def test_add_to_another_model_is_refused_built_or_not():
    shared, _ = _first()
    built = nnfast.Sequential([Dense(3, input_dim=3)], name="other")
    with pytest.raises(ValueError, match=SHARED.format(fn="Sequential.add")):
        built.add(shared)
    assert len(built.layers) == 1
    unbuilt = nnfast.Sequential()
    with pytest.raises(ValueError, match=SHARED.format(fn="Sequential.add")):
        unbuilt.add(shared)
    assert unbuilt.layers == []


def test_same_layer_twice_in_one_model():
    layer = Dense(3, input_dim=3, name="d")
    with pytest.raises(ValueError, match=r"^Sequential: layer 'd' is already in the model; a "
                       r"layer can appear once \(to use the same transformation twice, create a "
                       r"second layer\)$"):
        nnfast.Sequential([layer, layer])
    # the failed construction keeps no claim on the layer
    assert nnfast.Sequential([layer]).layers == [layer]


def test_failed_construction_releases_its_layers():
    second = Dense(1)
    with pytest.raises(ValueError, match="expects 1-D features per sample"):
        nnfast.Sequential([Dense(4, input_shape=(2, 2)), second])   # fails at build
    m = nnfast.Sequential([Dense(4, input_dim=3), second])
    assert m.built and np.shares_memory(second.W, m._params)


def test_copies_and_reloads_are_new_layers(tmp_path):
    shared, m1 = _first()
    layer_copy = copy.deepcopy(shared)
    m2 = nnfast.Sequential([layer_copy, Dense(1)], seed=1)   # a copy belongs to no model
    assert not np.shares_memory(shared.W, m2._params)
    m3 = pickle.loads(pickle.dumps(m1))
    m1.save(tmp_path / "m.nnf")
    m4 = nnfast.load_model(tmp_path / "m.nnf")
    for other in (copy.deepcopy(m1), m3, m4):
        assert all(a is not b for a, b in zip(other.layers, m1.layers))
        assert np.array_equal(other.get_weights()[0], m1.get_weights()[0])


def test_layer_of_a_deleted_model_may_join_another():
    shared, m1 = _first()
    del m1
    gc.collect()
    m2 = nnfast.Sequential([shared, Dense(1)], seed=1)
    assert np.shares_memory(shared.W, m2._params)


def test_dense_input_arguments():
    with pytest.raises(ValueError, match=r"^Dense: input_shape must be a tuple of positive ints, "
                       r"got \(None, 3\)$"):
        Dense(4, input_shape=(None, 3))
    with pytest.raises(ValueError, match=r"^Dense: give input_dim or input_shape, not both; got "
                       r"input_dim=2 and input_shape=\(3,\)$"):
        Dense(4, input_dim=2, input_shape=(3,))
    with pytest.raises(ValueError, match=r"^Dense: input_dim must be a positive int, got 2\.5$"):
        Dense(4, input_dim=2.5)
    with pytest.raises(ValueError, match=r"^Dropout: input_shape must be a tuple of positive "
                       r"ints, got \(3\.0,\)$"):
        Dropout(0.1, input_shape=(3.0,))
    assert Dense(4, input_dim=np.int64(3)).input_shape == (3,)


def test_save_accepts_bytes_paths_as_open_does(tmp_path):
    _, m1 = _first()
    path = bytes(tmp_path / "m.nnf")
    m1.save(path)
    assert np.array_equal(nnfast.load_model(path).get_weights()[0], m1.get_weights()[0])
    assert (tmp_path / "m.nnf").is_file()
