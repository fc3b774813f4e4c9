"""Convolution, pooling and batch-norm kernels (issue 18): exact values, Keras 3 as the anchor,
special values, argument checks (the same error from both backends), and the comparison on
the generic and AVX2 kernel paths. The reference comparison over odd sizes and 1 vs 2 threads
is in tests/cases_conv.py (run by tests/test_compare.py); gradients in test_gradcheck_conv.py."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast
from nnfast.backends import reference as ref

compiled = pytest.importorskip("nnfast.backends.compiled", reason="compiled extension not built")
BACKENDS = [ref, compiled]


def _run(code, **env):
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, **env), timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


# ------------------------------------------------------------------ exact values ----------
@pytest.mark.parametrize("m", BACKENDS, ids=["python", "c"])
def test_conv_same_pads_the_extra_row_at_the_bottom(m):
    # 4x4 image 0..15, 2x2 kernel of ones, stride 1, "same": total padding 1, all of it at the
    # bottom/right (Keras: pad_top = total // 2 = 0), so y[i, j] = x[i:i+2, j:j+2].sum()
    x = np.arange(16.0).reshape(1, 4, 4, 1)
    y = m.conv2d_forward(x, np.ones((2, 2, 1, 1)), padding="same")[0, :, :, 0]
    np.testing.assert_array_equal(y, [[10, 14, 18, 10], [26, 30, 34, 18], [42, 46, 50, 26],
                                      [25, 27, 29, 15]])
    # stride 2 on 5 pixels: OH = ceil(5/2) = 3, total padding (3-1)*2 + 3 - 5 = 2, 1 on top
    x = np.arange(25.0).reshape(1, 5, 5, 1)
    y = m.conv2d_forward(x, np.ones((3, 3, 1, 1)), strides=2, padding="same")[0, :, :, 0]
    np.testing.assert_array_equal(y, [[12, 27, 24], [63, 108, 81], [72, 117, 84]])


@pytest.mark.parametrize("m", BACKENDS, ids=["python", "c"])
def test_conv_dilation_bias_and_activation(m):
    x = np.arange(25.0).reshape(1, 5, 5, 1)
    W = np.zeros((2, 2, 1, 2))
    W[:, :, 0, 0] = 1.0   # filter 0: sum of the 4 taps 2 apart
    W[0, 0, 0, 1] = -1.0  # filter 1: minus the top-left tap
    z = np.empty((1, 3, 3, 2))
    y = m.conv2d_forward(x, W, np.array([0.5, 2.0]), dilation_rate=2, activation="relu", z=z)
    np.testing.assert_array_equal(z[0, :, :, 0], [[24.5, 28.5, 32.5], [44.5, 48.5, 52.5],
                                                  [64.5, 68.5, 72.5]])
    np.testing.assert_array_equal(z[0, :, :, 1], [[2, 1, 0], [-3, -4, -5], [-8, -9, -10]])
    np.testing.assert_array_equal(y[0, :, :, 1], [[2, 1, 0], [0, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize("m", BACKENDS, ids=["python", "c"])
def test_avg_pool_same_divides_by_the_pixels_inside(m):
    # 3x3 image, pool 2, stride 2, "same": windows [0:2], [2:3]; the edge windows hold 2 and 1
    # pixels (Keras on TF/JAX; torch's count_include_pad=False)
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    y = m.avg_pool2d_forward(x, 2, None, "same")[0, :, :, 0]
    np.testing.assert_array_equal(y, [[2.0, 3.5], [6.5, 8.0]])
    dx = m.avg_pool2d_backward(np.ones((1, 2, 2, 1)), x, 2, None, "same")[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]])


@pytest.mark.parametrize("m", BACKENDS, ids=["python", "c"])
def test_max_pool_first_maximum_wins_and_nan_propagates(m):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, np.nan, 5.0]]).reshape(1, 2, 4, 1)
    y, arg = m.max_pool2d_forward(x)
    np.testing.assert_array_equal(y.ravel(), [3.0, np.nan])
    np.testing.assert_array_equal(arg.ravel(), [1, 6])  # first 3 (row 0), the NaN at (1, 2)
    dx = m.max_pool2d_backward(np.array([2.0, 7.0]).reshape(1, 1, 2, 1), x, arg)
    np.testing.assert_array_equal(dx.ravel(), [0, 2, 0, 0, 0, 0, 7, 0])
    # overlapping windows (stride 1): both outputs pick the centre; its gradient is the sum
    x = np.array([0.0, 9.0, 0.0]).reshape(1, 1, 3, 1)
    y, arg = m.max_pool2d_forward(x, (1, 2), 1)
    dx = m.max_pool2d_backward(np.array([1.5, 2.5]).reshape(1, 1, 2, 1), x, arg, (1, 2), 1)
    np.testing.assert_array_equal(dx.ravel(), [0, 4.0, 0])


@pytest.mark.parametrize("m", BACKENDS, ids=["python", "c"])
def test_batch_norm_statistics_are_keras_3s(m):
    x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 40.0], [7.0, 40.0]], np.float32)
    mm, mv = np.array([1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32)
    y, xhat, inv = m.batch_norm_forward(x, np.array([2.0, 1.0], np.float32),
                                        np.array([0.0, 1.0], np.float32), mm, mv, True,
                                        momentum=0.75, epsilon=0.0)
    # mean (4, 25), biased variance (5, 225): moving = 0.75 * moving + 0.25 * batch
    np.testing.assert_allclose(mm, [1.75, 6.25], rtol=1e-7)
    np.testing.assert_allclose(mv, [2.0, 57.75], rtol=1e-7)
    np.testing.assert_allclose(inv, [1 / np.sqrt(5), 1 / 15], rtol=1e-7)
    np.testing.assert_allclose(y[:, 1], [0.0, 0.0, 2.0, 2.0], rtol=1e-7)
    np.testing.assert_allclose(xhat[:, 0], np.array([-3, -1, 1, 3]) / np.sqrt(5), rtol=1e-6)
    # inference uses the moving statistics, and leaves them alone
    y, a, b = m.batch_norm_forward(x[:1], None, None, mm, mv, False, epsilon=0.25)
    assert a is None and b is None
    np.testing.assert_allclose(y[0], [(1 - 1.75) / 1.5, (10 - 6.25) / np.sqrt(58)], rtol=1e-6)
    np.testing.assert_allclose(mm, [1.75, 6.25], rtol=1e-7)


@pytest.mark.parametrize("m", BACKENDS, ids=["python", "c"])
def test_empty_batch_gives_empty_outputs(m):
    x = np.zeros((0, 5, 5, 2), np.float32)
    W = np.ones((3, 3, 2, 4), np.float32)
    assert m.conv2d_forward(x, W, padding="same").shape == (0, 5, 5, 4)
    dx, dW, db = m.conv2d_backward(np.zeros((0, 3, 3, 4), np.float32), x, W, None, None)
    assert dx.shape == (0, 5, 5, 2)
    np.testing.assert_array_equal(dW, 0)
    np.testing.assert_array_equal(db, 0)
    assert m.max_pool2d_forward(x)[0].shape == (0, 2, 2, 2)
    assert m.global_avg_pool2d_forward(x).shape == (0, 2)


# ------------------------------------------------------------------- Keras 3 anchor -------
KERAS_SCRIPT = """
import os, sys, json
import numpy as np, keras
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 7, 6, 3)).astype("float32")
np_ = keras.ops.convert_to_numpy
out = {}
for key, layer in (("conv_s2", keras.layers.Conv2D(4, 3, strides=2, padding="same")),
                   ("conv_d2", keras.layers.Conv2D(2, 3, dilation_rate=2, padding="same")),
                   ("conv_valid", keras.layers.Conv2D(3, 5, padding="valid"))):
    y = layer(x)
    out[key] = [np_(y).tolist(), [np.asarray(w).tolist() for w in layer.get_weights()]]
out["avg"] = np_(keras.layers.AveragePooling2D(3, strides=2, padding="same")(x)).tolist()
out["max"] = np_(keras.layers.MaxPooling2D(2, padding="same")(x)).tolist()
out["gap"] = np_(keras.layers.GlobalAveragePooling2D()(x)).tolist()
bn = keras.layers.BatchNormalization(momentum=0.9)
y = bn(x, training=True)
out["bn"] = [np_(y).tolist(), [np.asarray(w).tolist() for w in bn.get_weights()]]
json.dump(out, sys.stdout)
"""


# The average pooling with "same" padding is checked on JAX: Keras' torch backend pads an
# asymmetric "same" window with replicated edge pixels and counts them (docs/conv.md).
@pytest.mark.parametrize("keras_backend", ["torch", "jax"])
def test_kernels_match_keras_3(keras_backend):
    # keras is imported in the child only: in this process it would pick a backend on import
    for mod in ("keras", keras_backend):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} not installed")
    d = json.loads(_run(KERAS_SCRIPT, KERAS_BACKEND=keras_backend))
    x = np.random.default_rng(0).standard_normal((2, 7, 6, 3)).astype("float32")
    for m in BACKENDS:
        for key, geo in (("conv_s2", dict(strides=2, padding="same")),
                         ("conv_d2", dict(dilation_rate=2, padding="same")),
                         ("conv_valid", dict(padding="valid"))):
            y, (W, b) = d[key]
            got = m.conv2d_forward(x, np.array(W, "f4"), np.array(b, "f4"), **geo)
            np.testing.assert_allclose(got, y, rtol=1e-5, atol=2e-6, err_msg=key)
        if keras_backend == "jax":
            np.testing.assert_allclose(m.avg_pool2d_forward(x, 3, 2, "same"), d["avg"],
                                       rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(m.max_pool2d_forward(x, 2, None, "same")[0], d["max"])
        np.testing.assert_allclose(m.global_avg_pool2d_forward(x), d["gap"], rtol=1e-6,
                                   atol=1e-7)
        y, (gamma, beta, mm, mv) = d["bn"]
        m0, v0 = np.zeros(3, "f4"), np.ones(3, "f4")
        got, _, _ = m.batch_norm_forward(x, np.ones(3, "f4"), np.zeros(3, "f4"), m0, v0, True,
                                         0.9)
        np.testing.assert_allclose(got, y, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m0, mm, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(v0, mv, rtol=1e-5)


# ---------------------------------------------------------------------- kernel paths ------
ISA_SCRIPT = """
import numpy as np, nnfast, sys
sys.path.insert(0, "tests")
from cases import Gen
from cases_conv import CONV_CASES
from test_compare import _run, _compare
from nnfast.backends import reference, compiled
assert nnfast.info()["kernel_path"] == sys.argv[1], nnfast.info()["kernel_path"]
n = 0
for case in CONV_CASES:
    for dtype in (np.float32, np.float64):
        for shape in case.shapes:
            args, kw = case.make(Gen(n, dtype, "c"), shape)
            want = _run(getattr(reference, case.name), args, kw, case.inplace, case.call)
            got = {}
            for t in (1, 2):
                nnfast.set_num_threads(t)
                got[t] = _run(getattr(compiled, case.name), args, kw, case.inplace, case.call)
            name = np.dtype(dtype).name
            _compare(case.label, got[1], want, case.rtol[name], case.atol[name])
            for a, b in zip(got[1], got[2]):
                if isinstance(a, np.ndarray):
                    np.testing.assert_array_equal(a, b)
            n += 1
print(n)
"""


@pytest.mark.parametrize("isa", ["generic", "avx2"])
def test_conv_kernels_on_every_kernel_path(isa):
    from nnfast._native import _kernels
    if isa == "avx2" and "avx2" not in _kernels.cpu_features():
        pytest.skip("CPU without AVX2")
    out = _run(ISA_SCRIPT.replace("sys.argv[1]", repr(isa)), NNFAST_ISA=isa)
    assert int(out) > 300


# ------------------------------------------------------------------- bad input ------------
x4 = np.zeros((2, 5, 5, 3))
W4 = np.zeros((3, 3, 3, 4))
BAD = [
    ("conv2d_forward", (np.zeros((5, 5, 3)), W4), {}, ValueError,
     "conv2d_forward: x must be 4-D, got 3-D with shape (5, 5, 3)"),
    ("conv2d_forward", (x4, np.zeros((3, 3, 2, 4))), {}, ValueError,
     "conv2d_forward: W must have shape (KH, KW, 3, F) to match x of shape (2, 5, 5, 3) "
     "(channels last), got (3, 3, 2, 4)"),
    ("conv2d_forward", (x4, np.zeros((7, 3, 3, 4))), {}, ValueError,
     "conv2d_forward: the 7x3 window is larger than the 5x5 input with "
     "padding 'valid'; the output would have no pixels"),
    ("conv2d_forward", (x4, W4), {"dilation_rate": 3}, ValueError,
     "conv2d_forward: the 3x3 window (dilated extent 7x7) is larger than the 5x5 input with "
     "padding 'valid'; the output would have no pixels"),
    ("conv2d_forward", (x4, W4), {"strides": 0}, ValueError,
     "conv2d_forward: strides must be positive, got 0"),
    ("conv2d_forward", (x4, W4), {"strides": (1, 2, 3)}, TypeError,
     "conv2d_forward: strides must be an int or a pair of ints, got (1, 2, 3)"),
    ("conv2d_forward", (x4, W4), {"strides": True}, TypeError,
     "conv2d_forward: strides must be an int or a pair of ints, got True"),
    ("conv2d_forward", (x4, W4), {"padding": "full"}, ValueError,
     "conv2d_forward: padding must be 'valid' or 'same', got 'full'"),
    ("conv2d_forward", (x4, W4), {"out": np.zeros((2, 3, 3, 3))}, ValueError,
     "conv2d_forward: out must have shape (2, 3, 3, 4), got (2, 3, 3, 3)"),
    ("conv2d_forward", (x4, W4, np.zeros(3)), {}, ValueError,
     "conv2d_forward: b must have shape (4,), got (3,)"),
    ("conv2d_forward", (x4.astype(np.float32), W4), {}, TypeError,
     "conv2d_forward: W must have dtype float32 like the other operands, got float64"),
    ("conv2d_forward", (np.zeros((1, 0, 5, 3)), W4), {"padding": "same"}, ValueError,
     "conv2d_forward: the 0x5 input has no pixels, so the output would have none"),
    ("conv2d_backward", (np.zeros((2, 5, 5, 4)), x4, W4, None, None), {}, ValueError,
     "conv2d_backward: dy must have shape (2, 3, 3, 4) (the output of x and W), got "
     "(2, 5, 5, 4)"),
    ("conv2d_backward", (np.zeros((2, 3, 3, 4)), x4, W4, None, None), {"activation": "relu"},
     ValueError, "conv2d_backward: z is required for activation 'relu', got None"),
    ("max_pool2d_forward", (x4,), {"pool_size": 6}, ValueError,
     "max_pool2d_forward: the 6x6 window is larger than the 5x5 input "
     "with padding 'valid'; the output would have no pixels"),
    ("max_pool2d_forward", (x4,), {"pool_size": (2, 0)}, ValueError,
     "max_pool2d_forward: pool_size must be positive, got (2, 0)"),
    ("max_pool2d_backward", (np.zeros((2, 2, 2, 3)), x4, np.full((2, 2, 2, 3), 75)), {},
     ValueError, "max_pool2d_backward: argmax must lie in [0, 75) (an element of one 5x5x3 "
                 "image), got values in [75, 75]"),
    ("max_pool2d_backward", (np.zeros((2, 2, 2, 3)), x4, np.zeros((2, 2, 2, 3))), {},
     TypeError, "max_pool2d_backward: argmax must have dtype int64, got float64"),
    ("avg_pool2d_backward", (np.zeros((2, 3, 3, 3)), x4), {}, ValueError,
     "avg_pool2d_backward: dy must have shape (2, 2, 2, 3) (the pooled x), got (2, 3, 3, 3)"),
    ("global_avg_pool2d_backward", (np.zeros((2, 4)), x4), {}, ValueError,
     "global_avg_pool2d_backward: dy must have shape (2, 3), got (2, 4)"),
    ("batch_norm_forward", (np.zeros(3), None, None, np.zeros(3), np.ones(3)), {}, ValueError,
     "batch_norm_forward: x must have at least 2 dimensions (..., channels), got 1-D with "
     "shape (3,)"),
    ("batch_norm_forward", (x4, np.ones(4), None, np.zeros(3), np.ones(3)), {}, ValueError,
     "batch_norm_forward: gamma must have shape (3,) (one value per channel), got (4,)"),
    ("batch_norm_forward", (x4, None, None, np.zeros(3), np.ones(3)), {"momentum": 1.5},
     ValueError, "batch_norm_forward: momentum must be in [0, 1], got 1.5"),
    ("batch_norm_forward", (np.zeros((0, 3)), None, None, np.zeros(3), np.ones(3), True), {},
     ValueError, "batch_norm_forward: training needs at least one row to take statistics "
                 "over, got x of shape (0, 3)"),
    ("batch_norm_backward", (x4, np.zeros((2, 5, 5, 2)), None, np.ones(3)), {}, ValueError,
     "batch_norm_backward: xhat must have shape (2, 5, 5, 3) like dy, got (2, 5, 5, 2)"),
]


@pytest.mark.parametrize("m", BACKENDS, ids=["python", "c"])
@pytest.mark.parametrize("fn,args,kwargs,exc,msg", BAD, ids=[f"{b[0]}-{i}" for i, b in
                                                           enumerate(BAD)])
def test_bad_input_names_the_argument(m, fn, args, kwargs, exc, msg):
    with pytest.raises(exc) as e:
        getattr(m, fn)(*args, **kwargs)
    assert str(e.value) == msg


def test_ops_dispatch_to_the_active_backend():
    x = np.random.default_rng(1).standard_normal((1, 4, 4, 2))
    with nnfast.use_backend("python"):
        a = nnfast.ops.max_pool2d_forward(x)[0]
    with nnfast.use_backend("c"):
        b = nnfast.ops.max_pool2d_forward(x)[0]
    np.testing.assert_array_equal(a, b)
