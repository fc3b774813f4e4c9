"""User data on disk: .npz, .csv with a label column, and X/y .npy pairs."""
from __future__ import annotations

import csv
import math
import os
import stat
import zipfile

import numpy as np


def _fail(path, what: str) -> ValueError:
    return ValueError(f"{os.fspath(path)}: {what}")


def _regular(path: str) -> None:
    """FileNotFoundError when ``path`` does not exist; ValueError when it is not a regular file
    (a pipe, FIFO, device: the loaders read a file twice, its first bytes then the data)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    if not stat.S_ISREG(mode):
        raise _fail(path, "not a regular file (a directory, pipe, FIFO or device); data is "
                          "read from regular files only")


def _numeric(arr: np.ndarray, path, what: str) -> np.ndarray:
    # the rule of fit/predict (nnfast/engine/checks.py as_array): bool, int or float; complex
    # is refused rather than cast, which would drop the imaginary part with a ComplexWarning
    if arr.dtype.kind not in "biuf":
        raise _fail(path, f"{what} must be numeric (bool, int or float), got dtype "
                          f"{arr.dtype}")
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


_NPY_MAGIC = b"\x93NUMPY"


def _load_array(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if head != _NPY_MAGIC:
        raise _fail(path, f"not an .npy file: it starts with {head!r}, an .npy file with "
                          f"{_NPY_MAGIC!r}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise _fail(path, "holds Python objects (a pickled array), not numbers; it is not "
                              "loaded (allow_pickle=False)") from None
        raise _fail(path, f"truncated or corrupt .npy file ({e})") from None
    except (OSError, EOFError) as e:
        raise _fail(path, f"truncated or corrupt .npy file ({e})") from None


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
    # Python's float() takes "1_0" (PEP 515); NumPy's loadtxt and csv readers do not
    if "_" in s:
        return False
    try:
        float(s)
        return True
    except ValueError:
        return False


def _skipped(row: list[str]) -> bool:
    """Blank lines (also whitespace-only, as np.loadtxt) and ``#`` comment lines."""
    return not row or (len(row) == 1 and not row[0].strip()) or \
        row[0].lstrip().startswith("#")


def _is_header(row: list[str]) -> bool:
    """A header holds no number at all (empty cells allowed, e.g. an unnamed index column)."""
    return any(c.strip() for c in row) and not any(_is_number(c) for c in row if c.strip())


def read_csv(path: str | os.PathLike) -> tuple[np.ndarray, list[str] | None]:
    """Read a numeric CSV (comma-separated, RFC 4180 quoting, UTF-8 with or without the
    byte-order mark Excel's "CSV UTF-8" writes).

    Header rule: the first row is a header when none of its cells is a number (so ``id,f1,
    label`` is a header and ``1,,3`` is a data row with an empty cell). Every other row is
    data: a row with an empty or non-numeric cell, or of another width, raises ValueError
    naming the file, the line and the column (also NaN and Inf cells, and ``1_0``: Python's
    float() takes underscores, NumPy's readers do not). Blank lines, also whitespace-only
    ones, are skipped as NumPy's loadtxt does, and so are lines whose first cell starts with
    ``#`` (loadtxt's default ``comments="#"``; unlike loadtxt, a ``#`` after data on a line is
    not a comment but part of the cell, so it is reported); no other row is ever left out.

    Returns (data float64 (n_rows, n_columns), header names or None).
    """
    path = os.fspath(path)
    # utf-8-sig: a leading byte-order mark is dropped, not glued to the first cell
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            rows = [(i, r) for i, r in enumerate(csv.reader(f), 1) if not _skipped(r)]
        except UnicodeDecodeError as e:
            raise _fail(path, f"not UTF-8 text ({e})") from None
        except csv.Error as e:
            raise _fail(path, f"malformed CSV ({e})") from None
    if not rows:
        raise _fail(path, "CSV file is empty")
    header = None
    if _is_header(rows[0][1]):
        header, rows = [c.strip() for c in rows[0][1]], rows[1:]
    width = len(header) if header else len(rows[0][1]) if rows else 0
    data = np.empty((len(rows), width), dtype=np.float64)
    for i, (line, r) in enumerate(rows):
        if len(r) != width:
            raise _fail(path, f"line {line}: {len(r)} columns, expected {width}")
        for j, c in enumerate(r):
            if not c.strip():
                raise _fail(path, f"line {line}, column {j + 1}: empty cell (missing values "
                                  "are not supported; fill or drop the row)")
            if not _is_number(c):
                raise _fail(path, f"line {line}, column {j + 1}: {c!r} is not a number")
            if not math.isfinite(float(c)):
                raise _fail(path, f"line {line}, column {j + 1}: {c!r} is NaN or infinite "
                                  "(not supported; fill or drop the row)")
        data[i] = [float(c) for c in r]
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
      ``label_column`` (index, default the last, or a header name). A first line with no
      number in it is a header; no data row is ever skipped (see :func:`read_csv`).
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
    _regular(path)
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
    """Load unlabeled samples from ``.npy`` (the array as stored) or ``.csv`` (one sample per
    row, all columns features, an optional header line skipped; see :func:`read_csv`).

    Returns float32 in the stored shape: nothing is reshaped, so a 1-D ``.npy`` stays 1-D and
    ``model.predict`` refuses it with the reshape that fits the model (one input-shape rule,
    docs/model.md). Raises ValueError naming the file (empty, not numeric, NaN/Inf, unknown
    type), FileNotFoundError when missing."""
    path = os.fspath(path)
    _regular(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        x = _load_array(path)
    elif ext == ".csv":
        x, _ = read_csv(path)
    else:
        raise _fail(path, f"unknown input file type {ext!r}; use .npy or .csv")
    x = _numeric(np.asarray(x), path, "input")
    if x.ndim == 0:
        raise _fail(path, "holds a single number, not an array of samples")
    if len(x) == 0:
        raise _fail(path, "holds no samples")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise _fail(path, "contains NaN or Inf")
    return x
