"""CLI data resolution: a --dataset name or path becomes train/test arrays with class names."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

NAMES = ("digits", "mnist", "fashion-mnist", "admissions")
IMAGE_SETS = ("digits", "mnist", "fashion-mnist")   # what --model cnn trains on
DEFAULT_EPOCHS = {"digits": 30, "mnist": 10, "fashion-mnist": 10, "admissions": 60, "file": 20}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


@dataclass
class Data:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str] = field(default_factory=list)
    kind: str = "file"  # key into DEFAULT_EPOCHS

    @property
    def sample_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])

    def describe(self) -> str:
        shape = self.sample_shape
        what = f"{shape[0]} features" if len(shape) == 1 else f"samples of shape {shape}"
        return (f"{self.name}: {len(self.x_train)} train, {len(self.x_test)} test, "
                f"{what}, {len(self.classes)} classes")


def _split(x, y, test_split: float, seed: int | None):
    """Seeded shuffle, then the last ``test_split`` fraction is the test set."""
    if not 0.0 < test_split < 1.0:
        raise CLIError(f"--test-split must be in (0, 1), got {test_split}")
    order = np.random.default_rng(0 if seed is None else seed).permutation(len(x))
    n_test = max(1, round(test_split * len(x)))
    if n_test >= len(x):
        raise CLIError(f"only {len(x)} samples: too few to hold out a test set")
    tr, te = order[:-n_test], order[-n_test:]
    return x[tr], y[tr], x[te], y[te]


def _check_labels(where: str, y: np.ndarray) -> int:
    if y.dtype != np.int64:
        raise CLIError(f"{where}: labels must be whole numbers (class ids) to train a classifier")
    if y.min() < 0:
        raise CLIError(f"{where}: labels must be >= 0, found {int(y.min())}")
    return int(y.max()) + 1


def load_dataset(
    spec: str,
    *,
    data_dir: str | None = None,
    download: bool = False,
    seed: int | None = None,
    test_split: float = 0.2,
    samples: int = 1000,
    label_column: int | str = -1,
    progress: bool = True,
    as_images: bool = False,
) -> Data:
    """Resolve ``--dataset``: a known name or a path to .npz/.csv/.npy data. ``as_images``: the
    named image sets (digits, mnist, fashion-mnist) as (N, H, W, 1) arrays; others ignore it."""
    from nnfast import datasets as ds

    if spec == "digits":
        (xtr, ytr), (xte, yte) = ds.load_digits(as_images=as_images)
        return Data("digits", xtr, ytr, xte, yte, list(ds.DIGITS_CLASSES), "digits")
    if spec in ("mnist", "fashion-mnist"):
        loader = ds.load_mnist if spec == "mnist" else ds.load_fashion_mnist
        (xtr, ytr), (xte, yte) = loader(data_dir, download=download, progress=progress,
                                      as_images=as_images)
        names = ds.MNIST_CLASSES if spec == "mnist" else ds.FASHION_MNIST_CLASSES
        return Data(spec, xtr, ytr, xte, yte, list(names), spec)
    if spec == "admissions":
        # train and test drawn independently; features scaled from 0..100 to 0..1
        base = 0 if seed is None else seed
        xtr, ytr = ds.make_admissions(samples, seed=base)
        xte, yte = ds.make_admissions(max(200, samples // 4), seed=base + 1_000_003)
        return Data("admissions", xtr / 100, ytr, xte / 100, yte,
                    list(ds.ADMISSIONS_CLASSES), "admissions")
    if not os.path.exists(spec):
        raise CLIError(f"dataset {spec!r} is neither a known name ({', '.join(NAMES)}) "
                       "nor an existing .npz/.csv/.npy file")
    x, y = ds.load_file(spec, label_column=label_column)
    n_classes = _check_labels(spec, y)
    # samples keep their shape: a model for (N, 8, 8) images starts with a Flatten layer, so
    # predict takes the same (n, 8, 8) arrays (one input-shape rule, nnfast/engine/inputs.py)
    xtr, ytr, xte, yte = _split(x, y, test_split, seed)
    return Data(os.path.basename(spec), xtr, ytr, xte, yte,
                [str(c) for c in range(n_classes)], "file")
