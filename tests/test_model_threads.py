"""One model shared by several Python threads (the web-serving pattern): predict and evaluate
give, bit for bit, what one thread gets; a second fit raises; predict, get_weights and save
during another thread's fit see the weights of one whole step. Threads start together at a
Barrier; waits are on Events, with a timeout only so that a broken lock fails instead of hanging.
"""
import threading

import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast.callbacks import Callback
from nnfast.layers import Dense

THREADS = 6
TIMEOUT = 120   # seconds; reached only if something deadlocks


def run_together(fn, n=THREADS):
    """fn(i) in n threads started at one Barrier; their results, or the first exception."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def body(i):
        try:
            barrier.wait(TIMEOUT)
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the test's thread)
            errors.append(exc)

    workers = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(TIMEOUT)
    assert not any(t.is_alive() for t in workers), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


def served_model(dtype):
    model = nnfast.Sequential([Dense(96, "relu", input_dim=40), Dense(48, "tanh"),
                               Dense(7, "softmax")], dtype=dtype, seed=3)
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return model


def call_plan(seed, calls=8):
    """Different inputs of different lengths and batch sizes for each call."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(int(rng.integers(1, 160)), 40)), int(rng.choice([1, 5, 32, 64])))
            for _ in range(calls)]


@pytest.mark.parametrize("nthreads", [1, 2])
def test_predict_from_many_threads_equals_one_thread(backend, dtype, threads, nthreads):
    threads(nthreads)
    model = served_model(dtype)
    plans = [call_plan(i) for i in range(THREADS)]
    expected = [[model.predict(x, batch_size=b) for x, b in plan] for plan in plans]
    got = run_together(lambda i: [model.predict(x, batch_size=b) for x, b in plans[i]])
    for i in range(THREADS):
        for j, (g, e) in enumerate(zip(got[i], expected[i])):
            np.testing.assert_array_equal(g, e, err_msg=f"thread {i}, call {j}")


@pytest.mark.parametrize("nthreads", [1, 2])
def test_predict_on_an_unbuilt_model_from_threads_builds_it_once(backend, threads, nthreads):
    threads(nthreads)
    model = served_model("float32")
    x = np.random.default_rng(1).normal(size=(50, 40))
    got = run_together(lambda i: model.predict(x[i:], batch_size=8))
    for i, g in enumerate(got):
        np.testing.assert_array_equal(g, model.predict(x[i:], batch_size=8))


@pytest.mark.parametrize("nthreads", [1, 2])
def test_evaluate_from_many_threads_equals_one_thread(backend, dtype, threads, nthreads):
    threads(nthreads)
    x, y = blobs(n=300, features=6)
    model = nnfast.Sequential([Dense(64, "relu", input_dim=6, kernel_regularizer="l1"),
                               Dense(3, "softmax")], dtype=dtype, seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(x))

    def evaluate(i):
        lo, b = 7 * i, (1, 16, 50)[i % 3]
        return model.evaluate(x[lo:], y[lo:], batch_size=b,
                              sample_weight=w[lo:] if i % 2 else None)

    expected = [evaluate(i) for i in range(THREADS)]
    assert run_together(evaluate) == expected


class _Pause(Callback):
    """At the end of batch ``at`` of the first epoch: set ``reached``, wait for ``resume``."""

    def __init__(self, at=0):
        super().__init__()
        self.at, self.epoch = at, None
        self.reached, self.resume = threading.Event(), threading.Event()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if batch == self.at and self.epoch == 0:
            self.reached.set()
            assert self.resume.wait(TIMEOUT)


def _fit_in_thread(model, x, y, callbacks, **kw):
    box = {}

    def body():
        try:
            box["history"] = model.fit(x, y, verbose=0, callbacks=callbacks, **kw)
        except BaseException as exc:  # noqa: BLE001  (checked by the caller)
            box["error"] = exc

    t = threading.Thread(target=body, name="trainer")
    t.start()
    return t, box


def test_second_fit_in_another_thread_raises_and_the_first_is_untouched(backend):
    x, y = blobs(n=128)
    alone = mlp(seed=4)
    alone.fit(x, y, epochs=2, batch_size=16, verbose=0)
    model = mlp(seed=4)
    pause = _Pause(at=1)
    t, box = _fit_in_thread(model, x, y, [pause], epochs=2, batch_size=16)
    assert pause.reached.wait(TIMEOUT)
    try:
        with pytest.raises(RuntimeError, match=r"fit: model 'sequential' is already training "
                                               r"in another thread \('trainer'\)"):
            model.fit(x, y, epochs=1, verbose=0)
        with pytest.raises(RuntimeError, match="compile: .* already training"):
            model.compile("sgd")
        with pytest.raises(RuntimeError, match="set_weights: .* already training"):
            model.set_weights(model.get_weights())
    finally:
        pause.resume.set()
        t.join(TIMEOUT)
    assert not t.is_alive() and "error" not in box, box.get("error")
    assert len(box["history"].epoch) == 2
    np.testing.assert_array_equal(model._params, alone._params)   # the refused calls did nothing
    model.fit(x, y, epochs=1, verbose=0)          # released: this thread may train it now


def test_the_training_thread_may_change_its_own_model_from_a_callback():
    x, y = blobs(n=64)
    model = mlp()

    class Reset(Callback):
        def on_batch_end(self, batch, logs=None):
            self.model.set_weights(self.model.get_weights())

    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[Reset()])
    assert model._step == 4


def test_predict_and_get_weights_during_fit_see_whole_steps(backend, threads):
    threads(1)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(256, 128)), rng.integers(0, 10, 256)

    def wide():   # an update long enough for a forward pass to overlap it
        m = nnfast.Sequential([Dense(512, "relu", input_dim=128), Dense(10, "softmax")], seed=1)
        m.compile("adam", "sparse_categorical_crossentropy")
        m.build()
        return m

    model, probe = wide(), x[:48]
    snapshots = [model.get_weights()]

    class Snap(Callback):   # the weights after every step, in the training thread
        def on_batch_end(self, batch, logs=None):
            snapshots.append(self.model.get_weights())

    pause = _Pause(at=0)
    t, box = _fit_in_thread(model, x, y, [Snap(), pause], epochs=2, batch_size=16)
    assert pause.reached.wait(TIMEOUT)
    outputs, weights = [model.predict(probe, batch_size=len(probe))], [model.get_weights()]
    pause.resume.set()
    while t.is_alive():
        outputs.append(model.predict(probe, batch_size=len(probe)))
        weights.append(model.get_weights())
    t.join(TIMEOUT)
    assert "error" not in box, box.get("error")
    assert len(snapshots) == 1 + 2 * 16
    replay, seen = wide(), []
    for snap in snapshots:
        replay.set_weights(snap)
        seen.append((replay.predict(probe, batch_size=len(probe)), replay._params.copy()))
    for out, ws in zip(outputs, weights):
        assert any(np.array_equal(out, o) for o, _ in seen), "predict mixed two steps"
        flat = np.concatenate([a.ravel() for a in ws])
        assert any(np.array_equal(flat, p) for _, p in seen), "get_weights mixed two steps"


def test_save_and_get_weights_while_threads_predict(backend, tmp_path):
    model = served_model("float32")
    plans = [call_plan(10 + i, calls=6) for i in range(THREADS - 1)]
    expected = [[model.predict(x, batch_size=b) for x, b in plan] for plan in plans]
    before = model.get_weights()

    def work(i):
        if i == THREADS - 1:      # one thread saves and reads the weights meanwhile
            for k in range(4):
                model.save(tmp_path / f"m{k}.nnf")
                for a, b in zip(model.get_weights(), before):
                    np.testing.assert_array_equal(a, b)
            return None
        return [model.predict(x, batch_size=b) for x, b in plans[i]]

    got = run_together(work)
    for i in range(THREADS - 1):
        for g, e in zip(got[i], expected[i]):
            np.testing.assert_array_equal(g, e)
    again = nnfast.load_model(tmp_path / "m3.nnf")
    x, b = plans[0][0]
    np.testing.assert_array_equal(again.predict(x, batch_size=b), expected[0][0])
