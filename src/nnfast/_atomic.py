"""Files that appear whole or not at all, with the permissions any other new file would get.

A writer gets its own temporary file in the destination directory (``tempfile.mkstemp``: a
unique name, so two processes writing the same path never share one), fills it, gives it the
mode ``open()`` would have given a new file (0o666 minus the umask; an existing file keeps its
mode), then ``os.replace``-s it over the destination. On any exception, KeyboardInterrupt and
SystemExit included, the temporary file is removed. (mkstemp creates files 0o600, which is
why the mode is set explicitly: a shared data directory must stay readable by the group.)
"""
from __future__ import annotations

import contextlib
import os
import tempfile


def umask() -> int:
    """The process umask, read without changing it where the kernel tells (Linux >= 4.7);
    elsewhere set and restored at once (briefly visible to other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode(path: str) -> int:
    """The mode the file at ``path`` should get: its current one when it exists, else what
    ``open(path, "w")`` would create (0o666 & ~umask)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~umask()


def temp_beside(path: str, suffix: str = ".tmp") -> tuple[int, str]:
    """(fd, name) of a new, unique temporary file in ``path``'s directory."""
    directory = os.path.dirname(os.path.abspath(path))
    return tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=suffix)


def publish(tmp: str, path: str) -> None:
    """Give ``tmp`` its final mode and move it over ``path`` in one step."""
    os.chmod(tmp, new_file_mode(path))
    os.replace(tmp, path)


def discard(tmp: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kw):
    """``with atomic_write(path) as f: f.write(...)``: ``path`` gets all of it or none of it.

    ``mode`` is ``"w"`` or ``"wb"``; ``open_kw`` (encoding, newline) go to ``os.fdopen``.
    Raises whatever the writer raises, after removing the temporary file.

    >>> import os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_write(p) as f:
    ...     _ = f.write("hello")
    >>> open(p).read()
    'hello'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, mode, **open_kw) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise
