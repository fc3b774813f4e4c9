"""The image layers -> ONNX operators, and the layout change between nnfast and ONNX.

nnfast is channels-last (N, H, W, C) as Keras; ONNX's Conv, MaxPool, AveragePool and
BatchNormalization are channels-first (N, C, H, W). As tf2onnx and keras2onnx do, the running
value carries a layout ("last": nnfast's order, "first": NCHW): a Transpose perm=[0, 3, 1, 2]
where an image enters an operator that needs channels first, a Transpose perm=[0, 2, 3, 1]
before anything that reads the element order (Flatten, Reshape, Dense, the graph output).
Elementwise operators (the activations, Dropout) run in either layout, so a conv stack
Conv-Relu-MaxPool-Conv-... has one Transpose at each end, not one pair per layer.

==========================  ==================================================================
nnfast                      ONNX (channels first)
==========================  ==================================================================
Conv2D                      Conv(x, W, b): W stored (filters, c_in, kh, kw), the kernel
                            (kh, kw, c_in, filters) transposed; strides, dilations, explicit
                            pads [top, left, bottom, right] from Keras' rule for the known
                            input size ("same": the odd pixel at the bottom/right); the
                            activation after it as Dense's (softmax: over the channels, axis=1)
MaxPooling2D                MaxPool(kernel_shape, strides, pads): padded cells never win
AveragePooling2D            AveragePool(kernel_shape, strides, pads, count_include_pad=0): a
                            window is divided by its pixels inside the image, as nnfast
GlobalAveragePooling2D      ReduceMean over the spatial axes, keepdims=0 (axes as an attribute
                            below opset 18, as an input from 18)
BatchNormalization          BatchNormalization(x, gamma, beta, moving_mean, moving_variance,
                            epsilon, momentum) in inference mode (ones / zeros for scale=False /
                            center=False); over 1-D features without a Transpose
Reshape                     Reshape(x, [0, *target_shape]) (0: the batch, copied)
==========================  ==================================================================

ONNX Runtime's CPU provider has no double kernel for Conv nor AveragePool (its session fails
with NOT_IMPLEMENTED), so a float64 model with Conv2D or AveragePooling2D is refused before any
node is built (``check``); its MaxPool, BatchNormalization, ReduceMean, Transpose and Reshape
run in double.
"""
from __future__ import annotations

import math

import numpy as np

from nnfast.backends._ref_geometry import geometry

IMAGE = ("Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
         "BatchNormalization", "Reshape")
_NO_DOUBLE = {"Conv2D": "Conv", "AveragePooling2D": "AveragePool"}


def check(model) -> None:
    """Refuse a float64 model whose layers map to operators without a double kernel in ONNX
    Runtime's CPU provider (checked for 1.32), before any node is built."""
    if model.dtype != np.float64:
        return
    for layer in model.layers:
        op = _NO_DOUBLE.get(type(layer).__name__)
        if op is not None:
            raise ValueError(
                f"to_onnx: layer {layer.name!r} of class {type(layer).__name__} in a float64 "
                f"model: ONNX Runtime's CPU provider has no double kernel for {op} (loading "
                f"the file fails with NOT_IMPLEMENTED), so nnfast does not write it; export a "
                f"float32 copy: Sequential(<the same layers>, dtype='float32') built and given "
                f"model.get_weights()")


def to_first(g, x: str, rank: int, base: str) -> str:
    """The running value in channels-first order (a no-op when it already is, or is 2-D)."""
    if rank < 3 or g.layout == "first":
        return x
    g.layout = "first"
    return g.node("Transpose", [x], f"{base}/to_nchw", perm=[0, rank - 1, *range(1, rank - 1)])


def to_last(g, x: str, rank: int, base: str, shape=None) -> str:
    """The running value in nnfast's channels-last order. ``shape``: the per-sample shape of
    a value about to be reshaped (Flatten, Reshape): when one channel or one pixel makes both
    orders the same sequence, no Transpose is needed."""
    order_free = shape is not None and (shape[-1] == 1 or math.prod(shape[:-1]) == 1)
    if rank < 3 or g.layout == "last" or order_free:
        g.layout = "last"
        return x
    g.layout = "last"
    return g.node("Transpose", [x], f"{base}/to_nhwc", perm=[0, *range(2, rank), 1])


def _window(layer, kernel, dilation=(1, 1)) -> dict:
    h, w, _ = layer.input_shape
    geo = geometry(f"{type(layer).__name__} {layer.name!r}", (h, w), kernel, layer.strides,
                   layer.padding, dilation)
    return dict(kernel_shape=list(kernel), strides=list(layer.strides),
                pads=[geo["PT"], geo["PL"], geo["PB"], geo["PR"]])


def layer(g, lay, x: str, opset: int, activation) -> str:
    """Append the nodes of image layer ``lay`` reading value ``x``; the value it computes.
    ``activation(g, x, act, alpha, opset, base)`` is _export's (Dense's) activation writer."""
    kind, base = type(lay).__name__, lay.name
    rank = 1 + len(lay.input_shape)
    if kind == "Conv2D":
        x = to_first(g, x, rank, base)
        W = g.const(f"{base}/kernel", np.ascontiguousarray(lay.W.transpose(3, 2, 0, 1)))
        ins = [x, W] + ([g.const(f"{base}/bias", lay.b)] if lay.use_bias else [])
        y = g.node("Conv", ins, f"{base}/conv", group=1,
                   dilations=list(lay.dilation_rate), **_window(lay, lay.kernel_size,
                                                                 lay.dilation_rate))
        if lay.activation in ("softmax", "log_softmax"):   # over each pixel's channels
            op = "Softmax" if lay.activation == "softmax" else "LogSoftmax"
            return g.node(op, [y], f"{base}/{lay.activation}", axis=1)
        return activation(g, y, lay.activation, lay.alpha, opset, base)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        x = to_first(g, x, rank, base)
        if kind == "MaxPooling2D":
            return g.node("MaxPool", [x], f"{base}/maxpool", **_window(lay, lay.pool_size))
        return g.node("AveragePool", [x], f"{base}/avgpool", count_include_pad=0,
                      **_window(lay, lay.pool_size))
    if kind == "GlobalAveragePooling2D":
        axes = [2, 3] if g.layout == "first" else [1, 2]
        g.layout = "last"   # (N, C): no layout left
        if opset >= 18:
            return g.node("ReduceMean", [x, g.ints(f"{base}/axes", axes)], f"{base}/mean",
                          keepdims=0)
        return g.node("ReduceMean", [x], f"{base}/mean", axes=axes, keepdims=0)
    if kind == "BatchNormalization":
        x = to_first(g, x, rank, base)
        c = lay.input_shape[-1]
        gamma = lay.gamma if lay.scale else np.ones(c)
        beta = lay.beta if lay.center else np.zeros(c)
        ins = [x, g.const(f"{base}/gamma", gamma), g.const(f"{base}/beta", beta),
               g.const(f"{base}/moving_mean", lay.moving_mean),
               g.const(f"{base}/moving_variance", lay.moving_variance)]
        return g.node("BatchNormalization", ins, f"{base}/batchnorm",
                      epsilon=float(lay.epsilon), momentum=float(lay.momentum))
    if kind == "Reshape":
        x = to_last(g, x, rank, base, lay.input_shape)
        shape = g.ints(f"{base}/shape", [0, *lay.output_shape])
        return g.node("Reshape", [x, shape], f"{base}/reshape")
    raise ValueError(f"to_onnx: layer {base!r} of class {kind} has no ONNX mapping yet")
