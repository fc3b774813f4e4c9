"""Issue 13 break-test findings 1-3: what a callback changes inside fit reaches the one-call
step (nnfast/engine/step.py) at the same batch as the per-layer path, bit for bit; compile
is refused while fit runs (both paths alike)."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import losses, optimizers, regularizers
from nnfast.callbacks import LambdaCallback
from nnfast.engine import step as fast_step
from nnfast.layers import Activation, Dense, Dropout


def _data(n=96, features=6, classes=3, one_hot=False):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, features)).astype("float32")
    y = rng.integers(0, classes, n)
    return x, (np.eye(classes)[y] if one_hot else y)


def _layers(act="relu", reg=None, rate=0.2):
    return [Dense(12, act, input_dim=6, kernel_regularizer=reg), Dropout(rate),
            Dense(8, "tanh"), Activation("relu"), Dense(3, "softmax")]


def _run(monkeypatch, enabled, opt, change, layers=_layers, loss="sparse_categorical_crossentropy",
         one_hot=False, dtype="float32"):
    """fit 2 epochs of 6 batches with `change(model, batch)` called in on_train_batch_begin
    (None: no change); returns (model, history, one-call steps run)."""
    monkeypatch.setattr(fast_step, "ENABLED", enabled)
    calls = []
    orig = fast_step.Step.run
    monkeypatch.setattr(fast_step.Step, "run", lambda self, *a: calls.append(1) or orig(self, *a))
    model = nnfast.Sequential(layers(), seed=1, dtype=dtype)
    model.compile(opt(), loss() if callable(loss) else loss, ["accuracy"])
    cbs = [] if change is None else [
        LambdaCallback(on_train_batch_begin=lambda b, logs: change(model, b))]
    x, y = _data(one_hot=one_hot)
    hist = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=cbs)
    return model, hist.history, len(calls)


def _assert_bit_identical_and_effective(monkeypatch, opt, change, **kw):
    (a, ha, fast_calls) = _run(monkeypatch, True, opt, change, **kw)
    (b, hb, slow_calls) = _run(monkeypatch, False, opt, change, **kw)
    assert fast_calls > 0 and slow_calls == 0
    assert np.array_equal(a._params, b._params)
    assert set(a.optimizer.state) == set(b.optimizer.state)
    for k in a.optimizer.state:
        assert np.array_equal(a.optimizer.state[k], b.optimizer.state[k]), k
    assert ha == hb
    # the change did something (else the comparison above proves nothing)
    c = _run(monkeypatch, False, opt, None, **kw)[0]
    assert not np.array_equal(c._params, b._params)


def _set(obj_of, name, value_of_batch):
    def change(model, b):
        if b >= 2:   # from the third batch of each epoch: mid-epoch, not at its start
            setattr(obj_of(model), name, value_of_batch(b))
    return change


def _OPT(model):
    return model.optimizer


def _SGD_M():
    return optimizers.SGD(0.05, momentum=0.9)


def _ADAM():
    return optimizers.Adam(1e-2)


@pytest.mark.parametrize("opt, change", [
    (_SGD_M, _set(_OPT, "momentum", lambda b: 0.95 - 0.05 * b)),
    (_SGD_M, _set(_OPT, "nesterov", lambda b: True)),
    (_SGD_M, _set(_OPT, "weight_decay", lambda b: 0.05 * b)),
    (_SGD_M, _set(_OPT, "clipnorm", lambda b: 0.01 * b)),
    (_ADAM, _set(_OPT, "beta_1", lambda b: 0.5)),
    (_ADAM, _set(_OPT, "beta_2", lambda b: 0.9 - 0.01 * b)),
    (_ADAM, _set(_OPT, "epsilon", lambda b: 0.1)),
    (_ADAM, _set(_OPT, "weight_decay", lambda b: 0.1)),
    (lambda: optimizers.AdamW(1e-2), _set(_OPT, "weight_decay", lambda b: 0.5)),
    (lambda: optimizers.RMSprop(1e-2, momentum=0.5), _set(_OPT, "rho", lambda b: 0.5)),
    (lambda: optimizers.RMSprop(1e-2), _set(_OPT, "epsilon", lambda b: 0.5)),
    (lambda: optimizers.Adagrad(0.1), _set(_OPT, "epsilon", lambda b: 0.5)),
    (_ADAM, _set(lambda m: m.layers[1], "rate", lambda b: 0.1 * (b % 4))),
    (_ADAM, _set(lambda m: m.layers[0], "activation", lambda b: "tanh")),
    (_ADAM, _set(lambda m: m.layers[3], "activation", lambda b: "sigmoid")),
], ids=["momentum", "nesterov", "sgd_weight_decay", "clipnorm", "beta_1", "beta_2",
        "adam_epsilon", "adam_weight_decay", "adamw_weight_decay", "rho", "rmsprop_epsilon",
        "adagrad_epsilon", "dropout_rate", "dense_activation", "activation_layer"])
def test_a_hyperparameter_set_mid_epoch_reaches_the_next_step(monkeypatch, opt, change):
    _assert_bit_identical_and_effective(monkeypatch, opt, change)


@pytest.mark.parametrize("change", [
    _set(lambda m: m.layers[0].kernel_regularizer, "l2", lambda b: 0.1 * b),
    _set(lambda m: m.layers[0].kernel_regularizer, "l1", lambda b: 0.01 * b),
    _set(lambda m: m.layers[0], "kernel_regularizer", lambda b: regularizers.L1L2(0.01, 0.5)),
    _set(lambda m: m.layers[0], "kernel_regularizer", lambda b: None),
], ids=["l2", "l1", "replaced", "removed"])
def test_a_regularizer_changed_mid_epoch_reaches_the_next_step(monkeypatch, change):
    _assert_bit_identical_and_effective(monkeypatch, _ADAM, change,
                                        layers=lambda: _layers(reg=regularizers.L1L2(0.0, 1e-3)))


def test_leaky_relu_alpha_and_loss_options_set_mid_epoch(monkeypatch):
    _assert_bit_identical_and_effective(
        monkeypatch, _ADAM, _set(lambda m: m.layers[0], "alpha", lambda b: 0.5),
        layers=lambda: _layers(act="leaky_relu"))
    _assert_bit_identical_and_effective(
        monkeypatch, _ADAM, _set(lambda m: m.loss, "label_smoothing", lambda b: 0.3),
        loss=lambda: losses.CategoricalCrossentropy(label_smoothing=0.1), one_hot=True)


def test_the_issue_reproducer_momentum_per_batch_float64(monkeypatch):
    _assert_bit_identical_and_effective(
        monkeypatch, lambda: optimizers.SGD(0.05, momentum=0.95),
        lambda m, b: setattr(m.optimizer, "momentum", 0.95 - 0.01 * b), dtype="float64")


def test_momentum_switched_off_mid_fit_leaves_the_one_call_step(monkeypatch):
    """The step's state layout is fixed at build: with the velocity no longer matching the
    momentum, fit finishes on the per-layer path (which keeps the velocity array)."""
    change = _set(_OPT, "momentum", lambda b: 0.0)
    _assert_bit_identical_and_effective(monkeypatch, _SGD_M, change)
    model = nnfast.Sequential(_layers(), seed=1)
    model.compile(_SGD_M(), "sparse_categorical_crossentropy")
    model.build((6,))
    assert fast_step.unsupported(model) is None
    model.optimizer.momentum = 0.0
    assert fast_step.unsupported(model) == "momentum changed after build"


def test_current_sees_each_watched_value():
    x, y = _data()
    model = nnfast.Sequential(_layers(reg="l2"), seed=1)
    model.compile(optimizers.SGD(0.1, momentum=0.5), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    st = model._workspaces._idle[-1].train_step
    assert st.current(model)
    for obj, name, value in [(model.optimizer, "clipnorm", 1.0),
                             (model.layers[0].kernel_regularizer, "l2", 0.5),
                             (model.layers[1], "rate", 0.5),
                             (model.layers[2], "activation", "relu")]:
        old = getattr(obj, name)
        setattr(obj, name, value)
        assert not st.current(model), name
        setattr(obj, name, old)
        assert st.current(model), name


# ------------------------------------------------------------- compile while fit runs
_REFUSED = ("compile: cannot recompile model 'sequential' while fit runs (called from a "
            "callback?): that fit keeps the loss, metrics and targets it started with. Set "
            "model.stop_training = True in the callback and compile after fit returns, then "
            "fit again.")


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("loss, hook", [
    ("sparse_categorical_crossentropy", "on_train_batch_begin"),
    ("categorical_crossentropy", "on_train_batch_begin"),     # finding 3: y int labels
    ("mse", "on_train_batch_end"),
    ("sparse_categorical_crossentropy", "on_epoch_end"),
])
def test_compile_inside_fit_raises_and_changes_nothing(monkeypatch, enabled, loss, hook):
    monkeypatch.setattr(fast_step, "ENABLED", enabled)
    x, y = _data()
    model = nnfast.Sequential(_layers(), seed=1)
    model.compile(optimizers.SGD(0.05), "sparse_categorical_crossentropy", ["accuracy"])
    opt, mets, seen = model.optimizer, list(model.metrics), {}

    def recompile(b, logs=None):
        if b == 3 or hook == "on_epoch_end":
            seen["params"] = model._params.copy()
            model.compile("adam", loss)
    with pytest.raises(RuntimeError) as err:
        model.fit(x, y, epochs=2, batch_size=16, verbose=0,
                  callbacks=[LambdaCallback(**{hook: recompile})])
    assert str(err.value) == _REFUSED
    assert model.optimizer is opt and type(model.loss) is losses.SparseCategoricalCrossentropy
    assert len(model.metrics) == 1 and model.metrics[0] is mets[0]
    assert np.array_equal(model._params, seen["params"])
    # after fit: compile and fit work again
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
