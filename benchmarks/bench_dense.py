"""Dense forward+backward of a 784-256-128-10 network at batch 128: compiled vs reference.

    python benchmarks/bench_dense.py                        # table of medians, 1 and 2 threads
    python -m pytest benchmarks/bench_dense.py              # pytest-benchmark suite

One "step" is what a training step asks of the dense kernels: three dense_forward calls (relu,
relu, identity; pre-activations saved) and three dense_backward calls (the first layer with
need_dx=False), every output in a preallocated workspace, as the model does. The reference
backend is the NumPy composition (OpenBLAS matmul + NumPy elementwise passes); OpenBLAS gets
the same thread count as nnfast (threadpoolctl). Issue 4 target: compiled >= 1.5x faster.
"""
from __future__ import annotations

import itertools
import statistics
import time

import numpy as np
import pytest

import nnfast
from nnfast.backends import compiled, reference

LAYERS = (784, 256, 128, 10)
ACTS = ("relu", "relu", "identity")
BATCH = 128


class DenseStack:
    """Parameters and workspaces of the benchmark network for one backend and dtype."""

    def __init__(self, backend, dtype=np.float32, batch=BATCH, seed=0):
        rng = np.random.default_rng(seed)
        self.be = backend
        self.x = rng.standard_normal((batch, LAYERS[0])).astype(dtype)
        self.W = [(rng.standard_normal((k, m)) / np.sqrt(k)).astype(dtype)
                  for k, m in itertools.pairwise(LAYERS)]
        self.b = [np.zeros(m, dtype) for m in LAYERS[1:]]
        self.z = [np.empty((batch, m), dtype) for m in LAYERS[1:]]
        self.y = [np.empty((batch, m), dtype) for m in LAYERS[1:]]
        self.dz = [np.empty((batch, m), dtype) for m in LAYERS[1:]]
        self.dx = [np.empty((batch, k), dtype) for k in LAYERS[:-1]]
        self.dW = [np.empty_like(w) for w in self.W]
        self.db = [np.empty_like(b) for b in self.b]
        self.dy = rng.standard_normal((batch, LAYERS[-1])).astype(dtype)

    def step(self):
        be, inp = self.be, self.x
        for i, act in enumerate(ACTS):
            be.dense_forward(inp, self.W[i], self.b[i], act, out=self.y[i], z=self.z[i])
            inp = self.y[i]
        g = self.dy
        for i in reversed(range(len(ACTS))):
            xin = self.x if i == 0 else self.y[i - 1]
            be.dense_backward(g, xin, self.W[i], self.z[i], self.y[i], ACTS[i], dW=self.dW[i],
                              db=self.db[i], dx=None if i == 0 else self.dx[i], dz=self.dz[i],
                              need_dx=i > 0)
            g = self.dx[i]


def _limits(n):
    try:
        import threadpoolctl
    except ImportError:  # numbers are then with OpenBLAS's default thread count
        import contextlib
        return contextlib.nullcontext()
    return threadpoolctl.threadpool_limits(n)


def paired_medians(fns, repeat=100, warmup=5, clock=time.perf_counter):
    """Median seconds of each function, calls interleaved so that load from other processes
    (the machine is shared) hits every function alike. clock=time.process_time gives CPU
    seconds of all threads, which a busy machine disturbs less than wall time."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, t in zip(fns, times):
            t0 = clock()
            fn()
            t.append(clock() - t0)
    return [statistics.median(t) for t in times]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", ["compiled", "reference"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dense_step(benchmark, backend, threads, dtype):
    net = DenseStack(compiled if backend == "compiled" else reference, np.dtype(dtype))
    before = nnfast.get_num_threads()
    nnfast.set_num_threads(threads)
    try:
        with _limits(threads):
            benchmark(net.step)
    finally:
        nnfast.set_num_threads(before)


def main():
    before = nnfast.get_num_threads()
    print(f"dense forward+backward, {'-'.join(map(str, LAYERS))}, batch {BATCH}, "
          f"kernel path {nnfast.info()['kernel_path']}")
    print(f"{'dtype':8} {'threads':>7} {'compiled ms':>12} {'reference ms':>13} {'speedup':>8}"
          f" {'cpu: compiled ms':>17} {'reference ms':>13} {'speedup':>8}")
    for dtype in (np.float32, np.float64):
        c, r = DenseStack(compiled, dtype), DenseStack(reference, dtype)
        for threads in (1, 2):
            nnfast.set_num_threads(threads)
            with _limits(threads):
                tc, tr = paired_medians([c.step, r.step])
                cc, cr = paired_medians([c.step, r.step], clock=time.process_time)
            print(f"{np.dtype(dtype).name:8} {threads:>7} {tc * 1e3:>12.3f} {tr * 1e3:>13.3f} "
                  f"{tr / tc:>7.2f}x {cc * 1e3:>17.3f} {cr * 1e3:>13.3f} {cr / cc:>7.2f}x")
    nnfast.set_num_threads(before)


if __name__ == "__main__":
    main()
