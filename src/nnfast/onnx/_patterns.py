"""Recognising the elementwise subgraphs exporters emit for an activation with no ONNX operator
of its own in the file's opset, **by their structure**: a region is read as an activation only
if it is, node for node, one of the forms below, with every constant equal to the exact value
rounded to the graph's dtype (√2, √(2/π), 0.044715 within one ulp of it; 0.5, 1, 3, 20
exactly). Mul and Add are compared as
flattened products / sums, so any operand order and association matches; ``Pow(t, 3)`` is read
as ``t·t·t``.

=========  ==========================================================================  =========
nnfast     structure (t: the running value)                                            written by
=========  ==========================================================================  =========
gelu       0.5 · t · (1 + Erf(t / √2))   (or Erf(t · (1/√2)))                          PyTorch
                                                                                       (both),
                                                                                       nnfast
gelu_tanh  0.5 · t · (1 + Tanh(√(2/π) · (t + 0.044715 · t³)))                          PyTorch,
                                                                                       nnfast
silu       t · Sigmoid(t);  t / (1 + Exp(-t))  (Neg(t) or -1 · t)                      PyTorch,
                                                                                       Keras,
                                                                                       nnfast
softplus   Where(t > 20, t, Softplus(t)), float32 graphs only                          PyTorch
                                                                                       dynamo
=========  ==========================================================================  =========

PyTorch's softplus differs from log(1 + e^t) by less than e^-20 ≈ 2e-9 absolute above 20: below
float32 rounding there (ulp(20) = 1.9e-6), above float64's (3.6e-15), so a float64 graph with it
is refused.

Why structure and not values: a region checked at sample points can differ from the activation
between them (a narrow bump), or only in the graph's own float32 arithmetic
(``(t + 1e8) - 1e8``). The structure, not a sample, is the proof; the region is then also
evaluated in float64 at 2 401 points in [-30, 30] and ±50…±1e4 as a second check of the forms
above. How the region is found: starting from the value t leaving the previous layer, it grows
one node at a time (graph order) over the operators of ANALYTIC whose other inputs are scalar
constants; whenever exactly one value of the region is used outside it (and t itself is not),
that value's expression is compared with the forms. A region that matches none before it stops
growing is refused (ValueError naming its first node), never guessed.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from nnfast.backends._ref_activations import act as _ref_act

CANDIDATES = ("gelu", "gelu_tanh", "silu", "softplus")
ANALYTIC = frozenset({"Erf", "Tanh", "Exp", "Neg", "Sigmoid", "Softplus", "Mul", "Add", "Div",
                      "Pow", "Greater", "Where"})
_MAX_NODES = 24

# the forms: X the running value, ("k", exact) a scalar constant, ("or", alternatives)
X = ("x",)


def _k(v: float) -> tuple:
    return ("k", v)


_NEG_X = ("or", (("Neg", (X,)), ("Mul", (_k(-1.0), X))))
_ERF_ARG = ("or", (("Div", (X, _k(math.sqrt(2.0)))), ("Mul", (X, _k(math.sqrt(0.5))))))
_TANH_ARG = ("Mul", (_k(math.sqrt(2.0 / math.pi)),
                     ("Add", (X, ("Mul", (_k(0.044715), X, X, X))))))
FORMS = {
    "gelu": ("Mul", (_k(0.5), X, ("Add", (_k(1.0), ("Erf", (_ERF_ARG,)))))),
    "gelu_tanh": ("Mul", (_k(0.5), X, ("Add", (_k(1.0), ("Tanh", (_TANH_ARG,)))))),
    "silu": ("or", (("Mul", (X, ("Sigmoid", (X,)))),
                    ("Div", (X, ("Add", (_k(1.0), ("Exp", (_NEG_X,)))))))),
    "softplus": ("Where", (("Greater", (X, _k(20.0))), X, ("Softplus", (X,)))),
}
_FLOAT32_ONLY = {"softplus"}


def _ready(node, x: str, avail: set, consts: dict, rank: int) -> bool:
    if node.op_type not in ANALYTIC or len(node.output) != 1:
        return False
    if not any(i in avail for i in node.input):
        return False
    # a constant of higher rank would broadcast the batch to a new shape
    return all(i in avail or (i in consts and consts[i].size == 1 and consts[i].ndim <= rank)
               for i in node.input)


def _expr(v: str, x: str, producer: dict, consts: dict, seen: set) -> tuple:
    """The expression of value v in x and constants, Mul/Add flattened, Pow(t, 2 or 3) as a
    product; ``seen`` collects the ids of the nodes it reads."""
    if v == x:
        return X
    if v in consts:
        return ("c", consts[v])
    node = producer[v]
    seen.add(id(node))
    args = [_expr(i, x, producer, consts, seen) for i in node.input]
    op = node.op_type
    if op == "Pow" and args[1][0] == "c" and float(args[1][1].reshape(())) in (2.0, 3.0):
        return ("Mul", (args[0],) * int(float(args[1][1].reshape(()))))
    if op in ("Mul", "Add"):
        flat = []
        for a in args:
            flat.extend(a[1] if a[0] == op else (a,))
        return (op, tuple(flat))
    return (op, tuple(args))


def _const_is(c: np.ndarray, exact: float, dtype: np.dtype) -> bool:
    """c is ``exact`` rounded to the graph's dtype: 0.5, 1, 20 ... exactly; an irrational or
    decimal constant (√2, 0.044715) within one ulp of the dtype, so either rounding of the real
    number passes (exporters round once, in float32 or float64)."""
    if c.dtype != dtype:
        return False
    got = float(c.reshape(()))
    if float(np.float32(exact)) == exact:
        return got == exact
    return abs(got - exact) <= float(np.spacing(np.abs(dtype.type(exact))))


def _same(e: tuple, form: tuple, dtype: np.dtype) -> bool:
    kind = form[0]
    if kind == "or":
        return any(_same(e, alt, dtype) for alt in form[1])
    if kind == "k":
        return e[0] == "c" and _const_is(e[1], form[1], dtype)
    if kind != e[0]:
        return False
    if kind == "x":
        return True
    got, want = e[1], form[1]
    if len(got) != len(want):
        return False
    orders = itertools.permutations(got) if kind in ("Mul", "Add") else (got,)
    return any(all(_same(a, b, dtype) for a, b in zip(order, want)) for order in orders)


_UNARY = {"Erf": np.vectorize(math.erf, otypes=[np.float64]), "Tanh": np.tanh, "Exp": np.exp,
          "Neg": np.negative, "Sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
          "Softplus": lambda z: np.logaddexp(0.0, z)}
_BINARY = {"Mul": np.multiply, "Add": np.add, "Div": np.divide, "Pow": np.power,
           "Greater": np.greater}
_PROBE = np.concatenate([np.linspace(-30.0, 30.0, 2401), [50.0, 1e2, 1e3, 1e4],
                         [-50.0, -1e2, -1e3, -1e4]])


@np.errstate(all="ignore")
def _agrees(region: list, x: str, out: str, consts: dict, name: str) -> bool:
    """The second check: the region in float64 at the probe points equals the activation."""
    vals = {x: _PROBE}
    for node in region:
        args = [vals[i] if i in vals else float(consts[i].reshape(())) for i in node.input]
        fn = np.where if node.op_type == "Where" else (_UNARY.get(node.op_type)
                                                      or _BINARY[node.op_type])
        vals[node.output[0]] = fn(*args)
    f = np.broadcast_to(vals[out], _PROBE.shape)
    ref = _ref_act(name, _PROBE, 0.0)
    return bool(np.all((np.abs(f - ref) <= 1e-6 * np.maximum(1.0, np.abs(ref))) | (f == ref)))


def match(x: str, nodes: list, used: set, consumers: dict, consts: dict, graph_out: str,
          dtype: np.dtype, rank: int):
    """(activation, region nodes, output value) for the smallest region starting at value x
    that is one of FORMS, or None. ``nodes``: the graph's non-constant nodes in order;
    ``used``: ids of nodes already mapped; ``dtype``: the graph's; ``rank``: of the value x."""
    region, avail, inside = [], {x}, set()
    producer = {}
    while len(region) < _MAX_NODES:
        node = next((n for n in nodes if id(n) not in used and id(n) not in inside
                     and _ready(n, x, avail, consts, rank)), None)
        if node is None:
            return None
        region.append(node)
        inside.add(id(node))
        avail.add(node.output[0])
        producer[node.output[0]] = node
        escaping = [v for v in avail
                    if v == graph_out or any(id(c) not in inside for c in consumers.get(v, ()))]
        if len(escaping) != 1 or escaping[0] == x:
            continue
        seen = set()
        e = _expr(escaping[0], x, producer, consts, seen)
        if seen != inside:
            continue
        for name in CANDIDATES:
            if name in _FLOAT32_ONLY and dtype != np.float32:
                continue
            if _same(e, FORMS[name], dtype) and _agrees(region, x, escaping[0], consts, name):
                return name, region, escaping[0]
    return None
