"""User data on disk: .npz, .csv with a label column, and X/y .npy pairs."""
from __future__ import annotations

import csv
import os
import zipfile

import numpy as np


def _fail(path, what: str) -> ValueError:
    return ValueError(f"{os.fspath(path)}: {what}")


def _numeric(arr: np.ndarray, path, what: str) -> np.ndarray:
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)
                                   or arr.dtype == np.bool_):
        raise _fail(path, f"{what} must be numeric, got dtype {arr.dtype}")
    return arr


def _finish(x, y, path) -> tuple[np.ndarray, np.ndarray]:
    """Common checks; x -> float32 with at least 2 dims, y -> int64 when integral."""
    x = _numeric(np.asarray(x), path, "x")
    y = _numeric(np.asarray(y), path, "y")
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 0 or y.ndim != 1:
        raise _fail(path, f"expected x of shape (N, ...) and y of shape (N,), "
                          f"got {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise _fail(path, f"x has {len(x)} samples but y has {len(y)}")
    if len(x) == 0:
        raise _fail(path, "holds no samples")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise _fail(path, "x contains NaN or Inf")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)):
            raise _fail(path, "y contains NaN or Inf")
        if np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            y = y.astype(np.float32)
    else:
        y = y.astype(np.int64)
    return x, y


def _labels_path(path: str) -> str:
    d, base = os.path.split(path)
    if base[:1] not in ("x", "X"):
        raise _fail(path, "cannot tell where the labels are: a .npy features file must be "
                          "named X*.npy or x*.npy, with labels in the y*.npy beside it")
    return os.path.join(d, "y" + base[1:])


def _load_npy(path: str, y_path: str | None):
    if y_path is None:
        y_path = _labels_path(path)
    if not os.path.isfile(y_path):
        raise FileNotFoundError(f"{y_path}: labels file for {path} not found")
    return _load_array(path), _load_array(y_path)


def _load_array(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise _fail(path, f"not a plain .npy array ({e})") from None
    except (OSError, EOFError) as e:
        raise _fail(path, f"cannot read .npy file ({e})") from None


def _load_npz(path: str):
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.files)
            arrays = {k: f[k] for k in ("x", "y") if k in keys}
    except ValueError as e:
        raise _fail(path, f"cannot read .npz ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise _fail(path, f"not a valid .npz file ({e})") from None
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise _fail(path, f"missing key(s) {', '.join(missing)}; an .npz needs arrays "
                          f"'x' and 'y', found {sorted(keys)}")
    return arrays["x"], arrays["y"]


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric CSV; a first row that is not all numbers is taken as the header."""
    path = os.fspath(path)
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if not rows:
        raise _fail(path, "CSV file is empty")
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    width = len(header) if header else len(rows[0]) if rows else 0
    data = np.empty((len(rows), width), dtype=np.float64)
    first = 2 if header else 1
    for i, r in enumerate(rows):
        if len(r) != width:
            raise _fail(path, f"line {i + first}: {len(r)} columns, expected {width}")
        try:
            data[i] = [float(c) for c in r]
        except ValueError:
            bad = next(c for c in r if not _is_number(c))
            raise _fail(path, f"line {i + first}: {bad!r} is not a number") from None
    return data, header


def _load_csv(path: str, label_column: int | str):
    data, header = read_csv(path)
    if isinstance(label_column, str):
        if header is None or label_column not in header:
            raise _fail(path, f"no column named {label_column!r} (header: {header})")
        label_column = header.index(label_column)
    ncol = data.shape[1]
    if not -ncol <= label_column < ncol or ncol < 2:
        raise _fail(path, f"label_column={label_column} out of range for {ncol} columns")
    col = label_column % ncol
    return np.delete(data, col, axis=1), data[:, col]


def load_file(
    path: str | os.PathLike, *, label_column: int | str = -1, y_path: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(x, y)`` from a user file, chosen by extension.

    - ``.npz``: arrays ``x`` and ``y`` (read with ``allow_pickle=False``).
    - ``.csv``: comma-separated numbers, one sample per line; the labels are column
      ``label_column`` (index, default the last, or a header name). A first line that is
      not all numbers is a header.
    - ``.npy``: the features file; its labels are the file whose name replaces the leading
      ``X``/``x`` with ``y`` (``X.npy`` -> ``y.npy``, ``X_train.npy`` -> ``y_train.npy``), or
      ``y_path`` when given.

    Returns x float32 (N, ...) and y int64 when every label is a whole number, else float32.
    Problems raise ``ValueError`` naming the file (missing files: ``FileNotFoundError``).

    Examples
    --------
    >>> x, y = load_file("train.csv")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        x, y = _load_npz(path)
    elif ext == ".csv":
        x, y = _load_csv(path, label_column)
    elif ext == ".npy":
        x, y = _load_npy(path, y_path)
    else:
        raise _fail(path, f"unknown data file type {ext!r}; use .npz, .csv or .npy")
    return _finish(x, y, path)


def load_features(path: str | os.PathLike) -> np.ndarray:
    """Load an unlabeled feature matrix from ``.npy`` or ``.csv`` (all columns are features;
    an optional header line is skipped; a 1-D array is one sample). Returns float32 (N, ...)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        x = _load_array(path)
    elif ext == ".csv":
        x, _ = read_csv(path)
    else:
        raise _fail(path, f"unknown input file type {ext!r}; use .npy or .csv")
    x = _numeric(np.asarray(x), path, "input")
    if x.ndim == 1:
        x = x[None, :]
    if len(x) == 0:
        raise _fail(path, "holds no samples")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise _fail(path, "contains NaN or Inf")
    return x
