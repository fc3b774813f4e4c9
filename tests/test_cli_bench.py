"""`nnfast bench`'s parts on quick settings (no timing is asserted: what the rows hold, and that
the rival columns compute what nnfast computes)."""
import numpy as np
import pytest

import nnfast
from nnfast.cli import _rivals, bench
from nnfast.layers import Dense

pytestmark = pytest.mark.skipif(not nnfast.backends.compiled_available(),
                                reason="the bench measures the compiled extension")


def _mlp():
    model = nnfast.Sequential([Dense(16, "relu", input_dim=12), Dense(8, "relu"),
                               Dense(3, "softmax")], seed=1)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def test_ort_predictor_matches_predict():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    model = _mlp()
    x = np.random.default_rng(0).random((5, 12), dtype=np.float32)
    np.testing.assert_allclose(_rivals.ort_predictor(model, 1)(x), model.predict(x), rtol=1e-5,
                               atol=1e-6)


def test_jax_predictor_and_trainer_match_the_model():
    pytest.importorskip("jax")
    model = _mlp()
    x = np.random.default_rng(0).random((5, 12), dtype=np.float32)
    np.testing.assert_allclose(_rivals.jax_predictor(model)(x), model.predict(x), rtol=1e-5,
                               atol=1e-6)
    rng = np.random.default_rng(1)
    xtr = rng.random((300, 12), dtype=np.float32)
    ytr = (xtr[:, 0] > 0.5).astype(np.int64)     # learnable: one feature decides
    epoch, accuracy = _rivals.jax_trainer((xtr, ytr, xtr, ytr), (12, 16, 2), 32, 0)
    before = accuracy()
    assert all(epoch(i) > 0 for i in range(40))
    assert accuracy() > max(before + 0.2, 0.9)


def test_bench_inference_rows_have_every_installed_rival():
    rows = bench.bench_inference(1, quick=True)
    assert [r["batch"] for r in rows] == [1, 256]
    for r in rows:
        assert r["threads"] == 1 and r["nnfast µs"] > 0
        for rival, module in (("torch", "torch"), ("onnxruntime", "onnxruntime"),
                              ("jax", "jax")):
            installed = bench._optional(module) is not None
            assert (f"vs {rival}" in r) == installed and (f"{rival} µs" in r) == installed
