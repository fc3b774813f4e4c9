"""The AVX-512 float32 cache blocks (KC 320, MC 228) and the microkernel's in-place A rows.

docs/gemm.md: KC 320 cuts K = 784 into 3 blocks of 264 (5 of 160 with the former KC 192),
and MC 228 keeps the MC x KC block of A at the bytes of the former 384 x 192. The kernel
addresses in-place A rows off one base per 4 rows (ROWS4 in ukr_simd.h): same arithmetic as
packed A, so the small nest (A in place) and the packed nest give the same bits.
"""
import contextlib

import numpy as np
import pytest

import nnfast
from nnfast._native import _kernels as K

ISAS = ["generic", "avx2", "avx512"]


@contextlib.contextmanager
def kernel_path(isa, nest=0):
    before = K.runtime_info()["kernel_path"]
    try:
        K.select_isa(isa)
    except RuntimeError as e:
        pytest.skip(f"{isa} path not supported here: {e}")
    K._gemm_set_path(nest)
    try:
        yield
    finally:
        K._gemm_set_path(0)
        K.select_isa(before)


def blocking(dtype):
    b = K.runtime_info()["gemm_blocking"]["float32" if dtype == np.float32 else "float64"]
    return b["MR"], b["NR"], b["MC"], b["KC"], b["NC"]


def test_avx512_float32_blocks():
    with kernel_path("avx512"):
        mr, nr, mc, kc, nc = blocking(np.float32)
        assert (mr, nr, mc, kc, nc) == (12, 32, 228, 320, 4096)
        # the small/packed boundary (m x KC <= MC x KC) keeps the former 384 x 192 budget
        assert mc * kc * 4 <= 384 * 192 * 4
        assert blocking(np.float64) == (12, 16, 240, 192, 2048)


def test_avx512_float32_k784_is_three_blocks_of_264():
    """One call over K = 784 gives the bits of three chained calls over its K blocks
    (264, 264, 256; each call one FMA chain, then C + acc): with KC 192 the blocks would be
    160 wide and the sums round differently."""
    rng = np.random.default_rng(13)
    a = rng.standard_normal((128, 784)).astype(np.float32)
    b = rng.standard_normal((784, 256)).astype(np.float32)
    with kernel_path("avx512"):
        whole = K.gemm(a, b)
        parts = K.gemm(np.ascontiguousarray(a[:, :264]), np.ascontiguousarray(b[:264]))
        for p0, p1 in ((264, 528), (528, 784)):
            K.gemm(np.ascontiguousarray(a[:, p0:p1]), np.ascontiguousarray(b[p0:p1]),
                   out=parts, beta=1.0)
        in160 = K.gemm(np.ascontiguousarray(a[:, :160]), np.ascontiguousarray(b[:160]))
        for p0 in range(160, 784, 160):
            p1 = min(p0 + 160, 784)
            K.gemm(np.ascontiguousarray(a[:, p0:p1]), np.ascontiguousarray(b[p0:p1]),
                   out=in160, beta=1.0)
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, in160)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(whole, ref, rtol=0, atol=2e-4 * np.abs(ref).max())


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inplace_a_rows_match_packed(isa, dtype):
    """Every tile height (1..MR rows, merged bottom tiles) with A read in place at a leading
    dimension other than its width: the small nest's bits equal the packed nest's, for
    beta 0 and 1, one K block and two, 1 and 2 threads."""
    rng = np.random.default_rng(7)
    old = nnfast.get_num_threads()
    with kernel_path(isa):
        mr, nr, _mc, kc, _nc = blocking(dtype)
        try:
            for m in range(1, 2 * mr + 2):
                for k in (7, kc + 3):
                    base = rng.standard_normal((m, k + 5)).astype(dtype)
                    a = base[:, :k]                      # lda = k + 5, read in place
                    b = rng.standard_normal((k, 2 * nr + 3)).astype(dtype)
                    c0 = rng.standard_normal((m, b.shape[1])).astype(dtype)
                    outs = []
                    for nest in (1, 3):                  # small (A in place), packed
                        K._gemm_set_path(nest)
                        for nt in (1, 2):
                            nnfast.set_num_threads(nt)
                            c1 = c0.copy()
                            outs.append((K.gemm(a, b), K.gemm(a, b, out=c1, beta=1.0)))
                    for got in outs[1:]:
                        np.testing.assert_array_equal(got[0], outs[0][0])
                        np.testing.assert_array_equal(got[1], outs[0][1])
                    ref = a.astype(np.float64) @ b.astype(np.float64)
                    tol = (1e-5 if dtype == np.float32 else 1e-13) * k
                    np.testing.assert_allclose(outs[0][0], ref, rtol=0,
                                               atol=tol * max(1.0, np.abs(ref).max()))
                    np.testing.assert_allclose(outs[0][1], ref + c0, rtol=0,
                                               atol=tol * max(1.0, np.abs(ref + c0).max()))
        finally:
            nnfast.set_num_threads(old)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_nest_transposed_a_packed(isa, dtype):
    """The small nest packs a transposed A once per K span (X^T dZ): the same bits as the
    packed nest and as the small nest over one row tile (never packed), for 1 and 2 threads,
    full and merged bottom tiles, beta 0 and 1, a right-edge panel and the fused epilogue."""
    rng = np.random.default_rng(11)
    old = nnfast.get_num_threads()
    with kernel_path(isa):
        mr, nr, _mc, kc, _nc = blocking(dtype)
        try:
            for m in (2 * mr + 1, 3 * mr + mr // 2 + 1, 5 * mr):
                for k in (9, kc + 5):
                    x = rng.standard_normal((k, m + 3)).astype(dtype)[:, :m]   # A = x.T
                    dz = rng.standard_normal((k, 2 * nr + 5)).astype(dtype)
                    c0 = rng.standard_normal((m, dz.shape[1])).astype(dtype)
                    outs = []
                    for nest in (1, 3):
                        K._gemm_set_path(nest)
                        for nt in (1, 2):
                            nnfast.set_num_threads(nt)
                            c1 = c0.copy()
                            outs.append((K.gemm(x.T, dz), K.gemm(x.T, dz, out=c1, beta=1.0)))
                    for got in outs[1:]:
                        np.testing.assert_array_equal(got[0], outs[0][0])
                        np.testing.assert_array_equal(got[1], outs[0][1])
                    # row by row through one-tile products (A read in place, not packed)
                    K._gemm_set_path(1)
                    rows = np.vstack([K.gemm(x[:, i:i + 1].T, dz) for i in range(m)])
                    np.testing.assert_array_equal(rows, outs[0][0])
        finally:
            K._gemm_set_path(0)
            nnfast.set_num_threads(old)


def test_small_nest_transposed_a_workspace_before_work():
    """The packed A^T is part of the call's one workspace, taken before any work: when it
    cannot be had the call raises MemoryError and an accumulated C is left as it was."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((128, 256)).astype(np.float32)    # A = x.T: 256 x 128
    dz = rng.standard_normal((128, 128)).astype(np.float32)
    c = np.ones((256, 128), np.float32)
    with kernel_path("avx512", nest=1):
        # a B panel slice per thread (128 x 32 floats = 16 KiB) fits, the packed A^T
        # (256 x 128 floats = 128 KiB) does not
        K._gemm_simulate_oom(True, 64 * 1024)
        try:
            with pytest.raises(MemoryError):
                K.gemm(x.T, dz, out=c, beta=1.0)
        finally:
            K._gemm_simulate_oom(False)
        np.testing.assert_array_equal(c, np.ones((256, 128), np.float32))
        got = K.gemm(x.T, dz, out=c, beta=1.0)
    ref = x.T.astype(np.float64) @ dz.astype(np.float64) + 1.0
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4 * np.abs(ref).max())
