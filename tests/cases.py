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

# ---- optimizers (knb)

# ---- dropout (kna)

# ---- reductions (kna)
