"""FMA peak of this machine for nnfast's dispatched kernel path, at 1 and 2 threads.

    python benchmarks/peak.py [--seconds 1.0] [--threads 1,2]

A small C loop in the extension (nnf_fma_peak) runs 12 independent FMA chains per thread with
the active ISA's widest vectors (AVX-512, AVX2+FMA or the generic baseline) for about
`--seconds`, split into 5 runs of which the best counts; the result is the roof every GEMM
figure is compared with (compare.py "peak%").
"""
from __future__ import annotations

import argparse

import _tree  # noqa: F401  (the source tree's nnfast when it is built in place)

import nnfast
from nnfast._native import _kernels


def measured_peak(dtype_size: int, nthreads: int, seconds: float, tries: int = 5) -> float:
    """The best of `tries` short runs: on a shared machine a neighbour can hold a core for a
    while, and the roof is what the CPU does when it has it."""
    return max(_kernels.fma_peak(dtype_size, nthreads, seconds / tries) for _ in range(tries))


def main(argv=None):
    p = argparse.ArgumentParser(description="FMA peak GFLOP/s of the active kernel path")
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--threads", default="1,2")
    args = p.parse_args(argv)
    info = nnfast.info()
    print(f"kernel path: {info['kernel_path']}  (CPU features: "
          f"{', '.join(info['cpu_features'])})")
    print(f"{'threads':>7}  {'float32 GFLOP/s':>15}  {'float64 GFLOP/s':>15}")
    for nt in (int(t) for t in args.threads.split(",") if t):
        f32 = measured_peak(4, nt, args.seconds)
        f64 = measured_peak(8, nt, args.seconds)
        print(f"{nt:>7}  {f32:>15.1f}  {f64:>15.1f}")


if __name__ == "__main__":
    main()
