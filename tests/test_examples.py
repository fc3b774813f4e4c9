"""The examples run on small settings (as CI does)."""
import ast
import os
import subprocess
import sys

import pytest

import nnfast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(not hasattr(nnfast, "Sequential"),
                                reason="the model API (issue 5) is not merged yet")


def run_example(name, *args, tmp_path):
    # PYTHONPATH (set in conftest) points at the nnfast under test, not the source tree
    env = dict(os.environ, MPLBACKEND="Agg", HOME=str(tmp_path))
    return subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), *args],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False)


def test_admissions_example(tmp_path):
    out = tmp_path / "adm.png"
    p = run_example("admissions.py", "--epochs", "3", "--n", "300", "--out", str(out),
                    tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "test accuracy" in p.stdout
    with open(out, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_example(tmp_path):
    p = run_example("fashion_mnist.py", "--epochs", "1", "--limit", "1000", tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "test accuracy" in p.stdout and "Ankle boot" in p.stdout


def _readme_section(title):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_readme_onnx_snippets_run(tmp_path):
    pytest.importorskip("onnx", reason="the onnx extra is not installed")
    pytest.importorskip("onnxruntime", reason="ONNX Runtime (test extra) not installed")
    pytest.importorskip("torch", reason="PyTorch not installed")
    blocks = _readme_section("## ONNX: ").split("```python\n")[1:]
    blocks = [b.split("```")[0] for b in blocks]
    assert len(blocks) == 2 and "nnfast.from_onnx" in blocks[0] and "to_onnx" in blocks[1]
    for code in blocks:
        env = dict(os.environ, HOME=str(tmp_path))
        p = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300, check=False)
        assert p.returncode == 0, p.stderr
    assert (tmp_path / "mlp.onnx").is_file() and (tmp_path / "model.onnx").is_file()


def test_readme_metrics_schedules_iterables_snippet_runs(tmp_path):
    section = _readme_section("### Metrics, learning-rate schedules")
    code = section.split("```python\n")[1].split("```")[0]
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr
    logs = ast.literal_eval(p.stdout.strip().splitlines()[-1])   # a dict of floats
    assert sorted(logs) == ["accuracy", "loss", "sparse_top_k_categorical_accuracy"]
    assert logs["accuracy"] > 0.85 and logs["sparse_top_k_categorical_accuracy"] > 0.97


def test_mnist_cnn_example_on_digits(tmp_path):
    p = run_example("mnist_cnn.py", "--dataset", "digits", "--epochs", "1", "--limit", "300",
                    tmp_path=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "digits: 300 training and 300 test images of shape (8, 8, 1)" in p.stdout
    assert "test accuracy" in p.stdout and "batch_normalization" in p.stdout


def test_mnist_cnn_example_falls_back_to_digits(tmp_path):
    # with no --dataset the example takes Fashion-MNIST when it is found (HOME is tmp_path,
    # so only $NNFAST_DATA or Debian's directory can hold it), else the embedded digits
    if os.path.isdir("/usr/share/datasets/fashion-mnist"):
        p = run_example("mnist_cnn.py", "--epochs", "1", "--limit", "500", tmp_path=tmp_path)
        assert p.returncode == 0, p.stderr
        assert "Fashion-MNIST: 500 training and 500 test images of shape (28, 28, 1)" \
            in p.stdout and "test accuracy" in p.stdout
    else:
        p = run_example("mnist_cnn.py", "--epochs", "1", "--limit", "300", tmp_path=tmp_path)
        assert p.returncode == 0, p.stderr
        assert "Fashion-MNIST not found" in p.stdout and "using the embedded digits" \
            in p.stdout and "digits: 300 training" in p.stdout


def test_readme_cnn_snippet_reaches_98_percent_on_digits(tmp_path):
    code = _readme_section("### Convolutional networks").split("```python\n")[1].split("```")[0]
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=300, check=False)
    assert p.returncode == 0, p.stderr
    accuracy = float(p.stdout.strip().splitlines()[-1])
    # issue 18's target; seed 0 gives 354 of 360 on 1 and 2 threads alike (this machine)
    assert accuracy >= 0.98, accuracy
