"""Fit time of nnfast.sklearn.MLPClassifier against scikit-learn's, same run, same threads.

    python benchmarks/bench_sklearn.py [--threads N] [--repeats R] [--dtype float64|float32|both]
                                       [--datasets digits,fashion]

Both estimators get hidden_layer_sizes=(100,), relu, adam, max_iter=10 and the same
random_state; OpenBLAS (scikit-learn's matrix products) is limited to the same thread count as
nnfast through threadpoolctl. Fits alternate between the libraries with no pause between
them (a program using both gets the other's spinning threads too). Prints the median fit time
of each, the speed-up, and nnfast's share of the FMA peak measured by benchmarks/peak.py at
the same thread count and dtype: the fit's FLOPs (per image and epoch: forward, the weight
gradients and the hidden layer's input gradient, 2·(2·(d·100 + 100·c) + 100·c)) over its time.
Fashion-MNIST (60,000 x 784) is read from the Debian package dataset-fashion-mnist.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import _tree  # noqa: F401  (the source tree's nnfast when it is built in place)
import numpy as np

import nnfast

FASHION = "/usr/share/datasets/fashion-mnist"


def load(name: str):
    if name == "digits":
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        return X / 16.0, y
    if not os.path.isdir(FASHION):
        return None
    (X, y), _ = nnfast.datasets.load_fashion_mnist(FASHION, progress=False)
    return X.astype(np.float64), y


def _fit_once(cls, X, y) -> tuple:
    """(seconds, epochs run) of one fit."""
    est = cls(hidden_layer_sizes=(100,), activation="relu", solver="adam", max_iter=10,
              random_state=0)
    t = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - t, est.n_iter_


def fit_flops(X, y, epochs: int) -> float:
    """Multiply-adds x 2 of `epochs` epochs of the (100,) MLP on X, y (see the docstring)."""
    d, c = X.shape[1], len(np.unique(y))
    c = 1 if c == 2 else c      # binary: one logistic output, as scikit-learn
    return 2.0 * (2 * (d * 100 + 100 * c) + 100 * c) * len(X) * epochs


def fit_times(classes: dict, X, y, repeats: int) -> dict:
    """Median fit time per estimator class. Repeats are interleaved (each library sees the
    same machine state), with no pause or untimed warm-up fit between them: a program that
    uses both libraries gets the other's spinning threads too."""
    times = {name: [] for name in classes}
    epochs = {}
    for _ in range(repeats):
        for name, cls in classes.items():
            dt, epochs[name] = _fit_once(cls, X, y)
            times[name].append(dt)
    return {name: statistics.median(ts) for name, ts in times.items()}, epochs


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
    from peak import measured_peak
    header = (f"{'dataset':<10}{'n x d':>13}{'dtype':>9}{'sklearn s':>11}{'nnfast s':>10}"
              f"{'speed-up':>10}{'nnfast % of peak':>18}")
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
                t, epochs = fit_times({"sklearn": SkMLP, "nnfast": NnMLP}, Xd, y, args.repeats)
                ref, ours = t["sklearn"], t["nnfast"]
                peak = measured_peak(Xd.itemsize, args.threads, 1.0)
                share = 100.0 * fit_flops(Xd, y, epochs["nnfast"]) / ours / (peak * 1e9)
                shape = f"{Xd.shape[0]}x{Xd.shape[1]}"
                print(f"{name:<10}{shape:>13}{dt:>9}{ref:>11.3f}{ours:>10.3f}"
                      f"{ref / ours:>9.2f}x{share:>17.0f}%", flush=True)


if __name__ == "__main__":
    main()
