"""Fit time of nnfast.sklearn.MLPClassifier against scikit-learn's, same run, same threads.

    python benchmarks/bench_sklearn.py [--threads N] [--repeats R] [--dtype float64|float32|both]
                                       [--datasets digits,fashion]

Both estimators get hidden_layer_sizes=(100,), relu, adam, max_iter=10 and the same
random_state; OpenBLAS (scikit-learn's matrix products) is limited to the same thread count as
nnfast through threadpoolctl. Prints the median fit time of each and the speed-up.
Fashion-MNIST (60,000 x 784) is read from the Debian package dataset-fashion-mnist.
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
import warnings

import numpy as np

import nnfast

FASHION = "/usr/share/datasets/fashion-mnist"


def _idx(path: str) -> np.ndarray:
    with gzip.open(path) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(name: str):
    if name == "digits":
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y
    if not os.path.isdir(FASHION):
        return None
    X = _idx(f"{FASHION}/train-images-idx3-ubyte.gz")
    return X.reshape(len(X), -1) / 255.0, _idx(f"{FASHION}/train-labels-idx1-ubyte.gz")


def fit_time(cls, X, y, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        est = cls(hidden_layer_sizes=(100,), activation="relu", solver="adam", max_iter=10,
                  random_state=0)
        t = time.perf_counter()
        est.fit(X, y)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=nnfast.get_num_threads())
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32", "both"])
    ap.add_argument("--datasets", default="digits,fashion")
    args = ap.parse_args()

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLP
    from threadpoolctl import threadpool_limits

    from nnfast.sklearn import MLPClassifier as NnMLP

    warnings.simplefilter("ignore", ConvergenceWarning)
    nnfast.set_num_threads(args.threads)
    dtypes = ["float64", "float32"] if args.dtype == "both" else [args.dtype]
    info = nnfast.info()
    print(f"nnfast {info['version']} backend={info['backend']} path={info['kernel_path']} "
          f"threads={args.threads} repeats={args.repeats} (median fit time, max_iter=10)")
    header = (f"{'dataset':<10}{'n x d':>13}{'dtype':>9}{'sklearn s':>11}{'nnfast s':>10}"
              f"{'speed-up':>10}")
    print(header)
    print("-" * len(header))
    with threadpool_limits(args.threads, user_api="blas"):
        for name in args.datasets.split(","):
            data = load(name)
            if data is None:
                print(f"{name:<10} skipped: {FASHION} not found")
                continue
            X, y = data
            for dt in dtypes:
                Xd = np.ascontiguousarray(X, dtype=dt)
                ref = fit_time(SkMLP, Xd, y, args.repeats)
                ours = fit_time(NnMLP, Xd, y, args.repeats)
                shape = f"{Xd.shape[0]}x{Xd.shape[1]}"
                print(f"{name:<10}{shape:>13}{dt:>9}{ref:>11.3f}{ours:>10.3f}"
                      f"{ref / ours:>9.2f}x", flush=True)


if __name__ == "__main__":
    main()
