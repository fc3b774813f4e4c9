"""The one-row GEMM (batch-1 inference) on AVX-512 reads B from the aligned address at or
below each row start (csrc/gemm/ukr_simd.h, rows1_aligned): masked first and last vectors,
equal strips of at most 16 vectors. It must give the bits of the small nest (which packs or
reads B by whole panels) for B at every offset inside a cache line, with rows that keep that
offset (ldb a whole number of vectors) or do not, and write nothing outside C. The other paths
run the same test (their one-row kernel is unchanged: this pins its bits too)."""
import numpy as np
import pytest
from test_gemm_paths import ISAS, blocking, check, kernel_path, on_every_path

from nnfast._native import _kernels as K


def _b_view(rng, k, n, ldb, off, dtype):
    """A k x n row-major view starting `off` elements into rows of ldb elements."""
    base = rng.standard_normal((k, ldb)).astype(dtype)
    return base[:, off:off + n]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isa", ISAS)
def test_one_row_at_every_offset_bit_identical(isa, dtype):
    rng = np.random.default_rng(11)
    lanes = 64 // np.dtype(dtype).itemsize
    with kernel_path(isa):
        _mr, _nr, _mc, kc, _nc = blocking(dtype)
        for n in (1, 3, lanes - 1, lanes, lanes + 1, 16 * lanes - 1, 16 * lanes + 1,
                  17 * lanes + 5, 37):
            for off in range(lanes):
                # ldb a whole number of vectors (every row at the same offset) or not
                for ldb in (n + off + (-(n + off)) % lanes + lanes, n + off + 3):
                    k = (1, 7, kc + 5)[(n + off) % 3]
                    b = _b_view(rng, k, n, ldb, off, dtype)
                    a = rng.standard_normal((1, k)).astype(dtype)
                    at = np.asfortranarray(rng.standard_normal((k, 1)).astype(dtype)).T
                    c0 = rng.standard_normal((1, n)).astype(dtype)
                    label = f"{isa} n={n} off={off} ldb={ldb} k={k}"

                    def run(a, b, c0, n=n):
                        # C inside a guarded buffer: nothing before or after it is written
                        guard = np.full(n + 2 * lanes, 7.0, dtype)
                        c = guard[lanes:lanes + n].reshape(1, n)
                        c[...] = c0
                        K.gemm(a, b, out=c, alpha=-0.5, beta=0.3)
                        nan_c = np.full((1, n), np.nan, dtype)
                        return (guard.copy(), K.gemm(a, b, out=nan_c, alpha=2.0, beta=0.0),
                                K.gemm(a, b), K.gemm_ep(a, b, bias=c0[0], act="relu"))
                    for x in (a, at):
                        outs = on_every_path(run, x, b, c0, nests=(0, 1))
                        guard = outs[0][0]
                        assert (guard[:lanes] == 7).all() and (guard[lanes + n:] == 7).all(), label
                        for o in outs[1:]:
                            for got, want in zip(o, outs[0]):
                                np.testing.assert_array_equal(got, want, err_msg=label)
                        check(x, b, -0.5, 0.3, c0, label=label)


_SERIAL_B1 = """
import numpy as np, nnfast
from nnfast._native import _kernels as K
from nnfast.layers import Dense
nnfast.set_num_threads(2)
m = nnfast.Sequential([Dense(256, "relu", input_dim=784), Dense(128, "relu"),
                       Dense(10, "softmax")], seed=0)
x = np.random.default_rng(0).random((1, 784), dtype=np.float32)
for _ in range(3):
    m.predict(x)
    m(x)
    nnfast.matmul(x, np.asarray(m.layers[0].W))
print(K.runtime_info()["pool_workers"])
nnfast.matmul(np.ones((1, 1024), np.float32), np.ones((1024, 1024), np.float32))  # 4 MiB of B
print(K.runtime_info()["pool_workers"])
"""


def test_one_row_products_under_4_mib_of_b_stay_on_the_calling_thread():
    """A batch-1 predict at 2 threads wakes no worker: the rows nest (m <= 4) runs serially
    until B is 4 MiB (csrc/gemm/gemm.c, NNF_ROWS_MT_BYTES), so the pool is never started;
    a 1x1024x1024 float32 product (4 MiB of B) starts it."""
    import os
    import subprocess
    import sys
    # the compiled backend's GEMM, whatever backend the suite runs on (NNFAST_BACKEND=python)
    env = dict(os.environ, NNFAST_THREADING="pool", NNFAST_BACKEND="c")
    res = subprocess.run([sys.executable, "-c", _SERIAL_B1], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    before, after = res.stdout.split()
    assert before == "0"
    assert int(after) >= 1
