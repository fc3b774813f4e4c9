"""IDX files (the MNIST container), raw or gzipped, read with every size checked."""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib

import numpy as np

# type code -> big-endian dtype, as defined by the IDX format
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def _is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _open(path: str | os.PathLike):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _read_all(path: str | os.PathLike) -> bytes:
    try:
        with _open(path) as f:
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(f"{os.fspath(path)}: gzip stream is truncated or corrupt ({e})") from None


def parse_idx_header(head: bytes, path: str | os.PathLike) -> tuple[np.dtype, tuple, int]:
    """Return (big-endian dtype, shape, header length) from the first bytes of an IDX file.

    ``head`` must hold at least the whole header (4 + 4 * ndim bytes) when the file has one;
    anything shorter is reported as a truncated header.
    """
    name = os.fspath(path)
    if len(head) < 4:
        raise ValueError(f"{name}: {len(head)} bytes is too short for an IDX header (need 4)")
    if head[0] != 0 or head[1] != 0:
        raise ValueError(
            f"{name}: bad magic number 0x{head[:4].hex()}: an IDX file starts with two zero "
            "bytes, a type code and the number of dimensions"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise ValueError(f"{name}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise ValueError(
            f"{name}: truncated IDX header: {ndim} dimensions need {header_len} bytes, "
            f"file has {len(head)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    return IDX_TYPES[code], shape, header_len


def _check_payload(name: str, dtype: np.dtype, shape: tuple, found: int) -> None:
    expected = math.prod(shape) * dtype.itemsize
    if found < expected:
        raise ValueError(
            f"{name}: truncated IDX file: shape {shape} of {dtype.name} needs {expected} "
            f"payload bytes, found {found}"
        )
    if found > expected:
        raise ValueError(
            f"{name}: corrupt IDX file: {found - expected} bytes of trailing data after the "
            f"{expected} payload bytes of shape {shape}"
        )


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, gzipped or raw (told apart by the gzip magic bytes).

    The magic number, type code, dimensions and exact payload size are checked; a truncated
    or corrupt file raises ``ValueError`` naming the file and what is wrong.

    Returns
    -------
    ndarray of the stored shape, in native byte order, writeable. Types: 0x08 uint8,
    0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.

    Examples
    --------
    >>> labels = load_idx("t10k-labels-idx1-ubyte.gz")  # doctest: +SKIP
    >>> labels.shape, labels.dtype
    ((10000,), dtype('uint8'))
    """
    data = _read_all(path)
    dtype, shape, header_len = parse_idx_header(data[:4 + 4 * 255], path)
    _check_payload(os.fspath(path), dtype, shape, len(data) - header_len)
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def scan_idx(path: str | os.PathLike) -> str:
    """Check an IDX file's structure without holding it in memory; return the sha256 hex
    digest of its content (after gunzip when gzipped), the value checksum tables store."""
    name = os.fspath(path)
    digest = hashlib.sha256()
    head = b""
    total = 0
    try:
        with _open(path) as f:
            while chunk := f.read(_CHUNK):
                if len(head) < 4 + 4 * 255:
                    head += chunk[: 4 + 4 * 255 - len(head)]
                digest.update(chunk)
                total += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(f"{name}: gzip stream is truncated or corrupt ({e})") from None
    dtype, shape, header_len = parse_idx_header(head, path)
    _check_payload(name, dtype, shape, total - header_len)
    return digest.hexdigest()
