"""Backend selection, thread settings, info(), and the extension-missing fallback."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast
from nnfast import backends

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_py(code, **env):
    full = dict(os.environ, **env)
    for k, v in env.items():
        if v is None:
            full.pop(k)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=120)


def test_set_and_get_backend():
    before = nnfast.get_backend()
    try:
        nnfast.set_backend("python")
        assert nnfast.get_backend() == "python"
        assert backends.current().__name__ == "nnfast.backends.reference"
    finally:
        nnfast.set_backend(before)


def test_unknown_backend_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown backend 'cuda'; valid backends: 'c', 'python'"):
        nnfast.set_backend("cuda")


def test_use_backend_restores_previous_even_on_error():
    before = nnfast.get_backend()
    with pytest.raises(RuntimeError):
        with nnfast.use_backend("python"):
            assert nnfast.get_backend() == "python"
            raise RuntimeError("boom")
    assert nnfast.get_backend() == before


def test_env_selects_backend():
    r = run_py("import nnfast; print(nnfast.get_backend())", NNFAST_BACKEND="python")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "python"


def test_env_unknown_backend_is_a_clear_error():
    r = run_py("import nnfast", NNFAST_BACKEND="gpu")
    assert r.returncode == 0, r.stderr   # the import reads no variable: the first use does
    r = run_py("import nnfast; nnfast.get_backend()", NNFAST_BACKEND="gpu")
    assert r.returncode != 0
    assert ("ValueError: NNFAST_BACKEND='gpu': unknown backend; valid backends: 'c', 'python'"
            in r.stderr)


@pytest.mark.parametrize("var, value, message", [
    ("NNFAST_BACKEND", "bogus", "NNFAST_BACKEND='bogus': unknown backend"),
    ("NNFAST_ISA", "bogus", "NNFAST_ISA: unknown kernel path 'bogus'"),
    ("NNFAST_THREADING", "bogus", "NNFAST_THREADING: unknown runtime 'bogus'"),
    ("NNFAST_SPIN_US", "x", "NNFAST_SPIN_US: expected microseconds as an integer in "
                            "[0, 1000000], got 'x'"),
])
def test_bad_env_imports_then_every_use_raises_naming_the_variable(var, value, message):
    code = ("import nnfast, numpy as np\n"
            "x = np.ones((2, 2))\n"
            "for f in (nnfast.get_backend, lambda: nnfast.matmul(x, x),\n"
            "          lambda: nnfast.ops.activation_forward(x, 'relu')):\n"
            "    try:\n        f()\n    except ValueError as e:\n        print(e)\n")
    r = run_py(code, **{var: value})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and all(message in line for line in lines), r.stdout


def test_bad_thread_env_warns_once_and_uses_the_default():
    code = ("import warnings\nwith warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n    import nnfast\n    n = len(w)\n"
            "    t = nnfast.get_num_threads()\n"
            "print(n, [str(x.message) for x in w], t == nnfast._cpus.affinity_cpus() or t)")
    r = run_py(code, NNFAST_NUM_THREADS="-3", OMP_NUM_THREADS=None)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(
        "0 [\"nnfast: ignoring NNFAST_NUM_THREADS='-3': expected an integer in [1, 256]\"]")


def test_missing_extension_falls_back_to_python_and_warns_once():
    code = ("import sys, warnings; sys.modules['nnfast._native._kernels'] = None\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    import nnfast, numpy as np\n"
            "    r = nnfast.matmul(np.ones((2, 3)), np.ones((3, 2)))\n"
            "n = len([x for x in w if 'compiled extension' in str(x.message)])\n"
            "print(nnfast.get_backend(), n, r.sum(), nnfast.info()['compiled'])\n"
            "try:\n    nnfast.set_backend('c')\n"
            "except ImportError as e:\n    print('ImportError', e)\n")
    r = run_py(code, NNFAST_BACKEND=None)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.strip().splitlines()
    assert first == "python 1 12.0 False"
    assert second.startswith("ImportError the compiled backend 'c' is unavailable")


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", None, True, 257, 2**31])
def test_set_num_threads_rejects_bad_values(bad):
    before = nnfast.get_num_threads()
    with pytest.raises(ValueError, match="thread count must be"):
        nnfast.set_num_threads(bad)
    assert nnfast.get_num_threads() == before  # nothing changed on the way to the error
    if backends.compiled_available():
        from nnfast._native import _kernels
        assert _kernels.get_num_threads() == before


def test_set_num_threads_roundtrip(threads):
    threads(1)
    assert nnfast.get_num_threads() == 1
    threads(3)
    assert nnfast.get_num_threads() == 3
    if backends.compiled_available():
        from nnfast._native import _kernels
        assert _kernels.get_num_threads() == 3


def test_thread_count_from_environment():
    r = run_py("import nnfast; print(nnfast.get_num_threads())", NNFAST_NUM_THREADS="3")
    assert r.stdout.strip() == "3", r.stderr
    r = run_py("import nnfast; print(nnfast.get_num_threads())", NNFAST_NUM_THREADS=None,
               OMP_NUM_THREADS="1")
    assert r.stdout.strip() == "1", r.stderr
    r = run_py("import nnfast; print(nnfast.get_num_threads())", NNFAST_NUM_THREADS="zero",
               OMP_NUM_THREADS=None)
    assert "ignoring NNFAST_NUM_THREADS='zero'" in r.stderr
    assert r.stdout.strip() == str(nnfast._threads.available_cpus())


def test_default_threads_respect_affinity():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no sched_setaffinity on this platform")
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "import nnfast; print(nnfast.get_num_threads(), nnfast.info()['available_cpus'])")
    r = run_py(code, NNFAST_NUM_THREADS=None, OMP_NUM_THREADS=None)
    assert r.stdout.split() == ["1", "1"], r.stderr


def test_info_contents():
    d = nnfast.info()
    for key in ("version", "backend", "compiled", "openmp", "threads", "cpu_features",
                "kernel_path"):
        assert key in d, key
    assert d["version"] == nnfast.__version__
    assert isinstance(d["cpu_features"], list)
    if d["compiled"]:
        assert d["kernel_path"] in ("generic", "avx2", "avx512")
        assert set(d["gemm_blocking"]["float32"]) == {"MR", "NR", "MC", "KC", "NC"}


def test_info_command_line():
    r = subprocess.run([sys.executable, "-m", "nnfast", "info"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "version" in r.stdout and nnfast.__version__ in r.stdout
    r = subprocess.run([sys.executable, "-m", "nnfast", "info", "--json"], capture_output=True,
                       text=True, timeout=120)
    assert json.loads(r.stdout)["version"] == nnfast.__version__


@pytest.mark.skipif(not backends.compiled_available(), reason="compiled extension not built")
def test_forced_isa():
    r = run_py("import nnfast; print(nnfast.info()['kernel_path'])", NNFAST_ISA="generic")
    assert r.stdout.strip() == "generic", r.stderr
    r = run_py("import nnfast; nnfast.get_backend()", NNFAST_ISA="sse9")
    assert r.returncode != 0 and "unknown kernel path 'sse9'" in r.stderr
    if "avx512f" not in nnfast.info()["cpu_features"]:
        r = run_py("import nnfast; nnfast.get_backend()", NNFAST_ISA="avx512")
        assert r.returncode != 0 and "does not support the avx512 path" in r.stderr


def test_python_backend_matmul_is_plain_numpy():
    with nnfast.use_backend("python"):
        a = np.arange(6.0).reshape(2, 3)
        np.testing.assert_array_equal(nnfast.matmul(a, a.T), a @ a.T)


def test_ops_follow_the_active_backend_even_when_held(monkeypatch):
    import inspect

    from nnfast import ops
    from nnfast.backends import reference
    held = ops.activation_forward
    assert inspect.signature(held) == inspect.signature(reference.activation_forward)
    calls = []
    monkeypatch.setattr(reference, "activation_forward", lambda *a: calls.append(a) or "ref")
    x = np.ones((2, 2))
    with nnfast.use_backend("python"):
        assert held(x, "relu", out=None) == "ref"
    assert calls == [(x, "relu", 0.0, None)]
    if backends.compiled_available():  # explicit: NNFAST_BACKEND=python may be the default
        with nnfast.use_backend("c"):
            assert isinstance(held(x, "relu"), np.ndarray) and len(calls) == 1
