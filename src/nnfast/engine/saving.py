"""Model files: one zip holding a JSON document and .npy arrays.

``model.json``: {"format": "nnfast.model", "format_version": 1, "nnfast_version", "model":
{name, dtype, seed, layers: [{class, config}]}, "built", "input_shape", "compile": {loss,
optimizer: {class, config, iterations}, metrics} or null, "state": {step, epoch}, "arrays":
{key: {file, shape, dtype}}} (the optimizer's learning_rate: a number or a schedule {class,
config}; a metric: its compile() string or {class, config}). Arrays: ``params.npy`` (the flat
parameter buffer) and ``optimizer/<state>.npy`` (moments, same layout). Loading reads arrays
with ``allow_pickle=False`` and builds layers only from the classes in nnfast.layers (schedules
and metrics only from theirs, by name), so a file can never run code. This file format sits
below the model: reading takes the class to build
(``read_model(path, Sequential)``; the public ``nnfast.load_model`` in nnfast/engine/model.py
passes it). Writing goes to a temporary file in the target directory, fsynced, then
``os.replace``: a crash leaves the old file or the new one, never half of one.

>>> import nnfast                                             # doctest: +SKIP
>>> model.save("digits.nnf"); same = nnfast.load_model("digits.nnf")   # doctest: +SKIP
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile

import numpy as np

from nnfast import metrics as _metrics
from nnfast._version import __version__

FORMAT = "nnfast.model"
FORMAT_VERSION = 1
_CONFIG = "model.json"


def _document(model) -> tuple[dict, dict]:
    arrays = {}
    if model.built:
        arrays["params"] = model._params
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


def save_model(model, path) -> None:
    """Write ``model`` to ``path`` atomically (temporary file in the same directory + rename)."""
    path = os.fspath(path)
    # copies from one step, also while another thread fits the model (nnfast/engine/locks.py)
    doc, arrays = model._weights.read(_snapshot, model)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
                zf.writestr(_CONFIG, json.dumps(doc, indent=1))
                for key, arr in arrays.items():
                    buf = io.BytesIO()
                    np.save(buf, arr, allow_pickle=False)
                    zf.writestr(doc["arrays"][key]["file"], buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _Reader:
    def __init__(self, path: str, zf: zipfile.ZipFile):
        self.path, self.zf = path, zf

    def fail(self, problem: str):
        return ValueError(f"cannot load {self.path!r}: {problem}")

    def read(self, name: str) -> bytes:
        try:
            return self.zf.read(name)
        except KeyError:
            raise self.fail(f"the archive has no {name!r} member (truncated or not written by "
                            "nnfast)") from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise self.fail(f"member {name!r} is corrupted ({exc})") from None

    def array(self, key: str, spec: dict) -> np.ndarray:
        if not isinstance(spec, dict) or not isinstance(spec.get("file"), str):
            raise self.fail(f"bad entry for array {key!r} in {_CONFIG}")
        data = self.read(spec["file"])
        try:
            arr = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise self.fail(f"array {spec['file']!r} is not a valid .npy array ({exc})") from None
        if list(arr.shape) != spec.get("shape") or str(arr.dtype) != spec.get("dtype"):
            raise self.fail(f"array {spec['file']!r} has {arr.dtype} {arr.shape}, the config "
                            f"says {spec.get('dtype')} {tuple(spec.get('shape') or ())}")
        return arr


def read_model(path, sequential):
    """Read a model written by :meth:`Sequential.save`, built as ``sequential`` (the model class).

    Raises ValueError naming the file and the problem for truncated, corrupted, foreign or
    newer-format files; FileNotFoundError when there is no file.
    """
    path = os.fspath(path)
    try:
        zf = zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile:
        raise ValueError(f"cannot load {path!r}: not an nnfast model file (not a zip archive, "
                         "or truncated)") from None
    with zf:
        reader = _Reader(path, zf)
        if _CONFIG not in zf.namelist():
            raise reader.fail(f"not an nnfast model file (no {_CONFIG!r} in the archive)")
        try:
            doc = json.loads(reader.read(_CONFIG).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise reader.fail(f"{_CONFIG} is not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise reader.fail(f"not an nnfast model file (format is "
                              f"{doc.get('format') if isinstance(doc, dict) else doc!r})")
        version = doc.get("format_version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise reader.fail(f"invalid format_version {version!r}")
        if version > FORMAT_VERSION:
            raise reader.fail(f"written by a newer nnfast (format version {version}, "
                              f"{doc.get('nnfast_version')}); this nnfast {__version__} reads "
                              f"format versions up to {FORMAT_VERSION}")
        try:
            model = _rebuild(doc, reader, sequential)
        except ValueError as exc:
            if str(exc).startswith(f"cannot load {path!r}"):
                raise
            raise reader.fail(f"invalid model description: {exc}") from None
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise reader.fail(f"invalid model description ({type(exc).__name__}: {exc})") from None
    return model


def _rebuild(doc: dict, reader: _Reader, Sequential):  # noqa: N803  (the class itself)
    from nnfast import layers as _layers
    from nnfast import losses as _losses
    from nnfast import optimizers as _optimizers

    cfg = doc["model"]
    layer_list = [_layers.from_config(entry) for entry in cfg["layers"]]
    model = Sequential(layer_list, dtype=cfg["dtype"], seed=cfg["seed"], name=cfg["name"])
    comp = doc.get("compile")
    if comp is not None:
        opt_cfg = comp["optimizer"]
        model.compile(
            optimizer=_optimizers.from_config(opt_cfg["class"], dict(opt_cfg["config"])),
            loss=_losses.from_config(comp["loss"]["class"], dict(comp["loss"]["config"])),
            metrics=list(comp["metrics"]))
    specs = doc["arrays"]
    if doc["built"]:
        model.build(tuple(doc["input_shape"]))
        params = reader.array("params", specs["params"])
        if params.shape != model._params.shape or params.dtype != model.dtype:
            raise reader.fail(f"params.npy has {params.dtype} {params.shape}, the layers need "
                              f"{model.dtype} {model._params.shape}")
        if not np.isfinite(params).all():
            raise reader.fail("the parameters contain NaN or Inf")
        model._params[...] = params
        opt = model.optimizer
        if opt is not None:
            for name in list(opt.state):
                arr = reader.array(f"optimizer/{name}", specs[f"optimizer/{name}"])
                if arr.shape != opt.state[name].shape or arr.dtype != model.dtype:
                    raise reader.fail(f"optimizer state {name!r} does not match the parameters")
                opt.state[name][...] = arr
            iterations = comp["optimizer"]["iterations"]
            if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
                raise reader.fail(f"invalid optimizer iterations {iterations!r}")
            opt.iterations = iterations
    state = doc["state"]
    step, epoch = state["step"], state["epoch"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (step, epoch)):
        raise reader.fail(f"invalid training state {state!r}")
    model._step, model._epoch = step, epoch
    return model
