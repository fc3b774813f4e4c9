"""CLI plots: training curves and a confusion matrix. matplotlib is imported only here."""
from __future__ import annotations

import os

import numpy as np

from nnfast.cli._data import CLIError
from nnfast.cli._files import save_figure


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise CLIError("plots need matplotlib, which is not installed: "
                       "pip install 'nnfast[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise CLIError(f"cannot write {path}: directory {d} does not exist")
    save_figure(fig, path, dpi=120)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j] = number of samples of true class i predicted as class j."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def plot_curves(history: dict, path: str, title: str = "") -> None:
    """Loss and accuracy per epoch, train solid and validation dashed."""
    panels = [m for m in ("loss", "accuracy") if history.get(m)]
    if not panels:
        raise CLIError(f"cannot plot {path}: the run completed no epoch")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        epochs = np.arange(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], "o-", ms=3, label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s--", ms=3, label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
        if len(epochs) <= 20:
            ax.set_xticks(epochs)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_confusion(cm: np.ndarray, classes: list[str], path: str, title: str = "") -> None:
    """Counts with class names on both axes; diagonal = correct."""
    plt = _pyplot()
    n = len(classes)
    size = max(4.5, 0.55 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(cm, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = cm.max() / 2 if cm.size else 0
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > threshold else "black")
    acc = np.trace(cm) / max(1, cm.sum())
    ax.set_title(f"{title} (accuracy {acc:.2%})" if title else f"accuracy {acc:.2%}")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
