"""Bad input to the backend gemm: clear exceptions on both backends, never a crash."""
import numpy as np
import pytest
from engine_probes import call_in_fresh_thread_without_memory

import nnfast
from nnfast import backends
from nnfast.backends import reference

BACKENDS = [pytest.param(reference, id="python")]
if backends.compiled_available():
    from nnfast.backends import compiled
    BACKENDS.append(pytest.param(compiled, id="c"))


@pytest.fixture(params=BACKENDS)
def be(request):
    return request.param


A = np.ones((3, 4), np.float32)
B = np.ones((4, 5), np.float32)


@pytest.mark.parametrize("a,b,kw,exc,msg", [
    (A.astype(np.int32), B, {}, TypeError, r"gemm: a must have dtype float32 or float64, got int"),
    (A, B.astype(np.float64), {}, TypeError, r"gemm: b must have dtype float32 like the other"),
    (A, B, {"out": np.empty((3, 5), ">f4")}, TypeError,
     r"gemm: out must be an aligned native-byte-order float32 array, got dtype >f4"),
    ([[1.0]], B, {}, TypeError, r"gemm: a must be a numpy.ndarray, got list"),
    (np.ones(4, np.float32), B, {}, ValueError, r"gemm: a must be 2-D, got 1-D"),
    (A, np.ones((5, 5), np.float32), {}, ValueError, r"a.shape\[1\] must equal b.shape\[0\]"),
    (A, B, {"out": np.empty((3, 4), np.float32)}, ValueError, r"out must have shape \(3, 5\)"),
    (A, B, {"out": np.empty((3, 5), np.float64)}, TypeError, r"gemm: out must have dtype float32"),
    (A, B, {"out": np.empty((5, 3), np.float32).T}, ValueError, r"out must be C-contiguous"),
    (A, B, {"beta": 1.0}, ValueError, r"beta must be 0 when out is None"),
])
def test_bad_arguments(be, a, b, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        be.gemm(a, b, **kw)


def test_read_only_out(be):
    out = np.empty((3, 5), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="gemm: out is read-only"):
        be.gemm(A, B, out=out)


def test_overlapping_out(be):
    buf = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="gemm: out overlaps an input"):
        be.gemm(buf, buf, out=buf)


def test_beta_zero_overwrites_nan_and_alpha_zero_ignores_a(be):
    out = np.full((3, 5), np.nan, np.float32)
    be.gemm(A, B, out=out, beta=0.0)
    np.testing.assert_array_equal(out, np.full((3, 5), 4.0, np.float32))
    a_nan = np.full((3, 4), np.nan, np.float32)
    out = np.full((3, 5), 2.0, np.float32)
    be.gemm(a_nan, B, out=out, alpha=0.0, beta=0.5)
    np.testing.assert_array_equal(out, np.full((3, 5), 1.0, np.float32))


def test_huge_sizes_fail_cleanly(be):
    # A (1, 2**31) operand via stride tricks: nothing is allocated except the absurd output.
    a = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(2**20, 1), strides=(0, 4))
    b = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape=(1, 2**30), strides=(4, 0))
    with pytest.raises((MemoryError, ValueError)):
        be.gemm(a, b)


@pytest.mark.skipif(not backends.compiled_available(), reason="compiled extension not built")
@pytest.mark.parametrize("shape", [(8, 16, 8), (600, 300, 200)], ids=["small-path", "packed-path"])
def test_out_of_memory_is_a_memory_error(shape, threads):
    """Packing buffers that cannot be allocated give MemoryError, not an abort, and the next
    call works again."""
    from nnfast import ops
    from nnfast._native import _kernels

    m, k, n = shape
    a = np.ones((m, k), np.float32)
    b = np.ones((k, n), np.float32)
    for nt in (1, 2):
        threads(nt)
        _kernels._gemm_simulate_oom(True)
        try:
            with pytest.raises(MemoryError, match="gemm: out of memory for the GEMM packing"):
                compiled.gemm(a, b)
            with nnfast.use_backend("c"):
                with pytest.raises(MemoryError, match="dense_forward: out of memory"):
                    ops.dense_forward(a, b, np.zeros(n, np.float32), "relu")
        finally:
            _kernels._gemm_simulate_oom(False)
        np.testing.assert_array_equal(compiled.gemm(a, b), np.full((m, n), k, np.float32))


@pytest.mark.skipif(not backends.compiled_available(), reason="compiled extension not built")
def test_out_of_memory_names_the_convolutions_working_memory(threads):
    """The MemoryError says what could not be had: a convolution's im2col columns or partial
    sums (not only "the GEMM packing buffers", which it used to say for every kernel); the next
    call works again. (batch norm's partial sums come from malloc, which no hook can fail.)"""
    from nnfast._native import _kernels
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 9, 9, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 3, 8)).astype(np.float32)
    bias = rng.normal(size=8).astype(np.float32)
    threads(2)
    want = compiled.conv2d_forward(x, w, bias, 1, "valid", 1, "relu")
    got = call_in_fresh_thread_without_memory(
        _kernels, lambda: compiled.conv2d_forward(x, w, bias, 1, "valid", 1, "relu"))
    assert got == ["conv2d_forward: out of memory for the convolution's workspace (im2col "
                   "columns or per-thread partial sums, and the GEMM packing buffers); the "
                   "outputs were not computed"]
    np.testing.assert_array_equal(compiled.conv2d_forward(x, w, bias, 1, "valid", 1, "relu"),
                                  want)


@pytest.mark.skipif(not backends.compiled_available(), reason="compiled extension not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_of_memory_leaves_a_split_product_untouched(dtype, threads):
    """A product whose partly empty last panel is split off (x W with 100 outputs: the full
    panels, then the last columns swapped) takes both parts' workspace before either runs:
    out of memory raises MemoryError with C as it was (beta = 1 accumulates into it), and
    the next call gives the NumPy sum."""
    from nnfast._native import _kernels

    rng = np.random.default_rng(3)
    a = rng.standard_normal((200, 784)).astype(dtype)
    b = rng.standard_normal((784, 100)).astype(dtype)
    c0 = rng.standard_normal((200, 100)).astype(dtype)
    for nt in (1, 2):
        threads(nt)
        out = c0.copy()
        _kernels._gemm_simulate_oom(True)
        try:
            with pytest.raises(MemoryError, match="gemm: out of memory for the GEMM packing"):
                compiled.gemm(a, b, out=out, beta=1.0)
        finally:
            _kernels._gemm_simulate_oom(False)
        np.testing.assert_array_equal(out, c0)
        got = compiled.gemm(a, b, out=out, beta=1.0)
        want = a.astype(np.float64) @ b.astype(np.float64) + c0
        np.testing.assert_allclose(got, want, rtol=0, atol=800 * np.finfo(dtype).eps * 40)


@pytest.mark.parametrize("tiny", [1e-50, -1e-47])
def test_alpha_and_beta_are_zero_in_the_operands_dtype(be, tiny):
    """A float32 alpha (beta) that rounds to 0 follows the alpha == 0 (beta == 0) rule on both
    backends: a and b (out) are not read, so NaN there does not propagate."""
    a_nan = np.full((3, 4), np.nan, np.float32)
    out = np.full((3, 5), 2.0, np.float32)
    be.gemm(a_nan, B, out=out, alpha=tiny, beta=0.5)
    np.testing.assert_array_equal(out, np.full((3, 5), 1.0, np.float32))
    out = np.full((3, 5), np.nan, np.float32)
    be.gemm(A, B, out=out, alpha=1.0, beta=tiny)
    np.testing.assert_array_equal(out, np.full((3, 5), 4.0, np.float32))
    # in float64 the same values are not 0: NaN propagates
    out64 = np.full((3, 5), 2.0)
    be.gemm(a_nan.astype(np.float64), B.astype(np.float64), out=out64, alpha=tiny, beta=0.5)
    assert np.isnan(out64).all()
