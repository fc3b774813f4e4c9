"""The convolution kernels with vector lanes along the filters or taps
(csrc/gemm/conv_lanes_simd.h; conv_tmpl.h fw_lanes, dw_lanes, dx_part): narrow outputs (the
implicit-GEMM filter counts) whose windows lie inside the image. The forward sums are the
implicit GEMM's arithmetic on the same taps (one K block), so the forward must give its bits;
so must the input gradient (the im2col gradient's runs added in col2im's order, at unit width
stride and dilation with no width padding). The filter gradient sums each element over blocks
of 256 output pixels in its own fixed order, so it must give the same bits for any thread
count and agree with the implicit GEMM it stands in for (the `_conv_set_direct` hook turns
all three off) and with the float64 reference. Windows reaching the padding keep the GEMM
path for dW: the same bits with the hook on or off. Each case runs on every kernel path the
CPU has (subprocesses with NNFAST_ISA). "The same bits" is for non-NaN results: which NaN an
inf - inf meeting a NaN input gives may differ (docs/conv.md); the data here is finite."""
import numpy as np
import pytest
from isa_runs import ISAS, run_on_isa

compiled = pytest.importorskip("nnfast.backends.compiled", reason="compiled extension not built")

# (N, H, W, C, (KH, KW), strides, dilation, padding, F): LeNet's conv2; filter counts on both
# sides of one vector on every path (4, 8, 16 lanes) and of the register blocks; runs of
# adjacent taps longer than a block (KW*C = 30, 56) and per (kh, kw) at width dilation 2;
# pixel counts across the 256-pixel blocks and the 2048-pixel segments; "same" padding (the
# input gradient's lanes take vertical padding, height stride and dilation, not width padding)
SHAPES = [(64, 12, 12, 6, (5, 5), 1, 1, "valid", 16), (3, 9, 11, 3, (3, 3), 2, 1, "valid", 5),
          (9, 12, 30, 4, (3, 3), 1, 2, "valid", 17), (5, 7, 7, 2, (2, 2), 1, 1, "valid", 12),
          (70, 10, 10, 2, (3, 3), 1, 1, "valid", 5), (1, 6, 20, 8, (1, 7), (1, 2), 1, "valid", 1),
          (2, 9, 9, 7, (4, 8), 1, 1, "valid", 20), (2, 8, 8, 3, (3, 3), 1, 1, "same", 16),
          (33, 5, 5, 3, (5, 5), 1, 1, "valid", 24),
          (3, 11, 9, 3, (3, 3), (2, 1), (2, 1), "valid", 7), (2, 8, 8, 4, (3, 1), 1, 1, "same", 6)]

_SCRIPT = r"""
import json, sys, numpy as np, nnfast
from nnfast import ops
from nnfast._native import _kernels as K
from nnfast.backends import reference as R
shapes = json.loads(sys.argv[1])
rng = np.random.default_rng(5)
out = {"dx_same": 0, "fwd_same": 0, "lanes_ran": 0, "threads_same": 0, "gemm_close": 0,
       "ref_close": 0, "acc_adds": 0, "nan_same": 0, "n": 0, "padding_gemm_same": 0,
       "path": nnfast.info()["kernel_path"]}
for n, h, w, c, k, s, d, pad, f in shapes:
    kw = dict(strides=s, dilation_rate=d, padding=pad)
    for dt in (np.float32, np.float64):
        x = rng.standard_normal((n, h, w, c)).astype(dt)
        Wt = rng.standard_normal((*k, c, f)).astype(dt)
        dy = rng.standard_normal(ops.conv2d_forward(x, Wt, None, **kw).shape).astype(dt)
        def dw(on, nt, acc=None, g=dy):
            K._conv_set_direct(on)
            nnfast.set_num_threads(nt)
            dW = np.empty_like(Wt) if acc is None else acc.copy()
            ops.conv2d_backward(g, x, Wt, g, g, activation="identity", dW=dW,
                                db=np.empty(f, dt), need_dx=False, accumulate=acc is not None,
                                **kw)
            K._conv_set_direct(True)
            return dW
        a1, a2, gm = dw(True, 1), dw(True, 2), dw(False, 1)
        b = rng.standard_normal(f).astype(dt)
        same = True
        for act in ("relu", "identity", "tanh", "softmax", "leaky_relu"):
            fw = []
            for on, nt in ((True, 1), (True, 2), (False, 1)):
                K._conv_set_direct(on)
                nnfast.set_num_threads(nt)
                yz = ops.conv2d_forward(x, Wt, b, activation=act, **kw)
                z = np.empty_like(yz)
                ops.conv2d_forward(x, Wt, b, activation=act, out=np.empty_like(yz), z=z, **kw)
                fw.append((yz, z))
            K._conv_set_direct(True)
            same &= all(np.array_equal(q[0], fw[2][0]) and np.array_equal(q[1], fw[2][1])
                        for q in fw[:2])
        out["fwd_same"] += same
        dxs = []
        for on, nt in ((True, 1), (True, 2), (False, 1)):
            K._conv_set_direct(on)
            nnfast.set_num_threads(nt)
            dx = np.empty_like(x)
            ops.conv2d_backward(dy, x, Wt, dy, dy, activation="identity", dW=np.empty_like(Wt),
                                db=np.empty(f, dt), dx=dx, **kw)
            dxs.append(dx)
        K._conv_set_direct(True)
        out["dx_same"] += np.array_equal(dxs[0], dxs[2]) and np.array_equal(dxs[1], dxs[2])
        want = np.empty(Wt.shape)
        d64 = dy.astype(np.float64)
        R.conv2d_backward(d64, x.astype(np.float64), Wt.astype(np.float64), d64, d64,
                          activation="identity", dW=want, db=np.empty(f), need_dx=False, **kw)
        tol = 3e-5 if dt == np.float32 else 1e-12
        scale = np.abs(want).max()
        out["n"] += 1
        if pad == "same":
            out["padding_gemm_same"] += np.array_equal(a1, gm)
        elif dy.shape[0] * dy.shape[1] * dy.shape[2] > 256 and dt == np.float32:
            # its own blocks of 256 pixels, not the GEMM's K blocks: some bits differ
            out["lanes_ran"] += not np.array_equal(a1, gm)
        out["threads_same"] += np.array_equal(a1, a2)
        out["gemm_close"] += bool(np.allclose(a1, gm, rtol=tol, atol=tol * scale))
        out["ref_close"] += bool(np.allclose(a1, want, rtol=tol, atol=tol * scale))
        base = np.full_like(Wt, 0.25)
        out["acc_adds"] += bool(np.allclose(dw(True, 1, base), a1 + 0.25, rtol=tol,
                                            atol=tol * scale))
        g = dy.copy()
        g.flat[::7] = np.nan
        g.flat[3::11] = np.inf
        out["nan_same"] += np.array_equal(np.isnan(dw(True, 1, g=g)), np.isnan(dw(False, 1, g=g)))
print(json.dumps(out))
"""


@pytest.mark.parametrize("isa", ISAS)
def test_lanes_filter_gradient_on_every_kernel_path(isa):
    got = run_on_isa(isa, _SCRIPT, SHAPES)
    n = len(SHAPES) * 2
    same_pad = sum(2 for s in SHAPES if s[7] == "same")
    # float32 over 256 output pixels: which filter counts take the lanes (the implicit GEMM's
    # narrow F) depends on the path's register tile; the 70 images' F = 5 does on every path.
    # The generic GEMM's K blocks are 256 pixels too (KC 256), so there the bits coincide.
    ran = got.pop("lanes_ran")
    assert ran >= 1 if isa != "generic" else ran == 0
    assert got == {"dx_same": n, "fwd_same": n, "threads_same": n, "gemm_close": n,
                   "ref_close": n, "acc_adds": n,
                   "nan_same": n, "n": n, "padding_gemm_same": same_pad, "path": isa}


@pytest.mark.parametrize("m_name", ["python", "c"])
def test_lanes_filter_gradient_against_a_plain_sum(m_name):
    # dW[kh, kw, ch, f] = sum over images and output pixels of x[tap pixel, ch] * dy[pixel, f]
    # with NumPy slices in float64 (valid padding, stride 1): LeNet's conv2 shape, 3 images
    from nnfast.backends import reference as ref
    m = ref if m_name == "python" else compiled
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 12, 12, 6))
    dy = rng.standard_normal((3, 8, 8, 16))
    Wt = rng.standard_normal((5, 5, 6, 16))
    want = np.empty_like(Wt)
    for kh in range(5):
        for kw in range(5):
            want[kh, kw] = np.einsum("nijc,nijf->cf", x[:, kh:kh + 8, kw:kw + 8], dy)
    dW = np.empty_like(Wt)
    m.conv2d_backward(dy, x, Wt, dy, dy, activation="identity", dW=dW, db=np.empty(16),
                      need_dx=False)
    np.testing.assert_allclose(dW, want, rtol=1e-12, atol=1e-12)
