"""The embedded default data set: UCI optical-recognition handwritten digits (8x8)."""
from __future__ import annotations

import os

import numpy as np

from nnfast.datasets._args import check_bool

DIGITS_CLASSES = tuple(str(d) for d in range(10))
_DIGITS_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "digits.npz")


def load_digits(
    *, images: bool = False, as_images: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load the 1,797 UCI handwritten digits shipped inside nnfast.

    The split is fixed and the same on every machine: 36 samples of each digit (360) form
    the test set, the other 1,437 the training set. The test indices were drawn once with
    ``numpy.random.default_rng(0)`` and are stored in the data file, so the split does not
    depend on the installed NumPy. Both parts keep the original sample order.

    Parameters
    ----------
    images : bool
        False (default): x has shape (N, 64). True: x has shape (N, 8, 8).
    as_images : bool
        True: x has shape (N, 8, 8, 1), channels last, the input of ``layers.Conv2D`` (Keras'
        image layout); it overrides ``images``. Same values as the flat form, reshaped.

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        x float32 in [0, 1] (the original pixel counts 0..16 divided by 16), y int64 in 0..9.

    Raises
    ------
    TypeError : ``images`` or ``as_images`` is not True or False (checked before reading).

    Source: E. Alpaydin and C. Kaynak, UCI Machine Learning Repository, CC BY 4.0 (see
    ``nnfast/data/DIGITS_LICENSE.txt``).

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = load_digits()
    >>> x_train.shape, x_test.shape
    ((1437, 64), (360, 64))
    >>> load_digits(as_images=True)[0][0].shape
    (1437, 8, 8, 1)
    """
    images = check_bool("load_digits", "images", images)
    as_images = check_bool("load_digits", "as_images", as_images)
    with np.load(_DIGITS_FILE, allow_pickle=False) as f:
        pixels, labels, test_index = f["images"], f["labels"], f["test_index"]
    x = pixels.astype(np.float32) / np.float32(16.0)
    if as_images:
        x = x.reshape(-1, 8, 8, 1)
    elif images:
        x = x.reshape(-1, 8, 8)
    y = labels.astype(np.int64)
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test_index] = True
    return (x[~is_test], y[~is_test]), (x[is_test], y[is_test])
