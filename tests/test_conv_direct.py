"""The single-channel direct convolution (csrc/nn/conv.c conv_direct1, gemm/conv1_simd.h): one
input channel with unit width stride and dilation. Its forward must give the implicit GEMM's
bits (same taps, order and arithmetic); its filter gradient sums in its own fixed order, so it
must give the same bits for any thread count and agree with the GEMM path and the reference.
The col2im runs (stride 1) keep the per-tap order, so the input gradient is unchanged. Each
case runs on every kernel path the CPU has (subprocesses with NNFAST_ISA)."""
import itertools

import numpy as np
import pytest
from isa_runs import ISAS, run_on_isa

compiled = pytest.importorskip("nnfast.backends.compiled", reason="compiled extension not built")

# (H, W), (KH, KW), padding, height stride, height dilation, filters, images: edges of the
# padded rows (1-pixel images, kernels wider than the output), filters on both sides of the
# kernels' register blocks (6 and 8), an output row longer than a 32-pixel chunk
SHAPES = [((28, 28), (5, 5), "valid", 1, 1, 6, 3), ((7, 13), (3, 3), "same", 2, 1, 9, 2),
          ((1, 5), (1, 4), "valid", 1, 1, 1, 1), ((40, 3), (2, 1), "same", 1, 2, 13, 2),
          ((9, 37), (3, 5), "same", 1, 1, 7, 1), ((9, 70), (4, 3), "valid", 2, 2, 8, 3),
          ((5, 5), (5, 5), "same", 1, 1, 4, 130)]
ACTS = ["relu", "identity", "tanh", "softmax", "log_softmax", "leaky_relu"]

_SCRIPT = r"""
import json, sys, numpy as np, nnfast
from nnfast import ops
from nnfast._native import _kernels as K
shapes, acts = json.loads(sys.argv[1])
rng = np.random.default_rng(7)
out = {"fwd_same": 0, "z_same": 0, "dw_threads_same": 0, "dw_close": 0, "dx_same": 0, "n": 0,
       "nonfinite_fwd_same": 0, "nonfinite_dw_nan_same": 0, "path": nnfast.info()["kernel_path"]}
for (H, W), (KH, KW), pad, S, D, F, N in shapes:
    for dt, act in [(dt, a) for dt in (np.float32, np.float64) for a in acts]:
        x = rng.standard_normal((N, H, W, 1)).astype(dt)
        Wt = rng.standard_normal((KH, KW, 1, F)).astype(dt)
        b = rng.standard_normal(F).astype(dt)
        kw = dict(strides=(S, 1), padding=pad, dilation_rate=(D, 1))
        res = {}
        for on, nt in ((True, 1), (True, 2), (False, 1)):
            K._conv_set_direct(on)
            nnfast.set_num_threads(nt)
            y = ops.conv2d_forward(x, Wt, b, activation=act, **kw)
            z = np.empty_like(y)
            ops.conv2d_forward(x, Wt, b, activation=act, out=np.empty_like(y), z=z, **kw)
            dy = np.random.default_rng(1).standard_normal(y.shape).astype(dt)
            dW, dx = np.full_like(Wt, 0.5), np.empty_like(x)
            ops.conv2d_backward(dy, x, Wt, z, y, activation="identity", dW=dW,
                                db=np.empty(F, dt), dx=dx, accumulate=True, **kw)
            res[on, nt] = (y, z, dW, dx)
        K._conv_set_direct(True)
        d1, d2, g = res[True, 1], res[True, 2], res[False, 1]
        out["n"] += 1
        out["fwd_same"] += all(np.array_equal(r[0], g[0], equal_nan=True) for r in (d1, d2))
        out["z_same"] += all(np.array_equal(r[1], g[1], equal_nan=True) for r in (d1, d2))
        out["dw_threads_same"] += np.array_equal(d1[2], d2[2])
        tol = 2e-5 if dt == np.float32 else 1e-12
        out["dw_close"] += bool(np.allclose(d1[2], g[2], rtol=tol, atol=tol * np.abs(g[2]).max()))
        out["dx_same"] += np.array_equal(d1[3], g[3]) and np.array_equal(d2[3], g[3])
    # a NaN and an Inf weight in the last kernel row (it reaches the bottom padding with
    # "same"), an Inf in the gradient: the padding's zeros multiply them as in the GEMM
    Wn = rng.standard_normal((KH, KW, 1, F))
    Wn[-1, 0, 0, 0], Wn[-1, -1, 0, -1] = np.nan, np.inf
    dyn = rng.standard_normal(res[True, 1][0].shape)
    dyn[0, 0, -1, 0] = np.inf
    got = []
    for on in (True, False):
        K._conv_set_direct(on)
        y = ops.conv2d_forward(x.astype(np.float64), Wn, None, **kw)
        dW = np.empty_like(Wn)
        ops.conv2d_backward(dyn, x.astype(np.float64), Wn, dyn, dyn, activation="identity",
                            dW=dW, db=np.empty(F), need_dx=False, **kw)
        got.append((y, dW))
    K._conv_set_direct(True)
    out["nonfinite_fwd_same"] += np.array_equal(got[0][0], got[1][0], equal_nan=True)
    out["nonfinite_dw_nan_same"] += np.array_equal(np.isnan(got[0][1]), np.isnan(got[1][1]))
print(json.dumps(out))
"""


@pytest.mark.parametrize("isa", ISAS)
def test_direct_path_matches_the_implicit_gemm_on_every_kernel_path(isa):
    got = run_on_isa(isa, _SCRIPT, [SHAPES, ACTS])
    assert got["path"] == isa
    n = len(SHAPES) * 2 * len(ACTS)
    assert got == {"fwd_same": n, "z_same": n, "dw_threads_same": n, "dw_close": n,
                   "dx_same": n, "n": n, "nonfinite_fwd_same": len(SHAPES),
                   "nonfinite_dw_nan_same": len(SHAPES), "path": isa}


@pytest.mark.parametrize("m_name", ["python", "c"])
def test_direct_filter_gradient_against_a_plain_sum(m_name):
    # dW[kh, kw, 0, f] = sum over images and output pixels of x[tap pixel] * dy[pixel, f],
    # written out with NumPy slices in float64 (valid padding, stride 1)
    from nnfast.backends import reference as ref
    m = ref if m_name == "python" else compiled
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 11, 30, 1))
    dy = rng.standard_normal((3, 8, 26, 5))
    Wt = rng.standard_normal((4, 5, 1, 5))
    want = np.empty_like(Wt)
    for kh, kw in itertools.product(range(4), range(5)):
        want[kh, kw, 0] = np.einsum("nij,nijf->f", x[:, kh:kh + 8, kw:kw + 26, 0], dy)
    dW = np.empty_like(Wt)
    m.conv2d_backward(dy, x, Wt, dy, dy, activation="identity", dW=dW, db=np.empty(5),
                      need_dx=False)
    np.testing.assert_allclose(dW, want, rtol=1e-12, atol=1e-12)
