"""Model files: one zip holding a JSON document and .npy arrays.

``model.json``: {"format": "nnfast.model", "format_version": 1, "nnfast_version", "model":
{name, dtype, seed, layers: [{class, config}]}, "built", "input_shape", "compile": {loss,
optimizer: {class, config, iterations}, metrics} or null, "state": {step, epoch}, "arrays":
{key: {file, shape, dtype}}} (the optimizer's learning_rate: a number or a schedule {class,
config}; a metric: its compile() string or {class, config}). Arrays: ``params.npy`` (the flat
parameter buffer) and ``optimizer/<state>.npy`` (moments, same layout). This file format sits
below the model: reading takes the class to build (``read_model(path, Sequential)``; the public
``nnfast.load_model`` in nnfast/engine/model.py passes it).

Reading trusts nothing in the file (docs/model.md, "Loading untrusted files"): the archive's sizes
are bounded before zipfile parses it (nnfast/engine/model_archive.py), every field of the document
is checked (nnfast/engine/model_doc.py), the layers are built only from the classes in nnfast.layers
(schedules and metrics only from theirs, by name), and the arrays' shapes follow from the layers:
each .npy header is compared with them, and each member's size with header + data, before the model
allocates anything. Arrays are read with ``allow_pickle=False`` semantics (only float dtypes pass),
so a file can never run code. Writing goes through nnfast/_atomic.py: a crash leaves the
old file or the new one, never half of one, and no temporary file.

>>> import nnfast                                             # doctest: +SKIP
>>> model.save("digits.nnf"); same = nnfast.load_model("digits.nnf")   # doctest: +SKIP
"""
from __future__ import annotations

import errno
import io
import json
import os
import stat
import zipfile

import numpy as np

from nnfast import _atomic
from nnfast import metrics as _metrics
from nnfast._version import __version__
from nnfast.engine import model_archive, model_doc
from nnfast.engine.model_doc import FORMAT, FORMAT_VERSION, FieldError

_CONFIG = "model.json"


def _document(model) -> tuple[dict, dict]:
    arrays = {}
    if model.built:
        arrays["params"] = model._params
        if model._state.size:
            arrays["state"] = model._state
        if model.optimizer is not None:
            for name, arr in model.optimizer.state.items():
                arrays[f"optimizer/{name}"] = arr
    compile_cfg = None
    if model.loss is not None:
        opt = model.optimizer
        compile_cfg = {
            "loss": {"class": type(model.loss).__name__, "config": model.loss.get_config()},
            "optimizer": {"class": type(opt).__name__, "config": opt.get_config(),
                          "iterations": opt.iterations},
            "metrics": [_metrics.serialize(m) for m in model.metrics],
        }
    doc = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "nnfast_version": __version__,
        "model": model.get_config(), "built": model.built,
        "input_shape": list(model.input_shape) if model.built else None,
        "compile": compile_cfg,
        "state": {"step": model._step, "epoch": model._epoch},
        "arrays": {k: {"file": f"{k}.npy", "shape": list(a.shape), "dtype": str(a.dtype)}
                   for k, a in arrays.items()},
    }
    return doc, arrays


def _snapshot(model) -> tuple[dict, dict]:
    doc, arrays = _document(model)
    return doc, {k: np.array(a) for k, a in arrays.items()}


def _fspath(path, fn: str):
    """``os.fspath(path)``, but a wrong type is a TypeError naming ``fn``'s argument (Python's
    own "expected str, bytes or os.PathLike object, not int" names none), as to_onnx does."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{fn}: path must be a str, bytes or os.PathLike, got "
                        f"{type(path).__name__}")
    return os.fspath(path)


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` atomically (nnfast/_atomic.py).

    Raises IsADirectoryError / FileNotFoundError / PermissionError naming ``path``, as
    ``open(path, "wb")`` would, and ValueError for a model whose file :func:`read_model` would
    refuse (a field out of the bounds in nnfast/engine/model_doc.py), before anything is
    written.
    """
    # bytes paths as open() takes them (load_model reads them too); decoded as os.fsdecode
    # does, so the file name is the same bytes on disk
    path = os.fsdecode(_fspath(path, "save"))
    if os.path.isdir(path):     # before copying the weights
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    doc, text, arrays = _checked_snapshot(model, repr(path))
    with _atomic.replacing(path) as f:
        _write(f, doc, text, arrays)


def to_bytes(model) -> bytes:
    """The model file's bytes, in memory: what ``pickle`` and ``copy.deepcopy`` of a Sequential
    carry (Keras 3 pickles a model through its file format too)."""
    doc, text, arrays = _checked_snapshot(model, "a model file in memory")
    buf = io.BytesIO()
    _write(buf, doc, text, arrays)
    return buf.getvalue()


def from_bytes(data: bytes, sequential):
    """A model from :func:`to_bytes`' bytes, read with every check of :func:`read_model`."""
    try:
        return _read(io.BytesIO(data), sequential)
    except (FieldError, model_archive.ArchiveError) as exc:
        raise ValueError(f"cannot load a model from {len(data)} bytes: {exc}") from None


def _checked_snapshot(model, where: str) -> tuple[dict, bytes, dict]:
    # copies from one step, also while another thread fits the model (nnfast/engine/locks.py)
    doc, arrays = model._weights.read(_snapshot, model)
    text = json.dumps(doc, indent=1).encode()
    try:   # never write a file that load_model refuses (a seed over 2**64, 2000 layers, ...)
        model_doc.check_document(model_doc.parse(text))
    except FieldError as exc:
        raise ValueError(f"save: cannot write {where}: nnfast.load_model would refuse it: "
                         f"{exc}") from None
    return doc, text, arrays


def _write(f, doc: dict, text: bytes, arrays: dict) -> None:
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr(_CONFIG, text)
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            zf.writestr(doc["arrays"][key]["file"], buf.getvalue())


def read_model(path, sequential):
    """Read a model written by :meth:`Sequential.save`, built as ``sequential`` (the model class).

    Raises ValueError ``cannot load '<path>': <field or member>: <problem>`` for truncated,
    corrupted, foreign, hostile or newer-format files, before allocating anything a size in the
    file states; FileNotFoundError, IsADirectoryError, PermissionError as ``open(path, "rb")``.
    """
    path = _fspath(path, "load_model")
    mode = os.stat(path).st_mode            # FileNotFoundError, PermissionError as open()
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        # a FIFO or a device: open() could block, and a model file is never one
        raise ValueError(f"cannot load {path!r}: not a regular file")
    with open(path, "rb") as f:             # IsADirectoryError as open()
        try:
            return _read(f, sequential)
        except (FieldError, model_archive.ArchiveError) as exc:
            raise ValueError(f"cannot load {path!r}: {exc}") from None


def _read(f, sequential):
    zf, members = model_archive.open_archive(f)
    with zf:
        if _CONFIG not in members:
            raise FieldError(_CONFIG, f"not an nnfast model file (no {_CONFIG!r} in the archive)")
        doc = model_doc.parse(model_archive.read_member(zf, members[_CONFIG],
                                                        model_doc.MAX_JSON_BYTES))
        model_doc.check_document(doc)
        model = _rebuild(doc, sequential, members)
        expected = _expected_arrays(doc, model)
        _check_members(doc, expected, members)
        for key, shape in expected.items():       # headers and sizes before any allocation
            model_archive.check_npy(zf, members[f"{key}.npy"], shape, model.dtype)
        if doc["built"]:
            _load_arrays(doc, model, zf, members, expected)
    return model


def _built(field: str, build, *args):
    """Call a constructor with values from the file; its ValueError/TypeError names the field."""
    try:
        return build(*args)
    except (ValueError, TypeError) as exc:
        raise FieldError(field, str(exc)) from None


def _rebuild(doc: dict, Sequential, members: dict):  # noqa: N803  (the class itself)
    from nnfast import layers as _layers
    from nnfast import losses as _losses
    from nnfast import optimizers as _optimizers

    cfg = doc["model"]
    layer_list = [_built(f"model.layers[{i}].config", _layers.from_config, entry)
                  for i, entry in enumerate(cfg["layers"])]
    _bound_declared_model(doc, layer_list, members)
    model = _built("model", lambda: Sequential(layer_list, dtype=cfg["dtype"], seed=cfg["seed"],
                                               name=cfg["name"]))
    comp = doc["compile"]
    if comp is not None:
        opt_cfg, loss_cfg = comp["optimizer"], comp["loss"]
        opt = _built("compile.optimizer.config", _optimizers.from_config, opt_cfg["class"],
                     dict(opt_cfg["config"]))
        loss = _built("compile.loss.config", _losses.from_config, loss_cfg["class"],
                      dict(loss_cfg["config"]))
        _built("compile.metrics", model.compile, opt, loss, list(comp["metrics"]))
    model._step, model._epoch = doc["state"]["step"], doc["state"]["epoch"]
    return model


# A file without weights (a model saved before it was built) may declare at most this many
# parameters: 2**26 is 256 MiB in float32, far above the networks nnfast trains.
MAX_DECLARED_PARAMS = 2**26
SMALL_MODEL_BYTES = 64 << 20   # below this, building before the arrays are compared is cheap


def _bound_declared_model(doc: dict, layers: list, members: dict) -> None:
    """A first layer that declares its input builds the model at construction, allocating every
    weight before the arrays are compared: bound that first. Above SMALL_MODEL_BYTES, a built
    file must hold them (``params.npy`` at least as large as the weights, checked exactly
    later) and a file without weights may declare at most MAX_DECLARED_PARAMS."""
    shape = layers[0].input_shape if layers else None
    if shape is None:
        return
    shape, total = tuple(shape), 0
    for i, layer in enumerate(layers):
        total += _built(f"model.layers[{i}]", layer.count_params, shape)
        shape = _built(f"model.layers[{i}]", layer.compute_output_shape, shape)
    need = total * np.dtype(doc["model"]["dtype"]).itemsize
    if need <= SMALL_MODEL_BYTES:
        return      # the arrays' own checks, right after, give the precise message
    if doc["built"]:
        info = members.get("params.npy")
        if info is None or info.file_size < need:
            held = "no params.npy" if info is None else f"params.npy of {info.file_size} bytes"
            raise FieldError("model.layers", f"declare {total} parameters ({need} bytes) but "
                                             f"the file holds {held}")
    elif total > MAX_DECLARED_PARAMS:
        raise FieldError("model.layers", f"declare {total} parameters in a file that holds no "
                                         f"weights; at most {MAX_DECLARED_PARAMS} there")


def _expected_arrays(doc: dict, model) -> dict:
    """{array key: shape} that the architecture implies, computed without allocating."""
    if not doc["built"]:
        if doc["input_shape"] is not None:
            raise FieldError("input_shape", "must be null for a model that is not built")
        return {}
    if doc["input_shape"] is None:
        raise FieldError("input_shape", "missing for a built model")
    shape, total, state = tuple(doc["input_shape"]), 0, 0
    for i, layer in enumerate(model.layers):
        total += _built(f"model.layers[{i}]", layer.count_params, shape)
        state += _built(f"model.layers[{i}]", layer.count_state, shape)
        shape = _built(f"model.layers[{i}]", layer.compute_output_shape, shape)
    expected = {"params": (total,)}
    if state:
        expected["state"] = (state,)
    if model.optimizer is not None:
        # the names this optimizer keeps (SGD without momentum: none)
        for name in model.optimizer._state_names:
            expected[f"optimizer/{name}"] = (total,)
    return expected


def _check_members(doc: dict, expected: dict, members: dict) -> None:
    arrays = doc["arrays"]
    if set(arrays) != set(expected):
        raise FieldError("arrays", f"lists {sorted(arrays)}; the architecture has "
                                   f"{sorted(expected)}")
    for key, shape in expected.items():
        spec, field = arrays[key], f"arrays.{key}"
        if spec["file"] != f"{key}.npy":
            raise FieldError(f"{field}.file", f"expected {key + '.npy'!r}, got {spec['file']!r}")
        if tuple(spec["shape"]) != shape or spec["dtype"] != doc["model"]["dtype"]:
            raise FieldError(field, f"says {spec['dtype']} {tuple(spec['shape'])}; the "
                                    f"architecture needs {doc['model']['dtype']} {shape}")
    names = {f"{key}.npy" for key in expected} | {_CONFIG}
    for name in sorted(names - set(members)):
        raise FieldError(name, "missing from the archive (truncated or not written by nnfast)")
    for name in sorted(set(members) - names):
        raise FieldError(name, f"unexpected member; {_CONFIG} lists {sorted(names)}")


def _load_arrays(doc: dict, model, zf, members: dict, expected: dict) -> None:
    model.build(tuple(doc["input_shape"]))
    loaded = {}
    for key, shape in expected.items():
        arr = model_archive.read_npy(zf, members[f"{key}.npy"], shape, model.dtype)
        if not np.isfinite(arr).all():
            raise FieldError(f"{key}.npy", "contains NaN or Inf")
        loaded[key] = arr
    model._params[...] = loaded.pop("params")
    if "state" in loaded:
        model._state[...] = loaded.pop("state")
    opt = model.optimizer
    if opt is not None:
        for key, arr in loaded.items():
            opt.state[key.split("/", 1)[1]][...] = arr
        opt.iterations = doc["compile"]["optimizer"]["iterations"]
