"""`nnfast train --model cnn`: the LeNet-class CNN on the image data sets, its files, evaluate
and predict on the saved model, and the refusals (exit 2, one line, before any data is
loaded)."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nnfast.datasets import load_digits

ARCH = "8x8x1-c6k5-p2-c16k5-p2-120-84-10"


def main_run(monkeypatch, capsys, *argv):
    from nnfast import cli

    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as e:   # argparse's usage errors
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def no_data(monkeypatch):
    from nnfast.cli import _train

    def refuse(*a, **k):
        raise AssertionError("data loaded before the check")
    monkeypatch.setattr(_train, "load_dataset", refuse)


def run(tmp_path, *args):
    env = dict(os.environ, HOME=str(tmp_path / "home"), MPLBACKEND="Agg")
    env.pop("NNFAST_DATA", None)
    return subprocess.run([sys.executable, "-m", "nnfast", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_cnn_train_save_plot_then_evaluate_and_predict_images(tmp_path):
    pytest.importorskip("matplotlib")
    model, curves = tmp_path / "cnn.nnf", tmp_path / "curves.png"
    p = run(tmp_path, "train", "--model", "cnn", "--epochs", "2", "--seed", "0", "--threads",
            "1", "--save", model, "--plot", curves, "--json", "--quiet")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["architecture"] == ARCH and r["epochs"] == 2 and r["n_test"] == 360
    assert 0 <= r["test_accuracy"] <= 1 and curves.stat().st_size > 1000

    import nnfast

    m = nnfast.load_model(model)
    assert [type(layer).__name__ for layer in m.layers] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense",
        "Dense"]
    assert m.input_shape == (8, 8, 1) and m.count_params() == (
        (25 + 1) * 6 + (25 * 6 + 1) * 16 + (64 + 1) * 120 + (120 + 1) * 84 + (84 + 1) * 10)
    # evaluate feeds the digits as (N, 8, 8, 1) images to a model that takes them
    p = run(tmp_path, "evaluate", "--model", model, "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["accuracy"] == pytest.approx(r["test_accuracy"], abs=1e-6)

    _, (x_test, _) = load_digits(as_images=True)
    np.save(tmp_path / "X.npy", x_test[:7])
    p = run(tmp_path, "predict", "--model", model, "--input", tmp_path / "X.npy")
    assert p.returncode == 0, p.stderr
    expected = np.asarray(m.predict(x_test[:7])).argmax(axis=1).tolist()
    assert [int(c) for c in p.stdout.split()] == expected
    np.save(tmp_path / "flat.npy", x_test[:7].reshape(7, 64))
    p = run(tmp_path, "predict", "--model", model, "--input", tmp_path / "flat.npy")
    assert (p.returncode, p.stderr) == (2, f"nnfast predict: error: --input {tmp_path}/flat.npy "
                                           "has samples of shape (64,), the model expects "
                                           "(8, 8, 1); use x.reshape(len(x), 8, 8, 1)\n")


def test_cnn_text_output_names_the_architecture(monkeypatch, capsys):
    rc, out, err = main_run(monkeypatch, capsys, "train", "--model", "cnn", "--epochs", "1",
                            "--seed", "3", "--threads", "1", "--hidden", "16",
                            "--activation", "tanh", "--dropout", "0.25")
    assert rc == 0, err
    assert "digits: 1437 train, 360 test, samples of shape (8, 8, 1), 10 classes" in out
    assert "model    8x8x1-c6k5-p2-c16k5-p2-16-10 tanh, adam lr 0.001, batch 32" in out


def test_cnn_without_hidden_layers_is_conv_then_softmax(monkeypatch, capsys):
    rc, out, err = main_run(monkeypatch, capsys, "train", "--model", "cnn", "--epochs", "1",
                            "--seed", "3", "--threads", "1", "--hidden", "none", "--json")
    assert rc == 0, err
    assert json.loads(out)["architecture"] == "8x8x1-c6k5-p2-c16k5-p2-10"


def test_dense_stays_the_default(monkeypatch, capsys):
    rc, out, err = main_run(monkeypatch, capsys, "train", "--epochs", "1", "--seed", "0",
                            "--threads", "1", "--json", "--quiet")
    assert rc == 0, err
    assert json.loads(out)["architecture"] == "64-128-10"


@pytest.mark.parametrize("dataset, what", [
    ("admissions", "a data set of feature rows"),
    ("FILE.csv", "a data file"),
    ("FILE.npz", "a data file"),
])
def test_cnn_on_non_image_data_is_a_usage_error(monkeypatch, capsys, no_data, tmp_path,
                                                dataset, what):
    if dataset.startswith("FILE"):
        path = tmp_path / dataset.replace("FILE", "d")
        if dataset.endswith(".csv"):
            path.write_text("1,2,0\n3,4,1\n")
        else:
            np.savez(path, x=np.zeros((4, 2)), y=np.array([0, 1, 0, 1]))
        dataset = str(path)
    rc, out, err = main_run(monkeypatch, capsys, "train", "--model", "cnn", "--dataset",
                            dataset)
    assert (rc, out, err) == (2, "", "nnfast train: error: --model cnn needs images and "
                              "applies only to --dataset digits, mnist, fashion-mnist; "
                              f"--dataset {dataset} is {what} (train it with --model dense)\n")


def test_bad_model_value_and_dropout_without_head(monkeypatch, capsys, no_data):
    rc, out, err = main_run(monkeypatch, capsys, "train", "--model", "resnet")
    assert rc == 2 and err == ("nnfast train: error: argument --model: invalid choice: "
                               "'resnet' (choose from 'dense', 'cnn') (see nnfast train --help)\n")
    rc, out, err = main_run(monkeypatch, capsys, "train", "--model", "cnn", "--hidden", "none",
                            "--dropout", "0.5")
    assert (rc, err) == (2, "nnfast train: error: --dropout needs a hidden layer; --hidden "
                            "none has none\n")


def test_cnn_model_size_checked_before_loading(monkeypatch, capsys, no_data):
    # mnist: 28 -> 14 -> 7, 7 * 7 * 16 = 784 features into the head
    rc, out, err = main_run(monkeypatch, capsys, "train", "--model", "cnn", "--dataset",
                            "mnist", "--hidden", "16777216,200")
    n = (25 + 1) * 6 + (25 * 6 + 1) * 16 + 785 * 16777216 + 16777217 * 200 + 201 * 10
    assert (rc, err) == (2, "nnfast train: error: --hidden 16777216,200: the model with the "
                            f"dense head 784-16777216-200-10 has {n} parameters; at most "
                            "2147483648 (2**31) are supported\n")


def test_help_describes_the_cnn(monkeypatch, capsys):
    rc, out, err = main_run(monkeypatch, capsys, "train", "--help")
    assert rc == 0
    text = " ".join(out.split())
    assert ("--model {dense,cnn} dense: an MLP (the default); cnn: on digits, mnist or "
            "fashion-mnist only, images (H, W, 1) through conv 5x5x6 'same' - maxpool 2 - "
            "conv 5x5x16 'same' - maxpool 2 - flatten - dense head (--hidden, default 120,84) "
            "- softmax") in text


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_evaluate_feeds_28x28_images_to_a_cnn_and_rows_to_an_mlp(monkeypatch, capsys, tmp_path):
    import argparse

    from nnfast.cli import _models
    from nnfast.datasets import load_fashion_mnist

    monkeypatch.delenv("NNFAST_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    _, (x_img, y) = load_fashion_mnist(as_images=True, progress=False)
    for kind, x in (("cnn", x_img), ("dense", x_img.reshape(len(x_img), 784))):
        args = argparse.Namespace(model=kind, hidden=[8], activation=None, dropout=0.0,
                                  dtype="float32", optimizer="adam", lr=1e-3)
        model = _models.build_model(args, x.shape[1:], 10, seed=1)   # untrained: any weights
        model.save(tmp_path / f"{kind}.nnf")
        rc, out, err = main_run(monkeypatch, capsys, "evaluate", "--model",
                                tmp_path / f"{kind}.nnf", "--dataset", "fashion-mnist",
                                "--json", "--threads", "1")
        assert rc == 0, err
        assert json.loads(out)["accuracy"] == pytest.approx(
            model.evaluate(x, y, batch_size=1024)["accuracy"], abs=1e-9)
