"""Where the CPU goes when nnfast runs right after a NumPy BLAS call (Linux only).

    python benchmarks/core_share.py [--calls 101] [--shape 256x784x512]

For one float32 product on 2 threads, medians of --calls calls in one process, it reads each
thread's CPU time (/proc/self/task/<tid>/schedstat, ns on CPU) around every timed nnfast call and
prints, per situation ("alone": after another nnfast call; "after numpy": right after an `a @ b`
of the same shape):
  wall µs              the nnfast call
  worker CPU / wall    how much of a core nnfast's pool worker got during the call
  others CPU / wall    the same for the process's other threads (NumPy's BLAS threads:
                       OpenBLAS spins after each call)
  bound                the speed ratio against "alone" that a perfectly balanced split could
                       reach with the worker's share s: (1 + s) / 2 for the caller plus one worker

This is the measurement behind docs/threading.md's bound for nnfast right after NumPy: the
caller's core is free, the worker's is shared with OpenBLAS's spinning thread, and the kernel's
scheduler (EEVDF on Linux >= 6.6) shares that core by fairness whatever the spinner's
sched_yield calls, so the worker gets a fraction of it and no split of the work can beat the bound.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def tids() -> list:
    return sorted(int(t) for t in os.listdir("/proc/self/task"))


def cpu_ns(tid: int) -> int:
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            return int(f.read().split()[0])
    except FileNotFoundError:   # a thread that ended meanwhile
        return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=101)
    ap.add_argument("--shape", default="256x784x512", help="MxKxN of the float32 product")
    args = ap.parse_args(argv)
    if not os.path.exists("/proc/self/task"):
        print("core_share.py needs Linux's /proc/self/task")
        return 1
    sys.path.insert(0, HERE)
    import _tree  # noqa: F401  (the source tree's build when there is one)
    import numpy as np
    from threadpoolctl import threadpool_limits

    import nnfast

    m, k, n = (int(v) for v in args.shape.split("x"))
    nnfast.set_num_threads(2)
    threadpool_limits(2, user_api="blas")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    a @ b                                   # NumPy's BLAS threads exist from here on
    before = set(tids())
    nnfast.matmul(a, b)                     # and nnfast's pool worker from here on
    main_tid = os.getpid()
    ours = sorted(set(tids()) - before)
    blas = [t for t in sorted(before) if t != main_tid]
    print(f"nnfast {nnfast.__version__}, NumPy {np.__version__}, Linux {platform.release()}, "
          f"{args.shape} float32, 2 threads, medians of {args.calls} calls")
    print(f"{'situation':<12} {'wall µs':>9} {'worker CPU/wall':>16} {'others CPU/wall':>16} "
          f"{'bound':>6} {'ratio':>6}")
    alone_wall = None
    for situation in ("alone", "after numpy"):
        wall, share, blas_share = [], [], []
        for _ in range(args.calls):
            if situation == "alone":
                nnfast.matmul(a, b)
            else:
                a @ b
            c0 = {t: cpu_ns(t) for t in ours + blas}
            t0 = time.perf_counter_ns()
            nnfast.matmul(a, b)
            dt = time.perf_counter_ns() - t0
            c1 = {t: cpu_ns(t) for t in ours + blas}
            wall.append(dt)
            share.append(sum(c1[t] - c0[t] for t in ours) / dt)
            blas_share.append(sum(c1[t] - c0[t] for t in blas) / dt)
        w, s = float(np.median(wall)), min(float(np.median(share)), 1.0)
        alone_wall = w if alone_wall is None else alone_wall
        print(f"{situation:<12} {w / 1e3:>9.0f} {s:>16.2f} {float(np.median(blas_share)):>16.2f} "
              f"{(1 + s) / 2:>6.2f} {alone_wall / w:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
