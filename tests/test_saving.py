"""model.save / nnfast.load_model: round trips, atomic writes, and files that must be refused."""
import io
import json
import os
import zipfile

import numpy as np
import pytest
from model_data import blobs, mlp

import nnfast
from nnfast import optimizers
from nnfast.engine import saving
from nnfast.layers import Dense, Dropout

X, Y = blobs()


def _trained(opt="adam", dropout=0.2, epochs=2):
    model = mlp(seed=3, dropout=dropout, compile_with=opt)
    model.fit(X, Y, epochs=epochs, batch_size=16, verbose=0)
    return model


@pytest.mark.parametrize("opt", [
    "adam", optimizers.SGD(0.05, momentum=0.9, nesterov=True), optimizers.AdamW(clipnorm=2.0),
    optimizers.RMSprop(momentum=0.3), optimizers.Adagrad(0.05), optimizers.SGD(0.05),
], ids=lambda o: o if isinstance(o, str) else type(o).__name__)
def test_round_trip_predicts_identically_and_training_continues_identically(tmp_path, opt):
    model = _trained(opt)
    path = tmp_path / "model.nnf"
    model.save(path)
    loaded = nnfast.load_model(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.evaluate(X, Y) == model.evaluate(X, Y)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations
    assert [m.name for m in loaded.metrics] == ["accuracy"]
    h1 = model.fit(X, Y, epochs=2, batch_size=16, verbose=0)
    h2 = loaded.fit(X, Y, epochs=2, batch_size=16, verbose=0)
    assert h1.history == h2.history
    np.testing.assert_array_equal(loaded._params, model._params)


def test_round_trip_of_config_details(tmp_path):
    model = nnfast.Sequential([
        nnfast.layers.Flatten(input_shape=(2, 3)),
        Dense(5, "leaky_relu", alpha=0.2, kernel_initializer="he_normal",
              kernel_regularizer=nnfast.regularizers.L1L2(1e-3, 1e-4)),
        Dropout(0.25), Dense(4, use_bias=False), nnfast.layers.Activation("softmax")],
        dtype="float64", seed=11, name="custom")
    model.compile(optimizers.Adam(2e-3), nnfast.losses.CategoricalCrossentropy(0.1), ["acc"])
    x = np.random.default_rng(0).normal(size=(20, 2, 3))
    t = np.eye(4)[np.arange(20) % 4]
    model.fit(x, t, epochs=1, verbose=0)
    model.save(tmp_path / "m")
    loaded = nnfast.load_model(tmp_path / "m")
    assert loaded.get_config() == model.get_config() and loaded.dtype == np.float64
    assert loaded.loss.label_smoothing == 0.1 and loaded.name == "custom"
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_unbuilt_and_uncompiled_models_round_trip(tmp_path):
    bare = nnfast.Sequential([Dense(4, "relu"), Dense(2)])
    bare.save(tmp_path / "bare")
    loaded = nnfast.load_model(tmp_path / "bare")
    assert not loaded.built and loaded.loss is None and len(loaded.layers) == 2
    compiled = mlp()                    # declares its input: built at construction
    compiled.save(tmp_path / "c")
    loaded = nnfast.load_model(tmp_path / "c")
    assert loaded.built and loaded.loss.name == "sparse_categorical_crossentropy"
    np.testing.assert_array_equal(loaded._params, compiled._params)
    loaded.fit(X, Y, epochs=1, verbose=0)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "model.nnf"
    model = _trained()
    model.save(path)
    good = path.read_bytes()
    calls = {"n": 0}
    real_save = np.save

    def failing_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:             # the crash happens after part of the file is written
            raise OSError("disk full")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(saving.np, "save", failing_save)
    model.fit(X, Y, epochs=1, verbose=0)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["model.nnf"]      # no temporary file left behind
    monkeypatch.undo()
    model.save(path)
    assert path.read_bytes() != good


def _rewrite(src, dst, edit_doc=None, edit_members=None):
    with zipfile.ZipFile(src) as zin:
        members = {name: zin.read(name) for name in zin.namelist()}
    if edit_doc is not None:
        doc = json.loads(members["model.json"])
        edit_doc(doc)
        members["model.json"] = json.dumps(doc).encode()
    if edit_members is not None:
        edit_members(members)
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _set(d, *path_and_value):
    *path, key, value = path_and_value
    for p in path:
        d = d[p]
    d[key] = value


@pytest.mark.parametrize("corrupt, match", [
    (lambda src, dst: dst.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2]),
     "not a zip archive, or truncated"),
    (lambda src, dst: dst.write_bytes(src.read_bytes()[:-10]), "truncated"),
    (lambda src, dst: dst.write_text("hello, I am a text file"), "not an nnfast model file"),
    (lambda src, dst: dst.write_bytes(b""), "not an nnfast model file"),
    (lambda src, dst: _rewrite(src, dst, edit_members=lambda m: m.pop("model.json")),
     "no 'model.json'"),
    (lambda src, dst: _rewrite(src, dst, lambda d: _set(d, "format", "keras")),
     "not an nnfast model file"),
    (lambda src, dst: _rewrite(src, dst, lambda d: _set(d, "format_version", 99)),
     "newer nnfast .format version 99"),
    (lambda src, dst: _rewrite(src, dst, lambda d: _set(d, "format_version", "1")),
     "invalid format_version"),
    (lambda src, dst: _rewrite(src, dst, edit_members=lambda m: m.update(
        {"model.json": b"{not json"})), "not valid JSON"),
    (lambda src, dst: _rewrite(src, dst, lambda d: _set(d, "model", "layers", 0, "class",
                                                        "os.system")),
     "unknown layer class 'os.system'"),
    (lambda src, dst: _rewrite(src, dst, lambda d: _set(d, "model", "layers", 0, "config",
                                                        "units", "many")),
     "invalid model description"),
    (lambda src, dst: _rewrite(src, dst, lambda d: _set(d, "model", "layers", 0, "config",
                                                        "evil", 1)),
     "invalid model description"),
    (lambda src, dst: _rewrite(src, dst, edit_members=lambda m: m.pop("params.npy")),
     "no 'params.npy'"),
    (lambda src, dst: _rewrite(src, dst, edit_members=lambda m: m.update(
        {"params.npy": _npy(np.array([{"x": 1}], dtype=object))})), "not a valid .npy array"),
    (lambda src, dst: _rewrite(src, dst, edit_members=lambda m: m.update(
        {"params.npy": _npy(np.zeros(3, np.float32))})), "has float32 .3,., the config says"),
    (lambda src, dst: _rewrite(src, dst, edit_members=lambda m: m.update(
        {"params.npy": m["params.npy"][:-40]})), "not a valid .npy array"),
    (lambda src, dst: _rewrite(src, dst, lambda d: _set(d, "compile", "optimizer", "class",
                                                        "Lion")),
     "unknown optimizer class 'Lion'"),
    (lambda src, dst: _rewrite(src, dst, lambda d: _set(d, "state", "step", -4)),
     "invalid training state"),
])
def test_bad_files_raise_value_error_naming_file_and_problem(tmp_path, corrupt, match):
    src, dst = tmp_path / "good.nnf", tmp_path / "bad.nnf"
    _trained(epochs=1).save(src)
    corrupt(src, dst)
    with pytest.raises(ValueError, match=match) as info:
        nnfast.load_model(dst)
    assert str(dst) in str(info.value)


def test_flipped_bytes_in_an_array_are_detected(tmp_path):
    src = tmp_path / "good.nnf"
    _trained(epochs=1).save(src)
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = zf.getinfo("params.npy")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[offset] ^= 0xFF
    bad = tmp_path / "flipped.nnf"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted") as exc:
        nnfast.load_model(bad)
    assert str(bad) in str(exc.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nnfast.load_model(tmp_path / "nothing.nnf")
