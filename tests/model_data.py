"""Small data sets and models shared by the model tests (generated or loaded, never downloaded)."""
from __future__ import annotations

import numpy as np

import nnfast
from nnfast.layers import Dense


def digits():
    """The 8x8 digits, scaled to [0, 1], split 1437/360 by a fixed permutation."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = d.data / 16.0, d.target.astype(np.int64)
    p = np.random.default_rng(0).permutation(len(x))
    x, y = x[p], y[p]
    return (x[:1437], y[:1437]), (x[1437:], y[1437:])


def admissions(n: int, seed: int):
    """Grade and test score uniform in [0, 100]; admitted iff both >= 50. Returns raw x, y."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 100, (n, 2))
    y = ((x[:, 0] >= 50) & (x[:, 1] >= 50)).astype(np.float64)
    return x, y


def blobs(n: int = 240, classes: int = 3, features: int = 6, seed: int = 0):
    """Gaussian clusters: an easy classification set (float64 x, int64 labels)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (classes, features))
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.normal(0, 1, (n, features))
    return (x - x.mean(0)) / x.std(0), y.astype(np.int64)


def mlp(seed: int = 0, inputs: int = 6, hidden: int = 16, classes: int = 3, dropout: float = 0.0,
        dtype: str = "float32", compile_with="adam", loss="sparse_categorical_crossentropy",
        last="softmax"):
    layers = [Dense(hidden, "relu", input_dim=inputs)]
    if dropout:
        layers.append(nnfast.layers.Dropout(dropout))
    layers.append(Dense(classes, last))
    model = nnfast.Sequential(layers, dtype=dtype, seed=seed)
    if compile_with is not None:
        model.compile(compile_with, loss, ["accuracy"])
    return model


def snapshot(model) -> dict:
    """Everything fit may change, to assert a failed call changed nothing."""
    return {"built": model.built, "step": model._step, "epoch": model._epoch,
            "params": None if not model.built else model._params.copy(),
            "iterations": None if model.optimizer is None else model.optimizer.iterations}


def assert_unchanged(model, before: dict) -> None:
    after = snapshot(model)
    assert after["built"] == before["built"]
    assert (after["step"], after["epoch"], after["iterations"]) == \
        (before["step"], before["epoch"], before["iterations"])
    if before["params"] is not None:
        np.testing.assert_array_equal(after["params"], before["params"])
