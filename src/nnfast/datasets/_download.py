"""Fetch one file from a list of mirrors: progress bar, checksums, bounded retries, atomic write.

The file is streamed into a temporary file of its own in the destination directory, verified,
given the mode any new file gets under the umask (nnfast/_atomic.py), then moved into place
with ``os.replace``. On any failure (including Ctrl-C) the temporary file is removed, so the
destination never holds a partial or unverified file.
"""
from __future__ import annotations

import hashlib
import http.client
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from nnfast._atomic import discard, publish, temp_beside
from nnfast._version import __version__

_CHUNK = 1 << 16


class DownloadError(OSError):
    """No mirror delivered a file that passed verification."""


class ChecksumError(ValueError):
    """A downloaded file does not match its expected checksum."""


@dataclass(frozen=True)
class Checksum:
    """What a file must match. Every field that is set is checked.

    sha256 : hex digest of the content, after gunzip for ``.gz`` files. Content digests stay
             valid when a mirror re-compresses a file (Debian's copies differ from upstream's
             at the gzip level but hold the same bytes).
    md5    : hex digest of the file exactly as served, for tables that only publish that.
    """

    sha256: str | None = None
    md5: str | None = None


class _Transient(Exception):
    """A failure worth retrying on the same mirror (dropped connection, 5xx, timeout)."""


def _file_md5(path: str) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verify_file(
    path: str, checksum: Checksum | None, content_sha256: Callable[[str], str]
) -> None:
    """Raise ChecksumError (or ValueError for a malformed file) unless ``path`` verifies.

    ``content_sha256(path)`` must check the file's structure and return the content digest;
    it runs even without a known digest, so a structurally broken file never passes.
    """
    got = content_sha256(path)
    if checksum is None:
        return
    if checksum.sha256 is not None and got != checksum.sha256.lower():
        raise ChecksumError(f"sha256 mismatch: expected {checksum.sha256}, got {got}")
    if checksum.md5 is not None:
        got_md5 = _file_md5(path)
        if got_md5 != checksum.md5.lower():
            raise ChecksumError(f"md5 mismatch: expected {checksum.md5}, got {got_md5}")


class _Watchdog:
    """Shuts down the attempt's sockets at the deadline, whatever phase it is in: connecting,
    waiting for the status line and headers (read inside ``urlopen``, where no per-read
    timeout of ours applies, so a server trickling header bytes could otherwise hold it for
    ``timeout`` per byte), or reading the body. A blocked recv then returns at once."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.fired = False
        self._socks: list = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(timeout, self._fire)
        self._timer.daemon = True

    def add(self, sock) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.fired:       # connected just after the deadline
                self._shut(sock)

    @staticmethod
    def _shut(sock) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass                 # already closed or never connected

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in self._socks:
                self._shut(sock)

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()

    def opener(self) -> urllib.request.OpenerDirector:
        """urllib's default handlers, but every HTTP(S) connection (redirects too) registers
        its socket with this watchdog once connected."""
        watch = self

        class Conn(http.client.HTTPConnection):
            def connect(self):
                super().connect()
                watch.add(self.sock)

        class SConn(http.client.HTTPSConnection):
            def connect(self):
                super().connect()
                watch.add(self.sock)

        class Handler(urllib.request.HTTPHandler):
            def http_open(self, req):
                return self.do_open(Conn, req)

        class SHandler(urllib.request.HTTPSHandler):
            def https_open(self, req):
                return self.do_open(SConn, req, context=self._context)

        return urllib.request.build_opener(Handler, SHandler)


def _fetch(url: str, out, desc: str, timeout: float, progress: bool) -> None:
    """Stream ``url`` into the open binary file ``out`` within ``timeout`` seconds in all
    (connect, headers and body: :class:`_Watchdog`); raise _Transient for retryable failures
    and OSError for permanent ones."""
    req = urllib.request.Request(url, headers={"User-Agent": f"nnfast/{__version__}"})
    late = f"timed out: the transfer took more than {timeout:g} s"
    with _Watchdog(timeout) as watch:
        try:
            _stream(watch.opener(), req, out, desc, timeout, progress)
        except _Transient:
            if watch.fired:
                raise _Transient(late) from None
            raise
        except OSError:
            if watch.fired:     # the shut-down socket surfaces as any kind of I/O error
                raise _Transient(late) from None
            raise
        except http.client.HTTPException:
            if watch.fired:
                raise _Transient(late) from None
            raise _Transient("the server sent a malformed response") from None
        if watch.fired:         # cut off without a Content-Length: the body may be short
            raise _Transient(late)


def _stream(opener, req, out, desc: str, timeout: float, progress: bool) -> None:
    try:
        with opener.open(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            written = 0
            with tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                      disable=not progress, leave=False) as bar:
                # read1: whatever one recv brings, so progress shows as data comes in
                while chunk := resp.read1(_CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            if total is not None and written != total:
                raise _Transient(f"connection closed after {written} of {total} bytes")
    except urllib.error.HTTPError as e:
        msg = f"HTTP {e.code} {e.reason}"
        if e.code >= 500 or e.code in (408, 429):
            raise _Transient(msg) from None
        raise OSError(msg) from None
    except http.client.IncompleteRead as e:
        raise _Transient(f"connection closed after {len(e.partial)} more bytes") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, (ConnectionRefusedError, socket.gaierror)):
            raise OSError(str(e.reason)) from None
        raise _Transient(str(e.reason)) from None
    except TimeoutError:
        raise _Transient(f"timed out: the transfer took more than {timeout:g} s") from None
    except (ConnectionError, http.client.HTTPException) as e:
        raise _Transient(f"{type(e).__name__}: {e}") from None


def _check_number(name: str, value, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"download_file: {name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        wanted = "finite and > 0" if positive else "finite and >= 0"
        raise ValueError(f"download_file: {name} must be {wanted}, got {value!r}")


def download_file(
    filename: str,
    dest_dir: str | os.PathLike,
    mirrors: Sequence[str],
    *,
    checksum: Checksum | None = None,
    content_sha256: Callable[[str], str],
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 300.0,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Download ``filename`` into ``dest_dir`` from the first mirror that delivers it intact.

    Each mirror is a base URL; the file's URL is ``mirror.rstrip("/") + "/" + filename``.
    A mirror is tried up to ``1 + retries`` times while it fails transiently (dropped
    connection, timeout, HTTP 5xx/408/429), waiting ``backoff * 2**k`` seconds before retry k;
    a 404, a refused connection or a file failing verification moves on to the next mirror.
    ``timeout`` bounds one whole attempt, in seconds: connecting, the status line and headers,
    and the body (a watchdog shuts the socket down at the deadline, so a server that trickles
    header or body bytes is cut off then, not only one that stalls).
    The file gets mode 0o666 minus the umask (an existing file keeps its mode), like a file
    written with ``open``.

    Returns the final path. Raises DownloadError listing every attempt when all mirrors fail;
    TypeError / ValueError naming ``timeout``, ``retries`` or ``backoff`` when one is not a
    number in its range (``timeout`` finite > 0, ``retries`` an int >= 0, ``backoff`` finite
    >= 0), before anything is fetched.
    """
    _check_number("timeout", timeout, positive=True)
    _check_number("backoff", backoff, positive=False)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise TypeError(f"download_file: retries must be an int >= 0, got {retries!r}")
    if not mirrors:
        raise DownloadError(f"no mirrors configured for {filename}")
    dest_dir = os.fspath(dest_dir)
    os.makedirs(dest_dir, exist_ok=True)
    final = os.path.join(dest_dir, filename)
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        for attempt in range(1 + retries):
            if attempt:
                sleep(backoff * 2 ** (attempt - 1))
            fd, tmp = temp_beside(final, suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out:
                    _fetch(url, out, filename, timeout, progress)
                    out.flush()
                    os.fsync(out.fileno())
                verify_file(tmp, checksum, content_sha256)
                publish(tmp, final)
                return final
            except _Transient as e:
                failures.append(f"{url}: {e}")
                continue
            except (OSError, ValueError) as e:
                failures.append(f"{url}: {e}")
                break
            finally:
                discard(tmp)
    raise DownloadError(
        f"could not download {filename} into {dest_dir}; attempts: " + "; ".join(failures)
    )
