"""The comparison harness: every backend function listed once, with an input maker and tolerances.

tests/test_compare.py runs each case over dtypes, shapes, layouts and thread counts on the
compiled backend against the reference backend (the spec). Adding a kernel = one Case here.

A maker gets a `Gen` (rng + dtype + layout) and a shape tuple and returns (args, kwargs).
`Gen.array` builds arrays in the requested layout so every kernel sees non-contiguous input:
  "c"       C-contiguous
  "strided" every other column of a wider buffer (inner stride 2)
  "fortran" column-major (a transposed view for 2-D arrays)
Arguments named in `inplace` are outputs updated in place: they are always C-contiguous, and
their final contents are compared too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

LAYOUTS = ("c", "strided", "fortran")
# Sizes around the blocking of every kernel: 0, 1, primes, and one off powers of two.
EDGE_SIZES = (0, 1, 2, 3, 7, 13, 17, 31, 33, 63, 65, 127, 129, 257)


class Gen:
    def __init__(self, seed: int, dtype, layout: str):
        self.rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        self.layout = layout

    def array(self, shape, low=-1.0, high=1.0, layout=None):
        """Uniform values in [low, high) with the requested memory layout."""
        layout = layout or self.layout
        shape = tuple(shape)
        if layout == "strided" and shape:
            wide = shape[:-1] + (2 * shape[-1],)
            base = self.rng.uniform(low, high, wide).astype(self.dtype)
            return base[..., ::2]
        a = self.rng.uniform(low, high, shape).astype(self.dtype)
        if layout == "fortran":
            return np.asfortranarray(a)
        return a

    def normal(self, shape, scale=1.0, layout=None):
        a = self.array(shape, layout=layout)
        a[...] = self.rng.standard_normal(shape) * scale
        return a

    def contiguous(self, shape, low=-1.0, high=1.0):
        return self.array(shape, low, high, layout="c")

    def labels(self, n, n_classes, dtype=np.int64):
        return self.rng.integers(0, max(n_classes, 1), size=n).astype(dtype)


@dataclass
class Case:
    name: str                                     # backend function name
    make: Callable[[Gen, tuple], tuple]           # (gen, shape) -> (args, kwargs)
    shapes: list                                  # shape tuples passed to make
    rtol: dict = field(default_factory=lambda: {"float32": 2e-5, "float64": 1e-12})
    atol: dict = field(default_factory=lambda: {"float32": 2e-5, "float64": 1e-12})
    inplace: tuple = ()                           # names of in-place arguments to compare
    layouts: tuple = LAYOUTS
    id: str = ""                                  # distinguishes several cases of one function

    @property
    def label(self):
        return f"{self.name}[{self.id}]" if self.id else self.name


# --------------------------------------------------------------------------- GEMM --------
GEMM_SHAPES = [(m, k, n) for m, k, n in [
    (0, 0, 0), (0, 5, 3), (4, 0, 3), (4, 5, 0), (1, 1, 1), (1, 7, 1), (7, 1, 5), (3, 17, 1),
    (13, 31, 17), (33, 65, 129), (65, 63, 31), (128, 256, 128), (127, 257, 129),
    (64, 784, 256), (5, 3000, 7), (257, 3, 255), (31, 127, 1025),
]]


def _gemm_operand(g: Gen, rows, cols, trans: bool):
    """A rows x cols operand; trans=True gives a transposed view of a cols x rows array."""
    if trans:
        return g.array((cols, rows)).T
    return g.array((rows, cols))


def _make_gemm(transpose):
    ta, tb = transpose

    def make(g: Gen, shape):
        m, k, n = shape
        a, b = _gemm_operand(g, m, k, ta), _gemm_operand(g, k, n, tb)
        scale = np.sqrt(max(k, 1))  # keeps |C| ~ 1 so atol is meaningful
        return (a / g.dtype.type(scale), b), {}
    return make


def _make_gemm_beta(g: Gen, shape):
    m, k, n = shape
    out = g.contiguous((m, n))
    return (g.array((m, k)), g.array((k, n))), {"out": out, "alpha": -0.5, "beta": 0.75}


GEMM_TOL = ({"float32": 1e-4, "float64": 1e-11}, {"float32": 1e-4, "float64": 1e-11})

CASES = [
    *[Case("gemm", _make_gemm(t), GEMM_SHAPES, *GEMM_TOL, id=f"t{int(t[0])}{int(t[1])}")
      for t in [(False, False), (True, False), (False, True), (True, True)]],
    Case("gemm", _make_gemm_beta, GEMM_SHAPES[:12], *GEMM_TOL, inplace=("out",),
         layouts=("c", "strided"), id="alpha_beta"),
]

# ---- activations (kna)

# ---- dense (kna)

# ---- losses (knb)
LOSS_SHAPES = [(1, 1), (1, 2), (2, 3), (3, 10), (7, 13), (13, 17), (31, 2), (128, 10),
               (129, 65), (257, 33), (1031, 67)]
LOSS_TOL = ({"float32": 5e-5, "float64": 1e-11}, {"float32": 1e-6, "float64": 1e-13})


def _labels(g: Gen, n, c, dtype=np.int64):
    """Labels (n,) in [0, c) in the generator's layout ("strided": every other element)."""
    y = g.rng.integers(0, c, size=2 * n if g.layout == "strided" else n).astype(dtype)
    return y[::2] if g.layout == "strided" else y


def _probs(g: Gen, n, c):
    p = g.array((n, c), 0.0, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    return p


def _make_sce(targets="labels", label_dtype=np.int64, smoothing=0.0, weights=False,
              reduction="mean", grad_out=False):
    def make(g: Gen, shape):
        n, c = shape
        logits = g.normal((n, c), scale=3.0)
        y = _labels(g, n, c, label_dtype) if targets == "labels" else _probs(g, n, c)
        kw = {"label_smoothing": smoothing, "reduction": reduction}
        if weights:
            kw["sample_weight"] = g.array((n,), 0.0, 2.0)
            kw["class_weight"] = g.array((c,), 0.1, 3.0)
        if grad_out:
            kw["grad"] = g.contiguous((n, c))
        return (logits, y), kw
    return make


def _make_elementwise(kind, weights=False, reduction="mean", **extra):
    def make(g: Gen, shape):
        pred = g.normal(shape, scale=4.0)
        target = g.array(shape, 0.0, 1.0) if kind == "bce" else g.normal(shape)
        kw = {"reduction": reduction, **extra}
        if weights:
            kw["sample_weight"] = g.array((shape[0],), 0.0, 2.0)
        return (pred, target), kw
    return make


CASES += [
    Case("softmax_cross_entropy", _make_sce(), LOSS_SHAPES, *LOSS_TOL, id="labels"),
    Case("softmax_cross_entropy", _make_sce(label_dtype=np.int32, smoothing=0.1, weights=True,
                                            reduction="sum"), LOSS_SHAPES, *LOSS_TOL,
         id="labels32_smooth_weights_sum"),
    Case("softmax_cross_entropy", _make_sce("probs", smoothing=0.2, weights=True,
                                            reduction="none"), LOSS_SHAPES, *LOSS_TOL,
         id="probs_smooth_weights_none"),
    Case("softmax_cross_entropy", _make_sce(grad_out=True), LOSS_SHAPES[:8], *LOSS_TOL,
         inplace=("grad",), id="grad_out"),
    Case("binary_cross_entropy", _make_elementwise("bce"), LOSS_SHAPES, *LOSS_TOL, id="mean"),
    Case("binary_cross_entropy", _make_elementwise("bce", True, "none"), LOSS_SHAPES, *LOSS_TOL,
         id="weights_none"),
    Case("mse", _make_elementwise("mse"), LOSS_SHAPES, *LOSS_TOL, id="mean"),
    Case("mse", _make_elementwise("mse", True, "sum"), LOSS_SHAPES, *LOSS_TOL, id="weights_sum"),
    Case("huber", _make_elementwise("huber"), LOSS_SHAPES, *LOSS_TOL, id="mean"),
    Case("huber", _make_elementwise("huber", True, "none", delta=0.3), LOSS_SHAPES, *LOSS_TOL,
         id="delta_weights_none"),
]

# ---- optimizers (knb)
# 65537: above the threading threshold of csrc/optim.c, 8 blocks and a 1-element tail.
OPTIM_SHAPES = [(0,), (1,), (2,), (7,), (13,), (31,), (65,), (127,), (257,), (1031,),
                (65537,)]
OPTIM_TOL = ({"float32": 2e-5, "float64": 1e-12}, {"float32": 2e-6, "float64": 1e-14})


def _make_optim(state, **hyper):
    """params and the named state buffers C-contiguous (updated in place), grads in layout."""
    positive = {"v", "sq", "acc"}

    def make(g: Gen, shape):
        kw = {name: (g.contiguous(shape, 0.0, 0.01) if name in positive
                     else g.contiguous(shape, -0.1, 0.1)) for name in state}
        return (g.contiguous(shape, -2.0, 2.0), g.normal(shape)), {**kw, **hyper}
    return make


def _make_clip(max_norm):
    def make(g: Gen, shape):
        return (g.normal(shape, layout="c"), max_norm), {}
    return make


CASES += [
    Case("sgd_update", _make_optim((), lr=0.1), OPTIM_SHAPES, *OPTIM_TOL, inplace=("params",),
         id="plain"),
    Case("sgd_update", _make_optim(("velocity",), lr=0.05, momentum=0.9, weight_decay=1e-3),
         OPTIM_SHAPES, *OPTIM_TOL, inplace=("params", "velocity"), id="momentum_wd"),
    Case("sgd_update", _make_optim(("velocity",), lr=0.05, momentum=0.8, nesterov=True),
         OPTIM_SHAPES, *OPTIM_TOL, inplace=("params", "velocity"), id="nesterov"),
    Case("adam_update", _make_optim(("m", "v"), step=1, lr=1e-3), OPTIM_SHAPES, *OPTIM_TOL,
         inplace=("params", "m", "v"), id="step1"),
    Case("adam_update", _make_optim(("m", "v"), step=7, lr=1e-2, beta1=0.8, beta2=0.99,
                                    weight_decay=0.01), OPTIM_SHAPES, *OPTIM_TOL,
         inplace=("params", "m", "v"), id="l2"),
    Case("adam_update", _make_optim(("m", "v"), step=30, lr=1e-2, weight_decay=0.1,
                                    decoupled=True), OPTIM_SHAPES, *OPTIM_TOL,
         inplace=("params", "m", "v"), id="adamw"),
    Case("rmsprop_update", _make_optim(("sq",), lr=1e-2), OPTIM_SHAPES, *OPTIM_TOL,
         inplace=("params", "sq"), id="plain"),
    Case("rmsprop_update", _make_optim(("sq", "velocity"), lr=1e-2, momentum=0.9,
                                       weight_decay=1e-2), OPTIM_SHAPES, *OPTIM_TOL,
         inplace=("params", "sq", "velocity"), id="momentum_wd"),
    Case("adagrad_update", _make_optim(("acc",), lr=0.1, weight_decay=1e-3), OPTIM_SHAPES,
         *OPTIM_TOL, inplace=("params", "acc")),
    Case("clip_grad_norm", _make_clip(0.5), OPTIM_SHAPES, *OPTIM_TOL, inplace=("grads",),
         layouts=("c",), id="clip"),
    Case("clip_grad_norm", _make_clip(1e9), OPTIM_SHAPES, *OPTIM_TOL, inplace=("grads",),
         layouts=("c",), id="noclip"),
]

# ---- dropout (kna)

# ---- reductions (kna)
