"""A model whose output per sample is not 1-D (an image: it ends in Conv2D, a pooling,
BatchNormalization or a Reshape) is refused by fit, evaluate, train_on_batch and test_on_batch
with one ValueError before any work (nnfast/engine/inputs.check_output_rows); Keras 3 trains
such models, nnfast does not (docs/model.md). Break-test 18, r5: before, kernel messages that
differed by path."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast.layers import BatchNormalization, Conv2D, Dense, Flatten, MaxPooling2D, Reshape

_RNG = np.random.default_rng(0)
_X = _RNG.standard_normal((4, 6, 6, 2)).astype("float32")

_ENDS = {   # fresh layers per model: a layer belongs to one model
    "conv": (lambda: [Conv2D(3, 3, padding="same", input_shape=(6, 6, 2))], (6, 6, 3)),
    "pool": (lambda: [Conv2D(3, 3, padding="same", input_shape=(6, 6, 2)), MaxPooling2D()],
             (3, 3, 3)),
    "bn": (lambda: [Conv2D(3, 3, input_shape=(6, 6, 2)), BatchNormalization()], (4, 4, 3)),
    "reshape": (lambda: [Flatten(input_shape=(6, 6, 2)), Dense(8), Reshape((2, 4))], (2, 4)),
}

_CALLS = {
    "fit": lambda m, y: m.fit(_X, y, epochs=1, verbose=0),
    "evaluate": lambda m, y: m.evaluate(_X, y),
    "train_on_batch": lambda m, y: m.train_on_batch(_X, y),
    "test_on_batch": lambda m, y: m.test_on_batch(_X, y),
    "fit batches": lambda m, y: m.fit([(_X, y)], verbose=0),
}


@pytest.mark.parametrize("end", sorted(_ENDS))
@pytest.mark.parametrize("call", sorted(_CALLS))
def test_image_output_with_a_loss_is_one_clear_error_before_any_work(end, call):
    layers, out = _ENDS[end]
    m = nnfast.Sequential(layers(), seed=0)
    m.compile(optimizer="sgd", loss="mse")
    weights = [w.copy() for w in m.get_weights()]
    y = np.zeros((4,) + out, np.float32)
    fn = call.split()[0]
    with pytest.raises(ValueError) as info:
        _CALLS[call](m, y)
    assert str(info.value) == (
        f"{fn}: the model's output has shape {(None,) + out}, but the loss 'mse' needs 2-D "
        "(batch, features) predictions; end the model with Flatten() (and a Dense layer to "
        "the number of targets) so each sample's output is one row")
    assert m.optimizer.iterations == 0 and len(m.history.epoch if m.history else []) == 0
    for a, b in zip(m.get_weights(), weights):
        assert np.array_equal(a, b)


def test_the_same_model_ending_in_flatten_trains():
    m = nnfast.Sequential([Conv2D(3, 3, padding="same", input_shape=(6, 6, 2)), Flatten()],
                          seed=0)
    m.compile(optimizer="sgd", loss="mse")
    hist = m.fit(_X, np.zeros((4, 108), np.float32), epochs=1, verbose=0)
    assert len(hist.history["loss"]) == 1 and m.optimizer.iterations == 1
