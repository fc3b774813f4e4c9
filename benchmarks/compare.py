"""GEMM speed of nnfast.matmul against np.matmul (OpenBLAS) and torch.matmul, same run.

Run it as

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare.py [--quick]
        [--threads 1,2] [--markdown]

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are set on the development machine and make NumPy pick
a slower OpenBLAS kernel and blocking; they must be unset for a fair comparison. The script
re-executes itself without them when it finds them set (``--keep-env`` disables that), and
prints which OpenBLAS kernel (core type) actually ran.

For every shape (M x K x N: A is M x K, B is K x N) and thread count it reports GFLOP/s
(2*M*N*K / time) of nnfast, NumPy and PyTorch (if importable), each the median of repeats
taken interleaved (ours, numpy, torch, ours, ...) so machine noise hits all alike, the ratio
nnfast / NumPy (the median, and quartiles, of the per-round ratios: each round's samples see
the same machine state) and nnfast's percentage of the FMA peak measured on this machine by
benchmarks/peak.py (the best of 5 short runs) at the same thread count. Thread counts are
matched with threadpoolctl (OpenBLAS), torch.set_num_threads and nnfast.set_num_threads.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

SLOW_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _reexec_without_slow_env(argv):
    if any(v in os.environ for v in SLOW_ENV) and "--keep-env" not in argv:
        env = {k: v for k, v in os.environ.items() if k not in SLOW_ENV}
        print(f"[compare] unsetting {', '.join(v for v in SLOW_ENV if v in os.environ)} "
              "and re-running (they slow NumPy here)", flush=True)
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)


_reexec_without_slow_env(sys.argv[1:])
import _tree  # noqa: E402,F401  (the source tree's nnfast when it is built in place)
import numpy as np
from peak import measured_peak
from threadpoolctl import threadpool_info, threadpool_limits

import nnfast

try:
    import torch
except ImportError:  # torch is optional
    torch = None

# (label, M, K, N, dtype, layout) ; layout "nn" | "tn" (A = x.T view) | "nt" (B = w.T view)
SHAPES = [
    ("64x784x256", 64, 784, 256, np.float32, "nn"),
    ("128x784x256", 128, 784, 256, np.float32, "nn"),
    ("32x784x256", 32, 784, 256, np.float32, "nn"),
    ("256x784x512", 256, 784, 512, np.float32, "nn"),
    ("128x256x128", 128, 256, 128, np.float32, "nn"),
    ("128x128x10", 128, 128, 10, np.float32, "nn"),
    ("512^3", 512, 512, 512, np.float32, "nn"),
    ("1024^3", 1024, 1024, 1024, np.float32, "nn"),
    ("2048^3", 2048, 2048, 2048, np.float32, "nn"),
    ("784x128.128x256 (A^T)", 784, 128, 256, np.float32, "tn"),
    ("128x256.256x784 (B^T)", 128, 256, 784, np.float32, "nt"),
    ("1024^3 f64", 1024, 1024, 1024, np.float64, "nn"),
]


def operands(m, k, n, dtype, layout, rng):
    if layout == "tn":
        a = rng.standard_normal((k, m)).astype(dtype).T  # a = x.T, x is k x m
    else:
        a = rng.standard_normal((m, k)).astype(dtype)
    if layout == "nt":
        b = rng.standard_normal((n, k)).astype(dtype).T  # b = w.T, w is n x k
    else:
        b = rng.standard_normal((k, n)).astype(dtype)
    return a, b


def timer(fn, target_s):
    """Seconds per call of fn, from a batch long enough to be timed reliably."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    reps = max(1, int(target_s / max(one, 1e-7)))

    def sample():
        # No pause and no untimed call before the batch: the previous library's spinning
        # workers are part of what a program that uses both gets.
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        return (time.perf_counter() - t) / reps

    return sample


def bench_shape(shape, nthreads, repeats, target_s, peak):
    label, m, k, n, dtype, layout = shape
    rng = np.random.default_rng(0)
    a, b = operands(m, k, n, dtype, layout, rng)
    fns = {"nnfast": lambda: nnfast.matmul(a, b), "numpy": lambda: np.matmul(a, b)}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)  # same memory and strides
        fns["torch"] = lambda: torch.matmul(ta, tb)
    samplers = {name: timer(f, target_s) for name, f in fns.items()}
    times = {name: [] for name in fns}
    for _ in range(repeats):  # interleaved: each library sees the same machine state
        for name, s in samplers.items():
            times[name].append(s())
    flops = 2.0 * m * n * k
    g = {name: flops / statistics.median(ts) * 1e-9 for name, ts in times.items()}
    pk = peak[(nthreads, np.dtype(dtype).itemsize)]
    # The ratio pairs each round's two samples, taken seconds apart: on a shared machine a
    # neighbour's load comes and goes over seconds, so a pair sees the same machine state
    # even when the medians of the two series do not.
    ratios = sorted(tn / tf for tn, tf in zip(times["numpy"], times["nnfast"]))
    q1, q3 = np.percentile(ratios, [25, 75])
    return {"shape": label, "threads": nthreads, **g, "ratio": statistics.median(ratios),
            "iqr": f"{q1:.2f}-{q3:.2f}",
            "peak%": 100.0 * g["nnfast"] / pk if pk > 0 else float("nan")}


def openblas_lines():
    out = []
    for lib in threadpool_info():
        if lib.get("internal_api") in ("openblas", "mkl", "blis"):
            out.append(f"{lib['internal_api']} {lib.get('version')} "
                       f"core={lib.get('architecture')} threading={lib.get('threading_layer')} "
                       f"({os.path.basename(lib['filepath'])})")
    return out or ["no BLAS found by threadpoolctl"]


def fmt_table(rows, markdown):
    cols = ["shape", "threads", "nnfast", "numpy"] + (["torch"] if torch is not None else []) \
        + ["ratio", "ratio IQR", "peak%"]
    cells = [[r["shape"], str(r["threads"])] + [f"{r[c]:.1f}" for c in cols[2:-3]]
             + [f"{r['ratio']:.2f}x", r["iqr"], f"{r['peak%']:.0f}%"] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    w = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(cols))]
    lines += ["  ".join(x.rjust(w[i]) if i else x.ljust(w[i]) for i, x in enumerate(c))
              for c in cells]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter repeats")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (1,2)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--keep-env", action="store_true",
                   help="do not unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    p.add_argument("--shapes", default="", help="only shapes whose label contains this")
    args = p.parse_args(argv)
    thread_counts = [int(t) for t in args.threads.split(",") if t]
    repeats, target_s = (5, 0.02) if args.quick else (11, 0.1)
    shapes = [s for s in SHAPES if args.shapes in s[0]]

    info = nnfast.info()
    print(f"nnfast {info['version']}: kernel path {info['kernel_path']}, "
          f"blocking {info['gemm_blocking']}")
    print(f"numpy {np.__version__}; " + "; ".join(openblas_lines()))
    print(f"torch {torch.__version__ if torch is not None else 'not installed'}")
    for v in SLOW_ENV:
        print(f"{v}={os.environ.get(v, '(unset)')}")

    peak = {}
    for nt in thread_counts:
        for size in (4, 8):
            peak[(nt, size)] = measured_peak(size, nt, 0.5 if args.quick else 1.5)
        print(f"measured FMA peak, {nt} thread(s): f32 {peak[(nt, 4)]:.1f} GFLOP/s, "
              f"f64 {peak[(nt, 8)]:.1f} GFLOP/s")

    rows = []
    for nt in thread_counts:
        nnfast.set_num_threads(nt)
        if torch is not None:
            torch.set_num_threads(nt)
        with threadpool_limits(nt):
            for s in shapes:
                rows.append(bench_shape(s, nt, repeats, target_s, peak))
                print(fmt_table(rows[-1:], False).splitlines()[1], flush=True)
    print()
    print(fmt_table(rows, args.markdown))
    print("\nGFLOP/s = 2*M*N*K / median time; ratio = median over rounds of numpy time / "
          "nnfast time in the same round (IQR: its quartiles); peak% of the measured FMA peak "
          "at that thread count and dtype.")


if __name__ == "__main__":
    main()
