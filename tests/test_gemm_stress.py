"""Threaded GEMM stress: shapes drawn across every blocking boundary, each run on 2 threads many
times and compared bit for bit with 1 thread, through every loop nest.

A race between threads shows as a rare wrong block, so one run proves little: each product is
repeated. Shapes put m, n and k past MC, NC and KC with an uneven last block (where a thread's
share of one block differs from its share of the next), narrow and wide, both transposes.
`NNFAST_STRESS_REPEATS` sets the repeat count (default 3; CI's ThreadSanitizer pass runs 2).
"""
import os

import numpy as np
import pytest
from test_gemm_paths import blocking, operand, threads

import nnfast
from nnfast._native import _kernels as K

REPEATS = int(os.environ.get("NNFAST_STRESS_REPEATS", "3"))
NESTS = {"auto": 0, "small": 1, "packed-shared": 3, "packed-columns": 4}


def shifting_n(NR, NC, start):
    """The first n >= start whose last NC block splits between 2 threads at another panel than
    the full blocks do (the packed nest cuts n into equal blocks of at most NC, rounded to NR):
    the case where a per-block split hands one thread's panel slot to the other."""
    def ceil_div(a, b):
        return (a + b - 1) // b

    n = start
    while True:
        nb = ceil_div(n, NC)
        ncb = ceil_div(ceil_div(n, nb), NR) * NR
        last = n - (nb - 1) * ncb
        if nb > 1 and (ncb // NR) // 2 != ceil_div(last, NR) // 2:
            return n
        n += 1


def boundary_shapes(dtype, seed):
    """(m, k, n) triples: fixed ones off every block edge, then seeded random draws near them."""
    MR, NR, MC, KC, NC = blocking(dtype)
    rng = np.random.default_rng(seed)
    fixed = [
        (800, 192, 2 * NC + 1),        # the case: last NC block one panel short
        (MC + MR + 1, KC + 1, shifting_n(NR, NC, NC + 1)),
        (2 * MC + MR + 1, KC + 1, NC + 3 * NR + 5),
        (MC + 1, 2 * KC + 3, 2 * NR + 1),
        (3, KC + 5, NC + NR - 1),      # few rows: the streaming path
        (MC - 1, 3 * KC + 1, 7),       # narrow n: the swapped (C^T) store
    ]
    drawn = []
    for _ in range(3):
        m = int(rng.choice([MC, 2 * MC])) + int(rng.integers(-MR, MR + 1))
        k = int(rng.choice([KC, 2 * KC])) + int(rng.integers(1, 9))
        n = int(rng.choice([NR * 5, NC])) + int(rng.integers(1, 2 * NR))
        drawn.append((max(m, 1), k, n))
    return fixed + drawn


def product(a, b, out, alpha=1.0, beta=0.0):
    return K.gemm(a, b, out=out, alpha=alpha, beta=beta)


@pytest.mark.parametrize("nest", list(NESTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_two_threads_match_one_thread_bit_for_bit(dtype, nest):
    rng = np.random.default_rng(7)
    K._gemm_set_path(NESTS[nest])
    try:
        for case, (m, k, n) in enumerate(boundary_shapes(dtype, seed=11)):
            ta, tb = case % 2 == 1, case % 3 == 1
            a = operand(rng, m, k, dtype, ta, pad=case % 3)
            b = operand(rng, k, n, dtype, tb, pad=(case + 1) % 3)
            c0 = rng.standard_normal((m, n)).astype(dtype)
            beta = 0.5 if case % 2 else 0.0
            with threads(1):
                want = product(a, b, c0.copy(), beta=beta)
            with threads(2):
                for rep in range(REPEATS):
                    got = product(a, b, c0.copy(), beta=beta)
                    bad = np.argwhere(got != want)
                    assert bad.size == 0, (
                        f"{nest} {np.dtype(dtype)} m={m} k={k} n={n} ta={ta} tb={tb} run {rep}: "
                        f"{len(bad)} elements differ from 1 thread, first at {bad[0].tolist()}")
            ref = a.astype(np.float64) @ b.astype(np.float64) + beta * c0.astype(np.float64)
            tol = 1e-3 if dtype == np.float32 else 1e-10
            np.testing.assert_allclose(want, ref, rtol=tol, atol=tol * np.sqrt(k))
    finally:
        K._gemm_set_path(0)


def test_the_reported_column_split_race_is_gone(threads):
    """800x192 @ 192x8193 float32 on 2 threads gave 32 wrong columns in most runs."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((800, 192)).astype(np.float32)
    b = rng.standard_normal((192, 8193)).astype(np.float32)
    threads(1)
    want = nnfast.matmul(a, b)
    threads(2)
    for _ in range(4 * REPEATS):
        np.testing.assert_array_equal(nnfast.matmul(a, b), want)
