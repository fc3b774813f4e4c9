"""Files that appear whole or not at all: write a temporary file in the same directory, fsync,
rename. Model files (nnfast/engine/saving.py), the CLI's outputs and downloads all write here.

Readers see the old file or the new one, never half of one, and two writers (threads or
processes) saving to the same path both succeed: each writes its own temporary file, so the
last rename wins with a whole file.

**No temporary file is left behind**, also when the process is killed:

- On Linux the data goes to an *unnamed* file (``open(dir, O_TMPFILE)``), which the kernel frees
  if the process dies, whatever the signal (SIGTERM's default action, SIGKILL, the OOM killer).
  Only once the data is written and fsynced is the file given a unique hidden name
  (``linkat`` through ``/proc/self/fd``, or with ``AT_EMPTY_PATH`` where that crosses a mount;
  which one works is probed once per file system) and renamed over the target, microseconds
  later.
- Elsewhere (or on a file system without O_TMPFILE, or without /proc) the temporary file is
  named ``.<name>.<pid>.<random>.tmp`` from the start. An exception, including
  KeyboardInterrupt, removes it. A signal whose default action ends the process without
  running Python code (SIGTERM, SIGKILL) leaves it behind: a library must not install a signal
  handler, which belongs to the application. The pid in the name says which process wrote it.

New files get mode 0o666 minus the umask (the kernel applies it, as for ``open(path, "w")``);
a replaced file keeps its permission bits.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets

# O_TMPFILE errors that mean "not supported here" rather than a problem with the path
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOTSUP}
USE_UNNAMED = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def _as_user_path(exc: OSError, path: str) -> OSError:
    """The same error, naming the path the user gave rather than a temporary file's."""
    return type(exc)(exc.errno, exc.strerror or str(exc), path)


def _temp_name(directory: str, path: str, suffix: str = ".tmp") -> str:
    return os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}."
                                   f"{secrets.token_hex(6)}{suffix}")


def _open_named(directory: str, path: str, suffix: str = ".tmp") -> tuple[int, str]:
    while True:
        name = _temp_name(directory, path, suffix)
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(
                os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0), 0o666), name
        except FileExistsError:
            continue


def _link_proc(fd: int, name: str) -> None:
    os.link(f"/proc/self/fd/{fd}", name, follow_symlinks=True)


def _link_empty_path(fd: int, name: str) -> None:
    # linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH): where /proc/self/fd crosses a mount
    # (some containers); needs CAP_DAC_READ_SEARCH on older kernels. os.link has no form of it.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.linkat(fd, b"", -100, os.fsencode(name), 0x1000) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), name)


_LINKERS = (_link_proc, _link_empty_path)
_linker_by_device: dict = {}     # st_dev -> the linker that works there, or None


def _unnamed_linker(directory: str):
    """How to give an O_TMPFILE file in ``directory`` a name, probed once per file system with
    an empty file; None where O_TMPFILE or both ways of linking are unavailable."""
    if not USE_UNNAMED:
        return None
    device = os.stat(directory).st_dev
    if device in _linker_by_device:
        return _linker_by_device[device]
    found = None
    for linker in _LINKERS:
        try:
            fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno in _NO_TMPFILE:
                break
            raise
        try:
            name = _temp_name(directory, "probe")
            linker(fd, name)
            os.unlink(name)
            found = linker
            break
        except (OSError, AttributeError):   # AttributeError: no libc through ctypes
            continue
        finally:
            os.close(fd)
    _linker_by_device[device] = found
    return found


def _sync_directory(directory: str) -> None:
    # the rename itself is durable only once the directory is synced (POSIX fsync)
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass          # not supported for directories here (e.g. some network file systems)
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path):
    """``with replacing(path) as f:`` write binary data to ``f``; on leaving the block without an
    exception the data replaces ``path`` atomically. OSErrors name ``path``.

    Raises IsADirectoryError when ``path`` is a directory, FileNotFoundError when its directory
    does not exist, PermissionError, as ``open(path, "wb")`` would.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    named = None
    try:
        linker = _unnamed_linker(directory)
        if linker is not None:
            fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
        else:
            fd, named = _open_named(directory, path)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            try:
                mode = os.stat(path).st_mode & 0o777
            except FileNotFoundError:
                mode = None           # a new file: the mode given at open, minus the umask
            if mode is not None:
                os.chmod(f.fileno() if os.chmod in os.supports_fd else named, mode)
            if named is None:
                named = _temp_name(directory, path)
                linker(f.fileno(), named)
        os.replace(named, path)
        named = None
    except OSError as exc:
        if exc.errno is None:         # raised by the caller's code, not by the file system
            raise
        raise _as_user_path(exc, path) from None
    finally:
        if named is not None:         # also on KeyboardInterrupt and any other exception
            with contextlib.suppress(OSError):
                os.unlink(named)
    _sync_directory(directory)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kw):
    """``with atomic_write(path) as f: f.write(...)``: ``path`` gets all of it or none of it
    (:func:`replacing`, in text or binary mode).

    ``mode`` is ``"w"`` or ``"wb"``; ``open_kw`` (encoding, errors, newline) go to the text
    wrapper. Raises whatever the writer raises, after removing the temporary file.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_write(p, encoding="utf-8") as f:
    ...     _ = f.write("hello")
    >>> open(p).read()
    'hello'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    if mode == "wb" and open_kw:
        raise ValueError(f"atomic_write: {', '.join(open_kw)} apply to text mode only")
    with replacing(path) as raw:
        if mode == "wb":
            yield raw
            return
        text = io.TextIOWrapper(raw, **open_kw)
        try:
            yield text
            text.flush()
        finally:
            text.detach()        # the binary file stays open for replacing() to finish


def temp_beside(path: str, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new, unique, named temporary file in ``path``'s directory, created with
    mode 0o666 minus the umask (as ``open(path, "w")`` would), for writers that must check the
    file by name before :func:`publish` (a download's checksum)."""
    return _open_named(os.path.dirname(os.path.abspath(path)), path, suffix)


def publish(tmp: str, path: str) -> None:
    """Move ``tmp`` over ``path`` in one step (an existing ``path`` keeps its permission bits),
    then make the rename durable."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(tmp, os.stat(path).st_mode & 0o777)
    os.replace(tmp, path)
    _sync_directory(os.path.dirname(os.path.abspath(path)))


def discard(tmp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
