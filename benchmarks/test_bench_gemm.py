"""pytest-benchmark suite: nnfast.matmul vs np.matmul on a few float32 GEMM shapes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
        python -m pytest benchmarks/test_bench_gemm.py --benchmark-group-by=param:shape

Not part of the test suite (benchmarks/ is outside testpaths). Threads: nnfast and OpenBLAS
both use nnfast.get_num_threads() (matched with threadpoolctl); the table in compare.py is the
reference report, this suite is for tracking regressions over time.
"""
import numpy as np
import pytest

import nnfast

threadpoolctl = pytest.importorskip("threadpoolctl")

SHAPES = {  # label: (M, K, N, layout)
    "64x784x256": (64, 784, 256, "nn"),
    "32x784x256": (32, 784, 256, "nn"),
    "128x128x10": (128, 128, 10, "nn"),
    "784x128.128x256-AT": (784, 128, 256, "tn"),
    "128x256.256x784-BT": (128, 256, 784, "nt"),
    "512^3": (512, 512, 512, "nn"),
}
LIBS = {"nnfast": nnfast.matmul, "numpy": np.matmul}


@pytest.fixture(scope="module", autouse=True)
def matched_threads():
    with threadpoolctl.threadpool_limits(nnfast.get_num_threads()):
        yield


@pytest.mark.parametrize("lib", list(LIBS))
@pytest.mark.parametrize("shape", list(SHAPES))
def test_matmul_f32(benchmark, shape, lib):
    m, k, n, layout = SHAPES[shape]
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((k, m)).T if layout == "tn" else rng.standard_normal((m, k)))
    b = (rng.standard_normal((n, k)).T if layout == "nt" else rng.standard_normal((k, n)))
    a, b = a.astype(np.float32), b.astype(np.float32)
    benchmark.extra_info["gflop"] = 2e-9 * m * n * k
    out = benchmark(LIBS[lib], a, b)
    assert out.shape == (m, n)
