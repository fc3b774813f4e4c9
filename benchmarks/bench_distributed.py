"""Data-parallel benchmark: 2 MPI ranks x 1 thread against 1 process x 2 threads.

Network 784-256-128-10 relu, softmax cross-entropy, Adam lr 1e-3, global batch 128 (64 per rank
with 2 ranks), on Fashion-MNIST when installed (``apt-get install dataset-fashion-mnist``),
otherwise synthetic data of the same shape (60,000 x 784). Reports seconds per epoch (median),
and the inputs of the scaling model in docs/scaling.md: compute time per step at several batch
sizes (1 process) and the measured time of the per-step Allreduce (2 ranks).

    python benchmarks/bench_distributed.py [--epochs 3] [--json results.json]

Needs ``pip install "nnfast[mpi]"`` (or a system MPI with mpi4py). The machine should be idle;
numbers on a busy machine are indicative only.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ARCH = (784, 256, 128, 10)
GLOBAL_BATCH = 128


def load_data(synthetic: bool):
    if not synthetic:
        try:
            from nnfast.datasets import load_fashion_mnist
            (x, y), _ = load_fashion_mnist(progress=False)
            return (x.astype(np.float32) / 255.0), y.astype(np.int64), "Fashion-MNIST"
        except (OSError, ValueError):
            pass
    rng = np.random.default_rng(0)
    x = rng.random((60000, 784), dtype=np.float32)
    y = rng.integers(0, 10, size=60000).astype(np.int64)
    return x, y, "synthetic 60000x784"


def build(seed=0):
    import nnfast
    from nnfast import layers, optimizers
    m = nnfast.Sequential([layers.Dense(ARCH[1], "relu", input_dim=ARCH[0]),
                           layers.Dense(ARCH[2], "relu"), layers.Dense(ARCH[3], "softmax")],
                          seed=seed)
    m.compile(optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def worker(args) -> None:
    """One run: 1 process (no MPI) or one rank of an MPI job; rank 0 prints one JSON line."""
    import nnfast
    from nnfast import distributed
    from nnfast.callbacks import LambdaCallback
    nnfast.set_num_threads(args.threads)
    rank, size = distributed.init()
    x, y, name = load_data(args.synthetic)
    model = build()
    times, t0 = [], [0.0]
    timer = LambdaCallback(on_epoch_begin=lambda e, logs: t0.__setitem__(0, time.perf_counter()),
                           on_epoch_end=lambda e, logs: times.append(time.perf_counter() - t0[0]))
    model.fit(x, y, epochs=args.epochs, batch_size=GLOBAL_BATCH // size, verbose=0, seed=1,
              callbacks=[timer], distributed=size > 1)
    result = {"data": name, "ranks": size, "threads": args.threads, "epoch_seconds": times,
              "steps_per_epoch": -(-len(x) // GLOBAL_BATCH), "params": model.count_params()}
    if size > 1:
        result["allreduce_seconds"] = _time_allreduce(model)
        result["reduced_floats"] = model.count_params() + _tail(model)
    else:
        result["step_seconds"] = _time_steps(model, x, y)
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def _tail(model) -> int:
    from nnfast.distributed._data_parallel import _METRICS
    return _METRICS + len(model.metrics)


def _time_allreduce(model, reps: int = 300) -> float:
    """Fastest of ``reps`` per-step Allreduces (gradient buffer + tail), in seconds: on a
    shared machine the minimum is the best estimate of the cost itself."""
    from mpi4py import MPI
    buf = np.zeros(model.count_params() + _tail(model), dtype=model.dtype)
    comm = MPI.COMM_WORLD
    samples = []
    for _ in range(reps):
        comm.Barrier()
        t = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        samples.append(time.perf_counter() - t)
    return min(samples)


STEP_BATCHES = (16, 32, 64, 128, 256, 512, 1024)


def _time_steps(model, x, y, reps: int = 50) -> dict:
    """Fastest compute time of one training step (forward, backward, update) per batch size."""
    from nnfast.engine import training
    out = {}
    for b in STEP_BATCHES:
        ws = model.workspace(b)
        samples = []
        for i in range(reps + 3):
            lo = (i * b) % (len(x) - b)
            xb, yb = x[lo:lo + b], y[lo:lo + b]
            t = time.perf_counter()
            training.train_step(model, ws, xb, yb, b)
            samples.append(time.perf_counter() - t)
        out[b] = min(samples[3:])
    return out


# ----------------------------------------------------------------------------- scaling model
NETWORKS = {"10 Gb/s Ethernet": (10e9, 20e-6), "25 Gb/s Ethernet": (25e9, 20e-6),
            "100 Gb/s InfiniBand": (100e9, 3e-6)}   # line rate (bit/s), latency per message (s)
NODES = (2, 4, 8, 16, 32, 64)


def ring_allreduce_seconds(nbytes: float, p: int, bits_per_s: float, latency: float) -> float:
    """Ring allreduce: 2(p-1) messages of nbytes/p each (reduce-scatter, then allgather)."""
    return 2 * (p - 1) / p * nbytes / (bits_per_s / 8) + 2 * (p - 1) * latency


def compute_model(step_seconds: dict) -> tuple[float, float]:
    """``t(b) = t0 + c*b`` from the measured steps, robust to a few disturbed timings on a
    shared machine: c is the median of the pairwise slopes (Theil-Sen), t0 the median
    residual, both kept >= 0."""
    pts = sorted((int(b), t) for b, t in step_seconds.items())
    slopes = [(t2 - t1) / (b2 - b1) for i, (b1, t1) in enumerate(pts) for b2, t2 in pts[i + 1:]]
    c = max(statistics.median(slopes), 0.0)
    t0 = max(statistics.median(t - c * b for b, t in pts), 0.0)
    return t0, c


def scaling_tables(nbytes: float, step_seconds: dict) -> str:
    """Markdown tables of predicted parallel efficiency (speedup / p); the Allreduce starts
    after the backward pass (no overlap), as in nnfast. Compute time per step: the linear
    model fitted to ``step_seconds`` (per-node batch size -> seconds)."""
    t0, c = compute_model(step_seconds)

    def t_c(b):
        return t0 + c * b

    head = (f"message {nbytes:,.0f} bytes; compute per step t(b) = {t0 * 1e3:.3f} ms + "
            f"{c * 1e6:.1f} us * b (fitted to the measured steps)")
    out = [head, ""]
    # efficiency = speedup / p = t(B_global) / (p * (t(B_global / p) + t_allreduce(p)))
    for title, batch in (("weak scaling: batch 128 per node (global 128 p)", None),
                         ("strong scaling: global batch 1024 (1024/p per node)", 1024)):
        out += [f"{title}", "", "| nodes | t_compute ms | " + " | ".join(
            f"{n}: t_ar ms, eff." for n in NETWORKS) + " |",
            "|---|---|" + "---|" * len(NETWORKS)]
        for p in NODES:
            tc = t_c(128 if batch is None else batch / p)
            t1 = tc if batch is None else t_c(batch) / p   # ideal time per step on p nodes
            cells = []
            for bits, lat in NETWORKS.values():
                ta = ring_allreduce_seconds(nbytes, p, bits, lat)
                cells.append(f"{ta * 1e3:.2f}, {t1 / (tc + ta):.0%}")
            out.append(f"| {p} | {tc * 1e3:.2f} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def run(cmd, env) -> dict:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600,
                          check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n"
                       f"{proc.stderr}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--synthetic", action="store_true", help="synthetic data even if the real "
                   "Fashion-MNIST is installed")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--report", metavar="RESULTS.json",
                   help="print the tables from a results file written by --json, no run")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    if args.report:
        with open(args.report) as f:
            res = json.load(f)
        report(res["single"], res["two_ranks"])
        return
    from nnfast.distributed import _mpi
    me = [sys.executable, os.path.abspath(__file__), "--worker", "--epochs", str(args.epochs)]
    me += ["--synthetic"] if args.synthetic else []
    env = {k: v for k, v in os.environ.items()
           if k not in ("NNFAST_NUM_THREADS", "OMP_NUM_THREADS")}
    single = run(me + ["--threads", "2"], env)
    cmd, extra = _mpi.launch_command(2, me + ["--threads", "1"])
    double = run(cmd, {**env, **extra, "OMP_NUM_THREADS": "1"})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"single": single, "two_ranks": double}, f, indent=1)
    report(single, double)


def report(single: dict, double: dict) -> None:
    epochs = len(single["epoch_seconds"])
    s1, s2 = statistics.median(single["epoch_seconds"]), statistics.median(double["epoch_seconds"])
    print(f"data: {single['data']}; network {'-'.join(map(str, ARCH))}, "
          f"{single['params']:,} params, Adam, global batch {GLOBAL_BATCH}, "
          f"{epochs} epochs, median seconds per epoch")
    print("| run | s/epoch | epochs |")
    print("|---|---|---|")
    print(f"| 1 process x 2 threads (batch 128) | {s1:.3f} | "
          f"{', '.join(f'{t:.2f}' for t in single['epoch_seconds'])} |")
    print(f"| 2 ranks x 1 thread (batch 64 per rank) | {s2:.3f} | "
          f"{', '.join(f'{t:.2f}' for t in double['epoch_seconds'])} |")
    print(f"ratio (2 ranks / 1 process): {s2 / s1:.2f}")
    ar, n_reduced = double["allreduce_seconds"], double["reduced_floats"]
    print(f"Allreduce of {n_reduced:,} float32 between 2 local ranks: {ar * 1e3:.3f} ms "
          f"(fastest of 300), {ar * double['steps_per_epoch']:.3f} s per epoch")
    print("compute per step, 1 process x 2 threads (fastest of 50): " + ", ".join(
        f"batch {b}: {t * 1e3:.2f} ms" for b, t in single["step_seconds"].items()))
    steps = {int(b): t for b, t in single["step_seconds"].items()}
    print()
    print(scaling_tables(4.0 * n_reduced, steps))


if __name__ == "__main__":
    main()
