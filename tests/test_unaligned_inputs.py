"""C-contiguous but unaligned x, y and sample_weight (np.frombuffer at an odd offset, a memmap
with an odd header) train like aligned copies: the engine copies them once where it converts its
inputs (nnfast/engine/checks.as_features, inputs.prepare, sample_weights), and only then
(break-test 18, r4: the one-call step refused them with a message about their shape)."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast.engine import step as fast_step
from nnfast.engine.checks import as_features
from nnfast.layers import Conv2D, Dense, Flatten


def _unaligned(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of a, of its dtype, at an odd byte offset (not aligned)."""
    buf = np.zeros(a.nbytes + 1, np.uint8)
    u = buf[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    assert u.flags.c_contiguous and not u.flags.aligned
    return u


def test_as_features_copies_unaligned_x_only():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert as_features(x, np.float32, "fit") is x            # nothing to convert
    u = _unaligned(x)
    out = as_features(u, np.float32, "fit")
    assert out.flags.aligned and out.flags.c_contiguous and out.dtype == np.float32
    assert np.array_equal(out, x) and not np.shares_memory(out, u)


def _conv():
    return nnfast.Sequential([Conv2D(4, 3, input_shape=(8, 8, 2)), Flatten(),
                              Dense(3, "softmax")], seed=0)


def _dense():
    return nnfast.Sequential([Dense(6, "relu", input_dim=5), Dense(3, "softmax")], seed=0)


def _data(model_fn, loss):
    rng = np.random.default_rng(0)
    shape = (10, 8, 8, 2) if model_fn is _conv else (10, 5)
    x = rng.standard_normal(shape).astype("float32")
    labels = rng.integers(0, 3, 10)
    y = labels if loss == "sparse_categorical_crossentropy" else np.eye(3, dtype=np.float32)[labels]
    w = rng.uniform(0.5, 2.0, 10).astype("float32")   # the model dtype: not converted
    return x, y, w


def _train(model_fn, loss, how, x, y, w):
    m = model_fn()
    m.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    if how == "fit":
        hist = m.fit(x, y, sample_weight=w, epochs=2, batch_size=4, verbose=0).history
    else:
        hist = [m.train_on_batch(x, y, sample_weight=w), m.train_on_batch(x, y)]
    return m, hist


@pytest.mark.parametrize("which", ["x", "y", "w", "xyw"])
@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("how", ["fit", "train_on_batch"])
@pytest.mark.parametrize("model_fn", [_conv, _dense])
@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_unaligned_x_y_and_weights_train_as_aligned_copies(monkeypatch, which, enabled, how,
                                                          model_fn, loss):
    monkeypatch.setattr(fast_step, "ENABLED", enabled)
    x, y, w = _data(model_fn, loss)
    want, want_hist = _train(model_fn, loss, how, x, y, w)
    x2, y2, w2 = (_unaligned(a) if name in which else a for a, name in zip((x, y, w), "xyw"))
    got, got_hist = _train(model_fn, loss, how, x2, y2, w2)
    assert np.array_equal(got._params, want._params)
    assert got_hist == want_hist
    for k in want.optimizer.state:
        assert np.array_equal(got.optimizer.state[k], want.optimizer.state[k])
