"""The per-model workspace (nnfast/engine/workspace.py) hands out arrays of the shape and dtype
asked for now, not those of an earlier request: a recompile to another target format, and an
activation a callback changes, train on both training paths (break-test 18, r1 and r2)."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import optimizers
from nnfast.callbacks import Callback
from nnfast.engine import step as fast_step
from nnfast.engine.workspace import Workspace
from nnfast.layers import Conv2D, Dense, Flatten


def test_rows_gives_a_new_array_when_the_tail_or_dtype_changes():
    ws = Workspace([], 4, "float32", None)
    a = ws.rows("yb", 3, (), np.int64)
    assert ws.rows("yb", 3, (), np.int64) is a        # the cached view, same request
    b = ws.rows("yb", 3, (5,))
    assert (b.shape, b.dtype) == ((3, 5), np.float32)
    c = ws.rows("yb", 3, (5,), np.float64)
    assert (c.shape, c.dtype) == ((3, 5), np.float64)
    d = ws.rows("yb", 2, (5,), "float64")              # another n of the same array
    assert (d.shape, d.dtype) == ((2, 5), np.float64) and np.shares_memory(c, d)


def _mlp():
    return nnfast.Sequential([Dense(5, "relu", input_dim=4), Dense(3, "softmax")], seed=0)


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("loss2, target", [
    ("categorical_crossentropy", lambda y: np.eye(3)[y]),
    ("mse", lambda y: np.eye(3, dtype=np.float32)[y]),
    ("sparse_categorical_crossentropy", lambda y: y.astype(np.int32)),
])
def test_recompile_to_another_target_format_then_fit_same_batch_size(
        monkeypatch, tmp_path, enabled, loss2, target):
    monkeypatch.setattr(fast_step, "ENABLED", enabled)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4)).astype("float32")
    y = np.arange(8) % 3
    m = _mlp()
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=4, verbose=0)
    m.compile(optimizer="sgd", loss=loss2)
    m.fit(x, target(y), batch_size=4, verbose=0)   # before the fix: ValueError (stale "yb")
    # the same two fits, the second in a model (and workspace) of its own
    ref = _mlp()
    ref.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    ref.fit(x, y, batch_size=4, verbose=0)
    ref.save(tmp_path / "m.nnf")                    # keeps the epoch count (the shuffle order)
    ref = nnfast.load_model(tmp_path / "m.nnf")
    ref.compile(optimizer="sgd", loss=loss2)
    ref.fit(x, target(y), batch_size=4, verbose=0)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        assert np.array_equal(a, b)


class _ToRelu(Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            self.model.layers[0].activation = "relu"
            self.model.layers[2].activation = "relu"


class _SubSGD(optimizers.SGD):
    """Not nnfast's own class: fit keeps the per-layer path."""


def _fit_changing_activation(monkeypatch, enabled, opt, callbacks):
    monkeypatch.setattr(fast_step, "ENABLED", enabled)
    calls = []
    orig = fast_step.Step.run
    monkeypatch.setattr(fast_step.Step, "run", lambda self, *a: calls.append(1) or orig(self, *a))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 6, 6, 2)).astype("float32")
    y = rng.standard_normal((8, 2)).astype("float32")
    m = nnfast.Sequential([Conv2D(4, 3, input_shape=(6, 6, 2)), Flatten(), Dense(2)], seed=0)
    m.compile(optimizer=opt(0.05), loss="mse")
    hist = m.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=callbacks)
    return m, hist.history, len(calls)


@pytest.mark.parametrize("enabled, opt", [(False, optimizers.SGD), (True, _SubSGD)])
def test_per_layer_path_takes_an_activation_that_now_needs_z(monkeypatch, enabled, opt):
    # None -> relu: the layers now ask for a pre-activation buffer "z" (before: KeyError 'z')
    fast, fast_hist, fast_calls = _fit_changing_activation(
        monkeypatch, True, optimizers.SGD, [_ToRelu()])
    slow, slow_hist, slow_calls = _fit_changing_activation(monkeypatch, enabled, opt, [_ToRelu()])
    assert fast_calls == 6 and slow_calls == 0
    assert np.array_equal(fast._params, slow._params)
    assert fast_hist == slow_hist
    unchanged = _fit_changing_activation(monkeypatch, enabled, opt, [])[0]
    assert not np.array_equal(unchanged._params, slow._params)
