"""Admissions: two features, one rule (admitted iff grade >= 50 and test score >= 50).

Trains a small MLP on synthetic applicants and saves a decision-boundary plot.

    python examples/admissions.py                    # full run
    python examples/admissions.py --epochs 3 --n 300 --out /tmp/adm.png   # CI-sized
"""
import argparse

import numpy as np

import nnfast
from nnfast.datasets import make_admissions


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="training applicants")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--noise", type=float, default=0.0, help="fraction of flipped labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="admissions.png", help="decision-boundary plot")
    args = p.parse_args()

    x, y = make_admissions(args.n, seed=args.seed, noise=args.noise)
    x_test, y_test = make_admissions(1000, seed=args.seed + 1)
    scale = np.float32(1 / 100)  # scores 0..100 -> 0..1 keep the optimizer well-conditioned

    model = nnfast.Sequential([
        nnfast.layers.Dense(16, activation="relu", input_dim=2),
        nnfast.layers.Dense(16, activation="relu"),
        nnfast.layers.Dense(1, activation="sigmoid"),
    ], seed=args.seed)
    model.compile(optimizer=nnfast.optimizers.Adam(learning_rate=0.01),
                  loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x * scale, y, epochs=args.epochs, batch_size=32, verbose=0)
    result = model.evaluate(x_test * scale, y_test)
    print(f"test accuracy {result['accuracy']:.4f}   loss {result['loss']:.4f}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, 100, 201, dtype=np.float32)
    gx, gy = np.meshgrid(grid, grid)
    prob = model.predict(np.c_[gx.ravel(), gy.ravel()] * scale, batch_size=4096)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    cs = ax.contourf(gx, gy, prob.reshape(gx.shape), levels=np.linspace(0, 1, 11),
                     cmap="RdBu", alpha=0.6)
    ax.contour(gx, gy, prob.reshape(gx.shape), levels=[0.5], colors="k", linewidths=1.5)
    fig.colorbar(cs, ax=ax, label="P(admitted)")
    show = slice(0, 400)
    ax.scatter(x_test[show, 0], x_test[show, 1], c=y_test[show], cmap="RdBu", s=8,
               edgecolors="k", linewidths=0.3)
    ax.plot([50, 50, 100], [100, 50, 50], "w--", lw=1, label="true rule")
    ax.legend(loc="lower left")
    ax.set_xlabel("grade")
    ax.set_ylabel("test score")
    ax.set_title(f"decision boundary (test accuracy {result['accuracy']:.1%})")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
