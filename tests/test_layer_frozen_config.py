"""A built layer's geometry is read-only: the weights, the workspaces and the plans are laid out
for it, so an assignment raises AttributeError and changes nothing (it used to fail later with
the plans' internal messages, or be ignored). activation, alpha and epsilon may change: the next
predict runs the new value (a cached inference plan used to keep the old one)."""
import re

import numpy as np
import pytest

import nnfast
from nnfast.layers import (
    Activation,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPooling2D,
    Reshape,
)


def _model():
    return nnfast.Sequential([
        Reshape((6, 6, 1), input_shape=(36,)),
        Conv2D(3, 3, activation="relu", name="c"),
        BatchNormalization(name="bn"),
        MaxPooling2D(2, name="mp"),
        AveragePooling2D(1, name="ap"),
        Flatten(),
        Dropout(0.25, name="do"),
        Dense(5, activation="tanh", name="d"),
        Activation("leaky_relu", alpha=0.2, name="a"),
        Dense(3, activation="softmax", name="out"),
    ], seed=3)


CASES = [
    ("c", "filters", 6, 3), ("c", "kernel_size", (5, 5), (3, 3)), ("c", "strides", (2, 2), (1, 1)),
    ("c", "padding", "same", "valid"), ("c", "dilation_rate", (2, 2), (1, 1)),
    ("c", "use_bias", False, True), ("bn", "center", False, True), ("bn", "scale", False, True),
    ("mp", "pool_size", (3, 3), (2, 2)), ("mp", "strides", (1, 1), (2, 2)),
    ("ap", "padding", "same", "valid"), ("d", "units", 7, 5), ("d", "use_bias", False, True),
]


def _fitted():
    model = _model()
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 36)).astype(np.float32), rng.integers(0, 3, 20)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    return model, x, y


@pytest.mark.parametrize("name,attr,value,now", CASES)
def test_assigning_a_built_layers_geometry_raises_and_changes_nothing(name, attr, value, now):
    model, x, y = _fitted()
    want = model.predict(x)
    layer = model.get_layer(name)
    kind = type(layer).__name__
    with pytest.raises(AttributeError, match=re.escape(
            f"{kind} {name!r}: {attr} cannot change once the layer is built (it is {now!r}, "
            f"assigned {value!r}): its weights and the model's plans are laid out for it. Use "
            f"a new layer, e.g. {kind}.from_config({{**layer.get_config(), {attr!r}: ...}})")):
        setattr(layer, attr, value)
    assert getattr(layer, attr) == now
    np.testing.assert_array_equal(model.predict(x), want)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)     # still trains


@pytest.mark.parametrize("backend", ["c", "python"])
@pytest.mark.parametrize("name,attr,value", [
    ("c", "activation", "tanh"), ("d", "activation", "linear"), ("a", "alpha", 0.7),
    ("a", "activation", "elu"), ("bn", "epsilon", 0.5), ("out", "activation", "sigmoid")])
def test_a_changed_activation_alpha_or_epsilon_reaches_the_next_predict(backend, name, attr,
                                                                         value):
    if backend == "c" and not nnfast.backends.compiled_available():
        pytest.skip("compiled extension not built")
    with nnfast.use_backend(backend):
        model, x, _ = _fitted()
        before = model.predict(x)
        assert model(x[:1]).shape == (1, 3)         # the plans of predict and model(x) cached
        setattr(model.get_layer(name), attr, value)
        twin = nnfast.Sequential.from_config(model.get_config())  # built with the new value
        twin.set_weights(model.get_weights())
        want = twin.predict(x)
        assert not np.array_equal(want, before)
        np.testing.assert_array_equal(model.predict(x), want)
        np.testing.assert_array_equal(model(x), want)


def test_an_unknown_activation_is_refused_on_assignment():
    model, x, _ = _fitted()
    want = model.predict(x)
    with pytest.raises(ValueError, match=re.escape("unknown activation 'nope'; valid "
                                                   "activations: identity, relu")):
        model.get_layer("d").activation = "nope"
    assert model.get_layer("d").activation == "tanh"
    np.testing.assert_array_equal(model.predict(x), want)


def test_an_unbuilt_layer_takes_assignments_and_builds_with_them():
    layer = Dense(4, activation="relu")
    layer.units = 6
    model = nnfast.Sequential([layer])
    model.build((3,))
    assert model.output_shape == (6,) and layer.W.shape == (3, 6)
    layer.name = "renamed"   # not configuration the kernels see
    assert layer.name == "renamed"


def test_get_layer_by_name_and_index_as_keras():
    model = _model()
    assert model.get_layer("bn") is model.layers[2]
    assert model.get_layer(index=-1) is model.layers[-1]
    assert model.get_layer("bn", index=0) is model.layers[0]   # the index wins, as in Keras
    with pytest.raises(ValueError, match=re.escape(
            "get_layer: no layer named 'nope'; the layers are ['reshape', 'c', 'bn'")):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="get_layer: provide either a layer name or a layer "
                                         "index"):
        model.get_layer()
    with pytest.raises(ValueError, match="get_layer: index 10 is out of range: the model has "
                                         "10 layers"):
        model.get_layer(index=10)
    with pytest.raises(TypeError, match="get_layer: index must be an int, got '1'"):
        model.get_layer(index="1")


def test_sequential_from_config_makes_the_same_model_with_new_weights():
    model, x, _ = _fitted()
    twin = nnfast.Sequential.from_config(model.get_config())
    assert twin.get_config() == model.get_config()
    assert twin.built and twin.optimizer is None
    assert all(a is not b for a, b in zip(twin.layers, model.layers))
    twin.set_weights(model.get_weights())
    np.testing.assert_array_equal(twin.predict(x), model.predict(x))
    with pytest.raises(ValueError, match="unknown layer class 'Conv3D'"):
        nnfast.Sequential.from_config({**model.get_config(),
                                       "layers": [{"class": "Conv3D", "config": {}}]})
