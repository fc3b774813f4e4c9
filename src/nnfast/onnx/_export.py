"""A built Sequential -> one standard ONNX graph (opsets 13 to 21, default 17).

The graph has one input ``"input"`` of shape (N, *model.input_shape) with a dynamic batch
dimension ``N``, one output ``"output"``, and the model's dtype throughout (float32 -> FLOAT,
float64 -> DOUBLE). Every layer maps to standard operators of the default domain:

==========================  ==================================================================
nnfast                      ONNX
==========================  ==================================================================
Dense, use_bias=True        Gemm(x, W, b) (transB=0: W is stored (in, out) as nnfast holds it)
Dense, use_bias=False       MatMul(x, W)
Flatten                     Flatten(axis=1) of the channels-last value (a Transpose back from
                            NCHW first where the value is an image in ONNX's layout)
Conv2D, MaxPooling2D,       Conv, MaxPool, AveragePool, ReduceMean, BatchNormalization,
AveragePooling2D, Global-   Reshape, with the Transposes between nnfast's channels-last layout
AveragePooling2D, Batch-    and ONNX's channels-first one: _export_image.py (float64 models
Normalization, Reshape      with Conv2D or AveragePooling2D are refused: ONNX Runtime has no
                            double kernel for Conv nor AveragePool)
Dropout(rate)               Dropout(x, ratio=rate), training_mode left out (false): the
                            identity at inference, as Keras and PyTorch's exporter define it
relu, tanh, sigmoid         Relu, Tanh, Sigmoid
leaky_relu, elu (alpha)     LeakyRelu(alpha), Elu(alpha)
softplus                    Softplus (log(1 + e^x))
softmax, log_softmax        Softmax(axis=-1), LogSoftmax(axis=-1): over each row's features
gelu, gelu_tanh             opset >= 20: Gelu(approximate="none" / "tanh"); below 20 the
                            subgraph PyTorch's exporter emits: 0.5·x·(1 + erf(x/√2)) and
                            0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
silu                        Mul(x, Sigmoid(x)) (ONNX's Swish needs opset 24)
identity                    nothing (an Identity node when it would end the graph)
==========================  ==================================================================

The model's ``predict`` output is what the graph computes: a softmax or sigmoid folded into the
loss for training is exported as the activation itself.
"""
from __future__ import annotations

import math
import os

import numpy as np

from nnfast import _atomic
from nnfast.onnx import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, _export_image, require_onnx

_SIMPLE = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softplus": "Softplus"}


class _Graph:
    """Nodes and initializers under construction, with unique value names."""

    def __init__(self, onnx, dtype):
        self.onnx, self.h = onnx, onnx.helper
        self.dtype = np.dtype(dtype)
        self.nodes, self.inits, self._n = [], [], 0
        self.layout = "last"   # of the running value: nnfast's (N, ..., C), or "first" (NCHW)

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, base: str, value) -> str:
        name = self.name(base)
        arr = np.asarray(value, dtype=self.dtype)
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def ints(self, base: str, values) -> str:
        name = self.name(base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(values, np.int64), name))
        return name

    def node(self, op: str, inputs: list, base: str, **attrs) -> str:
        out = self.name(base)
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _activation(g: _Graph, x: str, act: str, alpha: float, opset: int, base: str) -> str:
    if act == "identity":
        return x
    if act in _SIMPLE:
        return g.node(_SIMPLE[act], [x], f"{base}/{act}")
    if act == "leaky_relu":
        return g.node("LeakyRelu", [x], f"{base}/leaky_relu", alpha=float(alpha))
    if act == "elu":
        return g.node("Elu", [x], f"{base}/elu", alpha=float(alpha))
    if act in ("softmax", "log_softmax"):
        op = "Softmax" if act == "softmax" else "LogSoftmax"
        return g.node(op, [x], f"{base}/{act}", axis=-1)
    if act == "silu":
        s = g.node("Sigmoid", [x], f"{base}/silu_sigmoid")
        return g.node("Mul", [x, s], f"{base}/silu")
    if act in ("gelu", "gelu_tanh"):
        if opset >= 20:
            return g.node("Gelu", [x], f"{base}/{act}",
                          approximate="none" if act == "gelu" else "tanh")
        if act == "gelu":
            t = g.node("Div", [x, g.const(f"{base}/sqrt2", math.sqrt(2.0))], f"{base}/gelu_div")
            t = g.node("Erf", [t], f"{base}/gelu_erf")
        else:
            x3 = g.node("Mul", [x, g.node("Mul", [x, x], f"{base}/gelu_x2")], f"{base}/gelu_x3")
            t = g.node("Mul", [x3, g.const(f"{base}/c", 0.044715)], f"{base}/gelu_cx3")
            t = g.node("Add", [x, t], f"{base}/gelu_inner")
            t = g.node("Mul", [t, g.const(f"{base}/sqrt_2_pi", math.sqrt(2.0 / math.pi))],
                       f"{base}/gelu_scaled")
            t = g.node("Tanh", [t], f"{base}/gelu_tanh")
        t = g.node("Add", [t, g.const(f"{base}/one", 1.0)], f"{base}/gelu_1p")
        t = g.node("Mul", [x, t], f"{base}/gelu_xq")
        return g.node("Mul", [t, g.const(f"{base}/half", 0.5)], f"{base}/{act}")
    raise ValueError(f"to_onnx: activation {act!r} has no ONNX mapping")  # pragma: no cover


def _layer(g: _Graph, layer, x: str, opset: int) -> str:
    kind, base = type(layer).__name__, layer.name
    if kind == "Dense":
        W = g.const(f"{base}/kernel", layer.W)
        if layer.use_bias:
            y = g.node("Gemm", [x, W, g.const(f"{base}/bias", layer.b)], f"{base}/gemm")
        else:
            y = g.node("MatMul", [x, W], f"{base}/matmul")
        return _activation(g, y, layer.activation, layer.alpha, opset, base)
    if kind == "Activation":
        return _activation(g, x, layer.activation, layer.alpha, opset, base)
    if kind == "Dropout":
        return g.node("Dropout", [x, g.const(f"{base}/ratio", layer.rate)], f"{base}/dropout")
    if kind == "Flatten":   # nnfast's element order: channels last
        x = _export_image.to_last(g, x, 1 + len(layer.input_shape), base, layer.input_shape)
        return g.node("Flatten", [x], f"{base}/flatten", axis=1)
    if kind in _export_image.IMAGE:
        return _export_image.layer(g, layer, x, opset, _activation)
    raise ValueError(f"to_onnx: layer {base!r} of class {kind} has no ONNX mapping yet")


def check_opset(opset) -> int:
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) \
            or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"to_onnx: opset must be an int from {MIN_OPSET} to {MAX_OPSET} "
                         f"(default {DEFAULT_OPSET}), got {opset!r}")
    return int(opset)


def build_onnx(model, opset: int = DEFAULT_OPSET):
    """The ``onnx.ModelProto`` of a built model (weights copied as they are now)."""
    opset = check_opset(opset)
    if not model.built:
        raise ValueError("to_onnx: the model is not built yet; fit it, call "
                         "build(input_shape) or give the first layer input_dim=")
    _export_image.check(model)
    onnx = require_onnx()
    h = onnx.helper
    g = _Graph(onnx, model.dtype)
    elem = onnx.TensorProto.FLOAT if model.dtype == np.float32 else onnx.TensorProto.DOUBLE

    def build():
        x = "input"
        for layer in model.layers:
            x = _layer(g, layer, x, opset)
        return _export_image.to_last(g, x, 1 + len(model.output_shape), "output")

    x = model._weights.read(build)   # the weights of one step while another thread fits
    if x == "input" or not g.nodes or g.nodes[-1].output[0] != x:
        x = g.node("Identity", [x], "output")
    g.nodes[-1].output[0] = "output"
    g.nodes[-1].name = "output"
    inp = h.make_tensor_value_info("input", elem, ["N", *model.input_shape])
    out = h.make_tensor_value_info("output", elem, ["N", *model.output_shape])
    graph = h.make_graph(g.nodes, model.name, [inp], [out], g.inits)
    opsets = [h.make_opsetid("", opset)]
    proto = h.make_model(graph, opset_imports=opsets, producer_name="nnfast",
                         ir_version=h.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def write_onnx(model, path, opset: int = DEFAULT_OPSET) -> None:
    """Write ``build_onnx(model, opset)`` to ``path`` whole or not at all, with the writer
    ``model.save`` uses (nnfast/_atomic.py): its OSErrors (FileNotFoundError for a missing
    directory, IsADirectoryError, PermissionError) name ``path``, never a temporary file."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"to_onnx: path must be a str or os.PathLike, got {type(path).__name__}")
    proto = build_onnx(model, opset)
    with _atomic.replacing(path) as f:
        f.write(proto.SerializeToString())
