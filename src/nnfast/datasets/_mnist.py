"""MNIST and Fashion-MNIST: find the IDX files on disk, or download them on request."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from nnfast.datasets._args import check_bool
from nnfast.datasets._download import Checksum, download_file
from nnfast.datasets._idx import load_idx, scan_idx

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
MNIST_CLASSES = tuple(str(d) for d in range(10))

# the standard file names, without ".gz" (either form is accepted on disk)
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Base URLs tried in order; edit the lists or pass mirrors=... to the loaders.
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ],
}

# Fashion-MNIST: sha256 of the IDX content (after gunzip), computed from the files of Debian's
# dataset-fashion-mnist package. MNIST: no sha256 is published upstream; the md5 of each .gz
# file as distributed (the digests torchvision and others check) is verified instead. Every
# download is also parsed as IDX (magic, type, dimensions, exact size) and gzip's CRC checked.
CHECKSUMS: dict[str, dict[str, Checksum]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": Checksum(md5="f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte.gz": Checksum(md5="d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte.gz": Checksum(md5="9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte.gz": Checksum(md5="ec29112dd5afa0611ce80d1b7f02629c"),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": Checksum(
            sha256="c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte.gz": Checksum(
            sha256="bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte.gz": Checksum(
            sha256="5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte.gz": Checksum(
            sha256="0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
}

DEBIAN_DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist"}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def env_data_dir() -> str | None:
    """``$NNFAST_DATA``, None when unset or empty. Raises ValueError naming the variable when
    it names something that is not a directory (it may not exist yet: a download creates it)."""
    d = os.environ.get("NNFAST_DATA", "")
    if not d:
        return None
    if os.path.exists(d) and not os.path.isdir(d):
        raise ValueError(f"NNFAST_DATA={d!r}: not a directory (it names the directory that "
                         "holds the data sets)")
    return d


def search_dirs(name: str, path: str | os.PathLike | None = None) -> list[str]:
    """The directories searched for data set ``name``, in order."""
    dirs = []
    if path is not None:
        dirs.append(os.fspath(path))
    if env_data_dir():
        dirs.append(os.path.join(env_data_dir(), name))
    dirs.append(os.path.join(os.path.expanduser("~"), ".cache", "nnfast", name))
    if name in DEBIAN_DIRS:
        dirs.append(DEBIAN_DIRS[name])
    return dirs


def _files_in(d: str) -> tuple[dict[str, str], list[str]]:
    found, missing = {}, []
    for key, base in FILES.items():
        for cand in (base + ".gz", base):
            if os.path.isfile(os.path.join(d, cand)):
                found[key] = os.path.join(d, cand)
                break
        else:
            missing.append(base + "[.gz]")
    return found, missing


def _not_found(name: str, looked: list[str]) -> FileNotFoundError:
    title = _TITLES[name]
    how = []
    if name in DEBIAN_DIRS:
        how.append("`apt-get install dataset-fashion-mnist` (Debian/Ubuntu)")
    how += [
        "download=True (CLI: --download)",
        (f"put the four files {', '.join(b + '.gz' for b in FILES.values())} "
         f"into $NNFAST_DATA/{name}"),
    ]
    return FileNotFoundError(
        f"{title} not found; looked in: {'; '.join(looked)}. Get it with: {', or '.join(how)}"
    )


def _load(
    name: str,
    path: str | os.PathLike | None,
    download: bool,
    flatten: bool,
    as_images: bool,
    mirrors: Sequence[str] | None,
    checksums: Mapping[str, Checksum] | None,
    **download_kw,
):
    func = "load_mnist" if name == "mnist" else "load_fashion_mnist"
    flatten = check_bool(func, "flatten", flatten)
    shape = "images" if check_bool(func, "as_images", as_images) else \
        "flat" if flatten else "rows"
    looked = []
    files = None
    for d in search_dirs(name, path):
        if not os.path.isdir(d):
            looked.append(f"{d} (no such directory)")
            continue
        found, missing = _files_in(d)
        if not missing:
            files = found
            break
        looked.append(f"{d} (missing {', '.join(missing)})")
    if files is None:
        if not download:
            raise _not_found(name, looked)
        files = _download_all(name, path, mirrors, checksums, **download_kw)
    return _read(name, files, shape)


def _download_all(name, path, mirrors, checksums, **download_kw) -> dict[str, str]:
    if path is not None:
        target = os.fspath(path)
    elif env_data_dir():
        target = os.path.join(env_data_dir(), name)
    else:
        target = os.path.join(os.path.expanduser("~"), ".cache", "nnfast", name)
    mirrors = MIRRORS[name] if mirrors is None else list(mirrors)
    checksums = CHECKSUMS[name] if checksums is None else dict(checksums)
    found, _ = _files_in(target) if os.path.isdir(target) else ({}, None)
    for key, base in FILES.items():
        if key not in found:
            fname = base + ".gz"
            found[key] = download_file(fname, target, mirrors, checksum=checksums.get(fname),
                                       content_sha256=scan_idx, **download_kw)
    return found


def _read(name: str, files: dict[str, str], shape: str):
    """``shape``: "flat" (N, rows*cols), "rows" (N, rows, cols), "images" (N, rows, cols, 1)."""
    out = []
    for part in ("train", "test"):
        x = load_idx(files[f"{part}_images"])
        y = load_idx(files[f"{part}_labels"])
        where = files[f"{part}_images"]
        if x.ndim != 3 or x.dtype != np.uint8:
            raise ValueError(f"{where}: expected uint8 images of shape (N, rows, cols), "
                             f"got {x.dtype} {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(f"{files[f'{part}_labels']}: expected {len(x)} labels to match "
                             f"{where}, got shape {y.shape}")
        if y.size and y.max() > 9:
            raise ValueError(f"{files[f'{part}_labels']}: labels must lie in 0..9, "
                             f"found {int(y.max())}")
        xf = {"flat": x.reshape(len(x), -1), "rows": x,
              "images": x.reshape(*x.shape, 1)}[shape]
        xf = xf.astype(np.float32)
        xf *= np.float32(1.0 / 255.0)
        out.append((xf, y.astype(np.int64)))
    return tuple(out)


def load_mnist(
    path: str | os.PathLike | None = None,
    download: bool = False,
    *,
    flatten: bool = True,
    as_images: bool = False,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, Checksum] | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 300.0,
    progress: bool = True,
):
    """Load MNIST handwritten digits (60,000 train, 10,000 test, 28x28).

    Looks for the four standard files (``train-images-idx3-ubyte`` etc., each raw or ``.gz``)
    in, in order: ``path``, ``$NNFAST_DATA/mnist``, ``~/.cache/nnfast/mnist``. A directory
    counts only when it holds all four.

    Parameters
    ----------
    path : directory to search first; with ``download=True`` also where files are saved
        (otherwise ``$NNFAST_DATA/mnist`` when set, else ``~/.cache/nnfast/mnist``).
    download : fetch missing files from ``mirrors`` (default ``MIRRORS["mnist"]``), verified
        against ``checksums`` (default ``CHECKSUMS["mnist"]``, keyed by file name).
    flatten : True gives x of shape (N, 784); False gives (N, 28, 28).
    as_images : True gives x of shape (N, 28, 28, 1), channels last, the input of
        ``layers.Conv2D`` (Keras' image layout); it overrides ``flatten``. Same values and
        dtype as the flat form, reshaped.
    retries, backoff, timeout, progress : passed to the downloader (see ``download_file``).

    Returns
    -------
    (x_train, y_train), (x_test, y_test)
        x float32 in [0, 1] (pixel / 255), y int64 in 0..9 (``MNIST_CLASSES``).

    Raises
    ------
    FileNotFoundError : not found and ``download`` is False; the message lists where it
        looked and how to get the files.
    ValueError : ``$NNFAST_DATA`` names a file, or a file found is not valid IDX.
    TypeError : ``flatten`` or ``as_images`` is not True or False (checked before any file
        is read).

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = load_mnist(download=True)  # doctest: +SKIP
    """
    return _load("mnist", path, download, flatten, as_images, mirrors, checksums, retries=retries,
                 backoff=backoff, timeout=timeout, progress=progress)


def load_fashion_mnist(
    path: str | os.PathLike | None = None,
    download: bool = False,
    *,
    flatten: bool = True,
    as_images: bool = False,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, Checksum] | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 300.0,
    progress: bool = True,
):
    """Load Zalando's Fashion-MNIST (60,000 train, 10,000 test, 28x28, 10 clothing classes).

    Same as :func:`load_mnist`, searching ``path``, ``$NNFAST_DATA/fashion-mnist``,
    ``~/.cache/nnfast/fashion-mnist`` and finally ``/usr/share/datasets/fashion-mnist``, where
    Debian's ``dataset-fashion-mnist`` package installs it. Class names: ``FASHION_MNIST_CLASSES``.
    Fashion-MNIST is (c) Zalando SE, MIT licence.

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = load_fashion_mnist()  # doctest: +SKIP
    >>> x_train.shape, FASHION_MNIST_CLASSES[y_train[0]]  # doctest: +SKIP
    ((60000, 784), 'Ankle boot')
    >>> load_fashion_mnist(as_images=True)[1][0].shape  # doctest: +SKIP
    (10000, 28, 28, 1)
    """
    return _load("fashion-mnist", path, download, flatten, as_images, mirrors, checksums,
                 retries=retries, backoff=backoff, timeout=timeout, progress=progress)
