"""What bench_train.py and bench_cnn.py share: the thread settings, the framework columns, the
interleaved epochs and the table (seconds per epoch, test accuracy, share of the FMA peak,
ratios against nnfast).

A trainer is a pair (epoch(i) -> seconds, accuracy() -> test accuracy). Epochs run interleaved
(nnfast, torch, jax, nnfast, ...) with no pause between them, as in users' programs; a
neighbour's load on a shared machine, which comes and goes, then falls on every column alike.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import statistics


def single_thread_jax(threads: int, use_jax: bool) -> None:
    """Ask XLA for one thread when --threads 1 (its flags are read when JAX is imported; recent
    XLA releases may not fully honour them)."""
    if use_jax and threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_"
                                   "eigen=false intra_op_parallelism_threads=1").strip()


def blas_limits(threads: int):
    """NumPy's BLAS held to the same thread count (nnfast itself does not call it)."""
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=threads)
    except ImportError:
        return contextlib.nullcontext()


def nnfast_columns(model, data, batch_size: int, seed: int):
    """(epoch(i) -> seconds, accuracy() -> test accuracy) of a compiled nnfast model on data =
    (x_train, y_train, x_test, y_test): one fit epoch per call, reshuffled with seed + i."""
    import time

    xtr, ytr, xte, yte = data

    def epoch(i):
        t0 = time.perf_counter()
        model.fit(xtr, ytr, epochs=1, batch_size=batch_size, verbose=0, seed=seed + i)
        return time.perf_counter() - t0

    return epoch, lambda: model.evaluate(xte, yte, batch_size=1024)["accuracy"]


def trainers(nnfast_trainer, torch_trainer, jax_trainer, args, data, threads) -> list:
    """[(name, trainer)]: nnfast, then PyTorch and JAX where installed and not skipped."""
    out = [("nnfast", nnfast_trainer(data, args.batch_size, threads, args.seed))]
    rivals = (("torch", "PyTorch not installed: no comparison", args.no_torch, torch_trainer),
              ("jax", "JAX not installed: no JAX column", args.no_jax, jax_trainer))
    for module, missing, skip, trainer in rivals:
        if skip:
            continue
        try:
            version = importlib.import_module(module).__version__
        except ImportError:
            print(f"{missing} (pip install nnfast[bench])")
            continue
        out.append((f"{module} {version}", trainer(data, args.batch_size, threads, args.seed)))
    return out


def race(columns: list, epochs: int, limits) -> list:
    """[(name, epoch seconds, test accuracy)] after `epochs` interleaved epochs."""
    times = {name: [] for name, _ in columns}
    with limits:
        for i in range(epochs):
            for name, (epoch, _) in columns:  # no pause between them: users get none
                times[name].append(epoch(i))
        return [(name, times[name], accuracy()) for name, (_, accuracy) in columns]


def report(rows: list, flops: float, peak: float, threads: int, flops_note: str = "",
           torch_target: str = "") -> None:
    """The table: median s/epoch (first epoch apart: one-time setup, JAX's compilation),
    accuracy, % of the FMA peak; then nnfast's epoch-time ratio against each other column."""
    print(f"\nFMA peak {peak:.0f} GFLOP/s float32 on {threads} thread(s) (benchmarks/peak.py); "
          f"{flops / 1e9:.2f} GFLOP per epoch{flops_note}")
    print(f"\n{'framework':<16}{'s/epoch (median)':>18}{'first epoch':>13}{'total s':>10}"
          f"{'test acc':>10}{'% of peak':>11}")
    for name, times, acc in rows:
        later = times[1:] or times
        share = 100.0 * flops / statistics.median(later) / (peak * 1e9) if peak > 0 else 0.0
        print(f"{name:<16}{statistics.median(later):>18.3f}{times[0]:>13.3f}{sum(times):>10.2f}"
              f"{acc:>10.4f}{share:>10.1f}%")
    for other, other_times, _ in rows[1:]:
        pairs = list(zip(rows[0][1], other_times))
        ratio = statistics.median(a / b for a, b in (pairs[1:] or pairs))
        target = torch_target if other.startswith("torch") else ""
        print(f"\nepoch-time ratio nnfast / {other}: {ratio:.2f} (median over the epochs, each "
              f"pair run back to back; <= 1.0 means nnfast is faster{target})")
