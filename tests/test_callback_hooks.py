"""Keras 3's test and predict hooks (on_test_*, on_predict_*) in evaluate, predict and fit's
validation (nnfast/engine/hooks.py, docs/callbacks.md), against the sequences Keras 3.15
(KERAS_BACKEND=torch, keras/src/backend/torch/trainer.py) produced for the same model, weights
and data; test_live_keras_sequences reruns Keras when it is installed."""
import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast import callbacks as cb
from nnfast.layers import Dense

W = np.array([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]], "float32")
B = np.array([0.05, -0.05], "float32")
X = np.array([[1, 2, 0], [0, 1, 1], [2, 0, 1], [1, 1, 1], [0, 0, 2]], "float32")
Y = np.array([0, 1, 0, 1, 1])

_PLAIN = ("on_train_begin", "on_train_end", "on_test_begin", "on_test_end", "on_predict_begin",
          "on_predict_end")
_INDEXED = ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
            "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
            "on_predict_batch_end")

# Recorded from Keras 3.15 (torch backend): evaluate / predict / fit(validation_data=X[:3])
# with batch_size=2, shuffle=False, SGD(0.1); logs rounded to 6 digits, outputs as shapes.
KERAS_EVALUATE = [
    ("on_test_begin", {}),
    ("on_test_batch_begin", 0, {}), ("on_test_batch_end", 0, {"accuracy": 1.0, "loss": 0.458101}),
    ("on_test_batch_begin", 1, {}), ("on_test_batch_end", 1, {"accuracy": 0.75, "loss": 0.487626}),
    ("on_test_batch_begin", 2, {}), ("on_test_batch_end", 2, {"accuracy": 0.8, "loss": 0.447568}),
    ("on_test_end", {"accuracy": 0.8, "loss": 0.447568})]
KERAS_PREDICT = [
    ("on_predict_begin", {}),
    ("on_predict_batch_begin", 0, {}), ("on_predict_batch_end", 0, {"outputs": (2, 2)}),
    ("on_predict_batch_begin", 1, {}), ("on_predict_batch_end", 1, {"outputs": (2, 2)}),
    ("on_predict_batch_begin", 2, {}), ("on_predict_batch_end", 2, {"outputs": (1, 2)}),
    ("on_predict_end", {})]
KERAS_FIT_VALIDATION = [
    ("on_train_begin", {}), ("on_epoch_begin", 0, {}),
    ("on_train_batch_begin", 0, {}),
    ("on_train_batch_end", 0, {"accuracy": 1.0, "loss": 0.458101}),
    ("on_train_batch_begin", 1, {}),
    ("on_train_batch_end", 1, {"accuracy": 0.75, "loss": 0.491534}),
    ("on_train_batch_begin", 2, {}),
    ("on_train_batch_end", 2, {"accuracy": 0.8, "loss": 0.444486}),
    ("on_test_begin", {}),
    ("on_test_batch_begin", 0, {}), ("on_test_batch_end", 0, {"accuracy": 1.0, "loss": 0.430496}),
    ("on_test_batch_begin", 1, {}), ("on_test_batch_end", 1, {"accuracy": 1.0, "loss": 0.41287}),
    ("on_test_end", {"accuracy": 1.0, "loss": 0.41287}),
    ("on_epoch_end", 0, {"accuracy": 0.8, "loss": 0.444486, "val_accuracy": 1.0,
                         "val_loss": 0.41287}),
    ("on_train_end", {"accuracy": 0.8, "loss": 0.444486, "val_accuracy": 1.0,
                      "val_loss": 0.41287})]
# Keras 3.15 with a callback setting stop_evaluating / stop_predicting at batch 0: the logs of
# the batches run, the rows computed
KERAS_STOPPED_EVALUATE = {"accuracy": 1.0, "loss": 0.458101}
KERAS_STOPPED_PREDICT_SHAPE = (2, 2)


def _fmt(logs):
    if logs is None:
        return None
    return {k: tuple(v.shape) if np.ndim(v) else round(float(v), 6) for k, v in logs.items()
            if k not in ("batch", "size")}     # nnfast's extra train batch keys


def recorder(base):
    class Rec(base):
        def __init__(self):
            super().__init__()
            self.calls = []
    def plain(name):
        return lambda self, logs=None: self.calls.append((name, _fmt(logs)))

    def indexed(name):
        return lambda self, b, logs=None: self.calls.append((name, b, _fmt(logs)))
    for h in _PLAIN:
        setattr(Rec, h, plain(h))
    for h in _INDEXED:
        setattr(Rec, h, indexed(h))
    return Rec()


def model():
    m = nnfast.Sequential([Dense(2, "softmax", input_dim=3)])
    m.compile(nnfast.optimizers.SGD(0.1), "sparse_categorical_crossentropy", ["accuracy"])
    m.set_weights([W, B])
    return m


def batches(n=5, size=2):
    return [(X[i:min(i + size, n)], Y[i:min(i + size, n)]) for i in range(0, n, size)]


def test_evaluate_sequence_and_logs_as_keras():
    r = recorder(cb.Callback)
    logs = model().evaluate(X, Y, batch_size=2, callbacks=[r])
    assert r.calls == KERAS_EVALUATE
    assert _fmt(logs) == KERAS_EVALUATE[-1][1]
    assert r.params == {"epochs": 1, "steps": 3, "batch_size": 2, "samples": 5, "verbose": 0}
    assert r.model is not None


def test_evaluate_iterable_sequence_as_keras():
    r = recorder(cb.Callback)
    logs = model().evaluate(batches(), callbacks=(r,))
    assert r.calls == KERAS_EVALUATE and _fmt(logs) == KERAS_EVALUATE[-1][1]
    assert r.params == {"epochs": 1, "steps": 3, "batch_size": None, "samples": None,
                        "verbose": 0}
    r = recorder(cb.Callback)        # a generator with steps: only the batches read
    model().evaluate((b for b in batches()), steps=2, callbacks=[r])
    assert r.calls == KERAS_EVALUATE[:5] + [("on_test_end", KERAS_EVALUATE[4][2])]


def test_predict_sequence_as_keras_and_outputs_are_the_rows():
    m = model()
    r = recorder(cb.Callback)
    out = m.predict(X, batch_size=2, callbacks=[r])
    assert r.calls == KERAS_PREDICT
    seen = []
    m.predict(X, batch_size=2, callbacks=[cb.LambdaCallback(
        on_predict_batch_end=lambda b, logs: seen.append(logs["outputs"].copy()))])
    np.testing.assert_array_equal(np.concatenate(seen), out)
    r = recorder(cb.Callback)
    np.testing.assert_array_equal(m.predict(batches(), callbacks=[r]), out)
    assert r.calls == KERAS_PREDICT
    r = recorder(cb.Callback)
    m.predict([(X[:2],), (X[2:],)], callbacks=[r])
    assert [c[0] for c in r.calls] == ["on_predict_begin", "on_predict_batch_begin",
                                       "on_predict_batch_end", "on_predict_batch_begin",
                                       "on_predict_batch_end", "on_predict_end"]
    assert r.calls[4] == ("on_predict_batch_end", 1, {"outputs": (3, 2)})


def test_fit_validation_runs_test_hooks_with_fits_callbacks():
    r = recorder(cb.Callback)
    m = model()
    m.fit(X, Y, batch_size=2, epochs=1, verbose=0, shuffle=False, callbacks=[r],
          validation_data=(X[:3], Y[:3]))
    assert r.calls == KERAS_FIT_VALIDATION
    assert r.params["epochs"] == 1 and r.params["steps"] == 3   # fit's params, as Keras
    r = recorder(cb.Callback)
    model().fit(batches(), epochs=1, verbose=0, shuffle=False, callbacks=[r],
                validation_data=batches(3))
    assert r.calls == KERAS_FIT_VALIDATION
    r = recorder(cb.Callback)
    model().fit(batches(), epochs=1, verbose=0, shuffle=False, callbacks=[r],
                validation_data=(X[:3], Y[:3]), validation_steps=2)
    assert r.calls == KERAS_FIT_VALIDATION
    r = recorder(cb.Callback)    # no validation: no test hooks
    model().fit(X, Y, batch_size=2, verbose=0, shuffle=False, callbacks=[r])
    assert not [c for c in r.calls if "test" in c[0]]


def test_without_batch_hooks_only_begin_and_end_run():
    class BeginEnd(cb.Callback):
        def __init__(self):
            super().__init__()
            self.calls = []
        def on_test_begin(self, logs=None):
            self.calls.append(("test_begin", logs))
        def on_test_end(self, logs=None):
            self.calls.append(("test_end", _fmt(logs)))
        def on_predict_begin(self, logs=None):
            self.calls.append(("predict_begin", logs))
        def on_predict_end(self, logs=None):
            self.calls.append(("predict_end", logs))
    c = BeginEnd()
    m = model()
    lists = cb.CallbackList([c])
    assert not lists.wants_test_batch_logs
    assert cb.CallbackList([recorder(cb.Callback)]).wants_test_batch_logs
    m.evaluate(X, Y, batch_size=2, callbacks=[c])
    m.predict(X, callbacks=[c])
    assert c.calls == [("test_begin", {}), ("test_end", KERAS_EVALUATE[-1][1]),
                       ("predict_begin", {}), ("predict_end", {})]


def test_stop_evaluating_and_stop_predicting_as_keras():
    class Stop(cb.Callback):
        def on_test_batch_end(self, batch, logs=None):
            if batch == 0:
                self.model.stop_evaluating = True
        def on_predict_batch_end(self, batch, logs=None):
            if batch == 0:
                self.model.stop_predicting = True
    m = model()
    assert _fmt(m.evaluate(X, Y, batch_size=2, callbacks=[Stop()])) == KERAS_STOPPED_EVALUATE
    assert m.predict(X, batch_size=2, callbacks=[Stop()]).shape == KERAS_STOPPED_PREDICT_SHAPE
    assert _fmt(m.evaluate(batches(), callbacks=[Stop()])) == KERAS_STOPPED_EVALUATE
    assert m.predict(batches(), callbacks=[Stop()]).shape == KERAS_STOPPED_PREDICT_SHAPE
    # the flags are reset at the start of each pass: the next calls run whole
    assert _fmt(m.evaluate(X, Y, batch_size=2)) == KERAS_EVALUATE[-1][1]
    assert m.predict(X, batch_size=2).shape == (5, 2)

    class StopAtBegin(cb.Callback):   # checked after a batch, as Keras: one batch runs
        def on_test_begin(self, logs=None):
            self.model.stop_evaluating = True
    assert _fmt(m.evaluate(X, Y, batch_size=2, callbacks=[StopAtBegin()])) == \
        KERAS_STOPPED_EVALUATE


class Boom(cb.Callback):
    def __init__(self, hook):
        super().__init__()
        setattr(self, hook, self._boom)
    def _boom(self, *args, **kwargs):
        raise RuntimeError("boom")


@pytest.mark.parametrize("hook", ["on_test_begin", "on_test_batch_begin", "on_test_batch_end",
                                  "on_test_end"])
def test_a_raising_test_hook_propagates_and_leaves_the_model_usable(hook):
    m = model()
    with pytest.raises(RuntimeError, match="^boom$"):
        m.evaluate(X, Y, batch_size=2, callbacks=[Boom(hook)])
    with pytest.raises(RuntimeError, match="^boom$"):
        m.evaluate(batches(), callbacks=[Boom(hook)])
    with pytest.raises(RuntimeError, match="^boom$"):
        m.fit(X, Y, batch_size=2, verbose=0, validation_data=(X, Y), callbacks=[Boom(hook)])
    before = m.get_weights()
    fresh = model()
    fresh.set_weights(before)       # the pool's workspaces came back intact
    assert m.evaluate(X, Y, batch_size=2) == fresh.evaluate(X, Y, batch_size=2)
    m.fit(X, Y, batch_size=2, verbose=0)          # the training lock was released
    assert not np.array_equal(m.get_weights()[0], before[0])


@pytest.mark.parametrize("hook", ["on_predict_begin", "on_predict_batch_begin",
                                  "on_predict_batch_end", "on_predict_end"])
def test_a_raising_predict_hook_propagates(hook):
    m = model()
    for data in (X, batches()):
        with pytest.raises(RuntimeError, match="^boom$"):
            m.predict(data, callbacks=[Boom(hook)])
    assert m.predict(X).shape == (5, 2)


@pytest.mark.parametrize("call", ["evaluate", "predict", "fit", "evaluate_it", "predict_it",
                                  "fit_it"])
def test_bad_callbacks_argument(call):
    m = model()
    run = {"evaluate": lambda c: m.evaluate(X, Y, callbacks=c),
           "predict": lambda c: m.predict(X, callbacks=c),
           "fit": lambda c: m.fit(X, Y, verbose=0, callbacks=c),
           "evaluate_it": lambda c: m.evaluate(batches(), callbacks=c),
           "predict_it": lambda c: m.predict(batches(), callbacks=c),
           "fit_it": lambda c: m.fit(batches(), verbose=0, callbacks=c)}[call]
    fn = call.removesuffix("_it")
    before = m.get_weights()
    with pytest.raises(TypeError) as info:
        run(cb.History())
    assert str(info.value) == (f"{fn}: callbacks must be a list of nnfast.callbacks.Callback "
                               "instances, got History")
    with pytest.raises(TypeError) as info:
        run([cb.History(), print])
    assert str(info.value) == (f"{fn}: callbacks must be nnfast.callbacks.Callback instances, "
                               "got builtin_function_or_method at callbacks[1]")
    with pytest.raises(TypeError) as info:
        run("History")
    assert str(info.value).endswith("instances, got str")
    for got, want in zip(m.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_distributed_in_one_process_runs_the_same_hooks():
    r = recorder(cb.Callback)
    model().evaluate(X, Y, batch_size=2, callbacks=[r], distributed=True)
    assert r.calls == KERAS_EVALUATE
    r = recorder(cb.Callback)
    model().predict(X, batch_size=2, callbacks=[r], distributed=True)
    assert r.calls == KERAS_PREDICT
    r = recorder(cb.Callback)
    model().fit(X, Y, batch_size=2, verbose=0, shuffle=False, callbacks=[r],
                validation_data=(X[:3], Y[:3]), distributed=True)
    assert r.calls == KERAS_FIT_VALIDATION


def test_live_keras_sequences():
    import os
    if os.environ.get("KERAS_BACKEND", "torch") != "torch":
        pytest.skip("the Keras comparison runs on the torch backend")
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras")
    km = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="softmax")])
    km.set_weights([W, B])
    km.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(),
               metrics=["accuracy"])

    def keras_calls(run):
        r = recorder(keras.callbacks.Callback)
        run(r)
        # Keras' predict outputs are arrays too: _fmt gives their shapes
        return r.calls
    assert keras_calls(lambda r: km.evaluate(X, Y, batch_size=2, verbose=0,
                                             callbacks=[r])) == KERAS_EVALUATE
    assert keras_calls(lambda r: km.predict(X, batch_size=2, verbose=0,
                                            callbacks=[r])) == KERAS_PREDICT

    class Stop(keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            self.model.stop_evaluating = True
        def on_predict_batch_end(self, batch, logs=None):
            self.model.stop_predicting = True
    assert _fmt(km.evaluate(X, Y, batch_size=2, verbose=0, callbacks=[Stop()],
                            return_dict=True)) == KERAS_STOPPED_EVALUATE
    assert km.predict(X, batch_size=2, verbose=0, callbacks=[Stop()]).shape == \
        KERAS_STOPPED_PREDICT_SHAPE
    assert keras_calls(lambda r: km.fit(X, Y, batch_size=2, verbose=0, shuffle=False,
                                        callbacks=[r], validation_data=(X[:3], Y[:3]))) == \
        KERAS_FIT_VALIDATION


def test_no_callbacks_no_callback_list(monkeypatch):
    # the serving path: predict / evaluate without callbacks and without a bar build no
    # CallbackList (it cost ~20 µs of a 57 µs batch-1 predict) and give the same results
    from nnfast.engine import hooks as engine_hooks
    x, y = blobs()
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    expected_out, expected_logs = model.predict(x, callbacks=[cb.Callback()]), \
        model.evaluate(x, y, callbacks=[cb.Callback()])

    def refuse(*args, **kwargs):
        raise AssertionError("a CallbackList was built")

    monkeypatch.setattr(engine_hooks, "callback_list", refuse)
    model.stop_predicting = model.stop_evaluating = True     # reset at the start, as Keras
    np.testing.assert_array_equal(model.predict(x), expected_out)
    assert model.evaluate(x, y, verbose=2) == expected_logs
    assert model.stop_predicting is False and model.stop_evaluating is False
