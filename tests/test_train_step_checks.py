"""Issue 13 break-test finding 4: the two TrainStep backends (compiled _native/_step.pxi and
the reference backends/_ref_step.py) accept the same batch arguments and reject the same ones
with the same exception types and messages, before anything changes."""
from __future__ import annotations

import numpy as np
import pytest

import nnfast
from nnfast import backends, optimizers
from nnfast.layers import Dense, Dropout

BACKENDS = ["python"] + (["c"] if backends.compiled_available() else [])


def _step(backend, loss="sparse_categorical_crossentropy"):
    """A model fitted one epoch on `backend` (batch 16) and its built one-call step."""
    last = "softmax" if loss == "sparse_categorical_crossentropy" else "linear"
    with nnfast.use_backend(backend):
        model = nnfast.Sequential([Dense(9, "relu", input_dim=7), Dropout(0.2), Dense(3, last)],
                                  seed=3)
        model.compile(optimizers.SGD(0.05, momentum=0.9), loss)
        x, y = _data(loss)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        ws = model._workspaces._idle[-1]
        return model, ws, ws.train_step.ts


def _data(loss="sparse_categorical_crossentropy"):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(101, 7)).astype(np.float32)
    if loss == "sparse_categorical_crossentropy":
        return x, rng.integers(0, 3, 101)
    return x, rng.normal(size=(101, 3)).astype(np.float32)


def _bufs(ws, ydtype=np.int64):
    return ws.rows("xb", 16, (7,)), np.zeros(16, ydtype), ws.rows("wb", 16, (), np.float32)


def _w(neg_at=None):
    w = np.ones(101, np.float32)
    if neg_at is not None:
        w[neg_at] = -1.0
    return w


X, Y = _data()
IDX = np.arange(101, dtype=np.int64)[::-1].copy()

# (case id, run arguments from (ws) -> (args, kwargs), exception type, exact message)
CASES = [
    ("x_list", lambda ws: ((X.tolist(), Y), {}), TypeError,
     "TrainStep.run: x must be a numpy.ndarray, got list"),
    ("x_int", lambda ws: ((X.astype(np.int64), Y), {}), TypeError,
     "TrainStep.run: x must have dtype float32 or float64, got int64"),
    ("x_float64", lambda ws: ((X.astype(np.float64), Y), {}), TypeError,
     "TrainStep.run: x must have dtype float32, got float64"),
    ("x_strided", lambda ws: ((np.repeat(X, 2, axis=1)[:, ::2], Y), {}), ValueError,
     "TrainStep.run: x must be C-contiguous of shape (N,) + (7,), got (101, 7)"),
    ("y_rows", lambda ws: ((X, Y[:50]), {}), ValueError,
     "TrainStep.run: y must be a C-contiguous array of 101 rows"),
    ("y_float_labels", lambda ws: ((X, Y.astype(np.float32)), {}), ValueError,
     "TrainStep.run: y must be int32 or int64 class labels of shape (101,), got float32 (101,)"),
    ("y_int16_labels", lambda ws: ((X, Y.astype(np.int16)), {}), ValueError,
     "TrainStep.run: y must be int32 or int64 class labels of shape (101,), got int16 (101,)"),
    ("weights_float64", lambda ws: ((X, Y, np.ones(101)), {}), TypeError,
     "TrainStep.run: sample_weight must have dtype float32 like the other operands, "
     "got float64"),
    ("weights_rows", lambda ws: ((X, Y, np.ones(100, np.float32)), {}), ValueError,
     "TrainStep.run: sample_weight must be C-contiguous of shape (101,)"),
    ("index_int32", lambda ws: ((X, Y, None, IDX.astype(np.int32), 0, 4, *_bufs(ws)), {}),
     ValueError, "TrainStep.run: index must be a C-contiguous int64 vector"),
    ("index_list", lambda ws: ((X, Y, None, list(range(101)), 0, 4, *_bufs(ws)), {}),
     ValueError, "TrainStep.run: index must be a C-contiguous int64 vector"),
    ("rows", lambda ws: ((X, Y, None, None, 0, 17), {}), ValueError,
     "TrainStep.run: rows 0:17 must be a non-empty range of at most 16 rows inside [0, 101]"),
    ("rows_empty", lambda ws: ((X, Y, None, None, 5, 5), {}), ValueError,
     "TrainStep.run: rows 5:5 must be a non-empty range of at most 16 rows inside [0, 101]"),
    ("index_value", lambda ws: ((X, Y, None, np.full(101, 101, np.int64), 0, 4, *_bufs(ws)),
                                {}), ValueError,
     "TrainStep.run: index[0] = 101 is outside [0, 101)"),
    ("xb_missing", lambda ws: ((X, Y, None, IDX, 0, 4), {}), ValueError,
     "TrainStep: xb is required, got None"),
    ("xb_list", lambda ws: ((X, Y, None, IDX, 0, 4, [0.0]), {}), TypeError,
     "TrainStep: xb must be a numpy.ndarray, got list"),
    ("xb_float64", lambda ws: ((X, Y, None, IDX, 0, 4, np.zeros((16, 7))), {}), TypeError,
     "TrainStep: xb must be float32, got float64"),
    ("xb_shape", lambda ws: ((X, Y, None, IDX, 0, 4, np.zeros((8, 7), np.float32)), {}),
     ValueError, "TrainStep: xb must have shape (16, 7), got (8, 7)"),
    ("xb_strided", lambda ws: ((X, Y, None, IDX, 0, 4,
                                np.zeros((16, 14), np.float32)[:, ::2]), {}),
     ValueError, "TrainStep: xb must be a writeable C-contiguous array"),
    ("yb_dtype", lambda ws: ((X, Y, None, IDX, 0, 4, _bufs(ws)[0], np.zeros(16, np.int32)), {}),
     ValueError, "TrainStep.run: yb must be a writeable C-contiguous int64 array of shape (16,)"),
    ("wb_missing", lambda ws: ((X, Y, _w(), IDX, 0, 4, *_bufs(ws)[:2]), {}), ValueError,
     "TrainStep: wb is required, got None"),
    ("labels_range", lambda ws: ((X, np.where(np.arange(101) == 2, 3, Y)), {"stop": 4}),
     ValueError, "TrainStep.run: labels must lie in [0, 3), got 3"),
    ("weights_negative", lambda ws: ((X, Y, _w(2)), {"stop": 4}), ValueError,
     "TrainStep.run: sample_weight must be non-negative, got -1.0 at index 2"),
    ("weights_negative_gathered", lambda ws: ((X, Y, _w(98), IDX, 0, 4, *_bufs(ws)), {}),
     ValueError, "TrainStep.run: sample_weight must be non-negative, got -1.0 at index 98"),
    ("lr", lambda ws: ((X, Y), {"stop": 4, "lr": -1.0}), ValueError,
     "TrainStep.run: lr must be >= 0, got -1.0"),
    ("lr_str", lambda ws: ((X, Y), {"stop": 4, "lr": "0.1"}), TypeError,
     "TrainStep.run: lr must be a real number, got str"),
    ("t", lambda ws: ((X, Y), {"stop": 4, "t": 0}), ValueError,
     "TrainStep.run: step must be in [1, 2**63) (updates so far, this one included), got 0"),
    ("weight_decay", lambda ws: ((X, Y), {"stop": 4, "weight_decay": -0.5}), ValueError,
     "TrainStep.run: weight_decay must be >= 0, got -0.5"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case, make, exc, message", CASES, ids=[c[0] for c in CASES])
def test_run_rejects_the_same_inputs_with_the_same_errors(backend, case, make, exc, message):
    model, ws, ts = _step(backend)
    before = (model._params.copy(), [s.copy() for s in model.optimizer.state.values()])
    args, kwargs = make(ws)
    with nnfast.use_backend(backend), pytest.raises(exc) as err:
        ts.run(*args, **kwargs)
    assert type(err.value) is exc and str(err.value) == message
    assert np.array_equal(model._params, before[0])       # checked before any work
    for s, b in zip(model.optimizer.state.values(), before[1]):
        assert np.array_equal(s, b)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float_targets_reject_integer_y_alike(backend):
    model, ws, ts = _step(backend, "mse")
    x, y = _data("mse")
    with pytest.raises(TypeError) as err:
        ts.run(x, y.astype(np.int64), stop=4)
    assert str(err.value) == "TrainStep.run: y must have dtype float32 or float64, got int64"
    with pytest.raises(ValueError) as err:
        ts.run(x, y[:, :2].copy(), stop=4)
    assert str(err.value) == "TrainStep.run: y must have shape (101, 3), got (101, 2)"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shuffled", [False, True])
def test_int32_labels_train_as_int64_labels(backend, shuffled):
    """Both backends take int32 labels (DESIGN.md: labels int64 or int32) with the int64 bits."""
    out = []
    for dtype in (np.int64, np.int32):
        model, ws, ts = _step(backend)
        y = Y.astype(dtype)
        w = np.random.default_rng(1).uniform(0, 2, 101).astype(np.float32)
        extra = (IDX, 3, 19, *_bufs(ws, dtype)) if shuffled else (None, 3, 19)
        loss = ts.run(X, y, w, *extra, lr=0.05, t=model.optimizer.iterations + 1)
        out.append((loss, model._params.copy()))
    assert out[0][0] == out[1][0]
    assert np.array_equal(out[0][1], out[1][1])
