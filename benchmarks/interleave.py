"""nnfast inside a real process: GEMM calls next to NumPy's BLAS, PyTorch and a busy neighbour,
for both threading runtimes (nnfast's pool and OpenMP).

    python benchmarks/interleave.py [--calls 41] [--markdown]

For each float32 shape, 2 threads, medians of --calls calls in one process:
  alone        nnfast.matmul back to back
  after numpy  nnfast.matmul timed right after an `a @ b` of the same shape (OpenBLAS's
               workers still spinning)
  numpy alone / numpy after nnfast   the same from NumPy's side
  after torch  nnfast.matmul right after a PyTorch MLP forward (torch's pool spinning)
  busy 2T / quiet 1T  nnfast on 2 threads while another process busy-loops, against one
               thread with no neighbour
Ratios are speeds against "alone" (1.00 = no slowdown). Each runtime is measured in its own
child process (NNFAST_THREADING), so one runtime's spinning threads never touch the other's
figures. OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset (they slow NumPy on this machine).
Nothing pauses between measurements: users' programs do not.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SLOW_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = [("128x784x256", 128, 784, 256, False), ("64x784x256", 64, 784, 256, False),
          ("256x784x512", 256, 784, 512, False), ("784x128.128x256 (A^T)", 784, 128, 256, True),
          ("128x128x10", 128, 128, 10, False)]


def child(runtime: str, calls: int) -> dict:
    sys.path.insert(0, HERE)
    import _tree  # noqa: F401  (the source tree's build when there is one)
    import numpy as np
    from threadpoolctl import threadpool_limits

    import nnfast

    try:
        import torch
    except ImportError:
        torch = None
    nnfast.set_num_threads(2)
    threadpool_limits(2, user_api="blas")
    rng = np.random.default_rng(0)
    net = None
    if torch is not None:
        torch.set_num_threads(2)
        net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                  torch.nn.Linear(256, 128), torch.nn.ReLU(),
                                  torch.nn.Linear(128, 10))
        tx = torch.randn(128, 784)

    def med(f, before=None):
        ts = []
        for _ in range(calls):
            if before is not None:
                before()
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts)) * 1e6

    out = {"runtime": nnfast.info()["threading"], "shapes": {}}
    for label, m, k, n, ta in SHAPES:
        a = (rng.standard_normal((k, m)).astype(np.float32).T if ta
             else rng.standard_normal((m, k)).astype(np.float32))
        b = rng.standard_normal((k, n)).astype(np.float32)

        def ours(a=a, b=b):
            nnfast.matmul(a, b)

        def theirs(a=a, b=b):
            np.matmul(a, b)

        r = {"alone": med(ours), "after_numpy": med(ours, theirs), "numpy_alone": med(theirs),
             "numpy_after": med(theirs, ours)}
        if net is not None:
            with torch.no_grad():
                r["after_torch"] = med(ours, lambda: net(tx))
        nnfast.set_num_threads(1)
        r["quiet_1t"] = med(ours)
        nnfast.set_num_threads(2)
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            r["busy_2t"] = med(ours)
        finally:
            busy.kill()
            busy.wait()
        out["shapes"][label] = r
    return out


def table(results: list[dict], markdown: bool) -> str:
    head = ["runtime", "shape", "alone µs", "after numpy", "numpy alone µs", "numpy after nnfast",
            "after torch", "busy 2T / quiet 1T"]
    rows = []
    for res in results:
        for label, r in res["shapes"].items():
            torch_ratio = f"{r['alone'] / r['after_torch']:.2f}" if "after_torch" in r else "-"
            rows.append([res["runtime"], label, f"{r['alone']:.0f}",
                         f"{r['alone'] / r['after_numpy']:.2f}", f"{r['numpy_alone']:.0f}",
                         f"{r['numpy_alone'] / r['numpy_after']:.2f}", torch_ratio,
                         f"{r['quiet_1t'] / r['busy_2t']:.2f}"])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    return "\n".join([fmt.format(*head)] + [fmt.format(*r) for r in rows])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=41, help="calls per median (default 41)")
    p.add_argument("--runtimes", default="pool,openmp", help="comma-separated: pool,openmp")
    p.add_argument("--markdown", action="store_true")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.calls)))
        return
    env = {k: v for k, v in os.environ.items() if k not in SLOW_ENV}
    results = []
    for rt in args.runtimes.split(","):
        env["NNFAST_THREADING"] = rt
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", rt,
                               "--calls", str(args.calls)], env=env, capture_output=True,
                              text=True, timeout=1800)
        if proc.returncode != 0:
            sys.exit(f"interleave: the {rt} run failed:\n{proc.stderr}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(table(results, args.markdown))


if __name__ == "__main__":
    main()
