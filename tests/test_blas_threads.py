"""blas_limited: NumPy's BLAS held at one thread through one cached threadpoolctl controller."""
import contextlib
import subprocess
import sys
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
    assert isinstance(_threads.blas_limited(), contextlib.nullcontext)


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
