"""all_finite, the engine's NaN/Inf check of predict / fit input: the compiled twin
(csrc/nn/finite.c, an integer test of the exponent bits, per ISA) against np.isfinite on
every kind of value and at every position of its loop (64-value steps, 4096-value blocks,
the tail), for float32 and float64, at every start offset inside a cache line, on every
kernel path; and the reference twin's large-x sum-first shortcut."""
import numpy as np
import pytest
from test_gemm_paths import ISAS, kernel_path

from nnfast import backends
from nnfast.backends import _ref_checks

SIZES = (0, 1, 2, 15, 63, 64, 65, 127, 4095, 4096, 4097, 8192 + 77, 70001)


def _specials(dtype):
    info = np.finfo(dtype)
    uint = np.uint32 if dtype == np.float32 else np.uint64
    exp = uint(0x7F800000) if dtype == np.float32 else uint(0x7FF0000000000000)
    top = uint(0x80000000) if dtype == np.float32 else uint(0x8000000000000000)
    # NaNs with every payload shape: quiet, signalling (lowest mantissa bit), negative
    nans = np.array([exp | uint(1), exp | (uint(1) << uint(info.nmant - 1)),
                     exp | uint(3) | top], uint).view(dtype)
    finite = np.array([0.0, -0.0, info.max, -info.max, info.tiny, -info.tiny,
                       info.smallest_subnormal, -info.smallest_subnormal,
                       np.nextafter(info.max, 0, dtype=dtype), 1.0, -3.5], dtype)
    return finite, np.concatenate([nans, np.array([np.inf, -np.inf, np.nan], dtype)])


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_all_finite_matches_isfinite(isa, dtype):
    if not backends.compiled_available():
        pytest.skip("needs the compiled extension")
    from nnfast.backends import compiled
    rng = np.random.default_rng(3)
    finite, bad = _specials(dtype)
    with kernel_path(isa):
        for n in SIZES:
            for off in (0, 1, 3):      # starts off the 64-byte line (1-D views are contiguous)
                base = finite[rng.integers(0, len(finite), n + off)]
                x = base[off:]
                assert compiled.all_finite(x) is True, (n, off)
                if n == 0:
                    continue
                for pos in sorted({0, n - 1, n // 2, min(63, n - 1), min(4096, n - 1)}):
                    for v in bad:
                        y = x.copy() if off == 0 else base.copy()[off:]
                        y[pos] = v
                        assert compiled.all_finite(y) is False, (n, off, pos, v)
                        assert compiled.all_finite(y.reshape(1, n)) is False


def test_reference_all_finite_sums_large_x_first(monkeypatch):
    """Above 65536 values a finite sum answers alone; a sum that overflowed from finite values
    falls back to np.isfinite, so 3e38 + 3e38 is still accepted and +inf/-inf refused."""
    big = np.full(70000, 3e38, np.float32)
    assert _ref_checks.all_finite(big) is True
    for v in (np.inf, -np.inf, np.nan):
        y = big.copy()
        y[12345] = v
        assert _ref_checks.all_finite(y) is False
    calls = []
    real = np.isfinite
    monkeypatch.setattr(np, "isfinite", lambda a: calls.append(a.size) or real(a))
    assert _ref_checks.all_finite(np.ones(70000, np.float32)) is True
    assert calls == []                               # the finite sum sufficed
    assert _ref_checks.all_finite(np.ones(10, np.float32)) is True
    assert calls == [10]                             # small x: np.isfinite itself
