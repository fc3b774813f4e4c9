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

**Symbolic links are written through, as ``open(path, "w")`` does**: the link's final target
(``os.path.realpath``) is replaced, in the target's directory, and the link stays a link. A
target that exists and is not a regular file (a character device such as ``/dev/null``, a FIFO,
a socket), or a path naming a file descriptor (``/dev/stdout``, ``/dev/fd/N``,
``/proc/<pid>/fd/N``), cannot be replaced without destroying it: ``special="write"`` writes
to it directly with ``open`` (not atomic: what the user asked for), ``special="refuse"`` (the
default; model files) raises ValueError.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import secrets
import stat

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


_FD_DIR = re.compile(r"/proc/[^/]+/fd")


def names_descriptor(path: str) -> bool:
    """Whether ``path``, following symbolic links one at a time, reaches an entry of a
    ``/proc/<pid>/fd`` directory (``/dev/stdout`` -> ``/proc/self/fd/1``): such a "link" is the
    open file itself (a pipe, a terminal, the file a shell redirected to), not a name in a
    directory that a rename could replace."""
    p = os.path.abspath(path)
    for _ in range(40):      # the kernel's limit on links followed in one lookup
        parent = os.path.realpath(os.path.dirname(p))
        if _FD_DIR.fullmatch(parent):
            return True
        p = os.path.join(parent, os.path.basename(p))
        if not os.path.islink(p):
            return False
        p = os.path.join(parent, os.readlink(p))
    return False


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def resolve(path: str, special: str = "refuse") -> tuple[str, bool]:
    """(where to write, whether to write there directly rather than atomically) for ``path``;
    see the module docstring. Raises IsADirectoryError, or ValueError for a non-regular target
    with ``special="refuse"``."""
    if special not in ("refuse", "write"):
        raise ValueError(f"special must be 'refuse' or 'write', got {special!r}")
    try:
        st = os.stat(path)            # follows links, also /proc's magic ones
    except FileNotFoundError:
        st = None                     # a new file (or a dangling link: its target is created)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    direct = names_descriptor(path) or (st is not None and not stat.S_ISREG(st.st_mode))
    if not direct:
        return os.path.realpath(path), False
    if special == "write":
        return path, True
    what = "names a file descriptor" if st is None or stat.S_ISREG(st.st_mode) else \
        f"is a {_kind(st.st_mode)}"
    raise ValueError(f"{path}: {what}, not a regular file; it is not replaced (files are "
                     "written whole to a regular file, then renamed into place)")


@contextlib.contextmanager
def replacing(path, special: str = "refuse"):
    """``with replacing(path) as f:`` write binary data to ``f``; on leaving the block without an
    exception the data replaces ``path`` atomically. OSErrors name ``path``.

    A symbolic link is written through: its final target is replaced and the link kept. A
    target that is not a regular file, or a path naming a file descriptor (``/dev/stdout``),
    is written directly when ``special="write"`` and refused with ValueError when
    ``special="refuse"`` (module docstring).

    Raises IsADirectoryError when ``path`` is a directory, FileNotFoundError when its directory
    does not exist, PermissionError, as ``open(path, "wb")`` would.
    """
    path = os.fspath(path)
    target, direct = resolve(path, special)
    if direct:
        try:
            f = open(target, "wb")
        except OSError as exc:
            raise _as_user_path(exc, path) from None
        with f:
            yield f
        return
    directory = os.path.dirname(target)
    named = None
    try:
        linker = _unnamed_linker(directory)
        if linker is not None:
            fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
        else:
            fd, named = _open_named(directory, target)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
            try:
                mode = os.stat(target).st_mode & 0o777
            except FileNotFoundError:
                mode = None           # a new file: the mode given at open, minus the umask
            if mode is not None:
                os.chmod(f.fileno() if os.chmod in os.supports_fd else named, mode)
            if named is None:
                named = _temp_name(directory, target)
                linker(f.fileno(), named)
        os.replace(named, target)
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
def atomic_write(path: str | os.PathLike, mode: str = "w", special: str = "refuse",
                 **open_kw):
    """``with atomic_write(path) as f: f.write(...)``: ``path`` gets all of it or none of it
    (:func:`replacing`, in text or binary mode).

    ``mode`` is ``"w"`` or ``"wb"``; ``open_kw`` (encoding, errors, newline) go to the text
    wrapper; ``special`` as for :func:`replacing`. Raises whatever the writer raises, after
    removing the temporary file.

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
    with replacing(path, special) as raw:
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
