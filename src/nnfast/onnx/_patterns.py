"""Recognising the elementwise subgraphs exporters emit for an activation with no ONNX operator
of its own in the file's opset: gelu as 0.5·x·(1 + Erf(x/√2)), gelu_tanh as
0.5·x·(1 + Tanh(√(2/π)·(x + 0.044715·x³))), silu as Mul(x, Sigmoid(x)), in whatever operand
order and association the exporter chose.

PyTorch's softplus is Where(x > 20, x, Softplus(x)): it differs from log(1 + e^x) by less than
e^-20 ≈ 2e-9 absolute above 20, below float32 resolution there, and is read as softplus.

How: starting from the value x that leaves the previous layer, the region grows one node at a
time (graph order) over the analytic elementwise operators below whose other inputs are scalar
constants, plus comparisons of x itself with a scalar and Where on their result. Whenever exactly
one value of the region is used outside it (and x itself is not), the region is a function f of
x alone; it is evaluated in float64 at 2 401 points in [-30, 30], at ±50, ±1e2, ±1e3, ±1e4, and
at and around every threshold a comparison names (so each branch of a Where is probed), and
compared with each candidate activation of nnfast's reference backend. It is accepted only if
every point agrees to 1e-6 relative (float32 constants such as √2 differ from the exact ones by
~1e-8; gelu and gelu_tanh differ by up to 5e-4). A region that matches no candidate before it
stops growing is an unsupported pattern (ValueError naming its first node), never a guess.
"""
from __future__ import annotations

import math

import numpy as np

from nnfast.backends._ref_activations import act as _ref_act

CANDIDATES = ("gelu", "gelu_tanh", "silu", "sigmoid", "tanh", "softplus")
_FAR = np.array([50.0, 1e2, 1e3, 1e4])
_PROBE = np.concatenate([np.linspace(-30.0, 30.0, 2401), _FAR, -_FAR])
_erf = np.vectorize(math.erf, otypes=[np.float64])
_UNARY = {"Erf": _erf, "Tanh": np.tanh, "Exp": np.exp, "Neg": np.negative,
          "Sqrt": np.sqrt, "Reciprocal": np.reciprocal, "Abs": np.abs,
          "Sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)), "Softplus": lambda z: np.logaddexp(0.0, z)}
_BINARY = {"Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide,
           "Pow": np.power}
_COMPARE = {"Greater": np.greater, "Less": np.less, "GreaterOrEqual": np.greater_equal,
            "LessOrEqual": np.less_equal}
ANALYTIC = frozenset(_UNARY) | frozenset(_BINARY) | frozenset(_COMPARE) | {"Where"}
_MAX_NODES = 24


def _ready(node, x: str, avail: set, consts: dict) -> bool:
    if node.op_type not in ANALYTIC or len(node.output) != 1:
        return False
    dyn = [i for i in node.input if i in avail]
    if not dyn:
        return False
    if node.op_type in _COMPARE:   # only x itself against a threshold: its branches get probed
        return len(node.input) == 2 and node.input[0] == x and node.input[1] in consts \
            and consts[node.input[1]].size == 1
    return all(i in avail or (i in consts and consts[i].size == 1) for i in node.input)


def _probe(region: list, consts: dict) -> np.ndarray:
    pts = [_PROBE]
    for node in region:
        if node.op_type in _COMPARE:
            t = float(consts[node.input[1]].reshape(()))
            d = 1e-3 * max(1.0, abs(t))
            pts.append(np.array([t - 1.0, t - d, t, t + d, t + 1.0]))
    return np.concatenate(pts)


@np.errstate(all="ignore")
def _evaluate(region: list, x: str, out: str, consts: dict, probe: np.ndarray) -> np.ndarray:
    vals = {x: probe}
    for node in region:
        args = [vals[i] if i in vals else float(consts[i].reshape(())) for i in node.input]
        if node.op_type == "Where":
            vals[node.output[0]] = np.where(*args)
            continue
        fn = _UNARY.get(node.op_type) or _BINARY.get(node.op_type) or _COMPARE[node.op_type]
        vals[node.output[0]] = fn(*args)
    return np.broadcast_to(vals[out], probe.shape)


@np.errstate(all="ignore")
def _which(f: np.ndarray, probe: np.ndarray) -> str | None:
    for name in CANDIDATES:
        ref = _ref_act(name, probe, 0.0)
        close = np.abs(f - ref) <= 1e-6 * np.maximum(1.0, np.abs(ref))
        if np.all(close | (f == ref)):   # f == ref: the same infinity
            return name
    return None


def match(x: str, nodes: list, used: set, consumers: dict, consts: dict, graph_out: str):
    """(activation, region nodes, output value) for the smallest region starting at value x
    that computes one of CANDIDATES, or None. ``nodes``: the graph's non-constant nodes in
    order; ``used``: ids of nodes already mapped."""
    region, avail, inside = [], {x}, set()
    while len(region) < _MAX_NODES:
        node = next((n for n in nodes if id(n) not in used and id(n) not in inside
                     and _ready(n, x, avail, consts)), None)
        if node is None:
            return None
        region.append(node)
        inside.add(id(node))
        avail.add(node.output[0])
        escaping = [v for v in avail
                    if v == graph_out or any(id(c) not in inside for c in consumers.get(v, ()))]
        if len(escaping) == 1 and escaping[0] != x:
            probe = _probe(region, consts)
            name = _which(_evaluate(region, x, escaping[0], consts, probe), probe)
            if name is not None:
                return name, region, escaping[0]
    return None
