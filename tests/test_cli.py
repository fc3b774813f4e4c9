"""The CLI end to end, as subprocesses: exit codes, stdout/stderr, files written, valid PNGs."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import default_sigint

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
    (["train", "--epochs", "-1"], "--epochs: '-1' is not an integer >= 1"),
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


# ------------------------------------------- issue 17: exits, validation, files (items 9-14)

def test_version(env):
    p = run(env, "--version")
    assert p.returncode == 0 and p.stdout == f"nnfast {nnfast.__version__}\n"


@pytest.mark.parametrize("args, message", [
    (["train", "--hidden", "0"], "nnfast train: error: argument --hidden: '0' is not a "
     "comma-separated list of layer sizes in [1, 16777216], like 256,128 (or 'none' for no "
     "hidden layer) (see nnfast train --help)"),
    (["train", "--epochs", "0"], "nnfast train: error: argument --epochs: '0' is not an "
     "integer >= 1 (see nnfast train --help)"),
    (["train", "--seed", "-1"], "nnfast train: error: argument --seed: '-1' is not a seed in "
     "[0, 9223372036854775807] (see nnfast train --help)"),
    (["train", "--threads", "300"], "nnfast train: error: argument --threads: '300' is not a "
     "thread count in [1, 256] (see nnfast train --help)"),
    (["train", "--lr", "inf"], "nnfast train: error: argument --lr: 'inf' is not a number > 0 "
     "(see nnfast train --help)"),
    (["train", "--plot", "{tmp}/x.jpgz"], "nnfast train: error: --plot {tmp}/x.jpgz: unknown "
     "image format 'jpgz'; use one of "),
    (["train", "--save", "{tmp}"], "nnfast train: error: --save {tmp}: is a directory, "
     "expected a file name"),
    (["train", "--save", "{tmp}/a.png", "--plot", "{tmp}/a.png"], "nnfast train: error: --save "
     "and --plot name the same file {tmp}/a.png"),
    (["train", "--hidden", "none", "--dropout", "0.5"], "nnfast train: error: --dropout needs "
     "a hidden layer; --hidden none has none"),
    (["train", "--hidden", "none", "--activation", "tanh"], "nnfast train: error: --activation "
     "needs a hidden layer; --hidden none has none"),
    (["train", "--samples", "50"], "nnfast train: error: --samples applies only to "
     "admissions, not to --dataset digits"),
    (["train", "--test-split", "0.5"], "nnfast train: error: --test-split applies only to data "
     "files (the named data sets have a fixed test set), not to --dataset digits"),
    (["train", "--download"], "nnfast train: error: --download applies only to mnist and "
     "fashion-mnist, not to --dataset digits"),
    (["train", "--dataset", "admissions", "--label-column", "0"], "nnfast train: error: "
     "--label-column applies only to .csv data files, not to --dataset admissions"),
    (["train", "--dataset", "{tmp}"], "nnfast train: error: --dataset {tmp}: is a directory, "
     "expected a file"),
    (["train", "--dataset", "mnist", "--data-dir", "{tmp}/f.txt"], "nnfast train: error: "
     "--data-dir {tmp}/f.txt: not a directory"),
    (["evaluate", "--model", "{tmp}"], "nnfast evaluate: error: --model {tmp}: is a directory, "
     "expected a file"),
    (["evaluate", "--model", "{tmp}/f.txt", "--seed", "3"], "nnfast evaluate: error: --seed "
     "applies only to data files and admissions (their test split), not to --dataset digits, "
     "whose test set is fixed"),
    (["predict", "--model", "{tmp}/f.txt", "--input", "{tmp}/nope.npy"], "nnfast predict: "
     "error: --input {tmp}/nope.npy: no such file"),
    (["predict", "--model", "{tmp}/f.txt", "--input", "{tmp}/f.txt", "--output",
      "{tmp}/f.txt"], "nnfast predict: error: --output {tmp}/f.txt is the --input file; it "
     "would be overwritten"),
    (["bench", "--plot", "{tmp}/b.foo"], "nnfast bench: error: --plot {tmp}/b.foo: unknown "
     "image format 'foo'"),
    (["bench", "--out", "{tmp}/no/r.md"], "nnfast bench: error: --out {tmp}/no/r.md: "
     "directory {tmp}/no does not exist"),
])
def test_every_mistake_is_found_before_any_work(env, tmp_path, args, message):
    (tmp_path / "f.txt").write_text("x")
    t = str(tmp_path)
    p = run(env, *[a.replace("{tmp}", t) for a in args])
    assert_one_line_error(p)
    assert p.stderr.startswith(message.replace("{tmp}", t)), p.stderr
    assert p.stdout == ""
    assert sorted(os.listdir(tmp_path)) == ["f.txt", "home"] or \
        sorted(os.listdir(tmp_path)) == ["f.txt"]


@pytest.mark.parametrize("var, value, message", [
    ("NNFAST_ISA", "bogus", "NNFAST_ISA: unknown kernel path 'bogus'; valid: 'generic', "
                            "'avx2', 'avx512'"),
    ("NNFAST_BACKEND", "bogus", "NNFAST_BACKEND='bogus': unknown backend; valid backends: "
                                "'c', 'python'"),
    ("NNFAST_NUM_THREADS", "-3", "NNFAST_NUM_THREADS='-3': expected an integer in [1, 256]"),
    ("NNFAST_THREADING", "bogus", "NNFAST_THREADING: unknown runtime 'bogus'; valid: 'pool', "
                                  "'openmp'"),
    ("NNFAST_SPIN_US", "x", "NNFAST_SPIN_US: expected microseconds as an integer in "
                            "[0, 1000000], got 'x'"),
    ("NNFAST_DATA", "{file}", "NNFAST_DATA='{file}': not a directory (it names the directory "
                              "that holds the data sets)"),
    ("NNFAST_DIST_TIMEOUT", "soon", "NNFAST_DIST_TIMEOUT='soon': expected a number of "
                                    "seconds >= 0 (0 = never abort)"),
    ("NNFAST_DISTRIBUTED", "maybe", "NNFAST_DISTRIBUTED='maybe': expected 0 or 1 (or "
                                    "false/true, no/yes, off/on)"),
])
@pytest.mark.parametrize("command", [["info"], ["train", "--epochs", "1"]])
def test_bad_environment_is_one_line_exit_2(env, tmp_path, var, value, message, command):
    if var == "NNFAST_ISA" and not nnfast.backends.compiled_available():
        pytest.skip("compiled extension not built")
    f = tmp_path / "file"
    f.write_text("x")
    env[var] = value.replace("{file}", str(f))
    p = run(env, *command)
    assert_one_line_error(p)
    assert p.stderr == f"nnfast {command[0]}: error: {message.replace('{file}', str(f))}\n"


def test_main_maps_outcomes_to_exit_codes(monkeypatch, capsys):
    """In-process: what each way a command can end prints and returns (0/1/2/130/141/143)."""
    from nnfast import cli
    from nnfast.cli import _train
    from nnfast.datasets import DownloadError

    def raising(exc):
        def cmd(args):
            raise exc
        return cmd

    cases = [
        (_train.Interrupted("after 3 of 30 epochs"), 130,
         "nnfast evaluate: interrupted after 3 of 30 epochs; no files written\n"),
        (KeyboardInterrupt(), 130, "nnfast evaluate: interrupted; no files written\n"),
        (cli.Terminated(), 143, "nnfast evaluate: interrupted (SIGTERM); no files written\n"),
        (ValueError("evaluate: x is empty"), 2, "nnfast evaluate: error: x is empty\n"),
        (DownloadError("could not download f.gz"), 1,
         "nnfast evaluate: error: could not download f.gz\n"),
        (RuntimeError("boom"), 1, "nnfast evaluate: internal error: RuntimeError: boom "
                                  "(rerun with --debug for the traceback)\n"),
    ]
    monkeypatch.setattr(cli._args, "check_args", lambda args: None)
    for exc, code, err in cases:
        monkeypatch.setattr(_train, "cmd_evaluate", raising(exc))
        assert cli.main(["evaluate", "--model", "m.nnf"]) == code
        assert capsys.readouterr().err == err


def test_interrupt_message_lists_files_already_written(monkeypatch, capsys, tmp_path):
    from nnfast import cli
    from nnfast.cli import _files, _train

    def cmd(args):
        _files.write_text(str(tmp_path / "a.txt"), "x")
        raise KeyboardInterrupt

    monkeypatch.setattr(_files, "WRITTEN", [])
    monkeypatch.setattr(cli._args, "check_args", lambda args: None)
    monkeypatch.setattr(_train, "cmd_evaluate", cmd)
    assert cli.main(["evaluate", "--model", "m.nnf"]) == 130
    assert capsys.readouterr().err == (f"nnfast evaluate: interrupted; wrote {tmp_path}/a.txt "
                                       "before it\n")


def test_atomic_writes_leave_nothing_on_error_and_honour_umask(tmp_path):
    from nnfast.cli._files import write_csv

    def rows():
        yield [1, 2]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_csv(str(tmp_path / "p.csv"), ["a", "b"], rows())
    assert os.listdir(tmp_path) == []
    old = os.umask(0o027)
    try:
        write_csv(str(tmp_path / "p.csv"), ["a", "b"], [[1, 2]])
    finally:
        os.umask(old)
    assert (tmp_path / "p.csv").read_bytes() == b"a,b\n1,2\n"
    assert oct((tmp_path / "p.csv").stat().st_mode & 0o777) == oct(0o640)


def _start(env, *args):
    return subprocess.Popen([sys.executable, "-m", "nnfast", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)


def _wait_for_training(p):
    """Read stdout until the seed line (printed just before fit starts)."""
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        lines.append(line)
        if line.startswith("seed") or not line:
            return lines
    raise AssertionError("training did not start")


@needs_model
@pytest.mark.parametrize("sig, code, what", [(signal.SIGINT, 130, " after "),
                                             (signal.SIGTERM, 143, " (SIGTERM)")])
def test_stopped_training_fails_and_writes_nothing(env, tmp_path, sig, code, what):
    model, curves = tmp_path / "m.nnf", tmp_path / "c.png"
    p = _start(env, "train", "--epochs", "100000", "--threads", "1", "--seed", "0",
               "--save", model, "--plot", curves)
    try:
        before = _wait_for_training(p)
        time.sleep(1.5)
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
    finally:
        p.kill()
    assert p.returncode == code, err
    assert "test     accuracy" not in "".join(before) + out
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"nnfast train: interrupted" + re.escape(what) +
                        r"(\d+ of 100000 epochs)?; no files written", last), last
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["home"] or os.listdir(tmp_path) == []


def test_closed_stdout_is_silent_exit_141(env, tmp_path):
    r, w = os.pipe()
    os.close(r)   # the reader is gone before the first write, as after `| head -1`
    try:
        p = subprocess.run([sys.executable, "-m", "nnfast", "info"], env=env, stdout=w,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert (p.returncode, p.stderr) == (141, "")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    if not hasattr(nnfast, "Sequential"):
        pytest.skip("the model API is not merged yet")
    d = tmp_path_factory.mktemp("m")
    e = dict(os.environ, HOME=str(d / "home"))
    e.pop("NNFAST_DATA", None)
    p = run(e, "train", *SMALL, "--quiet", "--save", d / "m.nnf")
    assert p.returncode == 0, p.stderr
    from nnfast.datasets import load_digits

    _, (x, _) = load_digits()
    np.save(d / "X.npy", x[:3])
    return d / "m.nnf", d / "X.npy", x[:3]


def test_predict_csv_has_newline_line_ends_and_umask_mode(env, tmp_path, small_model):
    model, x_path, x = small_model
    out = tmp_path / "p.csv"
    p = subprocess.run(["sh", "-c", f'umask 027 && exec "$0" -m nnfast predict --model {model} '
                        f'--input {x_path} --output {out} --quiet', sys.executable], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    probs = nnfast.load_model(model).predict(x, verbose=0)
    expected = "prediction," + ",".join(f"p{j}" for j in range(10)) + "\n" + "".join(
        f"{int(r.argmax())}," + ",".join(f"{float(v):.6g}" for v in r) + "\n" for r in probs)
    assert out.read_bytes() == expected.encode()
    assert oct(out.stat().st_mode & 0o777) == oct(0o640)
    p = run(env, "predict", "--model", model, "--input", x_path, "--output", out, "--json")
    assert json.loads(p.stdout) == {"command": "predict", "n": 3, "output": str(out)}


def test_concurrent_predicts_to_one_file_all_succeed(env, tmp_path, small_model):
    model, x_path, _ = small_model
    out = tmp_path / "same.csv"
    procs = [_start(env, "predict", "--model", model, "--input", x_path, "--output", out,
                    "--quiet") for _ in range(4)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert results == [(0, "")] * 4
    assert os.listdir(tmp_path) == ["same.csv"]      # no temporary file left behind
    assert len(out.read_text().splitlines()) == 4


def test_predict_applies_the_models_input_shape_rule(env, tmp_path, small_model):
    model, _, x = small_model
    np.save(tmp_path / "row.npy", x[0])
    np.save(tmp_path / "img.npy", x.reshape(3, 8, 8))
    p = run(env, "predict", "--model", model, "--input", tmp_path / "row.npy")
    assert_one_line_error(p)
    assert p.stderr == (f"nnfast predict: error: --input {tmp_path}/row.npy must be at least "
                        "2-D (n_samples, ...), got shape (64,); for one sample of shape (64,) "
                        "use x.reshape(1, 64)\n")
    p = run(env, "predict", "--model", model, "--input", tmp_path / "img.npy")
    assert p.stderr == (f"nnfast predict: error: --input {tmp_path}/img.npy has samples of "
                        "shape (8, 8), the model expects (64,); use x.reshape(len(x), 64)\n")
    (tmp_path / "one.csv").write_text(",".join(str(v) for v in x[0]) + "\n")   # one CSV row
    p = run(env, "predict", "--model", model, "--input", tmp_path / "one.csv")
    assert p.returncode == 0 and len(p.stdout.split()) == 1, p.stderr


@needs_model
def test_images_train_through_flatten_and_predict_in_their_shape(env, tmp_path):
    from nnfast.datasets import load_digits

    (x, y), _ = load_digits()
    np.savez(tmp_path / "img.npz", x=x[:300].reshape(300, 8, 8), y=y[:300])
    p = run(env, "train", "--dataset", tmp_path / "img.npz", "--hidden", "8", "--epochs", "1",
            "--seed", "0", "--threads", "1", "--save", tmp_path / "m.nnf")
    assert p.returncode == 0, p.stderr
    assert "img.npz: 240 train, 60 test, samples of shape (8, 8), 10 classes" in p.stdout
    assert "model    64-8-10 relu" in p.stdout
    np.save(tmp_path / "X.npy", x[:2].reshape(2, 8, 8))
    p = run(env, "predict", "--model", tmp_path / "m.nnf", "--input", tmp_path / "X.npy")
    assert p.returncode == 0 and len(p.stdout.split()) == 2, p.stderr
    np.save(tmp_path / "flat.npy", x[:2])
    p = run(env, "predict", "--model", tmp_path / "m.nnf", "--input", tmp_path / "flat.npy")
    assert p.stderr.endswith("has samples of shape (64,), the model expects (8, 8); use "
                             "x.reshape(len(x), 8, 8)\n")


@needs_model
def test_seed_is_printed_and_linear_model_is_called_linear(env):
    p = run(env, "train", "--hidden", "none", "--epochs", "1", "--threads", "1", "--seed", "7")
    assert p.returncode == 0, p.stderr
    assert "model    64-10 linear (no hidden layer), adam" in p.stdout
    assert "\nseed     7\n" in p.stdout
    p = run(env, "train", "--hidden", "4", "--epochs", "1", "--threads", "1", "--json",
            "--quiet")
    drawn = json.loads(p.stdout)["seed"]
    assert isinstance(drawn, int) and 0 <= drawn < 2**31
    p = run(env, "train", "--hidden", "4", "--epochs", "1", "--threads", "1")
    assert re.search(r"\nseed     \d+ \(drawn\)\n", p.stdout), p.stdout


# ---------------------------------------------------------------- issue #17 (in-process runs)

def main_run(monkeypatch, capsys, *argv, env=None):
    """``nnfast *argv`` in this process: (exit status, stdout, stderr)."""
    from nnfast import cli

    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("value, expected", [("0", 0.0), ("", 300.0), (" 2.5 ", 2.5)])
def test_dist_timeout_zero_means_never_as_documented(monkeypatch, capsys, value, expected):
    from nnfast.distributed._mpi import env_timeout

    monkeypatch.setenv("NNFAST_DIST_TIMEOUT", value)
    assert env_timeout() == expected
    rc, out, err = main_run(monkeypatch, capsys, "info", "--json")
    assert (rc, err) == (0, "")


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_dist_timeout_one_parser_one_error(monkeypatch, capsys, value):
    from nnfast.distributed._mpi import env_timeout

    monkeypatch.setenv("NNFAST_DIST_TIMEOUT", value)
    message = (f"NNFAST_DIST_TIMEOUT={value!r}: expected a number of seconds >= 0 "
               "(0 = never abort)")
    with pytest.raises(ValueError) as e:
        env_timeout()
    assert str(e.value) == f"nnfast.distributed: {message}"
    assert main_run(monkeypatch, capsys, "info") == (2, "", f"nnfast info: error: {message}\n")


@pytest.fixture
def predict_files(tmp_path):
    from model_data import blobs, mlp

    x, y = blobs(n=4)
    model = mlp(seed=1, compile_with="adam")
    model.save(tmp_path / "m.nnf")
    np.save(tmp_path / "x.npy", x)
    return tmp_path


def test_predict_output_dash_and_symlink_and_fifo(monkeypatch, capsys, predict_files):
    t = predict_files
    rc, out, err = main_run(monkeypatch, capsys, "predict", "--model", t / "m.nnf", "--input",
                            t / "x.npy", "--output", "-")
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "prediction,p0,p1,p2" and len(lines) == 5
    # a link is written through: the target gets the CSV, the link stays a link
    (t / "target.csv").write_text("old")
    os.symlink(t / "target.csv", t / "link.csv")
    rc, out, err = main_run(monkeypatch, capsys, "predict", "--model", t / "m.nnf", "--input",
                            t / "x.npy", "--output", t / "link.csv", "--quiet")
    assert (rc, err) == (0, "")
    assert os.path.islink(t / "link.csv")
    assert (t / "target.csv").read_text().splitlines() == lines
    # a FIFO is written directly, not replaced by a regular file
    fifo = t / "out.fifo"
    os.mkfifo(fifo)
    got = []
    import threading
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()), daemon=True)
    reader.start()
    rc, out, err = main_run(monkeypatch, capsys, "predict", "--model", t / "m.nnf", "--input",
                            t / "x.npy", "--output", fifo, "--quiet")
    reader.join(10)
    assert (rc, err) == (0, "")
    assert got[0].splitlines() == lines and os.path.exists(fifo) and not os.path.isfile(fifo)


def test_pipes_and_devices_are_not_regular_files(monkeypatch, capsys, predict_files):
    t = predict_files
    fifo = t / "in.fifo"
    os.mkfifo(fifo)
    rc, out, err = main_run(monkeypatch, capsys, "predict", "--model", t / "m.nnf", "--input",
                            fifo)
    assert (rc, out) == (2, "")
    assert err == (f"nnfast predict: error: --input {fifo}: not a regular file (a pipe, FIFO "
                   "or device); nnfast reads data and models from regular files only: save it "
                   "to a file first\n")
    rc, out, err = main_run(monkeypatch, capsys, "train", "--dataset", "/dev/null")
    assert rc == 2
    assert err.startswith("nnfast train: error: --dataset /dev/null: not a regular file")
    with pytest.raises(ValueError) as e:
        nnfast.datasets.load_features(str(fifo))
    assert str(e.value) == (f"{fifo}: not a regular file (a directory, pipe, FIFO or device); "
                            "data is read from regular files only")


@pytest.mark.parametrize("argv, message", [
    (["train", "--save", ""], "--save '': empty file name"),
    (["train", "--plot", ""], "--plot '': empty file name"),
    (["train", "--save", "-"], "--save -: standard output is only for --output; give a file name"),
    (["train", "--data-dir", "", "--dataset", "mnist"], "--data-dir '': empty directory name"),
    (["predict", "--model", "", "--input", "x.npy"], "--model '': empty file name"),
    (["train", "--save", "/dev/null"], "--save /dev/null: is a character device, not a regular "
                                       "file; it is not replaced (files are written whole to a "
                                       "regular file, then renamed into place)"),
])
def test_empty_and_special_output_paths_are_refused_up_front(monkeypatch, capsys, argv,
                                                             message):
    rc, out, err = main_run(monkeypatch, capsys, *argv)
    assert (rc, out, err) == (2, "", f"nnfast {argv[0]}: error: {message}\n")


def test_predict_refuses_complex_input_like_model_predict(monkeypatch, capsys, predict_files):
    t = predict_files
    np.save(t / "xc.npy", np.load(t / "x.npy") + 1j)
    with pytest.raises(TypeError, match="^predict: x must hold numbers"):
        nnfast.load_model(t / "m.nnf").predict(np.load(t / "xc.npy"), verbose=0)
    rc, out, err = main_run(monkeypatch, capsys, "predict", "--model", t / "m.nnf", "--input",
                            t / "xc.npy")
    assert (rc, out) == (2, "")
    assert err == (f"nnfast predict: error: {t / 'xc.npy'}: input must be numeric (bool, int "
                   "or float), got dtype complex128\n")
