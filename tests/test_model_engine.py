"""The engine under fit: allocation-free steps, workspace reuse, Ctrl-C, progress output."""
import os
import signal
import tracemalloc
import warnings

import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast import backends
from nnfast.callbacks import Callback
from nnfast.engine import step as fast_step
from nnfast.engine import training
from nnfast.layers import Dense, Dropout


class _AtBatch(Callback):
    def __init__(self, batch, fn, epoch=0):
        super().__init__()
        self.batch, self.fn, self.epoch, self.current = batch, fn, epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_batch_end(self, batch, logs=None):
        if batch == self.batch and self.current == self.epoch:
            self.fn(self.model)


def _compiled_kernels() -> bool:
    """True when the active backend is the compiled one, running its own kernels."""
    if not backends.compiled_available() or backends.get_backend() != "c":
        return False
    from nnfast.backends import compiled, reference
    return all(getattr(compiled, name) is not getattr(reference, name)
               for name in ("dense_forward", "dense_backward", "softmax_cross_entropy",
                            "adam_update", "dropout_forward", "accuracy"))


class _TraceSteps(Callback):
    """The largest traced-memory rise within one step, over batches [start, stop) of epoch 0.

    Measured step by step (peak since the previous batch end, then reset_peak), because
    NumPy's small-object caches grow slowly across calls: summed over many steps they
    reach kilobytes without any array being allocated.
    """

    def __init__(self, start, stop):
        super().__init__()
        self.start, self.stop, self.growth, self.base = start, stop, None, 0

    def on_batch_end(self, batch, logs=None):
        if batch == self.start - 1:
            tracemalloc.start()
            self.growth = 0
        elif self.start <= batch < self.stop and tracemalloc.is_tracing():
            current, peak = tracemalloc.get_traced_memory()
            self.growth = max(self.growth, peak - self.base)
            if batch == self.stop - 1:
                tracemalloc.stop()
                return
        else:
            return
        tracemalloc.reset_peak()
        self.base = tracemalloc.get_traced_memory()[0]


def test_training_step_allocates_no_array_after_the_first_batch():
    if not _compiled_kernels():
        pytest.skip("needs the compiled backend (the reference allocates temporaries by design)")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64 * 24, 256)).astype(np.float32)
    y = rng.integers(0, 64, len(x))
    model = nnfast.Sequential([Dense(256, "relu", input_dim=256), Dropout(0.1),
                               Dense(64, "softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    tracer = _TraceSteps(4, 20)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[tracer])
    # The smallest per-step matrix is 64 x 64 floats (16 kB), the activations 64 kB each: the
    # callbacks' and the step's small Python objects are all that may appear (2.1 kB was seen on
    # the generic path, so the bound leaves room for them, not for any matrix)
    assert tracer.growth is not None and tracer.growth < 8192, tracer.growth


@pytest.mark.parametrize("one_call", [True, False], ids=["one_call_step", "per_layer"])
def test_workspace_buffers_are_reused_across_steps_epochs_and_fits(monkeypatch, one_call):
    x, y = blobs(n=70)             # batch 32: two full batches and a last batch of 6
    model = mlp(dropout=0.2)
    seen = []
    monkeypatch.setattr(fast_step, "ENABLED", one_call)

    def recorded(ws, result):
        seen.append((id(ws), [(k, a.__array_interface__["data"][0])
                              for k, a in sorted(ws._base.items(), key=str)]))
        return result

    step, run = training.train_step, fast_step.Step.run
    monkeypatch.setattr(training, "train_step",
                        lambda model, ws, *args: recorded(ws, step(model, ws, *args)))
    monkeypatch.setattr(fast_step.Step, "run",
                        lambda self, model, ws, *args: recorded(ws, run(self, model, ws, *args)))
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert len(seen) == 9 and all(s == seen[0] for s in seen)
    (ws,) = model._workspaces._idle                                   # given back after fit
    assert id(ws) == seen[0][0] and ws.capacity == 32 and model._step == 9
    bufs_full, bufs_last = ws.layer_buffers(32, True), ws.layer_buffers(6, True)
    assert bufs_last[0]["y"].base is bufs_full[0]["y"].base          # views of one array
    assert ws.layer_buffers(32, True) is bufs_full                    # cached views
    model.predict(x, batch_size=64)     # the inference plan has workspaces of its own
    assert model._workspaces._idle == [ws]
    model.evaluate(x, y, batch_size=16)
    assert model._workspaces._idle == [ws]                            # smaller batches fit
    model.evaluate(x, y, batch_size=64)
    (ws64,) = model._workspaces._idle
    assert ws64 is not ws and ws64.capacity == 64                     # larger: reallocated


def test_keyboard_interrupt_from_a_callback_stops_cleanly():
    x, y = blobs()

    def interrupt(model):
        raise KeyboardInterrupt

    model = mlp()
    with pytest.raises(KeyboardInterrupt):     # propagates as raised
        model.fit(x, y, epochs=5, batch_size=16, verbose=0, validation_split=0.25,
                  callbacks=[_AtBatch(3, interrupt, epoch=1)])
    history = model.history
    assert history.epoch == [0] and len(history.history["val_loss"]) == 1
    assert model._step == 12 + 4 and model.optimizer.iterations == 16
    assert np.isfinite(model.predict(x)).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert again.epoch == [0]


@pytest.mark.usefixtures("python_sigint")
def test_ctrl_c_signal_stops_after_the_current_batch():
    x, y = blobs()
    model = mlp()
    handler = signal.getsignal(signal.SIGINT)

    def press_ctrl_c(model):
        os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match=r"^fit: interrupted \(Ctrl-C\) after 1 complete "
                       r"epoch\(s\); the model keeps the weights of its last completed batch and "
                       r"model.history holds the completed epochs$"):
        model.fit(x, y, epochs=3, batch_size=16, verbose=0,
                  callbacks=[_AtBatch(2, press_ctrl_c, epoch=1)])
    assert model.history.epoch == [0]
    assert model._step == 15 + 3           # the batch that was running finished
    assert signal.getsignal(signal.SIGINT) is handler


def test_verbose_0_prints_nothing(capsys):
    x, y = blobs()
    mlp().fit(x, y, epochs=2, verbose=0, validation_split=0.2)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_verbose_2_prints_one_line_per_epoch(capsys):
    x, y = blobs()
    mlp().fit(x, y, epochs=3, verbose=2, validation_split=0.2)
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("Epoch 1/3")
    assert "loss:" in lines[0] and "val_accuracy:" in lines[0] and out.err == ""


def test_verbose_1_shows_a_progress_bar_per_epoch(capsys):
    x, y = blobs()
    mlp().fit(x, y, epochs=2, batch_size=16, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/2" in err and "Epoch 2/2" in err and "loss:" in err and "accuracy:" in err
    assert "15/15" in err


def test_predict_and_evaluate_show_a_progress_bar_only_at_verbose_1(capsys):
    x, y = blobs()                      # 240 rows: 8 batches of 32
    model = mlp()
    quiet = model.predict(x, verbose=0)
    assert capsys.readouterr().err == ""
    shown = model.predict(x, verbose=1)
    err = capsys.readouterr().err
    assert "predict" in err and "8/8" in err
    np.testing.assert_array_equal(shown, quiet)
    model.predict(x, verbose=2)
    assert capsys.readouterr().err == ""
    model.evaluate(x, y, verbose=1)
    err = capsys.readouterr().err
    assert "evaluate" in err and "8/8" in err


def test_epochs_zero_does_nothing_but_builds():
    x, y = blobs()
    model = mlp()
    history = model.fit(x, y, epochs=0, verbose=0)
    assert history.history == {} and model._step == 0 and model.built


def test_no_shuffle_and_partial_last_batch():
    x, y = blobs(n=50)
    a, b = mlp(seed=1), mlp(seed=1)
    a.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    b.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0)
    assert a._step == b._step == 8
    assert not np.array_equal(a._params, b._params)
    c = mlp(seed=1)
    c.fit(x, y, epochs=2, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_array_equal(a._params, c._params)
