"""Every public module shows exactly its documented public names (docs/architecture.md,
"Public names"): ``dir(module)`` is ``__all__``, with no ``np``, ``math``, ``ops`` or
submodules in tab completion, and every listed name resolves."""
import importlib
import os
import shutil
import subprocess
import sys

import pytest

PUBLIC = {
    "nnfast": ["__version__", "matmul", "info", "get_backend", "set_backend", "use_backend",
               "get_num_threads", "set_num_threads", "Sequential", "load_model", "from_onnx",
               "callbacks",
               "datasets", "distributed", "initializers", "layers", "losses", "metrics", "ops",
               "optimizers", "regularizers"],
    "nnfast.layers": ["Layer", "Dense", "Activation", "Dropout", "Flatten", "Conv2D",
                      "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
                      "BatchNormalization", "Reshape", "ACTIVATIONS", "from_config"],
    "nnfast.losses": ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
                      "BinaryCrossentropy", "MeanSquaredError", "Huber", "get", "from_config"],
    "nnfast.optimizers": ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get",
                          "from_config", "schedules"],
    "nnfast.optimizers.schedules": None,   # the Keras 3 schedule classes (module docstring)
    "nnfast.metrics": None,       # the Keras 3 metric classes, get, serialize, deserialize
    "nnfast.callbacks": ["Callback", "CallbackList", "LambdaCallback", "History",
                         "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler",
                         "ReduceLROnPlateau", "TerminateOnNaN"],
    "nnfast.initializers": ["Initializer", "NAMES", "get", "zeros", "ones"],
    "nnfast.regularizers": ["L1L2", "L1", "L2", "get"],
    "nnfast.datasets": ["ADMISSIONS_CLASSES", "ADMISSIONS_FEATURES", "CHECKSUMS",
                        "DIGITS_CLASSES", "FASHION_MNIST_CLASSES", "MIRRORS", "MNIST_CLASSES",
                        "Checksum",
                        "ChecksumError", "DownloadError", "download_file", "load_digits",
                        "load_fashion_mnist", "load_features", "load_file", "load_idx",
                        "load_mnist", "make_admissions"],
    "nnfast.distributed": None,   # its __all__ is documented in its module docstring
    "nnfast.sklearn": ["MLPClassifier", "MLPRegressor"],
    "nnfast.ops": None,           # matmul + every op of the reference backend (docs/ops_api.md)
}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_dir_is_exactly_the_public_names(name):
    if name == "nnfast.sklearn":
        pytest.importorskip("sklearn")
    module = importlib.import_module(name)
    expected = PUBLIC[name]
    if name == "nnfast.ops":
        from nnfast.backends import reference
        expected = ["matmul"] + list(reference.__all__)
    elif expected is None:
        expected = list(module.__all__)
    assert sorted(module.__all__) == sorted(expected)
    assert dir(module) == sorted(expected)
    for attr in expected:
        assert getattr(module, attr) is not None
    leaked = {"np", "math", "ops", "annotations", "warnings", "inspect", "sklearn", "backends"}
    assert not leaked & set(dir(module)) - set(expected)


def test_import_from_an_unbuilt_source_tree_says_what_happened(tmp_path):
    # Used to read "compiled extension not available (cannot import name '_kernels' from ...
    # (most likely due to a circular import))": no cycle, just no compiled file.
    import nnfast
    src = os.path.dirname(nnfast.__file__)
    shutil.copytree(src, tmp_path / "nnfast",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "NNFAST_BACKEND": ""}
    # the backend is chosen on first use (import reads no environment variable), so warn there
    code = "import nnfast.layers\nprint(nnfast.get_backend())"
    out = subprocess.run([sys.executable, "-W", "always", "-c", code],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and out.stdout == "python\n", out.stderr
    native = tmp_path / "nnfast" / "_native"
    assert ("RuntimeWarning: nnfast: the compiled extension nnfast._native._kernels is not "
            f"built: no _kernels extension file in {native} (nnfast is imported from a source "
            "tree that was not compiled; run `python setup.py build_ext --inplace` or `pip "
            "install .`); using the pure-Python reference backend, which is much slower"
            ) in out.stderr
    assert "circular" not in out.stderr
