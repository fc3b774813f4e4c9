"""Train a LeNet-5-class CNN on Fashion-MNIST (or MNIST) with nnfast, PyTorch and JAX.

Network (issue 18), channels last for nnfast and JAX, NCHW for PyTorch, "valid" padding in
every framework: 28x28x1 - conv 5x5x6 relu (24x24x6) - maxpool 2 (12x12x6) - conv 5x5x16 relu
(8x8x16) - maxpool 2 (4x4x16) - flatten 256 - dense 120 relu - 84 relu - 10 softmax;
Glorot-uniform kernels and zero biases (Keras' defaults) in all three; Adam 1e-3 with
epsilon 1e-8 (PyTorch's; nnfast and JAX are given the same), batch 64, float32.

All frameworks see the same data, batch size and thread count in the same run, their epochs
interleaved without pauses (nnfast, torch, jax, nnfast, ...) so that a neighbour's load falls
on every column alike. The table gives the median seconds per epoch (the first epoch, with
one-time setup such as JAX's compilation, is listed apart), test accuracy, and the share of the
FMA peak that the epoch time means; then the ratio nnfast / torch (median over the epochs of
each back-to-back pair; the issue's target is <= 0.25).

FLOPs per epoch, counted exactly as multiply-adds x 2 per training image, of the GEMM-shaped
work only (pooling, bias, activation and the loss are not counted):
- forward: conv1 24*24*6 outputs x 5*5*1 taps = 86 400 MACs; conv2 8*8*16 x 5*5*6 = 153 600;
  dense 256*120 + 120*84 + 84*10 = 41 640; 281 640 MACs in all;
- weight gradients: the same 281 640 MACs (each output times each tap once more);
- input gradients: of every layer but the first (no framework needs d(loss)/d(image)):
  281 640 - 86 400 = 195 240 MACs;
so 758 520 MACs = 1 517 040 FLOPs per image, 91.0 GFLOP per epoch of 60 000 images. (The
issue's "about 101 GFLOP" is 3 x forward, which also counts conv1's input gradient.) The peak
is benchmarks/peak.py's measured_peak at the same thread count.

    python benchmarks/bench_cnn.py                        # 10 epochs, Fashion-MNIST, all threads
    python benchmarks/bench_cnn.py --threads 1 --epochs 3
    python benchmarks/bench_cnn.py --dataset mnist --data-dir ~/mnist    # MNIST IDX files
    python benchmarks/bench_cnn.py --quick                # smoke: 1 epoch on 3 000 images

Needs the IDX files of Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) or
--data-dir; PyTorch and JAX (pip install nnfast[bench]) for their columns (--no-torch, --no-jax
skip them). JAX runs the whole step under `jax.jit`; with --threads 1 XLA's single-thread flags
are set before JAX is imported, which recent XLA releases may not fully honour.
"""
from __future__ import annotations

import argparse
import sys
import time

import _race
import _tree  # noqa: F401  (the source tree's nnfast when it is built in place)
import numpy as np

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
CONV = ((6, 5), (16, 5))      # (filters, kernel size), "valid", each followed by maxpool 2
DENSE = (120, 84, 10)


def step_flops_per_image(size: int = 28) -> int:
    """FLOPs of one image's training step, counted as in the module docstring."""
    macs_fwd, first, h, c = 0, 0, size, 1
    for filters, k in CONV:
        h = h - k + 1
        macs = h * h * filters * k * k * c
        first = first or macs
        macs_fwd += macs
        h, c = h // 2, filters
    sizes = (h * h * c, *DENSE)
    macs_fwd += sum(a * b for a, b in zip(sizes, sizes[1:]))
    return 2 * (2 * macs_fwd + (macs_fwd - first))


def load(dataset: str, data_dir: str | None):
    """(x_train, y_train, x_test, y_test): float32 (N, 28, 28, 1) in [0, 1], int64 labels."""
    from nnfast.datasets import load_fashion_mnist, load_mnist
    loader = load_mnist if dataset == "mnist" else load_fashion_mnist
    try:
        (xtr, ytr), (xte, yte) = loader(data_dir, progress=False, as_images=True)
    except (OSError, ValueError) as e:
        sys.exit(f"bench_cnn: {e}\n(apt-get install dataset-fashion-mnist or pass --data-dir)")
    return xtr, ytr, xte, yte


def nnfast_trainer(data, batch_size, threads, seed):
    """(epoch(i) -> seconds, accuracy() -> test accuracy) for nnfast."""
    import nnfast
    from nnfast.layers import Conv2D, Dense, Flatten, MaxPooling2D

    nnfast.set_num_threads(threads)
    xtr, ytr, xte, yte = data
    (f1, k1), (f2, k2) = CONV
    model = nnfast.Sequential([
        Conv2D(f1, k1, activation="relu", input_shape=xtr.shape[1:]), MaxPooling2D(2),
        Conv2D(f2, k2, activation="relu"), MaxPooling2D(2), Flatten(),
        Dense(DENSE[0], "relu"), Dense(DENSE[1], "relu"), Dense(DENSE[2], "softmax"),
    ], seed=seed)
    model.compile(nnfast.optimizers.Adam(1e-3, epsilon=1e-8),
                  "sparse_categorical_crossentropy", ["accuracy"])

    return _race.nnfast_columns(model, data, batch_size, seed)


def torch_trainer(data, batch_size, threads, seed):
    """(epoch(i) -> seconds, accuracy() -> test accuracy) for PyTorch (NCHW, the layout its
    CPU convolutions take; the images are transposed once, before any timing)."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    xtr, ytr, xte, yte = data
    xtr, xte = (torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
                for x in (xtr, xte))
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
    (f1, k1), (f2, k2) = CONV
    h = ((xtr.shape[2] - k1 + 1) // 2 - k2 + 1) // 2
    model = nn.Sequential(
        nn.Conv2d(xtr.shape[1], f1, k1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(f1, f2, k2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(h * h * f2, DENSE[0]), nn.ReLU(), nn.Linear(DENSE[0], DENSE[1]), nn.ReLU(),
        nn.Linear(DENSE[1], DENSE[2]))
    for m in model.modules():   # Keras' defaults: Glorot-uniform kernels, zero biases
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    n = len(xtr)

    def epoch(i):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
        return time.perf_counter() - t0

    def accuracy():
        with torch.no_grad():
            return (model(xte).argmax(1) == yte).float().mean().item()

    return epoch, accuracy


def jax_trainer(data, batch_size, threads, seed):
    """(epoch(i) -> seconds, accuracy() -> test accuracy) for JAX: the same network in NHWC,
    the whole step (softmax cross-entropy, Adam) under ``jax.jit``, as nnfast/cli/_rivals.py
    does for the MLP. Raises ImportError without JAX."""
    import jax
    import jax.numpy as jnp

    xtr, ytr, xte, yte = data
    keys = iter(jax.random.split(jax.random.PRNGKey(seed), len(CONV) + len(DENSE)))

    def glorot(shape, fan_in, fan_out):
        lim = (6.0 / (fan_in + fan_out)) ** 0.5
        return jax.random.uniform(next(keys), shape, jnp.float32, -lim, lim)

    params, c, h = [], xtr.shape[3], xtr.shape[1]
    for filters, k in CONV:   # HWIO kernels, as Keras stores them
        params.append((glorot((k, k, c, filters), k * k * c, k * k * filters),
                       jnp.zeros((filters,), jnp.float32)))
        c, h = filters, (h - k + 1) // 2
    sizes = (h * h * c, *DENSE)
    for a, b in zip(sizes, sizes[1:]):
        params.append((glorot((a, b), a, b), jnp.zeros((b,), jnp.float32)))

    def logits(p, x):
        for w, b in p[:len(CONV)]:
            x = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(x + b)
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                      "VALID")
        x = x.reshape(x.shape[0], -1)
        dense = p[len(CONV):]
        for i, (w, b) in enumerate(dense):
            x = x @ w + b
            if i < len(dense) - 1:
                x = jax.nn.relu(x)
        return x

    from nnfast.cli._rivals import jax_fit
    epoch, state = jax_fit(logits, params, xtr, ytr, batch_size, seed)
    predict = jax.jit(lambda p, x: jnp.argmax(logits(p, x), axis=1))

    def accuracy():
        pred = np.concatenate([np.asarray(predict(state[0], xte[s:s + 1000]))
                               for s in range(0, len(xte), 1000)])
        return float((pred == yte).mean())

    return epoch, accuracy


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None,
                    help="thread count for every framework (default: nnfast's default)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--dataset", choices=("fashion-mnist", "mnist"), default="fashion-mnist")
    ap.add_argument("--data-dir", default=None,
                    help=f"directory of the IDX files (default: fashion-mnist {DEFAULT_DIR}, "
                         "then nnfast's search path)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke mode: 1 epoch on 3 000 training and 1 000 test images")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    ap.add_argument("--no-jax", action="store_true", help="skip the JAX column")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or (args.threads is not None and args.threads < 1):
        ap.error(f"--epochs {args.epochs}, --batch-size {args.batch_size} and --threads "
                 f"{args.threads} must be integers >= 1")

    import nnfast
    threads = args.threads or nnfast.get_num_threads()
    _race.single_thread_jax(threads, not args.no_jax)
    epochs = 1 if args.quick and args.epochs == 10 else args.epochs
    data_dir = args.data_dir or (DEFAULT_DIR if args.dataset == "fashion-mnist" else None)
    xtr, ytr, xte, yte = load(args.dataset, data_dir)
    if args.quick:
        xtr, ytr, xte, yte = xtr[:3000], ytr[:3000], xte[:1000], yte[:1000]
    data = (xtr, ytr, xte, yte)

    limits = _race.blas_limits(threads)

    info = nnfast.info()
    title = "MNIST" if args.dataset == "mnist" else "Fashion-MNIST"
    print(f"{title} {len(xtr)} train / {len(xte)} test, LeNet-5 class conv5x5x6-pool2-"
          f"conv5x5x16-pool2-120-84-10 relu ('valid'), Adam 1e-3, batch {args.batch_size}, "
          f"{epochs} epochs, {threads} thread(s)")
    print(f"nnfast {info['version']} backend={info['backend']} kernel_path={info['kernel_path']} "
          f"cpu={','.join(info.get('cpu_features', []))}")
    columns = _race.trainers(nnfast_trainer, torch_trainer, jax_trainer, args, data, threads)
    from peak import measured_peak
    peak = measured_peak(4, threads, 0.5 if args.quick else 1.5)
    rows = _race.race(columns, epochs, limits)
    _race.report(rows, step_flops_per_image(xtr.shape[1]) * len(xtr), peak, threads,
                 f" ({step_flops_per_image(xtr.shape[1])} per image)",
                 "; issue 18's target: <= 0.25")

if __name__ == "__main__":
    main()
