"""Fashion-MNIST: a 784-256-128-10 MLP, trained and evaluated, with per-class accuracy.

Needs the data: `apt-get install dataset-fashion-mnist`, or `--download`, or $NNFAST_DATA.

    python examples/fashion_mnist.py                              # 10 epochs, full data
    python examples/fashion_mnist.py --epochs 1 --limit 2000      # CI-sized
"""
import argparse
import time

import numpy as np

import nnfast
from nnfast.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--limit", type=int, help="use only the first N training/test samples")
    p.add_argument("--download", action="store_true", help="download when not found")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="save the trained model here (.nnf)")
    args = p.parse_args()

    (x, y), (x_test, y_test) = load_fashion_mnist(download=args.download)
    if args.limit:
        x, y, x_test, y_test = x[:args.limit], y[:args.limit], x_test[:args.limit], \
            y_test[:args.limit]
    print(f"{len(x)} training and {len(x_test)} test images, {nnfast.get_num_threads()} threads")

    model = nnfast.Sequential([
        nnfast.layers.Dense(256, activation="relu", input_dim=784),
        nnfast.layers.Dense(128, activation="relu"),
        nnfast.layers.Dense(10, activation="softmax"),
    ], seed=args.seed)
    model.compile(optimizer=nnfast.optimizers.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(x, y, epochs=args.epochs, batch_size=args.batch_size, verbose=1)
    seconds = time.perf_counter() - t0
    result = model.evaluate(x_test, y_test, batch_size=1024)
    print(f"test accuracy {result['accuracy']:.4f}   loss {result['loss']:.4f}   "
          f"{seconds / max(1, args.epochs):.2f} s per epoch")

    pred = model.predict(x_test, batch_size=1024).argmax(axis=1)
    for c, name in enumerate(FASHION_MNIST_CLASSES):
        mask = y_test == c
        if mask.any():
            print(f"  {name:<12} {np.mean(pred[mask] == c):.3f}")
    if args.save:
        model.save(args.save)
        print(f"wrote {args.save}")


if __name__ == "__main__":
    main()
