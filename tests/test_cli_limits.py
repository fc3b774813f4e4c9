"""Issue #17, last findings: --hidden sizes and model size, --lr/--dropout in the model dtype,
--distributed without mpi4py, a blank OMP_NUM_THREADS, path argument types. Each run must fail
before any data is loaded (exit 2, one line)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast
from nnfast import layers


def main_run(monkeypatch, capsys, *argv, env=None):
    from nnfast import cli

    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as e:   # argparse's usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def no_data(monkeypatch):
    """Loading a data set fails the test: every refusal below comes before it."""
    from nnfast.cli import _train

    def refuse(*a, **k):
        raise AssertionError("data loaded before the check")
    monkeypatch.setattr(_train, "load_dataset", refuse)


@pytest.mark.parametrize("argv, message", [
    (["--hidden", "2147483647"], "argument --hidden: '2147483647' is not a comma-separated list "
     "of layer sizes in [1, 16777216], like 256,128 (or 'none' for no hidden layer) (see "
     "nnfast train --help)"),
    (["--hidden", "16777216,16777216"], "--hidden 16777216,16777216: the model "
     "64-16777216-16777216-10 has 281476251779082 parameters; at most 2147483648 (2**31) are "
     "supported"),
    (["--hidden", "65536,65536", "--dataset", "mnist"], "--hidden 65536,65536: the model "
     "784-65536-65536-10 has 4347133962 parameters; at most 2147483648 (2**31) are supported"),
    (["--lr", "1e-320"], "--lr 1e-320 rounds to 0 in float32; expected a number in "
     "[1.1754944e-38, 3.4028235e+38] (or --dtype float64)"),
    (["--lr", "1e-40"], "--lr 1e-40 rounds to a subnormal number in float32; expected a number "
     "in [1.1754944e-38, 3.4028235e+38] (or --dtype float64)"),
    (["--lr", "1e308"], "--lr 1e+308 rounds to inf in float32; expected a number in "
     "[1.1754944e-38, 3.4028235e+38] (or --dtype float64)"),
    (["--lr", "1e-320", "--dtype", "float64"], "--lr 1e-320 rounds to a subnormal number in "
     "float64; expected a number in [2.2250738585072014e-308, 1.7976931348623157e+308]"),
    (["--dropout", "1e-320"], "--dropout 1e-320 rounds to 0 in float32; expected 0 or a "
     "fraction in [1.1754944e-38, 1) (or --dtype float64)"),
    (["--dropout", "0.99999999999"], "--dropout 0.99999999999 rounds to 1 in float32; expected "
     "0 or a fraction in [1.1754944e-38, 1) (or --dtype float64)"),
])
def test_train_values_refused_before_loading(monkeypatch, capsys, no_data, argv, message):
    rc, out, err = main_run(monkeypatch, capsys, "train", *argv)
    assert (rc, out, err) == (2, "", f"nnfast train: error: {message}\n")


def test_model_size_against_ram(monkeypatch, capsys, no_data):
    from nnfast.cli import _args

    monkeypatch.setattr(_args, "_physical_memory", lambda: 2**27)
    rc, out, err = main_run(monkeypatch, capsys, "train", "--hidden", "100000", "--dtype",
                            "float64")
    # (64 + 1) * 100000 + (100000 + 1) * 10 = 7500010 parameters, 4 copies of 8 bytes
    assert (rc, out, err) == (2, "", "nnfast train: error: --hidden 100000: the model "
                              "64-100000-10 needs 0.2 GiB for its float64 weights, gradients "
                              "and optimizer state; this machine has 0.1 GiB\n")


def test_data_file_model_size_checked_exactly_after_loading(monkeypatch, capsys, tmp_path):
    f = tmp_path / "d.npz"
    np.savez(f, x=np.zeros((10, 40000)), y=np.array([0, 1] * 5))
    from nnfast.cli import _models

    monkeypatch.setattr(_models, "build_model", lambda *a: pytest.fail("model built"))
    rc, out, err = main_run(monkeypatch, capsys, "train", "--dataset", f, "--hidden",
                            "60000", "--quiet")
    assert (rc, err) == (2, "nnfast train: error: --hidden 60000: the model 40000-60000-2 "
                            "has 2400180002 parameters; at most 2147483648 (2**31) are "
                            "supported\n")


def test_distributed_without_mpi4py_is_a_usage_error(monkeypatch, capsys, no_data):
    monkeypatch.setitem(sys.modules, "mpi4py", None)   # `import mpi4py` raises ImportError
    for command in (["train"], ["evaluate", "--model", __file__]):
        rc, out, err = main_run(monkeypatch, capsys, *command, "--distributed",
                                env={"NNFAST_DISTRIBUTED": "1"})
        assert (rc, out, err) == (2, "", f"nnfast {command[0]}: error: --distributed: "
                                  "NNFAST_DISTRIBUTED=1 asks for MPI but mpi4py is not "
                                  'installed; install it with: pip install "nnfast[mpi]"\n')


@pytest.mark.parametrize("value", ["", " "])
def test_blank_omp_num_threads_is_unset(tmp_path, value):
    code = ("import os, numpy as np, nnfast\n"
            "a = np.ones((64, 64), np.float32)\n"
            "print(nnfast.matmul(a, a)[0, 0], nnfast._threads.threads_source(), "
            "'OMP_NUM_THREADS' in os.environ)\n")
    env = {**os.environ, "OMP_NUM_THREADS": value}
    env.pop("NNFAST_NUM_THREADS", None)
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120, check=True)
    assert p.stderr == ""   # libgomp said "Invalid value for environment variable ..."
    assert p.stdout.split()[0] == "64.0" and p.stdout.split()[2] == "False"
    p = subprocess.run([sys.executable, "-m", "nnfast", "info"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert (p.returncode, p.stderr) == (0, "")


def test_path_argument_types_are_named():
    m = nnfast.Sequential([layers.Dense(1, input_dim=3)], seed=0)
    m.compile("sgd", "mse")
    with pytest.raises(TypeError) as e:
        m.save(3)
    assert str(e.value) == "save: path must be a str, bytes or os.PathLike, got int"
    with pytest.raises(TypeError) as e:
        nnfast.load_model(3.5)
    assert str(e.value) == "load_model: path must be a str, bytes or os.PathLike, got float"


def test_sklearn_regressor_refuses_overflowing_weight_sum():
    pytest.importorskip("sklearn")
    from nnfast.sklearn import MLPRegressor

    X = np.arange(40, dtype=float).reshape(20, 2)
    w = np.ones(20)
    w[[4, 9]], w[12] = 1e308, -1e308
    with pytest.raises(ValueError) as e:
        MLPRegressor(hidden_layer_sizes=(3,), max_iter=5).fit(X, X[:, 0], sample_weight=w)
    assert str(e.value).startswith("sample_weight sums to inf in float64 (sum of magnitudes): "
                                   "the weights of rows [4, 9] (1e+308 to 1e+308) alone "
                                   "overflow;")
