"""Reading an ONNX file safely: the protobuf, its tensors and their sizes, external data.

Loading never runs code: an ONNX file is a protobuf message (no pickle, no custom operator
library is loaded, only operators of the default domain are mapped, model-local functions are
never expanded). What it allocates is bounded by the bytes on disk: every tensor must hold
exactly prod(dims) elements in its own storage, so a small file cannot declare a huge
initializer.

External data (initializers stored in a side file, as PyTorch's exporter writes for large
models): **confined to the model's directory**. A location must be a relative path that resolves
(symlinks followed) inside the directory holding the .onnx file, to a regular file, and the
(offset, length) it names must lie within that file and equal the tensor's size; anything else
is refused with a ValueError naming the tensor.
"""
from __future__ import annotations

import math
import os

import numpy as np

from nnfast.onnx import require_onnx

_DTYPES = {1: np.float32, 11: np.float64, 7: np.int64, 6: np.int32, 10: np.float16, 9: np.bool_}
_FIELDS = {1: "float_data", 11: "double_data", 7: "int64_data", 6: "int32_data",
           10: "int32_data", 9: "int32_data"}


class OnnxFile:
    """A parsed file: ``proto`` (ModelProto), ``path``, ``folder``; ``error(msg)`` builds the
    ValueError every problem raises (it names the file)."""

    def __init__(self, path) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"from_onnx: path must be a str or os.PathLike, got "
                            f"{type(path).__name__}")
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"from_onnx: no such file: {self.path!r}")
        self.folder = os.path.dirname(os.path.realpath(self.path))
        onnx = require_onnx()
        with open(self.path, "rb") as f:
            data = f.read()
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(data)
        except Exception as exc:   # google.protobuf.message.DecodeError and friends
            raise self.error(f"not a readable ONNX protobuf (truncated or corrupt: {exc})") \
                from None
        if not proto.HasField("graph") or not proto.graph.output:
            raise self.error("not an ONNX model: the protobuf holds no graph with an output "
                             "(truncated or another kind of file)")
        try:
            onnx.checker.check_model(_without_external_data(onnx, proto))
        except Exception as exc:
            raise self.error(f"the ONNX checker rejects it: {str(exc).strip()[:300]}") from None
        self.proto = proto

    def error(self, msg: str, node=None) -> ValueError:
        where = ""
        if node is not None:
            where = f" node {node.name or '(unnamed)'!r} ({node.op_type})"
        return ValueError(f"from_onnx: {self.path!r}{where}: {msg}")

    def tensor(self, t, node=None) -> np.ndarray:
        """The array of a TensorProto, after checking its storage holds exactly its size."""
        what = f"tensor {t.name!r}" if t.name else "a constant tensor"
        dtype = _DTYPES.get(t.data_type)
        if dtype is None:
            raise self.error(f"{what} has ONNX data type {t.data_type}, which nnfast does not "
                             f"read (float, double, int32, int64, float16, bool)", node)
        if any(d < 0 for d in t.dims):
            raise self.error(f"{what} has negative dimensions {list(t.dims)}", node)
        count = math.prod(t.dims)
        nbytes = count * np.dtype(dtype).itemsize
        if t.data_location == 1:   # TensorProto.EXTERNAL
            raw = self._external(t, nbytes, what, node)
        elif t.HasField("raw_data"):
            raw = t.raw_data
            if len(raw) != nbytes:
                raise self.error(f"{what} declares shape {list(t.dims)} ({nbytes} bytes) but "
                                 f"stores {len(raw)} bytes", node)
        else:
            values = getattr(t, _FIELDS[t.data_type])
            if len(values) != count:
                raise self.error(f"{what} declares shape {list(t.dims)} ({count} values) but "
                                 f"stores {len(values)}", node)
            if t.data_type == 10:   # float16 bits travel in int32_data
                return np.array(values, np.uint16).view(np.float16).reshape(tuple(t.dims))
            return np.array(values, dtype).reshape(tuple(t.dims))
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(
            dtype).reshape(tuple(t.dims))

    def _external(self, t, nbytes: int, what: str, node) -> bytes:
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        if not loc or os.path.isabs(loc) or loc.startswith(("/", "\\")):
            raise self.error(f"{what}: external data location {loc!r} must be a relative path "
                             f"inside the model's directory", node)
        full = os.path.realpath(os.path.join(self.folder, loc))
        if os.path.commonpath([full, self.folder]) != self.folder:
            raise self.error(f"{what}: external data location {loc!r} leaves the model's "
                             f"directory {self.folder!r}; refused", node)
        if not os.path.isfile(full):
            raise self.error(f"{what}: external data file {loc!r} is missing", node)
        try:
            offset = int(info.get("offset", 0))
            length = int(info.get("length", nbytes))
        except ValueError:
            raise self.error(f"{what}: external data offset/length are not integers: "
                             f"{info}", node) from None
        size = os.path.getsize(full)
        if length != nbytes or offset < 0 or offset + length > size:
            raise self.error(f"{what}: external data ({loc!r}, offset {offset}, length "
                             f"{length}) must hold exactly {nbytes} bytes inside a file of "
                             f"{size} bytes", node)
        with open(full, "rb") as f:
            f.seek(offset)
            return f.read(length)


def _without_external_data(onnx, proto):
    """The proto for the checker: external tensors replaced by empty ones, so that the checker
    neither opens their files (relative to the working directory) nor rejects them; their
    locations and sizes are checked by OnnxFile._external when read."""
    if not any(t.data_location == 1 for t in proto.graph.initializer):
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for t in copy.graph.initializer:
        if t.data_location == 1:
            t.data_location = 0
            del t.external_data[:]
            del t.dims[:]
            t.dims.append(0)
            t.raw_data = b""
    return copy
