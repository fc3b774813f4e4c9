"""One input-shape rule for fit / evaluate / predict and the nnfast command (issue 17, item 9):
x is (n_samples, *input_shape) exactly; a 1-D x is refused with the reshape that fits."""
import re

import numpy as np
import pytest

import nnfast
from nnfast.engine.inputs import features
from nnfast.layers import Dense, Flatten


def model64():
    m = nnfast.Sequential([Dense(4, activation="relu", input_dim=64), Dense(3)], seed=0)
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return m


def call(m, fn, x):
    y = np.zeros(len(x) if np.ndim(x) else 1, np.int64)
    return {"predict": lambda: m.predict(x, verbose=0),
            "evaluate": lambda: m.evaluate(x, y, verbose=0),
            "fit": lambda: m.fit(x, y, epochs=1, verbose=0)}[fn]()


@pytest.mark.parametrize("fn", ["predict", "evaluate", "fit"])
def test_one_sample_as_1d_gets_the_exact_hint(fn):
    with pytest.raises(ValueError) as e:
        call(model64(), fn, np.ones(64))
    assert str(e.value) == (f"{fn}: x must be at least 2-D (n_samples, ...), got shape (64,); "
                            "for one sample of shape (64,) use x.reshape(1, 64)")


def test_1d_of_another_length_says_what_the_model_takes():
    with pytest.raises(ValueError, match=re.escape(
            "got shape (10,); the model takes samples of shape (64,): pass an array of shape "
            "(n_samples, 64)")):
        model64().predict(np.ones(10), verbose=0)


def test_single_feature_model_hint_is_reshape_minus_1_1():
    m = nnfast.Sequential([Dense(2, input_dim=1)])
    with pytest.raises(ValueError, match=re.escape("got shape (5,); the model takes 1 feature "
                                                   "per sample: use x.reshape(-1, 1)")):
        m.predict(np.ones(5), verbose=0)


def test_model_without_input_shape_gives_both_hints_as_sklearn():
    m = nnfast.Sequential([Dense(2)])
    with pytest.raises(ValueError, match=re.escape(
            "use x.reshape(-1, 1) if it holds a single feature or x.reshape(1, -1) if it "
            "holds a single sample")):
        m.predict(np.ones(5), verbose=0)


@pytest.mark.parametrize("fn", ["predict", "evaluate", "fit"])
def test_images_are_not_flattened_silently(fn):
    with pytest.raises(ValueError) as e:
        call(model64(), fn, np.ones((5, 8, 8)))
    assert str(e.value) == (f"{fn}: x has samples of shape (8, 8), the model expects (64,); "
                            "use x.reshape(len(x), 64)")


def test_flatten_model_takes_images_and_refuses_flat_rows():
    m = nnfast.Sequential([Flatten(input_shape=(8, 8)), Dense(3)], seed=0)
    assert m.predict(np.ones((5, 8, 8)), verbose=0).shape == (5, 3)
    with pytest.raises(ValueError, match=re.escape(
            "x has samples of shape (64,), the model expects (8, 8); "
            "use x.reshape(len(x), 8, 8)")):
        m.predict(np.ones((5, 64)), verbose=0)


def test_the_rule_names_the_callers_argument():
    with pytest.raises(ValueError, match=re.escape(
            "predict: --input row.npy must be at least 2-D (n_samples, ...), got shape (64,)")):
        features(model64(), np.ones(64), "predict", "--input row.npy")
    out = features(model64(), np.ones((2, 64), np.float64), "predict")
    assert out.dtype == np.float32 and out.shape == (2, 64) and out.flags.c_contiguous
