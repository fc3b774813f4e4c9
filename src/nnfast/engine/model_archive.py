"""The zip archive of a model file, read without trusting any size in it.

Every size the archive states is bounded before anything of that size is read or allocated:

- the central directory (its entry count and byte size, from the end record zipfile itself
  reads) before zipfile parses it: at most :data:`MAX_MEMBERS` entries and
  :data:`MAX_DIRECTORY_BYTES`, so a directory of millions of entries costs nothing;
- each member: not encrypted, *stored* (nnfast writes no compression, and a stored member's
  uncompressed size is the bytes it occupies on disk, so a zip bomb cannot exist), names
  unique, its data inside the file;
- a ``.npy`` member: its header read with ``numpy.lib.format.read_magic`` and
  ``read_array_header_1_0/2_0`` (NumPy's own bound of 10000 header bytes, no pickle), its shape,
  dtype and order compared with what the caller expects from the architecture, and its size
  with header + data, before its data is read.

Problems raise :class:`ArchiveError` (a ``ValueError``) naming the member; the reader adds the
file name. Reading a member to its end checks its CRC (zipfile), so flipped bits in the data are
caught unless the CRC was changed to match.
"""
from __future__ import annotations

import struct
import zipfile
import zlib

import numpy as np

MAX_MEMBERS = 64
MAX_DIRECTORY_BYTES = 64 * 1024

# What zipfile, the npy header parser and a damaged stream raise on garbage: struct.error for a
# short record, NotImplementedError for an unknown compression, RuntimeError for encryption,
# OSError/EOFError for offsets past the end, ValueError (and SyntaxError from the header's
# literal_eval) for the rest.
_GARBAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, zlib.error, EOFError,
            OSError, ValueError, SyntaxError, NotImplementedError, RuntimeError, OverflowError)


class ArchiveError(ValueError):
    """The archive or one of its members (``member``, in the message first) is damaged, foreign
    or hostile."""

    def __init__(self, problem: str, member: str | None = None):
        super().__init__(problem if member is None else f"{member}: {problem}")
        self.member = member


def _directory_bounds(f, size: int) -> None:
    # zipfile parses the whole central directory while opening; bound it first from the same
    # end record zipfile reads (its private _EndRecData, unchanged since Python 2.6).
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:
        return        # a future Python without it: the count is checked after opening
    try:
        end = end_record(f)
    except _GARBAGE:
        end = None
    if not end:
        raise ArchiveError("not an nnfast model file (not a zip archive, or truncated)")
    entries, nbytes = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if entries > MAX_MEMBERS or nbytes > min(MAX_DIRECTORY_BYTES, size):
        raise ArchiveError(f"the zip directory lists {entries} members in {nbytes} bytes; an "
                           f"nnfast model file has at most {MAX_MEMBERS} members in "
                           f"{MAX_DIRECTORY_BYTES} bytes")


def open_archive(f) -> tuple[zipfile.ZipFile, dict]:
    """(ZipFile, {name: ZipInfo}) of an open binary file, every member checked as above."""
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    _directory_bounds(f, size)
    try:
        zf = zipfile.ZipFile(f, "r")
    except _GARBAGE as exc:
        raise ArchiveError(f"not an nnfast model file (not a zip archive, or truncated: "
                           f"{exc})") from None
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"{len(infos)} members; an nnfast model file has at most "
                           f"{MAX_MEMBERS}")
    members = {}
    for info in infos:
        name = info.filename
        if name in members:
            raise ArchiveError("appears twice in the archive", name)
        if info.flag_bits & 0x1:
            raise ArchiveError("encrypted", name)
        if info.compress_type != zipfile.ZIP_STORED:
            raise ArchiveError(f"compressed (method {info.compress_type}); nnfast model files "
                               "hold stored members only", name)
        if info.file_size != info.compress_size or info.header_offset + info.file_size > size:
            raise ArchiveError(f"claims {info.file_size} bytes ({info.compress_size} stored at "
                               f"offset {info.header_offset}) in a file of {size} bytes "
                               "(truncated or corrupted)", name)
        members[name] = info
    return zf, members


def read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The bytes of a member of at most ``limit`` bytes, its CRC checked."""
    if info.file_size > limit:
        raise ArchiveError(f"{info.file_size} bytes; at most {limit}", info.filename)
    try:
        with zf.open(info) as m:
            data = m.read(info.file_size)
            extra = m.read(1)           # at the end: zipfile compares the CRC
    except _GARBAGE as exc:
        raise ArchiveError(f"corrupted ({exc})", info.filename) from None
    if len(data) != info.file_size or extra:
        raise ArchiveError("truncated", info.filename)
    return data


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


def _header(m, name: str, shape: tuple, dtype: np.dtype) -> np.dtype:
    """Read and check the .npy header at the start of member stream ``m``; the file's dtype."""
    version = np.lib.format.read_magic(m)
    if version not in _HEADER_READERS:
        raise ArchiveError(f".npy format version {version}; nnfast reads 1.0 and 2.0", name)
    try:
        got_shape, fortran, got_dtype = _HEADER_READERS[version](m)
    except (zipfile.BadZipFile, EOFError, OSError):
        raise                   # the member itself is damaged: reported as such by the caller
    except Exception as exc:   # noqa: BLE001
        # NumPy parses the (at most 10000-byte) header with tokenize and ast.literal_eval, which
        # raise ValueError, SyntaxError, tokenize.TokenError, ... depending on the garbage.
        raise ArchiveError(f"not a valid .npy header ({type(exc).__name__}: {exc})",
                           name) from None
    # either byte order of the expected type; never an object or structured dtype
    if (got_dtype.kind != "f" or got_dtype.newbyteorder("=") != dtype
            or got_shape != shape or fortran):
        raise ArchiveError(f"holds {got_dtype} {got_shape}{' (Fortran order)' if fortran else ''}"
                           f"; the architecture needs {dtype} {shape}", name)
    return got_dtype


def check_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shape: tuple, dtype) -> None:
    """Check a .npy member's header and size against the expected shape and dtype, reading only
    its header."""
    _npy(zf, info, tuple(shape), np.dtype(dtype), read=False)


def read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shape: tuple, dtype) -> np.ndarray:
    """The array of a .npy member, after the checks of :func:`check_npy` (native byte order)."""
    return _npy(zf, info, tuple(shape), np.dtype(dtype), read=True)


def _npy(zf, info, shape, dtype, read: bool):
    name = info.filename
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    try:
        with zf.open(info) as m:
            got_dtype = _header(m, name, shape, dtype)
            header = m.tell()
            if info.file_size != header + nbytes:
                raise ArchiveError(f"{info.file_size} bytes; its header ({header} bytes) and "
                                   f"{dtype} {shape} data need {header + nbytes}", name)
            if not read:
                return None
            data = m.read(nbytes)
            extra = m.read(1)           # at the end: zipfile compares the CRC
    except ArchiveError:
        raise
    except _GARBAGE as exc:
        raise ArchiveError(f"not a valid .npy array, or corrupted ({exc})", name) from None
    if len(data) != nbytes or extra:
        raise ArchiveError("truncated", name)
    return np.frombuffer(data, dtype=got_dtype).astype(dtype, copy=False).reshape(shape)
