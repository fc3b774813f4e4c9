"""The parallel runtime (csrc/runtime/pool.c behind csrc/runtime/par.h): every threaded kernel
gives the bits of one thread whichever thread runs which chunk, including when the pool's
workers join late or never (a test hook), and on the OpenMP runtime too."""
import contextlib

import numpy as np
import pytest

import nnfast
from nnfast import backends

pytestmark = pytest.mark.skipif(not backends.compiled_available(),
                                reason="compiled extension not built")

if backends.compiled_available():
    from nnfast._native import _kernels as K
    from nnfast.backends import compiled as C

MODES = {"normal": 0, "workers-late": 1, "workers-never-join": 2}
RUNTIMES = ["pool", "openmp"]


@contextlib.contextmanager
def runtime(name, mode=0):
    before = K.get_threading()
    try:
        K.set_threading(name)
    except RuntimeError as e:
        pytest.skip(str(e))
    K._pool_set_test_mode(mode)
    try:
        yield
    finally:
        K._pool_set_test_mode(0)
        K.set_threading(before)


def threaded_ops(rng, dt):
    """Kernel calls large enough to run on 2 threads, each returning a tuple of arrays."""
    x = rng.standard_normal((512, 300)).astype(dt)
    W = rng.standard_normal((300, 257)).astype(dt)
    b = rng.standard_normal(257).astype(dt)
    dy = rng.standard_normal((512, 257)).astype(dt)
    big = rng.standard_normal((300, 700)).astype(dt)
    labels = rng.integers(0, 257, 512)
    params = rng.standard_normal(70001).astype(dt)
    grads = rng.standard_normal(70001).astype(dt)
    a1 = rng.standard_normal((800, 192)).astype(dt)
    b1 = rng.standard_normal((192, 2 * 4096 + 1)).astype(dt)

    def adam():
        p, m, v = params.copy(), np.zeros_like(params), np.zeros_like(params)
        C.adam_update(p, grads, m, v, step=1, lr=1e-3)
        return p, m, v

    def dense_bwd():
        z = C.dense_forward(x, W, b)
        y = np.tanh(z)
        return C.dense_backward(dy, x, W, z, y, "tanh")

    return {
        "gemm-small": lambda: (C.gemm(x, W),),
        "gemm-packed": lambda: (C.gemm(a1, b1),),
        "gemm-transposed": lambda: (C.gemm(x.T, dy),),
        "gemm-rows": lambda: (C.gemm(x[:3], W),),
        "dense_forward": lambda: (C.dense_forward(x, W, b, "relu"),),
        "dense_backward": dense_bwd,
        "activation": lambda: (C.activation_forward(big, "gelu"),
                               C.activation_forward(big, "softmax")),
        "softmax_xent": lambda: C.softmax_cross_entropy(dy, labels)[:2],
        "adam": adam,
        "column_sums": lambda: (C.column_sums(big),),
        "argmax": lambda: (C.argmax_rows(big),),
        "dropout": lambda: (C.dropout_forward(big, 0.3, seed=1, step=2),),
    }


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("name", RUNTIMES)
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_two_threads_give_one_threads_bits(name, mode, dt, threads):
    if name == "openmp" and mode != "normal":
        pytest.skip("the join hooks are the pool's")
    ops = threaded_ops(np.random.default_rng(1), dt)
    threads(1)
    want = {k: f() for k, f in ops.items()}
    threads(2)
    with runtime(name, MODES[mode]):
        for _ in range(2):
            for k, f in ops.items():
                got = f()
                for g, w in zip(got, want[k]):
                    np.testing.assert_array_equal(g, w, err_msg=f"{k} on {name}/{mode}")


def test_pool_starts_workers_only_for_threaded_calls(threads):
    with runtime("pool"):
        threads(2)
        x = np.ones((256, 784), np.float32)
        w = np.ones((784, 512), np.float32)
        nnfast.matmul(x, w)
        assert K.runtime_info()["pool_workers"] >= 1
        assert K.runtime_info()["threading"] == "pool"


def test_threading_choice_is_checked():
    with pytest.raises(ValueError, match="NNFAST_THREADING: unknown runtime 'tbb'"):
        K.set_threading("tbb")
    with pytest.raises(ValueError, match="_pool_set_test_mode: mode must be 0, 1 or 2"):
        K._pool_set_test_mode(3)
    with pytest.raises(ValueError, match=r"set_spin_us: us must be in \[0, 1000000\], got -1"):
        K.set_spin_us(-1)
