"""Train Fashion-MNIST 784-256-128-10 (relu, Adam lr 1e-3, batch 128) with nnfast, PyTorch and
JAX.

All frameworks see the same float32 data, batch size and thread count in the same run, their
epochs interleaved; the table gives test accuracy and seconds per epoch (median over epochs;
the first epoch is listed apart as it includes one-time setup, JAX's compilation among it), and
for each the share of the FMA peak that its epoch time means: the step's FLOPs (forward, the
weight gradients, and the input gradients of every layer but the first: 1.007 MFLOP per image)
over the peak measured by benchmarks/peak.py at the same thread count.

    python benchmarks/bench_train.py                      # 10 epochs, all available threads
    python benchmarks/bench_train.py --threads 1 --epochs 3
    python benchmarks/bench_train.py --quick              # 2 epochs on 10 000 images

Needs the IDX files of Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) or
--data-dir; PyTorch and JAX (pip install nnfast[bench]) for the comparison columns (--no-torch,
--no-jax skip them). JAX runs the whole step under `jax.jit` (Adam written out, epsilon 1e-8 as
the others); XLA sizes its CPU thread pool itself: with --threads 1 the script sets XLA's
single-thread flags before JAX is imported, which recent XLA releases may not fully honour.
"""
from __future__ import annotations

import argparse
import sys
import time

import _race
import _tree  # noqa: F401  (the source tree's nnfast when it is built in place)

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"


def load(data_dir: str):
    """Fashion-MNIST as float32 in [0, 1] and int64 labels, by nnfast's own loader."""
    from nnfast.datasets import load_fashion_mnist
    try:
        (xtr, ytr), (xte, yte) = load_fashion_mnist(data_dir, progress=False)
    except (OSError, ValueError) as e:
        sys.exit(f"bench_train: {e}\n(apt-get install dataset-fashion-mnist or pass --data-dir)")
    return xtr, ytr, xte, yte


def nnfast_trainer(data, batch_size, threads, seed):
    """(run one epoch -> seconds, test accuracy) for nnfast."""
    import nnfast
    from nnfast.layers import Dense

    nnfast.set_num_threads(threads)
    xtr, ytr, xte, yte = data
    model = nnfast.Sequential([Dense(256, "relu", input_dim=784), Dense(128, "relu"),
                               Dense(10, "softmax")], seed=seed)
    # epsilon as PyTorch's default, so both run the same update rule
    model.compile(nnfast.optimizers.Adam(1e-3, epsilon=1e-8),
                  "sparse_categorical_crossentropy", ["accuracy"])

    return _race.nnfast_columns(model, data, batch_size, seed)


def torch_trainer(data, batch_size, threads, seed):
    """(run one epoch -> seconds, test accuracy) for PyTorch."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    xtr, ytr, xte, yte = (torch.from_numpy(a) for a in data)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    n = len(xtr)

    def epoch(i):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    def accuracy():
        with torch.no_grad():
            return (model(xte).argmax(1) == yte).float().mean().item()

    return epoch, accuracy


def jax_trainer(data, batch_size, threads, seed):
    """(run one epoch -> seconds, test accuracy) for JAX (nnfast/cli/_rivals.py: the code
    `nnfast bench` times too)."""
    from nnfast.cli._rivals import jax_trainer as trainer
    return trainer(data, (784, 256, 128, 10), batch_size, seed)


# multiply-adds of one image's step: forward, weight gradients, input gradients of layers 2-3
STEP_FLOPS_PER_IMAGE = 2 * (2 * (784 * 256 + 256 * 128 + 128 * 10) + 256 * 128 + 128 * 10)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None,
                    help="thread count for both frameworks (default: nnfast's default)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--quick", action="store_true", help="2 epochs on 10 000 training images")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX column")
    ap.add_argument("--data-dir", default=DEFAULT_DIR)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import nnfast
    threads = args.threads or nnfast.get_num_threads()
    _race.single_thread_jax(threads, not args.no_jax)
    epochs = 2 if args.quick and args.epochs == 10 else args.epochs
    xtr, ytr, xte, yte = load(args.data_dir)
    if args.quick:
        xtr, ytr = xtr[:10000], ytr[:10000]
    data = (xtr, ytr, xte, yte)

    limits = _race.blas_limits(threads)

    info = nnfast.info()
    print(f"Fashion-MNIST {len(xtr)} train / {len(xte)} test, 784-256-128-10 relu, Adam 1e-3, "
          f"batch {args.batch_size}, {epochs} epochs, {threads} thread(s)")
    print(f"nnfast {info['version']} backend={info['backend']} kernel_path={info['kernel_path']} "
          f"cpu={','.join(info.get('cpu_features', []))}")
    columns = _race.trainers(nnfast_trainer, torch_trainer, jax_trainer, args, data, threads)
    from peak import measured_peak
    peak = measured_peak(4, threads, 0.5 if args.quick else 1.5)
    rows = _race.race(columns, epochs, limits)
    _race.report(rows, STEP_FLOPS_PER_IMAGE * len(xtr), peak, threads)

if __name__ == "__main__":
    main()
