"""Build src/nnfast/data/digits.npz from scikit-learn's copy of the UCI digits (run once, by hand).

Usage:
    python tools/build_digits_data.py .../sklearn/datasets/data/digits.csv.gz src/nnfast/data/digits.npz

Stores the data only (see src/nnfast/data/DIGITS_LICENSE.txt) plus the fixed test split, so the
split never depends on the NumPy version that later loads it.
"""
import gzip
import sys

import numpy as np

TEST_PER_CLASS = 36  # 10 classes x 36 = 360 test samples, 1,437 for training


def main(src: str, dst: str) -> None:
    with gzip.open(src, "rt") as f:
        d = np.loadtxt(f, delimiter=",", dtype=np.int64)
    x, y = d[:, :64].astype(np.uint8), d[:, 64].astype(np.uint8)
    assert x.shape == (1797, 64) and x.max() == 16 and set(np.unique(y)) == set(range(10))
    rng = np.random.default_rng(0)
    test = np.concatenate(
        [rng.permutation(np.flatnonzero(y == c))[:TEST_PER_CLASS] for c in range(10)]
    )
    np.savez_compressed(dst, images=x, labels=y, test_index=np.sort(test).astype(np.int16))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
