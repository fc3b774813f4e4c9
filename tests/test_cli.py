"""The CLI end to end, as subprocesses: exit codes, stdout/stderr, files written, valid PNGs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import nnfast

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
needs_model = pytest.mark.skipif(not hasattr(nnfast, "Sequential"),
                                 reason="the model API (issue 5) is not merged yet")
# small and fast: 2 epochs of a 16-unit MLP on the embedded digits
SMALL = ["--hidden", "16", "--epochs", "2", "--seed", "0", "--threads", "1"]


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    # PYTHONPATH (set in conftest) points at the nnfast under test, not the source tree
    e["HOME"] = str(tmp_path / "home")  # keep ~/.cache/nnfast out of the real home
    e.pop("NNFAST_DATA", None)
    e["MPLBACKEND"] = "Agg"
    return e


def run(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "nnfast", *map(str, args)], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def assert_one_line_error(p, *fragments):
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def assert_png(path):
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) > 1000 and data.startswith(PNG_SIGNATURE)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = plt.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.01  # not a blank canvas


# ---------------------------------------------------------------- no model needed

def test_info_still_works(env):
    p = run(env, "info", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["version"] == nnfast.__version__


@pytest.mark.parametrize("args, fragment", [
    (["train", "--epochs", "-1"], "--epochs: '-1' is not an integer >= 0"),
    (["train", "--hidden", "12,x"], "--hidden: '12,x'"),
    (["train", "--lr", "0"], "--lr: '0' is not a number > 0"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--dropout", "1.5"], "--dropout"),
    (["train", "--validation-split", "1"], "--validation-split"),
    (["train", "--optimizer", "nope"], "invalid choice: 'nope'"),
    (["train", "--backend", "gpu"], "invalid choice: 'gpu'"),
    (["train", "--no-such-option"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
    (["predict", "--model", "m.nnf"], "--input"),
])
def test_bad_options_one_line_exit_2(env, args, fragment):
    assert_one_line_error(run(env, *args), fragment)


def test_unknown_dataset(env):
    assert_one_line_error(run(env, "train", "--dataset", "nosuch"),
                          "'nosuch' is neither a known name", "digits, mnist")


def test_dataset_not_found_has_hint(env, tmp_path):
    p = run(env, "train", "--dataset", "mnist", "--data-dir", tmp_path / "empty")
    assert_one_line_error(p, "MNIST not found", str(tmp_path / "empty"), "--download",
                          "NNFAST_DATA")


def test_fashion_not_found_mentions_apt(env, tmp_path, monkeypatch):
    from nnfast.datasets._mnist import DEBIAN_DIRS

    if os.path.isdir(DEBIAN_DIRS["fashion-mnist"]):
        pytest.skip("Fashion-MNIST is installed, so it is found")
    p = run(env, "train", "--dataset", "fashion-mnist")
    assert_one_line_error(p, "apt-get install dataset-fashion-mnist")


def test_corrupt_data_file(env, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n3,oops,1\n")
    assert_one_line_error(run(env, "train", "--dataset", bad), str(bad), "'oops' is not a number")


def test_unwritable_output_fails_before_training(env, tmp_path):
    p = run(env, "train", "--plot", tmp_path / "nodir" / "c.png")
    assert_one_line_error(p, "--plot", "does not exist")
    assert p.stdout == ""


def test_debug_shows_traceback(env):
    p = run(env, "train", "--dataset", "nosuch", "--debug")
    assert p.returncode != 0 and "Traceback" in p.stderr and "CLIError" in p.stderr


def test_missing_model_file(env, tmp_path):
    assert_one_line_error(run(env, "evaluate", "--model", tmp_path / "none.nnf"),
                          "none.nnf: no such file")


def test_console_script_entry_point_matches_module():
    from nnfast.cli import main

    assert callable(main)
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0


# ---------------------------------------------------------------- with the model

@needs_model
def test_train_default_prints_accuracy_loss_time(env):
    p = run(env, "train", "--threads", "1", "--seed", "0")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "digits: 1437 train, 360 test, 64 features, 10 classes" in out
    assert "test     accuracy" in out and "loss" in out and "s per epoch" in out
    acc = float(out.split("accuracy")[1].split()[0])
    assert acc > 0.9


@needs_model
def test_train_json_save_plots_then_evaluate_and_predict(env, tmp_path):
    model, curves, conf = tmp_path / "m.nnf", tmp_path / "curves.png", tmp_path / "conf.png"
    p = run(env, "train", *SMALL, "--validation-split", "0.2", "--save", model,
            "--plot", curves, "--confusion", conf, "--json", "--quiet")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert r["epochs"] == 2 and 0 <= r["test_accuracy"] <= 1 and r["test_loss"] > 0
    assert set(r["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert r["files"] == {"save": str(model), "plot": str(curves), "confusion": str(conf)}
    assert model.stat().st_size > 0
    assert_png(curves)
    assert_png(conf)

    p = run(env, "evaluate", "--model", model, "--json")
    assert p.returncode == 0, p.stderr
    ev = json.loads(p.stdout)
    assert ev["accuracy"] == pytest.approx(r["test_accuracy"], abs=1e-6)

    from nnfast.datasets import load_digits

    _, (x_test, _) = load_digits()
    np.save(tmp_path / "X.npy", x_test[:7])
    preds = tmp_path / "preds.csv"
    p = run(env, "predict", "--model", model, "--input", tmp_path / "X.npy", "--output", preds)
    assert p.returncode == 0, p.stderr
    rows = preds.read_text().strip().splitlines()
    assert rows[0].startswith("prediction,p0,") and len(rows) == 8
    p = run(env, "predict", "--model", model, "--input", tmp_path / "X.npy")
    assert p.returncode == 0 and len(p.stdout.split()) == 7
    assert all(0 <= int(c) <= 9 for c in p.stdout.split())


@needs_model
def test_predict_wrong_feature_count(env, tmp_path):
    model = tmp_path / "m.nnf"
    assert run(env, "train", *SMALL, "--quiet", "--save", model).returncode == 0
    np.save(tmp_path / "X.npy", np.zeros((3, 5)))
    p = run(env, "predict", "--model", model, "--input", tmp_path / "X.npy")
    assert_one_line_error(p)


@needs_model
def test_train_admissions_and_user_csv(env, tmp_path):
    p = run(env, "train", "--dataset", "admissions", "--hidden", "8", "--epochs", "3",
            "--seed", "1", "--quiet", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["architecture"] == "2-8-2"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    rows = ["f1,f2,f3,label"] + [",".join(f"{v:.4f}" for v in r) + f",{int(r[0] > 0)}"
                                 for r in x]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    p = run(env, "train", "--dataset", tmp_path / "d.csv", "--epochs", "2", "--quiet",
            "--json", "--hidden", "none")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["architecture"] == "3-2" and r["n_test"] == 12


@needs_model
def test_early_stopping_and_progress_bar(env):
    p = run(env, *["train", "--hidden", "8", "--epochs", "200", "--early-stopping", "1",
                   "--validation-split", "0.3", "--lr", "0.5", "--optimizer", "sgd",
                   "--threads", "1", "--seed", "0"])
    assert p.returncode == 0, p.stderr
    n = int(p.stdout.split("median of ")[1].split(")")[0])
    assert n < 200
    assert "it/s" in p.stderr or "%" in p.stderr  # tqdm bar on stderr by default


@needs_model
def test_bad_activation_is_one_line(env):
    assert_one_line_error(run(env, "train", "--activation", "wobbly", "--epochs", "1"),
                          "wobbly")
