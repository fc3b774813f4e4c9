"""An ONNX graph -> a Sequential of nnfast layers, or a ValueError naming the file, the node
and the reason, raised before any model is built.

Accepted graphs: one float (float32) or double (float64) input of shape (batch, d1, ...) whose
batch dimension may be anything (named, fixed or missing: nnfast plans for any batch) and whose
other dimensions are fixed positive ints; one output; the nodes form one chain from the input to
the output, made of:

==============================================  ============================================
ONNX                                            nnfast
==============================================  ============================================
Gemm(x, B, C) (transA=0, any transB/alpha/beta) Dense: W = alpha·B (transB: Bᵀ), b = beta·C
MatMul(x, B) [+ Add(·, c)]                      Dense (use_bias only with the Add)
Relu, Tanh, Sigmoid, Softplus, Gelu             the activation (fused into the Dense before it)
LeakyRelu, Elu (alpha)                          leaky_relu, elu with that alpha
Softmax, LogSoftmax over the last axis          softmax, log_softmax
elementwise subgraphs of gelu/gelu_tanh/silu/   matched by structure, see _patterns.py
  PyTorch's thresholded softplus
Flatten(axis=1); Reshape to (-1 or 0, K)        Flatten (dropped when already 1-D)
Dropout (inference; ratio input, or attribute   Dropout(ratio) / nothing
  below opset 12), Identity, Cast to the
  model's own type
Transpose NHWC<->NCHW, Conv, MaxPool,            the image layers: _import_image.py
  AveragePool, ReduceMean, BatchNormalization,
  Reshape to (0 or -1, d1, d2, ...)
Constant, and Cast/Transpose/Identity/          folded into the weights (_fold.py), only
  Reshape/Squeeze/Unsqueeze of constants        those the chosen output needs
==============================================  ============================================

A graph with several outputs (skl2onnx's classifiers: label and probabilities) is read for the
one named by ``output=``; the nodes only the other outputs need are left out (not folded,
not checked). skl2onnx's *binary* classifiers compute probabilities as Concat(1 - p, p), which
no nnfast layer computes: refused, naming MLPClassifier.from_sklearn as the way to convert.

Anything else (another operator, a second input, a node off the chain, a value feeding two
nodes that are not one of the activation structures (a branch or residual connection), a
weight whose shape does not fit the features flowing in, a symbolic feature dimension) is
refused.
"""
from __future__ import annotations

import math

import numpy as np

from nnfast import layers as L
from nnfast.onnx import _fold, _import_image, _patterns, require_onnx
from nnfast.onnx._files import OnnxFile
from nnfast.onnx._import_image import ImageReader

_ELEM = {1: np.float32, 11: np.float64}
_ACT_OPS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Softplus": "softplus",
            "LeakyRelu": "leaky_relu", "Elu": "elu", "Softmax": "softmax",
            "LogSoftmax": "log_softmax", "Gelu": "gelu"}
_CAST_TO = _fold.CAST_TO
_IMAGE_OPS = _import_image.OPS


_attrs = _fold.attrs


class _Reader(_fold.Folder, ImageReader):
    def __init__(self, path):
        self.onnx = require_onnx()
        self.f = OnnxFile(path)
        self.g = self.f.proto.graph
        self.opset = next((o.version for o in self.f.proto.opset_import
                           if o.domain in ("", "ai.onnx")), None)
        if self.opset is None:
            raise self.f.error("imports no opset of the default ONNX domain")
        if self.g.sparse_initializer:
            raise self.f.error("sparse initializers are not supported")
        self.consts = {t.name: self.f.tensor(t) for t in self.g.initializer}

    def err(self, msg, node=None):
        return self.f.error(msg, node)

    def _attrs(self, node) -> dict:
        return _attrs(self.onnx, node)

    # -- the chain ------------------------------------------------------------------------
    def read(self, cls, output):
        g = self.g
        inputs = [i for i in g.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise self.err(f"nnfast models take one input; the graph has {len(inputs)}: "
                           f"{[i.name for i in inputs]}")
        names = [o.name for o in g.output]
        if output is None and len(names) != 1:
            raise self.err(f"nnfast models have one output; the graph has {len(names)}: "
                           f"{names}; pass output= one of them")
        if output is not None and output not in names:
            raise self.err(f"output={output!r} is not an output of the graph: {names}")
        out = names[0] if output is None else output
        inp = inputs[0]
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or tt.elem_type not in _ELEM:
            raise self.err(f"input {inp.name!r} must be a float or double tensor, got ONNX "
                           f"type {tt.elem_type if inp.type.HasField('tensor_type') else '?'}")
        self.dtype = np.dtype(_ELEM[tt.elem_type])
        dims = list(tt.shape.dim) if tt.HasField("shape") else None
        if not dims or len(dims) < 2:
            raise self.err(f"input {inp.name!r} must have a known shape (batch, features...) "
                           f"for nnfast to plan the model; got rank "
                           f"{None if dims is None else len(dims)}")
        shape = []
        for k, d in enumerate(dims[1:], 1):
            if not d.HasField("dim_value") or d.dim_value < 1:
                raise self.err(f"input {inp.name!r} dimension {k} is "
                               f"{d.dim_param or 'unknown'!r}: a dynamic feature dimension "
                               f"nnfast cannot plan (only the batch dimension may be dynamic)")
            shape.append(int(d.dim_value))
        self.batch = dims[0].dim_value if dims[0].HasField("dim_value") else None
        # only what the chosen output needs is folded and read: a bad node feeding another
        # output (or nothing) is not this model's
        self.nodes = [n for n in self._ancestors(list(g.node), out) if not self._fold(n)]
        for n in self.nodes:
            if n.domain not in ("", "ai.onnx"):
                raise self.err(f"operator {n.domain}.{n.op_type} of a custom domain is not "
                               f"supported", n)
        self.consumers = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.used, self.layers, self.weights = set(), [], []
        self.shape, self.input_shape = tuple(shape), tuple(shape)
        self.out, v = out, inp.name
        while v != out:
            v = self._step(v, out)
        if self.layout == "first" and (self.shape[-1:] + self.shape[:-1]) != self.shape:
            # even where the two orders coincide (one channel), the shape would not: the
            # graph declares (N, C, H, W), an nnfast model outputs (N, H, W, C)
            raise self.err(f"the graph output {out!r} is a channels-first (NCHW) image of "
                           f"{self.shape[-1]} channels (per-sample shape "
                           f"{self.shape[-1:] + self.shape[:-1]}); nnfast models output "
                           f"channels-last (N, H, W, C) images, so nnfast expects a Transpose "
                           f"perm={[0, *range(2, len(self.shape) + 1), 1]} before the output")
        left = [n for n in self.nodes if id(n) not in self.used]
        if left:
            raise self.err("is not on the chain from the input to the output (nnfast models "
                           "are one chain of layers)", left[0])
        if not self.layers:
            raise self.err("the graph computes no layer nnfast can hold (it is an identity)")
        model = cls(self.layers, dtype=self.dtype, seed=0, name=g.name or "sequential")
        model.build(self.input_shape)
        model.set_weights(self.weights)
        return model

    @staticmethod
    def _ancestors(nodes: list, out: str) -> list:
        """The nodes the chosen output depends on (the others feed other outputs), in order."""
        producer = {o: n for n in nodes for o in n.output}
        keep, todo = set(), [out]
        while todo:
            n = producer.get(todo.pop())
            if n is not None and id(n) not in keep:
                keep.add(id(n))
                todo.extend(n.input)
        return [n for n in nodes if id(n) in keep]

    def _noops(self, y: str) -> tuple[str, list]:
        """Follow Identity and Cast-to-the-model's-dtype nodes (Keras puts Casts between MatMul
        and Add) while each value has one consumer: (the value after them, those nodes)."""
        skipped = []
        while y != self.out and len(self.consumers.get(y, [])) == 1:
            n = self.consumers[y][0]
            to = _attrs(self.onnx, n).get("to") if n.op_type == "Cast" else None
            if n.op_type != "Identity" and not (to is not None
                                                 and _CAST_TO.get(to) == self.dtype.type):
                break
            skipped.append(n)
            y = n.output[0]
        return y, skipped

    def _const(self, node, k: int, what: str) -> np.ndarray:
        name = node.input[k] if k < len(node.input) else ""
        if name not in self.consts:
            raise self.err(f"its {what} must be a constant (an initializer), got the computed "
                           f"value {name!r}", node)
        return self.consts[name]

    def _step(self, v: str, out: str) -> str:
        cons = list({id(n): n for n in self.consumers.get(v, [])
                     if id(n) not in self.used}.values())   # Mul(x, x) consumes x once
        if not cons:
            raise self.err(f"the value {v!r} leads nowhere: the graph's output {out!r} is not "
                           f"reached from the input along one chain")
        n = cons[0]
        if len(cons) == 1 and (n.op_type not in _patterns.ANALYTIC or n.op_type in _ACT_OPS):
            if n.input[0] != v:   # the other inputs must be constants: the handlers check
                raise self.err(f"takes {v!r} as input {list(n.input).index(v)}; nnfast maps "
                               f"only nodes whose first input is the running value", n)
            handler = getattr(self, f"_op_{n.op_type}", None)
            if handler is None:
                raise self.err(f"unsupported operator {n.op_type} (nnfast maps: Gemm, MatMul"
                               f"(+Add), {', '.join(_ACT_OPS)}, Flatten, Reshape, Dropout, "
                               f"Identity, Cast, {', '.join(_IMAGE_OPS)} and the patterns "
                               f"of gelu/silu)", n)
            self.used.add(id(n))
            return handler(n)
        self._binary_classifier(v)
        found = _patterns.match(v, self.nodes, self.used, self.consumers, self.consts, out,
                                self.dtype, 1 + len(self.shape))
        if found is None and len(cons) > 1:
            names = ", ".join(f"{c.op_type} {c.name or '(unnamed)'!r}" for c in cons)
            raise self.err(f"the value {v!r} feeds {len(cons)} nodes ({names}) and they are not "
                           f"an elementwise subgraph of {', '.join(_patterns.CANDIDATES)} as "
                           f"exporters write it: branches and residual connections are not "
                           f"supported (nnfast models are one chain of layers)", n)
        if found is None:
            raise self.err(f"unsupported operator or pattern starting here: {n.op_type} on "
                           f"{v!r} does not begin a layer nnfast has, nor an elementwise "
                           f"subgraph computing one of {', '.join(_patterns.CANDIDATES)}", n)
        act, region, y = found
        self._activation(act, 0.0, region[0])
        self.used.update(id(r) for r in region)
        return y

    def _binary_classifier(self, v: str) -> None:
        """skl2onnx writes a binary classifier's probabilities as Concat(Sub(1, p), p)."""
        for sub in self.consumers.get(v, []):
            one = sub.input[0] if sub.op_type == "Sub" and sub.input[1:] == [v] else None
            if one not in self.consts or self.consts[one].size != 1 \
                    or float(self.consts[one].reshape(())) != 1.0:
                continue
            if any(c.op_type == "Concat" and v in c.input
                   for c in self.consumers.get(sub.output[0], [])):
                raise self.err(
                    f"the two-column output [1 - p, p] built from {v!r} (skl2onnx's binary "
                    f"classifiers) is not supported: nnfast has no layer computing it; convert "
                    f"the fitted scikit-learn MLPClassifier with "
                    f"nnfast.sklearn.MLPClassifier.from_sklearn(est) instead", sub)

    # -- layers -----------------------------------------------------------------------------
    def _dense(self, node, W: np.ndarray, b) -> None:
        if len(self.shape) != 1:
            raise self.err(f"a dense layer needs 1-D features per sample, the value flowing "
                           f"in has per-sample shape {self.shape}", node)
        if W.ndim != 2 or W.shape[0] != self.shape[0]:
            raise self.err(f"weight shape {W.shape} does not fit {self.shape[0]} input "
                           f"features (expected ({self.shape[0]}, units))", node)
        units = W.shape[1]
        if b is not None:
            b = np.asarray(b)
            if b.size not in (1, units) or b.ndim > 2 or (b.ndim == 2 and b.shape[0] != 1):
                raise self.err(f"bias shape {b.shape} does not broadcast to ({units},)", node)
            b = np.broadcast_to(b.reshape(-1), (units,))
        for arr in (W, b):
            if arr is not None and not np.isfinite(arr.astype(np.float64)).all():
                raise self.err("its weights contain NaN or Inf", node)
        self.layers.append(L.Dense(int(units), use_bias=b is not None))
        self.weights += [W.astype(self.dtype)] + ([b.astype(self.dtype)] if b is not None
                                                  else [])
        self.shape = (int(units),)

    def _op_Gemm(self, n) -> str:
        a = _attrs(self.onnx, n)
        if a.get("transA", 0):
            raise self.err("Gemm with transA=1 (the running value transposed) is not a dense "
                           "layer", n)
        B = self._const(n, 1, "B (the weights)").astype(np.float64)
        if B.ndim != 2:
            raise self.err(f"B has shape {B.shape}; expected a matrix", n)
        W = (B.T if a.get("transB", 0) else B) * a.get("alpha", 1.0)
        C = None
        if len(n.input) > 2 and n.input[2]:
            C = self._const(n, 2, "C (the bias)").astype(np.float64) * a.get("beta", 1.0)
        self._dense(n, W, C)
        return n.output[0]

    def _op_MatMul(self, n) -> str:
        W = self._const(n, 1, "second input (the weights)")
        if W.ndim != 2:
            raise self.err(f"weights of shape {W.shape}; expected a matrix", n)
        y = n.output[0]
        ahead, skipped = self._noops(y)
        nxt = self.consumers.get(ahead, [])
        b = None
        if len(nxt) == 1 and nxt[0].op_type == "Add" and ahead != self.out:
            add = nxt[0]
            other = add.input[1] if add.input[0] == ahead else add.input[0]
            if other in self.consts and self.consts[other].size in (1, W.shape[1]):
                b = self.consts[other]
                self.used.update(id(m) for m in [*skipped, add])
                y = add.output[0]
        self._dense(n, W, b)
        return y

    def _activation(self, act: str, alpha: float, node) -> None:
        if self._conv_activation(act, alpha):
            return
        if act in ("softmax", "log_softmax") and len(self.shape) != 1:
            raise self.err(f"{act} over per-sample shape {self.shape}: nnfast takes it over "
                           f"1-D features, or over the channels right after a Conv", node)
        last = self.layers[-1] if self.layers else None
        if isinstance(last, L.Dense) and last.activation == "identity":
            self.layers[-1] = L.Dense(last.units, activation=act, use_bias=last.use_bias,
                                      alpha=alpha if act in ("leaky_relu", "elu") else None)
        else:
            self.layers.append(L.Activation(act, alpha=alpha if act in ("leaky_relu", "elu")
                                            else None))

    def _act_op(self, n) -> str:
        a = _attrs(self.onnx, n)
        act = _ACT_OPS[n.op_type]
        if act == "gelu":
            approx = a.get("approximate", b"none")
            approx = approx.decode() if isinstance(approx, bytes) else approx
            act = {"none": "gelu", "tanh": "gelu_tanh"}.get(approx)
            if act is None:
                raise self.err(f"Gelu approximate={approx!r}", n)
        if act in ("softmax", "log_softmax"):
            default = -1 if self.opset >= 13 else 1
            axis = a.get("axis", default)
            if axis not in ((1, -len(self.shape)) if self.layout == "first"
                            else (-1, len(self.shape))):
                raise self.err(f"{n.op_type} over axis {axis}: nnfast takes it over the last "
                               f"axis (features) only", n)
        alpha = a.get("alpha", {"leaky_relu": 0.01, "elu": 1.0}.get(act, 0.0))
        self._activation(act, float(alpha), n)
        return n.output[0]

    _op_Relu = _op_Tanh = _op_Sigmoid = _op_Softplus = _op_LeakyRelu = _op_Elu = _act_op
    _op_Softmax = _op_LogSoftmax = _op_Gelu = _act_op

    def _op_Identity(self, n) -> str:
        return n.output[0]

    def _op_Cast(self, n) -> str:
        to = _attrs(self.onnx, n).get("to")
        if _CAST_TO.get(to) != self.dtype.type:
            raise self.err(f"Cast of the running value to ONNX type {to}: nnfast models keep "
                           f"one dtype ({self.dtype})", n)
        return n.output[0]

    def _op_Dropout(self, n) -> str:
        a = _attrs(self.onnx, n)
        ratio = a.get("ratio", 0.5)   # opsets < 12: an attribute, not an input
        if self.opset < 7 and not a.get("is_test", 0):
            raise self.err("Dropout with is_test=0 (training mode) is not an inference graph",
                           n)
        if len(n.input) > 1 and n.input[1]:
            ratio = float(self._const(n, 1, "ratio").reshape(()))
        if len(n.input) > 2 and n.input[2]:
            if bool(self._const(n, 2, "training_mode").reshape(())):
                raise self.err("Dropout in training mode (training_mode=true) is not an "
                               "inference graph", n)
        if len(n.output) > 1 and n.output[1] in self.consumers:
            raise self.err("the dropout mask output is used; nnfast has no such value", n)
        if not 0 <= ratio < 1:
            raise self.err(f"Dropout ratio {ratio} is outside [0, 1)", n)
        self.layers.append(L.Dropout(ratio))
        return n.output[0]

    def _flatten(self, node=None) -> None:
        self._need_last(node, "Flatten")
        if len(self.shape) != 1:
            self.layers.append(L.Flatten())
            self.shape = (math.prod(self.shape),)

    def _op_Flatten(self, n) -> str:
        axis = _attrs(self.onnx, n).get("axis", 1)
        if axis != 1:
            raise self.err(f"Flatten(axis={axis}): nnfast flattens the per-sample dimensions "
                           f"(axis=1) only", n)
        self._flatten(n)
        return n.output[0]

    def _op_Reshape(self, n) -> str:
        target = [int(s) for s in self._const(n, 1, "shape").reshape(-1)]
        allowzero = _attrs(self.onnx, n).get("allowzero", 0)
        first_ok = target[:1] in ([-1], [] if allowzero else [0]) or (
            self.batch and target[:1] == [self.batch])
        if not first_ok:
            raise self.err(f"Reshape to {target}: nnfast maps only a reshape that keeps the "
                           f"batch (first entry -1 or 0) of the per-sample shape {self.shape}",
                           n)
        self._reshape(n, target)
        return n.output[0]


def read_onnx(path, cls, output=None):
    """Build a model of class ``cls`` (Sequential) from the ONNX file at ``path``, computing
    the graph output ``output`` (needed when the graph has several)."""
    if output is not None and not isinstance(output, str):
        raise TypeError(f"from_onnx: output must be a str (an output name) or None, got "
                        f"{type(output).__name__}")
    return _Reader(path).read(cls, output)
