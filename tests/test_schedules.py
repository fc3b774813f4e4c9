"""Learning-rate schedules (nnfast.optimizers.schedules): values, the optimizer's use per step,
callbacks, saving, and argument checks. Keras 3 is the anchor when installed."""
from __future__ import annotations

import json
import math
import os
import zipfile

import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast import callbacks, optimizers
from nnfast.optimizers import schedules as S

os.environ.setdefault("KERAS_BACKEND", "torch")   # the installed oracle's backend

STEPS = [0, 1, 2, 3, 5, 9, 10, 11, 19, 20, 21, 37, 50, 99, 100, 101, 250, 1000]

CASES = [
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5)),
    ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5,
                              staircase=True)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.2, decay_steps=7, decay_rate=0.3)),
    ("InverseTimeDecay", dict(initial_learning_rate=0.2, decay_steps=7, decay_rate=0.3,
                              staircase=True)),
    ("PiecewiseConstantDecay", dict(boundaries=[10, 20, 100], values=[1.0, 0.5, 0.1, 0.01])),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=50)),
    ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=50, end_learning_rate=0.01,
                             power=2.0, cycle=True)),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100)),
    ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=100, alpha=0.1)),
    ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=80, warmup_target=0.2,
                         warmup_steps=20)),
]


def test_hand_values():
    assert S.ExponentialDecay(0.1, 10, 0.5)(20) == pytest.approx(0.025, abs=0, rel=1e-15)
    assert S.ExponentialDecay(0.1, 10, 0.5, staircase=True)(19) == pytest.approx(0.05, rel=1e-15)
    assert S.InverseTimeDecay(1.0, 2, 1.0)(4) == pytest.approx(1 / 3, rel=1e-15)
    pw = S.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [pw(s) for s in (0, 10, 11, 20, 21)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    assert S.PolynomialDecay(1.0, 10, end_learning_rate=0.0)(5) == 0.5
    assert S.PolynomialDecay(1.0, 10, end_learning_rate=0.0)(15) == 0.0
    # cycle: decay_steps grows to the next multiple, 10 -> 20 at step 15
    assert S.PolynomialDecay(1.0, 10, end_learning_rate=0.0, cycle=True)(15) == 0.25
    assert S.CosineDecay(1.0, 10)(5) == pytest.approx(0.5, rel=1e-15)
    assert S.CosineDecay(1.0, 10, alpha=0.2)(10) == pytest.approx(0.2, rel=1e-15)
    warm = S.CosineDecay(0.0, 10, warmup_target=1.0, warmup_steps=4)
    assert [warm(s) for s in (0, 2, 4)] == [0.0, 0.5, 1.0]
    assert warm(9) == pytest.approx(0.5, rel=1e-15) and warm(100) == pytest.approx(0.0, abs=1e-16)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_matches_keras_at_many_steps(name, kwargs):
    keras = pytest.importorskip("keras")
    ours, theirs = getattr(S, name)(**kwargs), getattr(keras.optimizers.schedules, name)(**kwargs)
    got = np.array([ours(s) for s in STEPS])
    want = np.array([float(keras.ops.convert_to_numpy(theirs(s))) for s in STEPS])
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-8)   # Keras computes in float32


def test_optimizer_uses_schedule_of_iterations_before_the_update():
    lr = S.PiecewiseConstantDecay([0, 1], [0.5, 0.25, 0.125])
    opt = optimizers.SGD(learning_rate=lr)
    opt.build(1, np.float64)
    p, seen = np.zeros(1), []
    for _ in range(3):
        seen.append(opt.learning_rate)
        opt.step(p, np.ones(1))
    assert seen == [0.5, 0.25, 0.125]
    assert p[0] == -(0.5 + 0.25 + 0.125)      # step t used schedule(t), t = 0, 1, 2


def test_training_with_schedule_matches_keras_sgd_steps():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 1))
    sched = dict(initial_learning_rate=0.1, decay_steps=2, decay_rate=0.5)
    m = nnfast.Sequential([nnfast.layers.Dense(1, input_dim=3)], dtype="float64", seed=0)
    m.compile(optimizers.SGD(S.ExponentialDecay(**sched)), "mse")
    m.build((3,))
    k = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, dtype="float64")])
    k.compile(keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(**sched)), "mse")
    k.set_weights(m.get_weights())
    m.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    k.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    assert m.optimizer.iterations == 6
    for a, b in zip(m.get_weights(), k.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


MESSAGE = ("SGD: this optimizer was created with a learning-rate schedule (ExponentialDecay) as "
           "its learning_rate, so its learning rate cannot be set")


def test_setting_learning_rate_on_a_schedule_raises_type_error_as_keras():
    opt = optimizers.SGD(S.ExponentialDecay(0.1, 10, 0.5))
    with pytest.raises(TypeError, match=MESSAGE.replace("(", r"\(").replace(")", r"\)")):
        opt.learning_rate = 0.01


@pytest.mark.parametrize("cb", [
    lambda: callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5),
    lambda: callbacks.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=10.0),
])
def test_lr_callbacks_with_a_schedule_raise_as_keras(cb):
    x, y = blobs(40)
    m = mlp(compile_with=optimizers.SGD(S.ExponentialDecay(0.1, 10, 0.5)))
    with pytest.raises(TypeError, match="cannot be set"):
        m.fit(x, y, epochs=3, verbose=0, callbacks=[cb()])


def test_saved_and_restored_with_the_model(tmp_path):
    x, y = blobs(60)
    lr = S.CosineDecay(0.05, 30, alpha=0.1, warmup_target=0.1, warmup_steps=5)
    m = mlp(compile_with=optimizers.Adam(lr))
    m.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "m.nnf"
    m.save(path)
    doc = json.loads(zipfile.ZipFile(path).read("model.json"))
    assert doc["compile"]["optimizer"]["config"]["learning_rate"] == {
        "class": "CosineDecay", "config": {"initial_learning_rate": 0.05, "decay_steps": 30.0,
                                           "alpha": 0.1, "name": "CosineDecay",
                                           "warmup_target": 0.1, "warmup_steps": 5.0}}
    back = nnfast.load_model(path)
    assert back.optimizer.learning_rate_schedule == lr
    assert back.optimizer.iterations == 4 and back.optimizer.learning_rate == lr(4)
    m.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    back.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    np.testing.assert_array_equal(m.get_weights()[0], back.get_weights()[0])


@pytest.mark.parametrize("spec, match", [
    ({"class": "os.system", "config": {}},
     "compile.optimizer.config.learning_rate.class: expected one of ExponentialDecay, "
     "InverseTimeDecay, PiecewiseConstantDecay, PolynomialDecay, CosineDecay, got 'os.system'"),
    ({"class": "ExponentialDecay", "config": {"initial_learning_rate": 0.1}},
     "compile.optimizer.config.learning_rate.config: missing field 'decay_steps'"),
    ({"class": "ExponentialDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": -1,
                                              "decay_rate": 0.5}},
     "decay_steps must be a finite number > 0, got -1"),
    ("ExponentialDecay", "compile.optimizer.config.learning_rate: expected a number in "
                         "\\[0, inf\\], got 'ExponentialDecay'"),
    ({"class": "ExponentialDecay"}, "compile.optimizer.config.learning_rate: missing field "
                                    "'config'"),
])
def test_loading_builds_only_known_schedules_with_checked_args(tmp_path, spec, match):
    m = mlp(compile_with=optimizers.SGD(S.ExponentialDecay(0.1, 10, 0.5)))
    src, dst = tmp_path / "a.nnf", tmp_path / "b.nnf"
    m.save(src)

    def edit(doc):
        doc["compile"]["optimizer"]["config"]["learning_rate"] = spec
    with zipfile.ZipFile(src) as zin:
        members = {name: zin.read(name) for name in zin.namelist()}
    doc = json.loads(members["model.json"])
    edit(doc)
    members["model.json"] = json.dumps(doc).encode()
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    with pytest.raises(ValueError, match=f"cannot load .*{match}"):
        nnfast.load_model(dst)


@pytest.mark.parametrize("make, message", [
    (lambda: S.ExponentialDecay(0.1, 0, 0.5),
     "ExponentialDecay: decay_steps must be a finite number > 0, got 0"),
    (lambda: S.ExponentialDecay(-0.1, 10, 0.5),
     "ExponentialDecay: initial_learning_rate must be a finite number >= 0, got -0.1"),
    (lambda: S.ExponentialDecay(0.1, 10, 0.5, staircase="yes"),
     "ExponentialDecay: staircase must be True or False, got 'yes'"),
    (lambda: S.InverseTimeDecay(0.1, 10, math.nan),
     "InverseTimeDecay: decay_rate must be a finite number >= 0, got nan"),
    (lambda: S.PiecewiseConstantDecay([10, 20], [1.0, 0.5]),
     "PiecewiseConstantDecay: values must have one more entry than boundaries .and boundaries "
     "at least one., got 2 boundaries and 2 values"),
    (lambda: S.PiecewiseConstantDecay([20, 10], [1.0, 0.5, 0.1]),
     r"PiecewiseConstantDecay: boundaries must be strictly increasing, got \[20, 10\]"),
    (lambda: S.PiecewiseConstantDecay(10, [1.0, 0.5]),
     "PiecewiseConstantDecay: boundaries and values must be lists of numbers"),
    (lambda: S.PolynomialDecay(0.1, 10, power="2"),
     "PolynomialDecay: power must be a finite number >= 0, got '2'"),
    (lambda: S.CosineDecay(0.1, 10, warmup_steps=-1),
     "CosineDecay: warmup_steps must be a finite number >= 0, got -1"),
    (lambda: S.CosineDecay(0.1, 10)(-1),
     "learning-rate schedule: step must be a number >= 0, got -1"),
])
def test_constructor_arguments_checked(make, message):
    with pytest.raises(ValueError, match=message):
        make()
