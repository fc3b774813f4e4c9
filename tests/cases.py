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
    call: Callable | None = None                  # (fn, args, kwargs) -> result; None: fn(*a, **kw)

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
ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "gelu_tanh",
               "silu", "softplus", "softmax", "log_softmax")
ACT_ALPHA = {"leaky_relu": 0.1, "elu": 1.3}
ACT_SHAPES = [(0, 5), (3, 0), (1, 1), (3, 7), (13, 17), (64, 257)]


def _in_layout(g: Gen, a: np.ndarray):
    """A copy of `a` in g's layout (for arrays computed from others, e.g. y = act(z))."""
    out = g.array(a.shape)
    out[...] = a
    return out


def _extreme(g: Gen, shape):
    """+-1e4, denormals, signed zeros, all-equal rows and a NaN row: the stability inputs."""
    n, m = shape
    tiny = np.finfo(g.dtype).tiny / 8  # a denormal of this dtype
    x = g.array(shape, -3, 3)
    pool = np.array([1e4, -1e4, tiny, -tiny, 0.0, -0.0, 30.0, -30.0], g.dtype)
    mask = g.rng.random(shape) < 0.5
    x[mask] = g.rng.choice(pool, size=int(mask.sum()))
    if n > 2 and m:
        x[1] = x[1, 0]         # all-equal row
        x[2, m // 2] = np.nan  # NaN row
    return x


def _make_act_fwd(name, extreme=False):
    def make(g: Gen, shape):
        x = _extreme(g, shape) if extreme else g.array(shape, -4, 4)
        return (x, name), {"alpha": ACT_ALPHA.get(name, 0.0)}
    return make


def _make_act_bwd(name, extreme=False):
    from nnfast.backends import reference

    def make(g: Gen, shape):
        z = _extreme(g, shape) if extreme else g.array(shape, -4, 4)
        alpha = ACT_ALPHA.get(name, 0.0)
        y = _in_layout(g, reference.activation_forward(np.ascontiguousarray(z), name, alpha))
        dy = g.array(shape)
        return (dy, z, y, name), {"alpha": alpha}
    return make


EXTREME_SHAPES = [(5, 7), (17, 33)]
CASES += [Case(f"activation_{d}", mk(a), ACT_SHAPES, id=a)
          for a in ACTIVATIONS for d, mk in (("forward", _make_act_fwd),
                                             ("backward", _make_act_bwd))]
CASES += [Case(f"activation_{d}", mk(a, True), EXTREME_SHAPES, id=f"{a}-extreme",
               rtol={"float32": 1e-5, "float64": 1e-12}, atol={"float32": 1e-6, "float64": 1e-12})
          for a in ACTIVATIONS for d, mk in (("forward", _make_act_fwd),
                                             ("backward", _make_act_bwd))]

# ---- dense (kna)
DENSE_SHAPES = [(0, 3, 4), (4, 0, 5), (1, 1, 1), (7, 13, 17), (33, 65, 31), (2, 3, 129)]
DENSE_BIG = [(128, 784, 256), (129, 257, 10), (65, 127, 33)]
DENSE_TOL = GEMM_TOL


def _dense_operands(g: Gen, shape):
    n, k, m = shape
    x = g.array((n, k))
    W = g.array((k, m)) / g.dtype.type(np.sqrt(max(k, 1)))
    b = g.array((m,))
    return x, W, b


def _make_dense_fwd(name, with_z=False, bias=True):
    def make(g: Gen, shape):
        x, W, b = _dense_operands(g, shape)
        kw = {"b": b if bias else None, "activation": name, "alpha": ACT_ALPHA.get(name, 0.0)}
        if with_z:
            kw["z"] = np.zeros((shape[0], shape[2]), g.dtype)
        return (x, W), kw
    return make


def _make_dense_bwd(name, accumulate=False, need_dx=True, workspace=False):
    from nnfast.backends import reference

    def make(g: Gen, shape):
        n, k, m = shape
        x, W, b = _dense_operands(g, shape)
        alpha = ACT_ALPHA.get(name, 0.0)
        zc = np.ascontiguousarray(x) @ np.ascontiguousarray(W) + b
        y = _in_layout(g, reference.activation_forward(zc, name, alpha))
        z = _in_layout(g, zc)
        dy = g.array((n, m))
        kw = {"activation": name, "alpha": alpha, "need_dx": need_dx}
        if accumulate:
            kw.update(dW=g.contiguous((k, m)), db=g.contiguous((m,)), accumulate=True)
        if workspace:
            kw["dz"] = np.zeros((n, m), g.dtype)
        return (dy, x, W, z, y), kw
    return make


CASES += [Case("dense_forward", _make_dense_fwd(a), DENSE_SHAPES, *DENSE_TOL, id=a)
          for a in ACTIVATIONS]
CASES += [Case("dense_backward", _make_dense_bwd(a), DENSE_SHAPES, *DENSE_TOL, id=a)
          for a in ACTIVATIONS]
CASES += [
    Case("dense_forward", _make_dense_fwd("relu", with_z=True), DENSE_SHAPES + DENSE_BIG,
         *DENSE_TOL, inplace=("z",), id="relu-z"),
    Case("dense_forward", _make_dense_fwd("softmax", with_z=True), DENSE_SHAPES + DENSE_BIG,
         *DENSE_TOL, inplace=("z",), id="softmax-z"),
    Case("dense_forward", _make_dense_fwd("tanh", bias=False), DENSE_SHAPES, *DENSE_TOL,
         id="tanh-nobias"),
    Case("dense_backward", _make_dense_bwd("relu", accumulate=True, workspace=True),
         DENSE_SHAPES + DENSE_BIG, *DENSE_TOL, inplace=("dW", "db", "dz"), id="relu-acc-ws"),
    Case("dense_backward", _make_dense_bwd("identity", need_dx=False), DENSE_SHAPES + DENSE_BIG,
         *DENSE_TOL, id="identity-nodx"),
    Case("dense_backward", _make_dense_bwd("log_softmax", accumulate=True), DENSE_SHAPES,
         *DENSE_TOL, inplace=("dW", "db"), id="log_softmax-acc"),
]

# ---- inference plan: MLPPlan(layers, n_features, dtype).forward(x) (more: tests/test_plan.py)
PLAN_SHAPES = [(0, 3, 4), (1, 1, 1), (7, 13, 17), (33, 65, 31), (2, 3, 129), (129, 257, 10)]


def _make_plan(name):
    """dense(name) -> dense(relu, no bias) -> activation(name) -> dense(softmax)."""
    def make(g: Gen, shape):
        n, k, h = shape
        alpha = ACT_ALPHA.get(name, 0.0)
        x, W1, b1 = _dense_operands(g, (n, k, h))
        W2 = g.contiguous((h, h)) / g.dtype.type(np.sqrt(h))
        W3, b3 = g.contiguous((h, 5)), g.contiguous((5,))
        layers = [("dense", np.ascontiguousarray(W1), np.ascontiguousarray(b1), name, alpha),
                  ("dense", W2, None, "relu", 0.0), ("activation", name, alpha),
                  ("dense", W3, b3, "softmax", 0.0)]
        return (x, layers, k), {}
    return make


def _call_plan(cls, args, kwargs):
    x, layers, k = args
    return cls(layers, k, x.dtype.name).forward(x)


CASES += [Case("MLPPlan", _make_plan(a), PLAN_SHAPES, *DENSE_TOL, id=a, call=_call_plan)
          for a in ACTIVATIONS]

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
# 65537: above the threading threshold of csrc/nn/optim.c, 8 blocks and a 1-element tail.
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
DROPOUT_SHAPES = [(0,), (1,), (1, 1), (7, 13), (64, 257), (3, 5, 7)]


def _make_dropout(which, rate, seed, step):
    def make(g: Gen, shape):
        return (g.array(shape), rate, seed, step), {}
    return make


CASES += [Case(f"dropout_{w}", _make_dropout(w, rate, seed, step), DROPOUT_SHAPES,
               id=f"r{rate}-s{seed}-t{step}")
          for w in ("forward", "backward")
          for rate, seed, step in ((0.0, 1, 0), (0.5, 0, 0), (0.1, 12345, 7), (0.9, 2**64 - 1, 99))]

# ---- reductions (kna)
REDUCE_SHAPES = [(0, 3), (1, 1), (7, 13), (65, 10), (257, 33), (3, 1025)]


def _ties(g: Gen, shape):
    """Values on a coarse grid so rows have ties (argmax must take the first)."""
    x = g.array(shape, -3, 3)
    x[...] = np.round(x)
    return x


def _make_argmax(g: Gen, shape):
    return (_ties(g, shape),), {}


def _make_accuracy(g: Gen, shape):
    n, c = shape
    x = _ties(g, shape)
    labels = g.labels(n, c)
    hit = g.rng.random(n) < 0.5
    labels[hit] = np.argmax(x[hit], axis=1)
    return (x, labels), {}


def _make_column_sums(g: Gen, shape):
    return (g.array(shape, -1, 1),), {}


CASES += [
    Case("argmax_rows", _make_argmax, REDUCE_SHAPES),
    Case("accuracy", _make_accuracy, [s for s in REDUCE_SHAPES if s[0]]),
    Case("column_sums", _make_column_sums, REDUCE_SHAPES + [(5, 0), (0, 0), (1000, 3)]),
]

from cases_conv import CONV_CASES  # noqa: E402  (it imports Case and Gen from this module)

CASES += CONV_CASES
