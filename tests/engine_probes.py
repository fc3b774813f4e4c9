"""Probes shared by the engine tests: memory growth per training step, many threads calling
one model, and a plan call from a fresh thread while the GEMM's allocations fail."""
from __future__ import annotations

import threading
import tracemalloc

import numpy as np

import nnfast


class StepGrowth(nnfast.callbacks.Callback):
    """Records, for training batches 3..10, the traced-memory peak of each batch above what was
    allocated before it (``growth``: bytes). Tracing starts after batch 2 (the first batches
    of each size allocate their workspace)."""

    def __init__(self):
        super().__init__()
        self.growth: list = []
        self.base = 0

    def on_train_batch_end(self, batch, logs=None):
        if batch == 2:
            tracemalloc.start()
        elif batch > 2 and tracemalloc.is_tracing():
            self.growth.append(tracemalloc.get_traced_memory()[1] - self.base)
        if tracemalloc.is_tracing():
            tracemalloc.reset_peak()
            self.base = tracemalloc.get_traced_memory()[0]
        if batch == 10:
            tracemalloc.stop()


def errors_of_threads_calling(model, xs: list, repeats: int) -> list:
    """Calls model(xs[i]) ``repeats`` times in thread i, each result compared with the one
    computed first in this thread; returns the exceptions the threads raised."""
    want = [model(x) for x in xs]
    errors: list = []

    def work(i):
        try:
            for _ in range(repeats):
                np.testing.assert_array_equal(model(xs[i]), want[i])
        except Exception as e:   # reported in the main thread
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


def forward_in_fresh_thread_without_memory(kernels, plan, x) -> list:
    """plan.forward(x) in a new thread (which holds no GEMM workspace yet) while the GEMM's
    allocations fail (``kernels._gemm_simulate_oom``); returns the MemoryError messages."""
    return call_in_fresh_thread_without_memory(kernels, lambda: plan.forward(x))


def call_in_fresh_thread_without_memory(kernels, call) -> list:
    """call() in a new thread (which holds no workspace yet, so a kernel must ask for one)
    while the GEMM's workspace allocations fail; returns the MemoryError messages."""
    result: list = []

    def fresh_thread():
        try:
            call()
        except MemoryError as e:
            result.append(str(e))

    kernels._gemm_simulate_oom(True, 0)
    try:
        t = threading.Thread(target=fresh_thread)
        t.start()
        t.join()
    finally:
        kernels._gemm_simulate_oom(False)
    return result
