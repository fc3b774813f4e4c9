"""ONNX's channels-first image operators -> nnfast's channels-last image layers (mixed into the
reader of _import.py), reading back what _export_image.py writes.

The reader keeps the running value's per-sample shape in nnfast's order, (H, W, C), and its
*layout*: "last" (the tensor is laid out as nnfast's) or "first" (the tensor is its NCHW
transpose). The graph input is channels-last, nnfast's. A Transpose of the running value
perm=[0, 3, 1, 2] turns the layout to "first" and perm=[0, 2, 3, 1] back, adding no layer (the
layout change they are). Conv, MaxPool, AveragePool and a BatchNormalization of an image need
"first"; Flatten, Reshape, Gemm/MatMul, a Softmax over features and the graph output need
"last" (or a value whose two orders coincide: one channel, or 1x1 pixels).

==============================================  ============================================
ONNX                                            nnfast
==============================================  ============================================
Conv(x, W[, b]) (group 1, 2-D)                  Conv2D: kernel = W transposed to (kh, kw,
                                                c_in, filters); the activation after it fused
MaxPool (no dilation, ceil_mode 0)              MaxPooling2D
AveragePool (ceil_mode 0; count_include_pad 0   AveragePooling2D
  where any pad is not 0)
  pads (explicit, or auto_pad VALID/SAME_UPPER/SAME_LOWER) must be all 0 ("valid") or Keras'
  "same" for the known input size (the odd pixel at the bottom/right); others are refused
ReduceMean over the spatial axes, keepdims=0    GlobalAveragePooling2D
BatchNormalization (inference)                  BatchNormalization(epsilon, momentum)
Reshape to (0 or -1, d1, d2, ...)               Reshape((d1, d2, ...)) (Flatten when 1-D)
==============================================  ============================================

ONNX attributes are float32: BatchNormalization's epsilon and momentum are read as the shortest
decimal that rounds to that float32 (1e-3 for nnfast's and Keras' default, 1e-5 for PyTorch's),
so a model exported by nnfast comes back with the epsilon it had whenever that epsilon has at
most 7 significant digits.
"""
from __future__ import annotations

import math

import numpy as np

from nnfast import layers as L
from nnfast.backends._ref_geometry import geometry

TO_FIRST = [0, 3, 1, 2]   # NHWC -> NCHW
OPS = ("Transpose", "Conv", "MaxPool", "AveragePool", "ReduceMean", "BatchNormalization")


def _decimal(v: float) -> float:
    """The shortest decimal rounding to float32 v: what an exporter most likely wrote."""
    return float(str(np.float32(v)))


class ImageReader:
    """Mixed into _import._Reader (which provides err, _const, onnx, consumers, layers,
    weights, shape, dtype, attrs)."""

    layout = "last"

    def _order_free(self) -> bool:
        """The NCHW and NHWC orders of the running value are the same sequence."""
        return len(self.shape) < 2 or self.shape[-1] == 1 or math.prod(self.shape[:-1]) == 1

    def _need_last(self, node, what: str) -> None:
        if self.layout == "first" and not self._order_free():
            raise self.err(
                f"{what} reads the element order of a channels-first (NCHW) value of "
                f"per-sample shape {self.shape} (nnfast's H, W, C); nnfast's layers read "
                f"channels-last order, so nnfast expects a Transpose perm="
                f"{[0, *range(2, len(self.shape) + 1), 1]} before it "
                f"(as nnfast's to_onnx and tf2onnx write; PyTorch's channels-first graphs are "
                f"not supported)", node)
        self.layout = "last"

    def _need_first(self, node) -> None:
        if len(self.shape) != 3:
            raise self.err(f"needs images (batch, channels, height, width); the value flowing "
                           f"in has per-sample shape {self.shape}", node)
        if self.layout != "first":
            raise self.err(
                f"{node.op_type} reads a channels-last value: nnfast models take channels-last "
                f"images (N, H, W, C) and read {node.op_type} only after a Transpose "
                f"perm={TO_FIRST} (as nnfast's to_onnx and tf2onnx write); a graph with a "
                f"channels-first input (PyTorch's layout) is not supported", node)

    def _build(self, node, layer):
        """Add ``layer``: its shape checks (nnfast's own ValueErrors) name the node."""
        try:
            self.shape = tuple(layer.compute_output_shape(self.shape))
        except ValueError as exc:
            raise self.err(str(exc), node) from None
        self.layers.append(layer)
        if len(self.shape) < 2:   # (N, features): one order
            self.layout = "last"

    def _make(self, node, cls, *args, **kw):
        try:
            return cls(*args, **kw)
        except (ValueError, TypeError) as exc:
            raise self.err(f"maps to no {cls.__name__} nnfast has: {exc}", node) from None

    def _finite(self, node, *arrays) -> None:
        for a in arrays:
            if not np.isfinite(np.asarray(a, np.float64)).all():
                raise self.err("its weights contain NaN or Inf", node)

    def _op_Transpose(self, n) -> str:
        rank = 1 + len(self.shape)
        perm = list(self._attrs(n).get("perm", range(rank)[::-1]))
        if perm == list(range(rank)):
            return n.output[0]
        first, last = [0, rank - 1, *range(1, rank - 1)], [0, *range(2, rank), 1]
        if rank >= 3 and perm == first and self.layout == "last":
            self.layout = "first"
        elif rank >= 3 and perm == last and self.layout == "first":
            self.layout = "last"
        else:
            side = "channels-first" if self.layout == "first" else "channels-last"
            raise self.err(f"Transpose perm={perm} of a {side} value of rank {rank}: nnfast "
                           f"reads only the layout changes channels last->first {first} and "
                           f"first->last {last}", n)
        return n.output[0]

    def _padding(self, n, a: dict, kernel, strides, dilation) -> str:
        """"valid" or "same", from the node's pads / auto_pad for the known input size."""
        h, w, _ = self.shape
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        try:
            same = geometry(f"{n.op_type}", (h, w), kernel, strides, "same", dilation)
        except (ValueError, TypeError) as exc:   # strides or dilations below 1
            raise self.err(str(exc), n) from None
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            th, tw = same["PT"] + same["PB"], same["PL"] + same["PR"]
            lo = auto == "SAME_LOWER"
            pads = [th - th // 2 if lo else th // 2, tw - tw // 2 if lo else tw // 2]
            pads += [th - pads[0], tw - pads[1]]
        elif auto in ("NOTSET", "VALID"):
            pads = [0, 0, 0, 0] if auto == "VALID" else list(a.get("pads", [0, 0, 0, 0]))
        else:
            raise self.err(f"auto_pad={auto!r} is not an ONNX padding mode", n)
        if pads == [0, 0, 0, 0]:
            return "valid"   # a window larger than the image: the layer's build says so
        if pads == [same["PT"], same["PL"], same["PB"], same["PR"]]:
            return "same"
        raise self.err(f"pads {pads} (top, left, bottom, right) are neither 'valid' (none) nor "
                       f"Keras' 'same' {[same[k] for k in ('PT', 'PL', 'PB', 'PR')]} for the "
                       f"{h}x{w} input, the only paddings nnfast has", n)

    def _pairs(self, n, a: dict, name: str, default) -> tuple:
        v = list(a.get(name, default))
        if len(v) != 2:
            raise self.err(f"{name}={v}: nnfast has 2-D windows only", n)
        return tuple(int(i) for i in v)

    def _op_Conv(self, n) -> str:
        self._need_first(n)
        a = self._attrs(n)
        W = self._const(n, 1, "W (the weights)")
        c = self.shape[-1]
        if W.ndim != 4 or W.shape[1] != c:
            raise self.err(f"weight shape {W.shape} does not fit {c} input channels "
                           f"(expected (filters, {c}, kh, kw))", n)
        if a.get("group", 1) != 1:
            raise self.err(f"group={a['group']}: nnfast's Conv2D is a full convolution "
                           f"(group 1)", n)
        kernel = tuple(W.shape[2:])
        if tuple(a.get("kernel_shape", kernel)) != kernel:
            raise self.err(f"kernel_shape {list(a['kernel_shape'])} differs from the weights' "
                           f"{list(kernel)}", n)
        strides = self._pairs(n, a, "strides", (1, 1))
        dilation = self._pairs(n, a, "dilations", (1, 1))
        b = self._const(n, 2, "B (the bias)") if len(n.input) > 2 and n.input[2] else None
        if b is not None and b.shape != (W.shape[0],):
            raise self.err(f"bias shape {b.shape}; expected ({W.shape[0]},)", n)
        self._finite(n, W, *([] if b is None else [b]))
        padding = self._padding(n, a, kernel, strides, dilation)
        layer = self._make(n, L.Conv2D, int(W.shape[0]), kernel, strides=strides,
                           padding=padding, dilation_rate=dilation, use_bias=b is not None)
        self._build(n, layer)
        self.weights += [np.ascontiguousarray(W.transpose(2, 3, 1, 0)).astype(self.dtype)]
        self.weights += [] if b is None else [b.astype(self.dtype)]
        return n.output[0]

    def _pool(self, n, cls) -> str:
        self._need_first(n)
        a = self._attrs(n)
        if "kernel_shape" not in a:
            raise self.err("has no kernel_shape", n)
        kernel = self._pairs(n, a, "kernel_shape", ())
        strides = self._pairs(n, a, "strides", (1, 1))   # ONNX's default is 1, Keras' the pool
        if self._pairs(n, a, "dilations", (1, 1)) != (1, 1):
            raise self.err(f"dilations {list(a['dilations'])}: nnfast's pooling has none", n)
        if a.get("ceil_mode", 0):
            raise self.err("ceil_mode=1: nnfast's pooling floors the output size (Keras)", n)
        if len(n.output) > 1 and n.output[1] in self.consumers:
            raise self.err("the MaxPool indices output is used; nnfast has no such value", n)
        padding = self._padding(n, a, kernel, strides, (1, 1))
        if cls is L.AveragePooling2D and padding == "same" and a.get("count_include_pad", 0):
            raise self.err("count_include_pad=1 with padding: nnfast divides each window by "
                           "its pixels inside the image (count_include_pad=0), as Keras", n)
        self._build(n, self._make(n, cls, kernel, strides=strides, padding=padding))
        return n.output[0]

    def _op_MaxPool(self, n) -> str:
        return self._pool(n, L.MaxPooling2D)

    def _op_AveragePool(self, n) -> str:
        return self._pool(n, L.AveragePooling2D)

    def _op_ReduceMean(self, n) -> str:
        a = self._attrs(n)
        axes = a.get("axes")
        if len(n.input) > 1 and n.input[1]:
            axes = self._const(n, 1, "axes").reshape(-1)
        rank = 1 + len(self.shape)
        axes = None if axes is None else sorted(int(k) % rank for k in axes)
        want = [2, 3] if self.layout == "first" else [1, 2]
        if len(self.shape) != 3 or axes != want or a.get("keepdims", 1):
            raise self.err(f"ReduceMean over axes {axes} keepdims={a.get('keepdims', 1)} of "
                           f"per-sample shape {self.shape}: nnfast maps only the mean over the "
                           f"pixels, keepdims=0 (GlobalAveragePooling2D; axes {want} here)", n)
        self._build(n, L.GlobalAveragePooling2D())
        return n.output[0]

    def _op_BatchNormalization(self, n) -> str:
        if len(self.shape) > 1 and self.layout != "first":
            raise self.err(f"normalizes axis 1 of a channels-last value of per-sample shape "
                           f"{self.shape}; nnfast's BatchNormalization normalizes the channels "
                           f"(the last axis), which ONNX reads after a Transpose to "
                           f"channels-first", n)
        a = self._attrs(n)
        if a.get("training_mode", 0):
            raise self.err("training_mode=1 is not an inference graph", n)
        if any(o in self.consumers for o in n.output[1:]):
            raise self.err("its running-statistics outputs are used; nnfast has no such "
                           "values", n)
        c = self.shape[-1]
        arrays = [self._const(n, k, what) for k, what in
                  enumerate(("scale", "B (the bias)", "mean", "var"), 1)]
        if any(v.shape != (c,) for v in arrays):
            raise self.err(f"scale, B, mean and var must each have shape ({c},), got "
                           f"{[v.shape for v in arrays]}", n)
        self._finite(n, *arrays)
        layer = self._make(n, L.BatchNormalization, epsilon=_decimal(a.get("epsilon", 1e-5)),
                           momentum=_decimal(a.get("momentum", 0.9)))
        self._build(n, layer)
        self.weights += [v.astype(self.dtype) for v in arrays]
        return n.output[0]

    def _conv_activation(self, act: str, alpha: float) -> bool:
        """Fuse act into a Conv2D that ends the layers and has none; False if none does."""
        last = self.layers[-1] if self.layers else None
        if not isinstance(last, L.Conv2D) or last.activation != "identity":
            return False
        self.layers[-1] = L.Conv2D(last.filters, last.kernel_size, last.strides, last.padding,
                                   last.dilation_rate, activation=act, use_bias=last.use_bias,
                                   alpha=alpha if act in ("leaky_relu", "elu") else None)
        return True

    def _reshape(self, n, target: list) -> None:
        """Reshape of the running value to (batch, *target[1:]), target[0] already checked."""
        dims, size = target[1:], math.prod(self.shape)
        known = math.prod(d for d in dims if d != -1)
        ok = dims and all(d >= 1 or d == -1 for d in dims) and dims.count(-1) <= 1 and (
            known and size % known == 0 and (-1 in dims or known == size))
        if not ok or (target[0] == -1 and -1 in dims):
            raise self.err(f"Reshape to {target}: the per-sample shape {self.shape} ({size} "
                           f"values) does not reshape to it with the batch kept", n)
        dims = [size // known if d == -1 else d for d in dims]
        self._need_last(n, "Reshape")
        if len(dims) == 1:
            self._flatten()
        else:
            self._build(n, L.Reshape(tuple(dims)))
