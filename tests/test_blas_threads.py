"""blas_limited: NumPy's BLAS held at one thread through one cached threadpoolctl controller."""
import multiprocessing
import os
import select
import subprocess
import sys
import threading
import types

import pytest

from nnfast import _threads

threadpoolctl = pytest.importorskip("threadpoolctl")


def blas_threads():
    return {d["filepath"]: d["num_threads"] for d in threadpoolctl.threadpool_info()
            if d["user_api"] == "blas"}


def test_blas_limited_limits_and_restores():
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        if not before:
            pytest.skip("no BLAS library found by threadpoolctl")
        assert set(before.values()) == {2}
        for _ in range(2):  # the second pass runs on the cached controller
            with _threads.blas_limited():
                assert set(blas_threads().values()) == {1}
            assert blas_threads() == before


def test_controller_is_cached_until_a_module_is_imported(monkeypatch):
    first = _threads._blas_controller()
    assert _threads._blas_controller() is first
    monkeypatch.setitem(sys.modules, "nnfast_test_new_module", types.ModuleType("x"))
    second = _threads._blas_controller()
    assert second is not first
    assert _threads._blas_controller() is second


def test_without_threadpoolctl_does_nothing(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # makes the import fail
    assert _threads._blas_controller() is None
    with _threads.blas_limited(), _threads.blas_limited():
        assert _threads._blas_users["controller"] is None
    assert _threads._blas_users["count"] == 0


def test_overlapping_blocks_in_two_threads_restore_blas():
    """A enters, B enters, A leaves (BLAS must stay limited for B), B leaves (BLAS back to
    what A found, not to the 1 that B found)."""
    before = blas_threads()
    if not before or set(before.values()) == {1}:
        pytest.skip("no multi-threaded BLAS found by threadpoolctl")
    a_in, a_out, b_in = threading.Event(), threading.Event(), threading.Event()
    seen, errors = {}, []

    def a():
        with _threads.blas_limited():
            seen["a"] = blas_threads()
            a_in.set()
            b_in.wait(timeout=60)
        a_out.set()

    def b():
        a_in.wait(timeout=60)
        with _threads.blas_limited():
            b_in.set()
            a_out.wait(timeout=60)
            seen["b after a left"] = blas_threads()

    def guarded(fn):
        def run():
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)
        return run

    workers = [threading.Thread(target=guarded(fn), daemon=True) for fn in (a, b)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in workers) and not errors, errors
    assert set(seen["a"].values()) == {1}
    assert set(seen["b after a left"].values()) == {1}
    assert blas_threads() == before


def test_library_loaded_after_first_use_is_limited():
    # scipy's wheels bring their own OpenBLAS, loaded by `import scipy.linalg`
    code = """if True:
        import numpy
        from threadpoolctl import threadpool_info, threadpool_limits
        from nnfast._threads import blas_limited
        with blas_limited():
            pass
        import scipy.linalg
        blas = lambda: [d for d in threadpool_info() if d["user_api"] == "blas"]
        with threadpool_limits(2, user_api="blas"), blas_limited():
            print(sorted({d["num_threads"] for d in blas()}))
    """
    pytest.importorskip("scipy")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[1]", r.stdout


def limited_in_child():
    with _threads.blas_limited():
        inside = blas_threads()
    return inside, blas_threads(), _threads._blas_users["count"]


def test_fork_while_another_thread_holds_the_lock():
    before = blas_threads()
    held, release = threading.Event(), threading.Event()

    def hold():
        with _threads._blas_lock:
            held.set()
            release.wait(timeout=120)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert held.wait(timeout=60)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            inside, after, count = pool.apply_async(limited_in_child).get(timeout=120)
    finally:
        release.set()
        holder.join(timeout=60)
    assert (after, count) == (before, 0)
    if before:
        assert set(inside.values()) == {1}


def test_fork_inside_a_block_ends_it_in_the_child():
    """Another thread is inside a block too when this one forks: in the child only the
    forking thread's block is left, and leaving it restores BLAS."""
    before = blas_threads()
    inside, release = threading.Event(), threading.Event()

    def other():
        with _threads.blas_limited():
            inside.set()
            release.wait(timeout=120)

    helper = threading.Thread(target=other, daemon=True)
    helper.start()
    r, w = os.pipe()
    pid = -1
    try:
        assert inside.wait(timeout=60)
        with _threads.blas_limited():
            pid = os.fork()
        if pid == 0:
            ok = _threads._blas_users["count"] == 0 and blas_threads() == before
            os.write(w, b"ok" if ok else b"bad")
    finally:
        if pid == 0:
            os._exit(0)
        release.set()
        helper.join(timeout=60)
    os.close(w)
    try:
        assert select.select([r], [], [], 120)[0], "the child did not answer"
        assert os.read(r, 8) == b"ok"
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    assert blas_threads() == before
