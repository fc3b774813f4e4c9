"""Benchmarks for the losses and optimizer updates (issue 4): compiled vs the NumPy reference
in the same run, at 1 and 2 threads.

Targets: softmax cross-entropy forward+backward at batch 128 x 10 classes >= 3x the reference;
Adam over the 235,146 parameters of a 784-256-128-10 network >= 3x.

    python -m pytest benchmarks/bench_loss_optim.py --benchmark-only   # pytest-benchmark
    python -m benchmarks.bench_loss_optim                              # table of medians
"""
from __future__ import annotations

import sys
import timeit

import numpy as np
import pytest

import nnfast
from nnfast.backends import reference

P_MLP = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10      # 235,146
N, C = 128, 10


def _loss_args(dtype, rng):
    return rng.standard_normal((N, C)).astype(dtype), rng.integers(0, C, N)


def _adam_args(dtype, rng):
    p, g = (rng.standard_normal(P_MLP).astype(dtype) for _ in range(2))
    return p, g, np.zeros(P_MLP, dtype), np.zeros(P_MLP, dtype)


def _cases(rng):
    """name -> (function taking the backend module, dtype) pairs."""
    cases = {}
    for dt in (np.float32, np.float64):
        z, y = _loss_args(dt, rng)
        grad = np.empty_like(z)
        cases[f"softmax_xent {N}x{C} {dt.__name__}"] = (
            lambda b, z=z, y=y, grad=grad: b.softmax_cross_entropy(z, y, grad=grad))
        p, g, m, v = _adam_args(dt, rng)
        cases[f"adam P={P_MLP} {dt.__name__}"] = (
            lambda b, p=p, g=g, m=m, v=v: b.adam_update(p, g, m, v, 10, lr=1e-3))
    return cases


def _backends():
    from nnfast.backends import compiled
    return {"reference": reference, "compiled": compiled}


CASES = _cases(np.random.default_rng(0))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", ["reference", "compiled"])
@pytest.mark.parametrize("case", list(CASES))
def test_bench(benchmark, case, backend, threads):
    pytest.importorskip("nnfast.backends.compiled")
    mod = _backends()[backend]
    nnfast.set_num_threads(threads)
    benchmark.group = f"{case} t={threads}"
    benchmark(CASES[case], mod)


def _median_us(fn, number):
    times = timeit.repeat(fn, number=number, repeat=15)
    return float(np.median(times)) / number * 1e6


def main() -> int:
    mods = _backends()
    print(f"nnfast {nnfast.info()['version']}, path {nnfast.info()['kernel_path']}: medians; "
          "compare only within one run")
    print(f"{'case':36s} {'thr':>3s} {'reference us':>13s} {'compiled us':>12s} {'speedup':>8s}")
    for name, fn in CASES.items():
        number = 200 if "xent" in name else 20
        for t in (1, 2):
            nnfast.set_num_threads(t)
            ref = _median_us(lambda fn=fn: fn(mods["reference"]), number)
            cmp_ = _median_us(lambda fn=fn: fn(mods["compiled"]), number)
            print(f"{name:36s} {t:3d} {ref:13.1f} {cmp_:12.1f} {ref / cmp_:7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
