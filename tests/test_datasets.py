"""Loaders: embedded digits, IDX (valid, truncated, corrupt), MNIST search, admissions, files."""
import gzip
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from nnfast.datasets import (
    FASHION_MNIST_CLASSES,
    load_digits,
    load_fashion_mnist,
    load_features,
    load_file,
    load_idx,
    load_mnist,
    make_admissions,
)
from nnfast.datasets._files import read_csv
from nnfast.datasets._idx import IDX_TYPES, scan_idx
from nnfast.datasets._mnist import DEBIAN_DIRS, FILES

CODES = {v.str[1:]: k for k, v in IDX_TYPES.items()}  # "u1" -> 0x08 ...


def idx_bytes(arr: np.ndarray) -> bytes:
    be = arr.astype(arr.dtype.newbyteorder(">"))
    head = struct.pack(">BBBB", 0, 0, CODES[be.dtype.str[1:]], arr.ndim)
    return head + struct.pack(f">{arr.ndim}I", *arr.shape) + be.tobytes()


def write_idx(path, arr, gz=False, data=None):
    data = idx_bytes(arr) if data is None else data
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
        f.write(data)
    return path


def write_mnist_dir(d, n_train=6, n_test=4, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(d, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, arr in arrays.items():
        write_idx(os.path.join(d, FILES[key] + (".gz" if gz else "")), arr, gz=gz)
    return arrays


# ---------------------------------------------------------------- digits

def test_digits_shapes_range_dtypes():
    (xtr, ytr), (xte, yte) = load_digits()
    assert xtr.shape == (1437, 64) and xte.shape == (360, 64)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert xtr.min() == 0.0 and xtr.max() == 1.0 and xte.max() <= 1.0
    assert np.array_equal(np.bincount(yte), [36] * 10)
    assert set(np.unique(ytr)) == set(range(10))
    # pixel counts 0..16 divided by 16
    assert np.array_equal(np.unique(xtr * 16), np.arange(17))


def test_digits_split_is_stable():
    (xtr, ytr), (xte, yte) = load_digits()
    (_, ytr2), (xte2, _) = load_digits()
    assert np.array_equal(xte, xte2) and np.array_equal(ytr, ytr2)
    # pinned values: changing the data file or the split must be deliberate
    assert ytr[:12].tolist() == [0, 1, 2, 3, 4, 6, 7, 8, 0, 1, 3, 5]
    assert yte[:12].tolist() == [5, 9, 2, 4, 6, 7, 9, 3, 4, 6, 8, 5]
    assert float(xtr.sum(dtype=np.float64)) == 28090.0625
    assert float(xte.sum(dtype=np.float64)) == 7017.3125
    with np.load(os.path.join(os.path.dirname(__import__("nnfast").__file__),
                              "data", "digits.npz"), allow_pickle=False) as f:
        assert f["test_index"][:5].tolist() == [5, 9, 12, 14, 16]


def test_digits_images_option():
    (xtr, _), (xte, _) = load_digits(images=True)
    assert xtr.shape == (1437, 8, 8) and xte.shape == (360, 8, 8)


def test_digits_as_images_is_the_flat_form_reshaped():
    (xtr, ytr), (xte, yte) = load_digits(as_images=True)
    (ftr, gtr), (fte, gte) = load_digits()
    assert xtr.shape == (1437, 8, 8, 1) and xte.shape == (360, 8, 8, 1)
    assert xtr.dtype == np.float32 == ftr.dtype
    assert np.array_equal(xtr.reshape(1437, 64), ftr) and np.array_equal(xte.reshape(360, 64), fte)
    assert np.array_equal(ytr, gtr) and np.array_equal(yte, gte)
    # channels last, row-major: pixel (row 2, col 5) of the flat form is index 2 * 8 + 5
    assert xtr[7, 2, 5, 0] == ftr[7, 21]
    assert load_digits(images=True, as_images=True)[0][0].shape == (1437, 8, 8, 1)
    assert load_digits(as_images=np.True_)[0][0].shape == (1437, 8, 8, 1)


@pytest.mark.parametrize("bad", [1, 0, "yes", "False", None, 1.0])
def test_as_images_must_be_a_bool(isolated_env, bad):
    for func, name in ((load_digits, "load_digits"), (load_mnist, "load_mnist"),
                       (load_fashion_mnist, "load_fashion_mnist")):
        with pytest.raises(TypeError) as e:
            func(as_images=bad)
        assert str(e.value) == (f"{name}: as_images must be True or False, got {bad!r} "
                                f"({type(bad).__name__})")
    # checked before the search for files: no FileNotFoundError although none exist here
    with pytest.raises(TypeError, match=r"^load_mnist: flatten must be True or False, got 'no'"):
        load_mnist(flatten="no")
    with pytest.raises(TypeError, match=r"^load_digits: images must be True or False, got 2"):
        load_digits(images=2)


def test_datasets_do_not_import_sklearn():
    code = ("import sys, nnfast.datasets as d; d.load_digits(); "
            "assert 'sklearn' not in sys.modules and 'matplotlib' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_idx_roundtrip_every_type(tmp_path, gz, dtype):
    rng = np.random.default_rng(1)
    arr = (rng.standard_normal((3, 5, 2)) * 50).astype(dtype)
    p = write_idx(tmp_path / "a.idx", arr, gz=gz)
    out = load_idx(p)
    assert out.shape == (3, 5, 2) and out.dtype == arr.dtype.newbyteorder("=")
    assert np.array_equal(out, arr) and out.flags.writeable
    assert len(scan_idx(p)) == 64


def test_idx_1d_and_empty(tmp_path):
    assert load_idx(write_idx(tmp_path / "l", np.arange(7, dtype=np.uint8))).tolist() == \
        list(range(7))
    assert load_idx(write_idx(tmp_path / "e", np.zeros((0, 28, 28), np.uint8))).shape == \
        (0, 28, 28)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-1], "truncated IDX file"),
    (lambda b: b[:18], "truncated IDX file"),
    (lambda b: b[:6], "truncated IDX header"),
    (lambda b: b[:2], "too short"),
    (lambda b: b + b"\0\0", "trailing data"),
    (lambda b: b"\x12\x34" + b[2:], "bad magic number"),
    (lambda b: b[:2] + b"\x0a" + b[3:], "unknown IDX type code 0x0A"),
    (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
    (lambda b: b[:4] + struct.pack(">I", 99) + b[8:], "needs"),
])
def test_idx_corrupt_raises_with_file_name(tmp_path, gz, mutate, message):
    good = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    p = write_idx(tmp_path / "bad-idx3-ubyte", None, gz=gz, data=mutate(good))
    for fn in (load_idx, scan_idx):
        with pytest.raises(ValueError, match=message) as e:
            fn(p)
        assert str(p) in str(e.value)


def test_idx_truncated_gzip_stream(tmp_path):
    p = write_idx(tmp_path / "x.gz", np.arange(5000, dtype=np.uint8), gz=True)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="gzip stream is truncated or corrupt") as e:
        load_idx(p)
    assert str(p) in str(e.value)
    with pytest.raises(ValueError, match="gzip"):
        scan_idx(p)


def test_scan_idx_digest_is_of_content(tmp_path):
    arr = np.arange(100, dtype=np.uint8)
    assert scan_idx(write_idx(tmp_path / "a", arr)) == \
        scan_idx(write_idx(tmp_path / "b.gz", arr, gz=True))


# ---------------------------------------------------------------- MNIST search

@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """HOME and NNFAST_DATA point into tmp_path; Debian's directory is hidden."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NNFAST_DATA", raising=False)
    monkeypatch.setitem(DEBIAN_DIRS, "fashion-mnist", str(tmp_path / "no-debian"))
    return tmp_path


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("flatten", [True, False])
def test_load_mnist_explicit_path(isolated_env, gz, flatten):
    arrays = write_mnist_dir(isolated_env / "m", gz=gz)
    (xtr, ytr), (xte, yte) = load_mnist(isolated_env / "m", flatten=flatten)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert xtr.shape == ((6, 784) if flatten else (6, 28, 28)) and len(xte) == 4
    assert np.allclose(xtr.reshape(6, 28, 28) * 255, arrays["train_images"], atol=1e-3)
    assert 0 <= xtr.min() and xtr.max() <= 1
    assert np.array_equal(yte, arrays["test_labels"])


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
def test_load_mnist_as_images(isolated_env, loader):
    arrays = write_mnist_dir(isolated_env / "m")
    (xtr, ytr), (xte, yte) = loader(isolated_env / "m", as_images=True)
    (ftr, gtr), (fte, gte) = loader(isolated_env / "m")
    assert xtr.shape == (6, 28, 28, 1) and xte.shape == (4, 28, 28, 1)
    assert xtr.dtype == np.float32 == ftr.dtype
    assert np.array_equal(xtr.reshape(6, 784), ftr) and np.array_equal(xte.reshape(4, 784), fte)
    assert np.array_equal(ytr, gtr) and np.array_equal(yte, gte)
    assert np.array_equal(xtr[..., 0], arrays["train_images"] * np.float32(1 / 255))
    # as_images overrides flatten (whose default is True)
    assert loader(isolated_env / "m", flatten=False, as_images=True)[0][0].shape == \
        (6, 28, 28, 1)


def test_search_order_env_then_cache(isolated_env, monkeypatch):
    write_mnist_dir(isolated_env / "home" / ".cache" / "nnfast" / "mnist", n_train=3)
    (x, _), _ = load_mnist()
    assert len(x) == 3
    write_mnist_dir(isolated_env / "data" / "mnist", n_train=5)
    monkeypatch.setenv("NNFAST_DATA", str(isolated_env / "data"))
    (x, _), _ = load_mnist()
    assert len(x) == 5
    write_mnist_dir(isolated_env / "explicit", n_train=2)
    (x, _), _ = load_mnist(isolated_env / "explicit")
    assert len(x) == 2


def test_fashion_search_uses_debian_dir_last(isolated_env, monkeypatch):
    write_mnist_dir(isolated_env / "deb", n_train=7)
    monkeypatch.setitem(DEBIAN_DIRS, "fashion-mnist", str(isolated_env / "deb"))
    (x, _), _ = load_fashion_mnist()
    assert len(x) == 7
    with pytest.raises(FileNotFoundError):  # MNIST never looks there
        load_mnist()


def test_not_found_message_lists_places_and_hints(isolated_env, monkeypatch):
    monkeypatch.setenv("NNFAST_DATA", str(isolated_env / "data"))
    partial = isolated_env / "data" / "fashion-mnist"
    partial.mkdir(parents=True)
    (partial / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as e:
        load_fashion_mnist(isolated_env / "given")
    msg = str(e.value)
    for part in [str(isolated_env / "given"), str(partial), ".cache/nnfast/fashion-mnist",
                 "no-debian", "missing train-labels-idx1-ubyte",
                 "apt-get install dataset-fashion-mnist", "download=True", "NNFAST_DATA"]:
        assert part in msg, part
    with pytest.raises(FileNotFoundError) as e:
        load_mnist()
    assert "apt-get" not in str(e.value) and "MNIST not found" in str(e.value)


def test_mnist_label_count_mismatch(isolated_env):
    write_mnist_dir(isolated_env / "m")
    write_idx(isolated_env / "m" / "t10k-labels-idx1-ubyte.gz", np.zeros(3, np.uint8), gz=True)
    with pytest.raises(ValueError, match="expected 4 labels"):
        load_mnist(isolated_env / "m")


DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isfile(os.path.join(DEBIAN_FASHION, "t10k-labels-idx1-ubyte.gz")),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_debian_files(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NNFAST_DATA", raising=False)
    (xtr, _), (xte, yte) = load_fashion_mnist()
    assert xtr.shape == (60000, 784) and xte.shape == (10000, 784)
    assert xtr.dtype == np.float32 and yte.dtype == np.int64
    assert np.array_equal(np.bincount(yte), [1000] * 10)
    assert 0.0 == xtr.min() and xtr.max() == 1.0
    assert len(FASHION_MNIST_CLASSES) == 10 and FASHION_MNIST_CLASSES[9] == "Ankle boot"


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_checksum_table_matches_debian_files():
    from nnfast.datasets import CHECKSUMS

    name = "t10k-labels-idx1-ubyte.gz"  # the small one; the others were computed the same way
    assert scan_idx(os.path.join(DEBIAN_FASHION, name)) == CHECKSUMS["fashion-mnist"][name].sha256


# ---------------------------------------------------------------- admissions

def test_admissions_rule_and_reproducibility():
    x, y = make_admissions(2000, seed=3)
    assert x.shape == (2000, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() >= 0 and x.max() <= 100
    assert np.array_equal(y, ((x[:, 0] >= 50) & (x[:, 1] >= 50)).astype(np.int64))
    x2, y2 = make_admissions(2000, seed=3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert 0.15 < y.mean() < 0.35


def test_admissions_noise_flips_exact_fraction():
    x, y = make_admissions(1000, seed=0, noise=0.1)
    clean = ((x[:, 0] >= 50) & (x[:, 1] >= 50)).astype(np.int64)
    assert int((y != clean).sum()) == 100
    assert make_admissions(0)[0].shape == (0, 2)


@pytest.mark.parametrize("kw", [{"n": -1}, {"n": 2.5}, {"noise": 1.5}, {"noise": -0.1}])
def test_admissions_bad_arguments(kw):
    with pytest.raises(ValueError, match="make_admissions"):
        make_admissions(**kw)


# ---------------------------------------------------------------- user files

def test_load_npz(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.arange(6).reshape(3, 2), y=np.array([0, 1, 0]))
    x, y = load_file(p)
    assert x.dtype == np.float32 and x.shape == (3, 2) and y.dtype == np.int64


def test_load_npz_missing_key_and_pickle(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, x=np.zeros((2, 2)), labels=np.zeros(2))
    with pytest.raises(ValueError, match=r"missing key\(s\) y.*labels") as e:
        load_file(p)
    assert str(p) in str(e.value)
    np.savez(p, x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(ValueError, match="cannot read .npz"):
        load_file(p)
    p.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match=str(p)):
        load_file(p)


def test_load_csv_header_and_label_column(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n1,2,0\n3,4.5,1\n\n")
    x, y = load_file(p)
    assert x.tolist() == [[1, 2], [3, 4.5]] and y.tolist() == [0, 1] and y.dtype == np.int64
    x, y = load_file(p, label_column=0)
    assert y.dtype == np.int64 and x.shape == (2, 2)
    x, y = load_file(p, label_column="b")
    assert y.dtype == np.float32 and y.tolist() == [2, 4.5]
    p.write_text("5,1,2\n6,3,4\n")  # no header
    x, y = load_file(p)
    assert x.tolist() == [[5, 1], [6, 3]] and y.tolist() == [2, 4]


@pytest.mark.parametrize("text, kw, message", [
    ("1,2\n3\n", {}, "line 2: 1 columns, expected 2"),
    ("a,b\n1,2\n3,x\n", {}, "line 3, column 2: 'x' is not a number"),
    ("", {}, "CSV file is empty"),
    ("a,b\n", {}, "holds no samples"),
    ("1,2\n", {"label_column": 5}, "label_column=5 out of range"),
    ("a,b\n1,2\n", {"label_column": "c"}, "no column named 'c'"),
    ("1,nan\n", {}, r"line 1, column 2: 'nan' is NaN or infinite"),
])
def test_load_csv_errors(tmp_path, text, kw, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        load_file(p, **kw)
    assert str(p) in str(e.value)


def test_load_npy_pair(tmp_path):
    np.save(tmp_path / "X_train.npy", np.ones((4, 3)))
    np.save(tmp_path / "y_train.npy", np.array([1, 0, 1, 1]))
    x, y = load_file(tmp_path / "X_train.npy")
    assert x.shape == (4, 3) and y.tolist() == [1, 0, 1, 1]
    np.save(tmp_path / "feat.npy", np.ones((4, 3)))
    with pytest.raises(ValueError, match="X\\*.npy"):
        load_file(tmp_path / "feat.npy")
    x, y = load_file(tmp_path / "feat.npy", y_path=str(tmp_path / "y_train.npy"))
    assert len(y) == 4
    np.save(tmp_path / "y_train.npy", np.array([1, 0]))
    with pytest.raises(ValueError, match="x has 4 samples but y has 2"):
        load_file(tmp_path / "X_train.npy")
    np.save(tmp_path / "X.npy", np.ones((2, 2)))
    with pytest.raises(FileNotFoundError, match="y.npy"):
        load_file(tmp_path / "X.npy")


def test_load_file_bad_type_and_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_file(tmp_path / "nope.npz")
    (tmp_path / "d.txt").write_text("1,2")
    with pytest.raises(ValueError, match="unknown data file type '.txt'"):
        load_file(tmp_path / "d.txt")
    np.save(tmp_path / "Xs.npy", np.array(["a", "b"]))
    np.save(tmp_path / "ys.npy", np.array([0, 1]))
    with pytest.raises(ValueError, match="x must be numeric"):
        load_file(tmp_path / "Xs.npy")


def test_load_features(tmp_path):
    (tmp_path / "in.csv").write_text("f1,f2\n1,2\n3,4\n")
    assert load_features(tmp_path / "in.csv").tolist() == [[1, 2], [3, 4]]
    np.save(tmp_path / "in.npy", np.arange(3))
    # stored shape kept: predict's input-shape rule refuses 1-D (tests/test_input_shape_rule.py)
    assert load_features(tmp_path / "in.npy").shape == (3,)
    np.save(tmp_path / "inf.npy", np.array([[np.inf]]))
    with pytest.raises(ValueError, match="NaN or Inf"):
        load_features(tmp_path / "inf.npy")


# ---------------------------------------------- rows are never lost (issue 17, item 14)

def test_csv_with_excel_byte_order_mark_keeps_every_row(tmp_path):
    p = tmp_path / "excel.csv"
    p.write_bytes("1,2,0\r\n3,4,1\r\n".encode("utf-8-sig"))   # Excel's "CSV UTF-8"
    x, y = load_file(p)
    assert x.tolist() == [[1, 2], [3, 4]] and y.tolist() == [0, 1]
    p.write_bytes("id,f,label\n1,2,0\n3,4,1\n".encode("utf-8-sig"))
    data, header = read_csv(p)
    assert header == ["id", "f", "label"] and data.tolist() == [[1, 2, 0], [3, 4, 1]]
    assert load_file(p, label_column="id")[1].tolist() == [1, 3]


@pytest.mark.parametrize("text, message", [
    ("1,,0\n3,4,1\n", "line 1, column 2: empty cell"),      # was taken for a header
    ("a,b,c\n1,2,0\n,,\n5,6,0\n", "line 3, column 1: empty cell"),   # was skipped
    ("1,2,0\n3, ,1\n", "line 2, column 2: empty cell"),
    ("a,1,b\n2,3,0\n", "line 1, column 1: 'a' is not a number"),  # half a header is data
])
def test_csv_row_with_missing_cells_is_an_error_not_dropped(tmp_path, text, message):
    p = tmp_path / "gaps.csv"
    p.write_text(text)
    with pytest.raises(ValueError) as e:
        load_file(p)
    assert str(e.value) == (f"{p}: {message}" + (
        " (missing values are not supported; fill or drop the row)"
        if "empty" in message else ""))


def test_csv_header_rule_allows_an_unnamed_index_column(tmp_path):
    p = tmp_path / "idx.csv"
    p.write_text(",f,label\n0,2,1\n1,4,0\n")
    data, header = read_csv(p)
    assert header == ["", "f", "label"] and data.tolist() == [[0, 2, 1], [1, 4, 0]]


def test_csv_blank_lines_are_skipped_like_loadtxt(tmp_path):
    p = tmp_path / "blank.csv"
    p.write_text("1,2\n\n3,4\n\n")
    assert read_csv(p)[0].tolist() == np.loadtxt(p, delimiter=",").tolist()


def test_csv_not_utf8_names_the_file(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("caf\xe9,b\n1,2\n".encode("latin-1"))
    with pytest.raises(ValueError, match=re.escape(f"{p}: not UTF-8 text")):
        read_csv(p)


@pytest.mark.parametrize("content, message", [
    (b"GARBAGE!" * 4, "not an .npy file: it starts with b'GARBAG', an .npy file with "
                      "b'\\x93NUMPY'"),
    (None, "truncated or corrupt .npy file (Failed to read all data for array"),
])
def test_npy_wrong_magic_or_truncated_names_the_file(tmp_path, content, message):
    p = tmp_path / "X.npy"
    np.save(tmp_path / "y.npy", np.zeros(5))
    if content is None:
        np.save(p, np.ones((5, 3)))
        content = p.read_bytes()[:-10]
    p.write_bytes(content)
    for load in (load_file, load_features):
        with pytest.raises(ValueError) as e:
            load(p)
        assert str(e.value).startswith(f"{p}: {message}")


def test_nnfast_data_naming_a_file_is_a_clear_error(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    monkeypatch.setenv("NNFAST_DATA", str(f))
    for load in (load_mnist, load_fashion_mnist):
        with pytest.raises(ValueError) as e:
            load(download=True, mirrors=[], progress=False)
        assert str(e.value) == (f"NNFAST_DATA={str(f)!r}: not a directory (it names the "
                                "directory that holds the data sets)")


@pytest.mark.parametrize("text, message", [
    ("a,b\n1_0,2\n", "line 2, column 1: '1_0' is not a number"),
    ("a,b\n1,nan\n", "line 2, column 2: 'nan' is NaN or infinite (not supported; fill or drop "
                     "the row)"),
    ("a,b\n1,2\n-inf,2\n", "line 3, column 1: '-inf' is NaN or infinite (not supported; fill "
                           "or drop the row)"),
    ("# made by hand\na,b\n1,x\n", "line 3, column 2: 'x' is not a number"),
])
def test_csv_cells_like_numpy_with_line_and_column(tmp_path, text, message):
    from nnfast.datasets._files import read_csv

    p = tmp_path / "d.csv"
    p.write_text(text)
    with pytest.raises(ValueError) as e:
        read_csv(p)
    assert str(e.value) == f"{p}: {message}"


def test_csv_skips_whitespace_lines_and_comments_as_loadtxt(tmp_path):
    from nnfast.datasets._files import read_csv

    p = tmp_path / "d.csv"
    p.write_text("# comment, with a comma\na,b\n   \n1,2\n\t\n  # indented comment\n3,4\n")
    data, header = read_csv(p)
    assert header == ["a", "b"]
    np.testing.assert_array_equal(data, [[1.0, 2.0], [3.0, 4.0]])
