"""Data sets: the embedded digits, MNIST/Fashion-MNIST from IDX files, a toy problem, user files.

Runtime dependencies are NumPy and tqdm only.
"""
from nnfast.datasets._admissions import ADMISSIONS_CLASSES, ADMISSIONS_FEATURES, make_admissions
from nnfast.datasets._digits import DIGITS_CLASSES, load_digits
from nnfast.datasets._download import Checksum, ChecksumError, DownloadError, download_file
from nnfast.datasets._files import load_features, load_file
from nnfast.datasets._idx import load_idx
from nnfast.datasets._mnist import (
    CHECKSUMS,
    FASHION_MNIST_CLASSES,
    MIRRORS,
    MNIST_CLASSES,
    load_fashion_mnist,
    load_mnist,
)

__all__ = [
    "ADMISSIONS_CLASSES",
    "ADMISSIONS_FEATURES",
    "CHECKSUMS",
    "DIGITS_CLASSES",
    "FASHION_MNIST_CLASSES",
    "MIRRORS",
    "MNIST_CLASSES",
    "Checksum",
    "ChecksumError",
    "DownloadError",
    "download_file",
    "load_digits",
    "load_fashion_mnist",
    "load_features",
    "load_file",
    "load_idx",
    "load_mnist",
    "make_admissions",
]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
