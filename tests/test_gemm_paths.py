"""The GEMM on every kernel path this CPU runs (generic, avx2, avx512) and through both loop
nests (small: A read in place; packed: GotoBLAS), against float64 NumPy.

Shapes come from the active path's own block sizes (MR NR MC KC NC, each +-1), plus 0, 1,
primes and a huge K; every operand layout (N/T, sliced views with leading dimension > width);
alpha in {0, 1, -0.5}, beta in {0, 1, 0.3} with NaN in C when beta == 0 and NaN in A when
alpha == 0; float32 and float64; 1 and 2 threads must give bit-identical results.
"""
import contextlib
import os

import numpy as np
import pytest

import nnfast
from nnfast._native import _kernels as K

ISAS = ["generic", "avx2", "avx512"]
# packed nest: B shared by the team (3) or a column range per thread (4); 2 picks by cost
NESTS = {"auto": 0, "small": 1, "packed-shared": 3, "packed-columns": 4}
DTYPES = [np.float32, np.float64]


@contextlib.contextmanager
def kernel_path(isa, nest="auto"):
    before = K.runtime_info()["kernel_path"]  # e.g. forced by NNFAST_ISA: restored after
    try:
        K.select_isa(isa)
    except RuntimeError as e:
        pytest.skip(f"{isa} path not supported here: {e}")
    K._gemm_set_path(NESTS[nest])
    try:
        yield
    finally:
        K._gemm_set_path(0)
        K.select_isa(before)


@contextlib.contextmanager
def threads(n):
    old = nnfast.get_num_threads()
    nnfast.set_num_threads(n)
    try:
        yield
    finally:
        nnfast.set_num_threads(old)


def on_every_path(run, *args, nests=(1, 3, 4)):
    """run(*args) (a tuple of arrays) under each forced loop nest at 1 and 2 threads."""
    outs = []
    try:
        for nest in nests:
            K._gemm_set_path(nest)
            for nt in (1, 2):
                with threads(nt):
                    outs.append(run(*args))
    finally:
        K._gemm_set_path(0)
    return outs


def assert_all_equal(outs):
    for o in outs[1:]:
        for got, want in zip(o, outs[0]):
            np.testing.assert_array_equal(got, want)


def blocking(dtype):
    b = K.runtime_info()["gemm_blocking"]["float32" if dtype == np.float32 else "float64"]
    return b["MR"], b["NR"], b["MC"], b["KC"], b["NC"]


def operand(rng, rows, cols, dtype, trans, pad):
    """A rows x cols operand: a row-major view (trans False) or the transpose of one (trans
    True), carved out of a larger array so its leading dimension exceeds its width by pad."""
    if trans:
        base = rng.standard_normal((cols, rows + pad)).astype(dtype)
        return base[:, :rows].T
    base = rng.standard_normal((rows, cols + pad)).astype(dtype)
    return base[:, :cols]


def check(a, b, alpha=1.0, beta=0.0, c0=None, label=""):
    """Runs K.gemm and compares with float64 NumPy; tolerance (k + 2) * eps * |terms|."""
    dtype = a.dtype
    m, k = a.shape
    n = b.shape[1]
    out = None if c0 is None else c0.copy()
    got = K.gemm(a, b, out=out, alpha=alpha, beta=beta)
    assert got.shape == (m, n) and got.dtype == dtype
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if alpha == 0:
        a64 = np.zeros_like(a64)  # alpha == 0: A and B must not be read (NaN in A ignored)
    ref = alpha * (a64 @ b64)
    mag = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0:
        ref = ref + beta * c0.astype(np.float64)
        mag = mag + np.abs(beta * c0.astype(np.float64))
    eps = np.finfo(dtype).eps
    tol = 2 * (k + 2) * eps * mag + np.finfo(dtype).tiny
    err = np.abs(got.astype(np.float64) - ref)
    bad = ~(err <= tol)
    if bad.any():
        i = np.argwhere(bad)[0]
        pytest.fail(f"{label} m,k,n={m},{k},{n} alpha={alpha} beta={beta}: {bad.sum()} bad, "
                    f"first at {tuple(i)}: got {got[tuple(i)]} want {ref[tuple(i)]} "
                    f"(max err {np.nanmax(err):.3g}, tol {tol[tuple(i)]:.3g})")
    return got


def shapes(dtype):
    mr, nr, mc, kc, nc = blocking(dtype)
    out = [(0, 5, 3), (4, 0, 3), (3, 4, 0), (1, 1, 1), (2, 3, 5), (7, 11, 13), (31, 37, 41)]
    for d in (-1, 0, 1):
        out += [(mr + d, 17, nr + d), (2 * mr + d, kc + d, 3 * nr + d), (mc + d, 19, nr + 3),
                (mr + 1, kc + d, 2 * nr - 1), (5, 2 * kc + d, 7), (3, 23, nc + d)]
    out += [(mc + mr + 1, kc + 9, nr * 5 + 1), (2 * mc + 1, 2 * kc + 1, 2 * nr + 3)]
    return sorted(set(out))


@pytest.mark.parametrize("nest", list(NESTS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_shapes_and_layouts(isa, dtype, nest):
    rng = np.random.default_rng(1)
    with kernel_path(isa, nest):
        for (m, k, n) in shapes(dtype):
            for ta in (False, True):
                for tb in (False, True):
                    pad = 3 if (m + k + n) % 2 else 0
                    a = operand(rng, m, k, dtype, ta, pad)
                    b = operand(rng, k, n, dtype, tb, pad + 1)
                    check(a, b, label=f"{isa}/{nest} ta={ta} tb={tb}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_alpha_beta_nan(isa, dtype):
    rng = np.random.default_rng(2)
    with kernel_path(isa):
        mr, nr, mc, kc, _nc = blocking(dtype)
        for (m, k, n) in [(1, 1, 1), (mr + 1, kc + 1, nr + 1), (mc + 1, 2 * kc + 1, 2 * nr - 1),
                          (13, 0, 9)]:
            for alpha in (0.0, 1.0, -0.5):
                for beta in (0.0, 1.0, 0.3):
                    a = operand(rng, m, k, dtype, False, 1)
                    b = operand(rng, k, n, dtype, True, 0)
                    c0 = rng.standard_normal((m, n)).astype(dtype)
                    if beta == 0:
                        c0[...] = np.nan  # must be overwritten, as BLAS does
                    if alpha == 0 and a.size:
                        a = a.copy()
                        a[0, 0] = np.nan  # must not be read
                    got = check(a, b, alpha, beta, c0, label=f"{isa}")
                    assert not np.isnan(got).any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_huge_k(isa, dtype):
    rng = np.random.default_rng(3)
    with kernel_path(isa):
        for (m, n) in [(3, 5), (1, 1)]:
            a = rng.standard_normal((m, 100_000)).astype(dtype)
            b = rng.standard_normal((100_000, n)).astype(dtype)
            check(a, b, label=isa)
            check(b.T, a.T, label=isa)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_threads_bit_identical(isa, dtype):
    rng = np.random.default_rng(4)
    with kernel_path(isa):
        _mr, nr, mc, kc, _nc = blocking(dtype)
        for (m, k, n) in [(200, 300, 257), (2 * mc + 5, kc + 3, 3 * nr + 1), (64, 784, 10),
                          (5, 1000, 1000)]:
            for ta in (False, True):
                a = operand(rng, m, k, dtype, ta, 1)
                b = operand(rng, k, n, dtype, not ta, 0)
                c0 = rng.standard_normal((m, n)).astype(dtype)
                res = []
                for nt in (1, 2):
                    with threads(nt):
                        res.append(K.gemm(a, b, out=c0.copy(), alpha=-0.5, beta=0.3))
                np.testing.assert_array_equal(res[0], res[1])
        # the two loop nests and both thread counts agree bit for bit (32 rows: the small nest
        # reads B in place; 97 rows: it packs B)
        for rows in (97, 32):
            a = operand(rng, rows, 300, dtype, False, 0)
            b = operand(rng, 300, 70, dtype, False, 0)
            assert_all_equal(on_every_path(lambda a, b: (K.gemm(a, b),), a, b))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_narrow_swap_bit_identical(isa, dtype):
    """A narrow product (n under two register panels; with A transposed up to four, as in a
    weight gradient x^T dz) is computed as C^T = op(B)^T op(A)^T; it must give exactly what the
    plain nest gives, for every layout, alpha/beta, epilogue, nest and thread count. The
    swapped tiles go through the local tile, which keeps its sums across the K blocks (two
    and more here)."""
    rng = np.random.default_rng(6)
    with kernel_path(isa):
        mr, nr, mc, kc, _nc = blocking(dtype)
        cases = [(128, 128, 10), (37, 784, 10), (mc + 1, kc + 3, nr - 1), (200, 100, 1),
                 (2 * nr + 1, 5, nr + 3), (4 * nr, 9, 2 * nr - 1),
                 (24 * nr + 1, kc + 5, 3 * nr + 1), (25 * nr - 3, 2 * kc + 7, 3 * nr + 2),
                 (7 * nr - 3, kc + 9, 3 * nr + 4), (4 * nr + 5, 3, 2 * nr + 1)]

        def run(a, b, c0, bias):
            z = np.empty(c0.shape, dtype)
            return (K.gemm(a, b, out=c0.copy(), alpha=-0.5, beta=0.3),
                    K.gemm_ep(a, b, bias=bias, z=z, act="relu"), z)
        try:
            for (m, k, n) in cases:
                for ta in (False, True):
                    for tb in (False, True):
                        a = operand(rng, m, k, dtype, ta, 1)
                        b = operand(rng, k, n, dtype, tb, 2)
                        c0 = rng.standard_normal((m, n)).astype(dtype)
                        bias = rng.standard_normal(n).astype(dtype)
                        outs = []
                        for swap in (True, False):
                            K._gemm_set_swap(swap)
                            outs += on_every_path(run, a, b, c0, bias)
                        check(a, b, -0.5, 0.3, c0, label=f"{isa} swap m,k,n={m},{k},{n}")
                        assert_all_equal(outs)
        finally:
            K._gemm_set_swap(True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_few_rows_bit_identical(isa, dtype):
    """m <= 4 against row-major B streams B in place (no packing); it must match the small
    and packed nests exactly, including partial vectors at the right edge, several K blocks,
    alpha/beta with NaN in C, the epilogue and 2 threads."""
    rng = np.random.default_rng(7)
    with kernel_path(isa):
        _mr, nr, _mc, kc, _nc = blocking(dtype)
        widths = sorted({1, 3, nr // 2 - 1, nr - 1, nr, nr + 1, 4 * nr + 3, 100, 257})

        def run(a, b, c0, bias):
            nan_c = np.full(c0.shape, np.nan, dtype)
            return (K.gemm(a, b, out=c0.copy(), alpha=-0.5, beta=0.3),
                    K.gemm(a, b, out=nan_c, alpha=2.0, beta=0.0),
                    K.gemm_ep(a, b, bias=bias, act="relu"))
        for m in (1, 2, 3, 4):
            for n in widths:
                for k in (1, 7, kc + 5):
                    ta = (m + n + k) % 2 == 1
                    a = operand(rng, m, k, dtype, ta, 1)
                    b = operand(rng, k, n, dtype, False, 3)
                    c0 = rng.standard_normal((m, n)).astype(dtype)
                    bias = rng.standard_normal(n).astype(dtype)
                    outs = on_every_path(run, a, b, c0, bias, nests=(0, 1, 3, 4))
                    check(a, b, -0.5, 0.3, c0, label=f"{isa} rows m,k,n={m},{k},{n}")
                    assert_all_equal(outs)


def _act_ref(name, z):
    if name == "relu":
        return np.where(z < 0, 0, z).astype(z.dtype)
    if name == "tanh":
        return np.tanh(z)
    return z


@pytest.mark.parametrize("nest", ["small", "packed-shared", "packed-columns"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", ISAS)
def test_epilogue(isa, dtype, nest):
    """Bias, saved z and activation applied exactly once per element, after the last K block."""
    rng = np.random.default_rng(5)
    with kernel_path(isa, nest):
        mr, nr, mc, kc, _nc = blocking(dtype)
        for (m, k, n) in [(1, 1, 1), (mr + 1, 2 * kc + 3, nr * 2 + 1), (37, 784, 10),
                          (mc + 1, kc - 1, nr - 1)]:
            for act in ("identity", "relu", "tanh"):
                for nt in (1, 2):
                    a = operand(rng, m, k, dtype, False, 0)
                    b = operand(rng, k, n, dtype, True, 0)
                    bias = rng.standard_normal(n).astype(dtype)
                    c0 = rng.standard_normal((m, n)).astype(dtype)
                    with threads(nt):
                        plain = K.gemm(a, b, out=c0.copy(), alpha=1.0, beta=0.5)
                        z = np.full((m, n), np.nan, dtype)
                        got = K.gemm_ep(a, b, bias=bias, z=z, act=act, out=c0.copy(), beta=0.5)
                    want_z = plain + bias
                    np.testing.assert_array_equal(z, want_z)
                    want = _act_ref(act, want_z)
                    if act == "tanh":
                        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps,
                                                   atol=4 * np.finfo(dtype).eps)
                    else:
                        np.testing.assert_array_equal(got, want)
        # alpha == 0 and k == 0 still run the epilogue once
        a = np.full((3, 4), np.nan, dtype)
        b = np.ones((4, 5), dtype)
        bias = np.arange(5, dtype=dtype)
        got = K.gemm_ep(a, b, bias=bias, act="relu", alpha=0.0)
        np.testing.assert_array_equal(got, np.broadcast_to(bias, (3, 5)))
        got = K.gemm_ep(np.ones((3, 0), dtype), np.ones((0, 5), dtype), bias=bias - 2,
                        act="relu")
        np.testing.assert_array_equal(got, np.broadcast_to(np.maximum(bias - 2, 0), (3, 5)))


def test_dispatch_and_blocking():
    info = nnfast.info()
    assert info["kernel_path"] in ISAS
    for dt in ("float32", "float64"):
        b = info["gemm_blocking"][dt]
        assert b["MC"] % b["MR"] == 0 and b["NC"] % b["NR"] == 0
    with pytest.raises(ValueError):
        K.select_isa("sse9")
    if "avx512f" not in info["cpu_features"]:
        with pytest.raises(RuntimeError, match="does not support"):
            K.select_isa("avx512")
        # a refused path leaves the active one alone
        assert nnfast.info()["kernel_path"] == info["kernel_path"]
    best = K.select_isa(None)
    assert best in ISAS and ISAS.index(best) >= ISAS.index(info["kernel_path"])
    # restore the path this process started on (NNFAST_ISA may have forced one)
    assert K.select_isa(os.environ.get("NNFAST_ISA", "").strip() or None) == info["kernel_path"]


@pytest.mark.parametrize("dtype_size", [4, 8])
def test_fma_peak_positive(dtype_size):
    assert K.fma_peak(dtype_size, 1, 0.02) > 0.1
