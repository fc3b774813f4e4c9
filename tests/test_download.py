"""The downloader against a local HTTP server on 127.0.0.1 (never the network).

Each test configures what the server does per URL path: serve bytes, 404, 500, or send a
full Content-Length then drop the connection halfway through the body.
"""
import gzip
import hashlib
import http.server
import os
import socket
import threading
import time

import numpy as np
import pytest

from nnfast.datasets import (
    Checksum,
    DownloadError,
    download_file,
    load_fashion_mnist,
    load_mnist,
)
from nnfast.datasets._idx import scan_idx
from nnfast.datasets._mnist import DEBIAN_DIRS, FILES


def idx_gz(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, ">u4").tobytes()
    return gzip.compress(head + arr.astype(np.uint8).tobytes(), mtime=0)


def content_sha(data: bytes) -> str:
    return hashlib.sha256(gzip.decompress(data)).hexdigest()


class Server:
    """routes: path -> list of behaviours, consumed one per request (the last one repeats)."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.hits: dict[str, int] = {}
        # a trickle's end, in the server's own order of events (no clock): ("cut", n) when the
        # client hung up after n bytes, ("sent", n) when all n were written
        self.trickled: list[tuple[str, int]] = []
        self.trickle_over = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                plan = server.routes.get(self.path, [("status", 404)])
                kind, arg = plan.pop(0) if len(plan) > 1 else plan[0]
                if kind == "status":
                    self.send_error(arg)
                    return
                if kind == "trickle-headers":  # the status line and headers, a byte every 0.3 s
                    head = (f"HTTP/1.0 200 OK\r\nContent-Length: {len(arg)}\r\n"
                            "X-Padding: " + "x" * 200 + "\r\n\r\n").encode()
                    self._trickle(head, 0.3)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(arg)))
                self.end_headers()
                if kind == "ok":
                    self.wfile.write(arg)
                elif kind == "trickle":  # one byte every 0.2 s: never idle for a whole timeout
                    self._trickle(arg, 0.2)
                else:  # "drop": half the body, then the connection goes away
                    self.wfile.write(arg[: len(arg) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True

            def _trickle(self, data: bytes, gap: float):
                for i in range(len(data)):
                    try:
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                    except OSError:     # the client shut the connection down
                        server.trickled.append(("cut", i))
                        break
                    time.sleep(gap)
                else:
                    server.trickled.append(("sent", len(data)))
                server.trickle_over.set()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def mirror(self, name: str) -> str:
        return f"{self.base}/{name}/"


@pytest.fixture
def server(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def payload():
    return idx_gz(np.arange(3000, dtype=np.uint8).reshape(3, 1000) % 251)


def get(server, dest, mirrors, checksum=None, **kw):
    kw.setdefault("backoff", 0.0)
    kw.setdefault("timeout", 10.0)
    return download_file("f.gz", dest, mirrors, checksum=checksum, content_sha256=scan_idx, **kw)


def test_success_with_progress_bar(server, payload, tmp_path, capsys):
    server.routes["/a/f.gz"] = [("ok", payload)]
    dest = tmp_path / "cache"
    path = get(server, dest, [server.mirror("a")], Checksum(sha256=content_sha(payload)))
    assert path == str(dest / "f.gz") and (dest / "f.gz").read_bytes() == payload
    assert os.listdir(dest) == ["f.gz"]
    err = capsys.readouterr().err
    assert "f.gz" in err and "/324" in err  # the bar knew the size


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_downloaded_file_honours_the_umask(server, payload, tmp_path, mask):
    server.routes["/a/f.gz"] = [("ok", payload)]
    old = os.umask(mask)
    try:
        path = get(server, tmp_path, [server.mirror("a")], None, progress=False)
    finally:
        os.umask(old)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o666 & ~mask)


def _assert_cut_off(server):
    """The client hung up while the server was still trickling: the deadline ended the
    transfer, which would have taken over a minute. Checked by the server's order of events,
    not by a clock (a bound on the elapsed time can fail on a loaded machine). The server sees
    the hang-up at its next write or the one after; 120 s only guards against a client that
    never hangs up, and is longer than the whole trickle (65-75 s), which then ends "sent"."""
    assert server.trickle_over.wait(120)
    assert [kind for kind, _ in server.trickled] == ["cut"], server.trickled


def test_a_trickling_server_is_cut_off_at_the_timeout(server, payload, tmp_path):
    # each byte arrives well within the timeout; the whole file would take a minute
    server.routes["/a/f.gz"] = [("trickle", payload)]
    with pytest.raises(DownloadError) as e:
        get(server, tmp_path, [server.mirror("a")], None, timeout=1.0, retries=0,
            progress=False)
    _assert_cut_off(server)
    assert str(e.value) == (f"could not download f.gz into {tmp_path}; attempts: "
                            f"{server.mirror('a')}f.gz: timed out: the transfer took more "
                            "than 1 s")
    assert os.listdir(tmp_path) == []


def test_the_timeout_covers_a_server_trickling_its_headers(server, payload, tmp_path):
    # urllib reads the status line and headers inside urlopen, one recv per byte here: each
    # arrives within the timeout, all of them would take over a minute (issue #17 item 2)
    server.routes["/a/f.gz"] = [("trickle-headers", payload)]
    with pytest.raises(DownloadError) as e:
        get(server, tmp_path, [server.mirror("a")], None, timeout=1.0, retries=0,
            progress=False)
    _assert_cut_off(server)
    assert str(e.value) == (f"could not download f.gz into {tmp_path}; attempts: "
                            f"{server.mirror('a')}f.gz: timed out: the transfer took more "
                            "than 1 s")
    assert os.listdir(tmp_path) == []


def test_checksum_mismatch_leaves_nothing(server, payload, tmp_path):
    server.routes["/a/f.gz"] = [("ok", payload)]
    dest = tmp_path / "cache"
    with pytest.raises(DownloadError, match="sha256 mismatch") as e:
        get(server, dest, [server.mirror("a")], Checksum(sha256="0" * 64), progress=False)
    assert os.listdir(dest) == []
    assert server.hits["/a/f.gz"] == 1  # a bad file is not worth a retry on the same mirror
    assert server.mirror("a") + "f.gz" in str(e.value)


def test_md5_of_served_file_is_checked(server, payload, tmp_path):
    server.routes["/a/f.gz"] = [("ok", payload)]
    good = Checksum(md5=hashlib.md5(payload).hexdigest())
    assert get(server, tmp_path, [server.mirror("a")], good, progress=False)
    os.unlink(tmp_path / "f.gz")
    with pytest.raises(DownloadError, match="md5 mismatch"):
        get(server, tmp_path, [server.mirror("a")], Checksum(md5="1" * 32), progress=False)
    assert os.listdir(tmp_path) == []


def test_not_idx_fails_even_without_checksum(server, tmp_path):
    server.routes["/a/f.gz"] = [("ok", b"<html>not found</html>")]
    with pytest.raises(DownloadError, match="bad magic number"):
        get(server, tmp_path, [server.mirror("a")], None, progress=False)
    assert os.listdir(tmp_path) == []


def test_dropped_connection_retries_then_second_mirror(server, payload, tmp_path):
    server.routes["/a/f.gz"] = [("drop", payload)]
    server.routes["/b/f.gz"] = [("ok", payload)]
    waits = []
    path = get(server, tmp_path, [server.mirror("a"), server.mirror("b")],
               Checksum(sha256=content_sha(payload)), retries=2, backoff=0.5,
               sleep=waits.append, progress=False)
    with open(path, "rb") as f:
        assert f.read() == payload
    assert server.hits["/a/f.gz"] == 3 and server.hits["/b/f.gz"] == 1
    assert waits == [0.5, 1.0]  # exponential backoff between retries on one mirror
    assert os.listdir(tmp_path) == ["f.gz"]


def test_dropped_connection_then_success_on_retry(server, payload, tmp_path):
    server.routes["/a/f.gz"] = [("drop", payload), ("ok", payload)]
    get(server, tmp_path, [server.mirror("a")], Checksum(sha256=content_sha(payload)),
        progress=False)
    assert server.hits["/a/f.gz"] == 2


def test_dropped_connection_everywhere_is_a_clear_error(server, payload, tmp_path):
    server.routes["/a/f.gz"] = [("drop", payload)]
    with pytest.raises(DownloadError) as e:
        get(server, tmp_path, [server.mirror("a")], None, retries=1, progress=False)
    msg = str(e.value)
    assert "could not download f.gz" in msg and "connection closed after" in msg
    assert msg.count(server.mirror("a")) == 2
    assert os.listdir(tmp_path) == []


def test_404_moves_on_to_next_mirror(server, payload, tmp_path):
    server.routes["/b/f.gz"] = [("ok", payload)]
    get(server, tmp_path, [server.mirror("a"), server.mirror("b")], None, retries=3,
        sleep=pytest.fail, progress=False)  # no retry, so no wait, on a 404
    assert server.hits == {"/a/f.gz": 1, "/b/f.gz": 1}


def test_server_error_is_retried(server, payload, tmp_path):
    server.routes["/a/f.gz"] = [("status", 503), ("ok", payload)]
    get(server, tmp_path, [server.mirror("a")], None, progress=False)
    assert server.hits["/a/f.gz"] == 2


def test_refused_connection_and_no_mirrors(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on this port now
    with pytest.raises(DownloadError, match="refused"):
        get(None, tmp_path, [f"http://127.0.0.1:{port}/"], None, sleep=pytest.fail,
            progress=False)
    with pytest.raises(DownloadError, match="no mirrors"):
        get(None, tmp_path, [], None)
    assert os.listdir(tmp_path) == []


def test_interrupt_during_verification_leaves_nothing(server, payload, tmp_path):
    server.routes["/a/f.gz"] = [("ok", payload)]

    def interrupted(path):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_file("f.gz", tmp_path, [server.mirror("a")], content_sha256=interrupted,
                      progress=False)
    assert os.listdir(tmp_path) == []


def test_existing_good_file_is_replaced_only_by_a_verified_one(server, payload, tmp_path):
    (tmp_path / "f.gz").write_bytes(b"old")
    server.routes["/a/f.gz"] = [("drop", payload)]
    with pytest.raises(DownloadError):
        get(server, tmp_path, [server.mirror("a")], None, retries=0, progress=False)
    assert (tmp_path / "f.gz").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.gz"]


# ------------------------------------------------- through the loaders

def serve_dataset(server, prefix, n_train=5, n_test=3):
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28)),
        "train_labels": rng.integers(0, 10, n_train),
        "test_images": rng.integers(0, 256, (n_test, 28, 28)),
        "test_labels": rng.integers(0, 10, n_test),
    }
    checksums = {}
    for key, arr in arrays.items():
        data = idx_gz(arr)
        server.routes[f"/{prefix}/{FILES[key]}.gz"] = [("ok", data)]
        checksums[FILES[key] + ".gz"] = Checksum(sha256=content_sha(data))
    return arrays, checksums


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NNFAST_DATA", str(tmp_path / "data"))
    monkeypatch.setitem(DEBIAN_DIRS, "fashion-mnist", str(tmp_path / "no-debian"))
    return tmp_path


def test_load_fashion_mnist_download(server, isolated_env):
    arrays, checksums = serve_dataset(server, "fm")
    kw = {"mirrors": [server.base + "/missing/", server.mirror("fm")],
          "checksums": checksums, "backoff": 0.0, "progress": False}
    (xtr, _), (_, yte) = load_fashion_mnist(download=True, **kw)
    assert xtr.shape == (5, 784) and np.array_equal(yte, arrays["test_labels"])
    target = isolated_env / "data" / "fashion-mnist"
    assert sorted(os.listdir(target)) == sorted(f + ".gz" for f in FILES.values())
    hits = dict(server.hits)
    load_fashion_mnist(download=True, **kw)  # now found on disk: no new requests
    assert server.hits == hits


def test_load_mnist_download_into_explicit_path_with_bad_file(server, isolated_env):
    _, checksums = serve_dataset(server, "m")
    checksums["t10k-labels-idx1-ubyte.gz"] = Checksum(sha256="f" * 64)
    with pytest.raises(DownloadError, match="t10k-labels-idx1-ubyte.gz.*sha256 mismatch"):
        load_mnist(isolated_env / "mine", download=True, mirrors=[server.mirror("m")],
                   checksums=checksums, backoff=0.0, progress=False)
    # the files that did verify stay; the bad one left no trace
    left = sorted(os.listdir(isolated_env / "mine"))
    assert "t10k-labels-idx1-ubyte.gz" not in left and not any(f.startswith(".") for f in left)


@pytest.mark.parametrize("kw, exc, message", [
    ({"timeout": float("inf")}, ValueError, "timeout must be finite and > 0, got inf"),
    ({"timeout": float("nan")}, ValueError, "timeout must be finite and > 0, got nan"),
    ({"timeout": 0}, ValueError, "timeout must be finite and > 0, got 0"),
    ({"timeout": -1}, ValueError, "timeout must be finite and > 0, got -1"),
    ({"timeout": "5"}, TypeError, "timeout must be a number of seconds, got '5'"),
    ({"timeout": None}, TypeError, "timeout must be a number of seconds, got None"),
    ({"backoff": -0.5}, ValueError, "backoff must be finite and >= 0, got -0.5"),
    ({"retries": 1.5}, TypeError, "retries must be an int >= 0, got 1.5"),
    ({"retries": -1}, TypeError, "retries must be an int >= 0, got -1"),
])
def test_bad_timing_arguments_are_refused_before_any_work(tmp_path, kw, exc, message):
    # used to end in a watchdog thread's OverflowError, a format error, or retried attempts
    dest = tmp_path / "never-created"
    with pytest.raises(exc, match="^download_file: " + message.replace("(", r"\(")
                       .replace(")", r"\)") + "$"):
        download_file("f.bin", dest, ["http://127.0.0.1:9/"],
                      content_sha256=lambda p: "0" * 64, progress=False, **kw)
    assert not dest.exists()
