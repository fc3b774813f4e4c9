"""MLPPlan, the inference plan op (csrc/nn/plan.c, _native/_plan.pxi, backends/_ref_plan.py):
the compiled plan gives the bits of the same kernels called layer by layer, for any rows,
layout, dtype and thread count; it matches the reference; it checks weights once and x / out
on every call with the same messages on both backends; it allocates nothing per call.
Model-level tests (predict, model(x), staleness): tests/test_plan_model.py."""
import tracemalloc

import numpy as np
import pytest
from engine_probes import forward_in_fresh_thread_without_memory

import nnfast
from nnfast import backends
from nnfast.backends import reference

compiled = pytest.importorskip("nnfast.backends.compiled", reason="compiled extension not built")

ACTS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu",
        "softplus", "softmax", "log_softmax")
ALPHA = {"leaky_relu": 0.07, "elu": 1.3}


def _layers(rng, dtype, k, widths, acts, bias=True, act_ops=()):
    """Dense ops of the given widths and activations; an ("activation", a) op after the dense
    ops whose index is in act_ops."""
    ops, width = [], k
    for i, (m, a) in enumerate(zip(widths, acts)):
        W = (rng.uniform(-1, 1, (width, m)) / np.sqrt(width)).astype(dtype)
        b = rng.uniform(-0.5, 0.5, m).astype(dtype) if bias else None
        ops.append(("dense", W, b, a, ALPHA.get(a, 0.0)))
        if i in act_ops:
            ops.append(("activation", a, ALPHA.get(a, 0.0)))
        width = m
    return ops


def _layer_by_layer(backend, ops, x):
    """The ops run one by one with the backend's dense_forward / activation_forward."""
    a = x
    for op in ops:
        if op[0] == "dense":
            a = backend.dense_forward(a, op[1], op[2], op[3], op[4])
        else:
            a = backend.activation_forward(np.ascontiguousarray(a), op[1], op[2])
    return a


def _layout(x, layout):
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "transposed":               # x.T of a C-contiguous (K, N)
        return np.ascontiguousarray(x.T).T
    if layout == "strided":                  # every other column of a wider buffer
        wide = np.zeros((x.shape[0], 2 * x.shape[1]), x.dtype)
        wide[:, ::2] = x
        return wide[:, ::2]
    if layout == "rowstride":                # rows of a wider buffer (GEMM reads it in place)
        wide = np.zeros((x.shape[0], x.shape[1] + 3), x.dtype)
        wide[:, :x.shape[1]] = x
        return wide[:, :x.shape[1]]
    if layout == "swapped":
        return x.astype(x.dtype.newbyteorder(">" if x.dtype.isnative and np.little_endian
                                             else "<"))
    return x


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("n", [0, 1, 2, 13, 67])
def test_compiled_is_the_layer_by_layer_kernels_bit_for_bit(act, n, dtype, threads):
    rng = np.random.default_rng([ACTS.index(act), n])
    ops = _layers(rng, dtype, 31, (33, 17, 5), (act, "relu", act), act_ops=(0,))
    x = rng.normal(size=(n, 31)).astype(dtype)
    want = _layer_by_layer(compiled, ops, x)
    for t in (1, 2):
        threads(t)
        got = compiled.MLPPlan(ops, 31, np.dtype(dtype).name).forward(x)
        np.testing.assert_array_equal(got, want)
    ref = reference.MLPPlan(ops, 31, np.dtype(dtype).name).forward(x)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    assert got.dtype == ref.dtype == dtype and got.shape == ref.shape == (n, 5)


@pytest.mark.parametrize("layout", ["fortran", "transposed", "strided", "rowstride", "swapped"])
@pytest.mark.parametrize("first", ["dense", "activation"])
def test_any_layout_of_x_gives_the_contiguous_bits(layout, first, dtype):
    rng = np.random.default_rng(7)
    ops = _layers(rng, dtype, 12, (9, 4), ("tanh", "log_softmax"))
    if first == "activation":
        ops.insert(0, ("activation", "leaky_relu", 0.2))
    x = rng.normal(size=(11, 12)).astype(dtype)
    plan = compiled.MLPPlan(ops, 12, np.dtype(dtype).name)
    want = plan.forward(x)
    xl = _layout(x, layout)
    np.testing.assert_array_equal(plan.forward(xl), want)
    np.testing.assert_array_equal(reference.MLPPlan(ops, 12, np.dtype(dtype).name).forward(xl),
                                  reference.MLPPlan(ops, 12, np.dtype(dtype).name).forward(x))


def _block_rows(k, widths, isz):
    """csrc/nn/plan.c: 2 MiB over (K + 2 * widest M) elements a row, a multiple of 64 rows in
    [256, 4096]."""
    rows = (2 << 20) // ((k + 2 * max(widths)) * isz)
    return min(max(rows - rows % 64, 256), 4096)


def test_block_rows_follow_the_l2_rule():
    cases = [(784, (256, 128, 10), 4, 384), (784, (256, 128, 10), 8, 256),
             (5, (7, 3), 4, 4096), (31, (33, 17, 5), 8, 2688)]
    for k, widths, isz, want in cases:
        dtype = "float32" if isz == 4 else "float64"
        ops = _layers(np.random.default_rng(0), dtype, k, widths, ["relu"] * len(widths))
        assert _block_rows(k, widths, isz) == want
        assert compiled.MLPPlan(ops, k, dtype).block_rows == want


@pytest.mark.parametrize("layout", ["c", "transposed"])
def test_rows_beyond_one_block_are_the_whole_batch_bits(layout, threads):
    rng = np.random.default_rng(3)
    ops = _layers(rng, np.float64, 700, (701, 3), ("gelu", "softmax"))
    plan = compiled.MLPPlan(ops, 700, "float64")
    assert plan.block_rows == 256
    x = rng.normal(size=(517, 700))        # two full blocks and a part
    want = _layer_by_layer(compiled, ops, x)
    threads(2)
    np.testing.assert_array_equal(plan.forward(_layout(x, layout)), want)
    for start, stop in ((0, 1), (255, 257), (300, 517)):   # a row's bits do not depend on N
        np.testing.assert_array_equal(plan.forward(x[start:stop]), want[start:stop])


def test_activation_only_and_empty_plans(dtype):
    x = np.random.default_rng(1).normal(size=(6, 4)).astype(dtype)
    for plan_cls in (compiled.MLPPlan, reference.MLPPlan):
        np.testing.assert_array_equal(plan_cls([], 4, np.dtype(dtype).name).forward(x), x)
        two = plan_cls([("activation", "relu", 0.0), ("activation", "softmax", 0.0)], 4,
                       np.dtype(dtype).name)
        assert (two.n_features, two.n_outputs) == (4, 4)
        want = compiled.activation_forward(np.maximum(x, 0), "softmax")
        np.testing.assert_allclose(two.forward(x), want, rtol=1e-6)
    np.testing.assert_array_equal(
        compiled.MLPPlan([("activation", "relu", 0.0), ("activation", "softmax", 0.0)], 4,
                         np.dtype(dtype).name).forward(x), want)


def test_out_is_written_and_returned(dtype):
    ops = _layers(np.random.default_rng(2), dtype, 3, (4,), ("relu",))
    x = np.ones((2, 3), dtype)
    for plan_cls in (compiled.MLPPlan, reference.MLPPlan):
        out = np.full((2, 4), np.nan, dtype)
        assert plan_cls(ops, 3, np.dtype(dtype).name).forward(x, out=out) is out
        np.testing.assert_allclose(out, compiled.dense_forward(x, ops[0][1], ops[0][2], "relu"))


def test_weights_are_read_in_place_at_every_call():
    ops = _layers(np.random.default_rng(4), np.float32, 3, (2,), ("identity",))
    for plan_cls in (compiled.MLPPlan, reference.MLPPlan):
        plan = plan_cls(ops, 3)
        ops[0][1][...] = 1.0
        ops[0][2][...] = (0.5, -0.5)
        np.testing.assert_array_equal(plan.forward(np.ones((1, 3), np.float32)),
                                      [[3.5, 2.5]])


# ---- bad input: the same exception and message on both backends -------------------------
def _both(make, exc, message):
    for plan_cls in (compiled.MLPPlan, reference.MLPPlan):
        with pytest.raises(exc) as info:
            make(plan_cls)
        assert str(info.value) == message, plan_cls


def _ops32():
    rng = np.random.default_rng(5)
    return _layers(rng, np.float32, 3, (4, 2), ("relu", "softmax"))


SHAPES = "('dense', W, b, activation, alpha) or ('activation', activation, alpha)"


def test_constructor_errors():
    ops = _ops32()
    W, b = ops[0][1], ops[0][2]
    _both(lambda c: c(ops, 3, "float16"), ValueError,
          "MLPPlan: dtype must be 'float32' or 'float64', got 'float16'")
    _both(lambda c: c(ops, 0), ValueError, "MLPPlan: n_features must be an int >= 1, got 0")
    _both(lambda c: c(ops, 3.0), ValueError, "MLPPlan: n_features must be an int >= 1, got 3.0")
    _both(lambda c: c(iter(ops), 3), TypeError,
          f"MLPPlan: layers must be a list of layer descriptors {SHAPES}, got list_iterator")
    _both(lambda c: c([("dense", W, b, "relu")], 3), ValueError,
          f"MLPPlan: layers[0] must be a tuple {SHAPES}; got a tuple of 4 starting 'dense'")
    _both(lambda c: c([ops[0], "relu"], 3), ValueError,
          f"MLPPlan: layers[1] must be a tuple {SHAPES}; got str")
    _both(lambda c: c(ops, 4), ValueError,
          "MLPPlan: layers[0] W must have shape (4, M) to take the 4 features before it, "
          "got (3, 4)")
    _both(lambda c: c([ops[0], ops[0]], 3), ValueError,
          "MLPPlan: layers[1] W must have shape (4, M) to take the 4 features before it, "
          "got (3, 4)")
    _both(lambda c: c(ops, 3, "float64"), TypeError,
          "MLPPlan: layers[0] W must have dtype float64 like the other operands, got float32")
    _both(lambda c: c([("dense", W.tolist(), b, "relu", 0.0)], 3), TypeError,
          "MLPPlan: layers[0] W must be a numpy.ndarray, got list")
    _both(lambda c: c([("dense", W, b[:3], "relu", 0.0)], 3), ValueError,
          "MLPPlan: layers[0] b must have shape (4,), got (3,)")
    _both(lambda c: c([("dense", W, b.astype(np.float64), "relu", 0.0)], 3), TypeError,
          "MLPPlan: layers[0] b must have dtype float32 like the other operands, got float64")
    in_place = ("must be C-contiguous, aligned and in native byte order: the plan reads it in "
                "place, so later changes to its values (set_weights, training) are seen")
    _both(lambda c: c([("dense", np.asfortranarray(np.ones((3, 4), np.float32)), b, "relu",
                        0.0)], 3), ValueError, f"MLPPlan: layers[0] W {in_place}")
    _both(lambda c: c([("dense", W, np.ones(8, np.float32)[::2], "relu", 0.0)], 3), ValueError,
          f"MLPPlan: layers[0] b {in_place}")
    _both(lambda c: c([("dense", W, b, "swish", 0.0)], 3), ValueError,
          "MLPPlan: layers[0]: activation must be one of identity, relu, leaky_relu, elu, "
          "sigmoid, tanh, gelu, gelu_tanh, silu, softplus, softmax, log_softmax; got 'swish'")
    _both(lambda c: c([("activation", "relu", "0.1")], 3), TypeError,
          "MLPPlan: layers[0] alpha must be a real number, got str")


@pytest.mark.parametrize("act", ["leaky_relu", "elu"])
@pytest.mark.parametrize("value,shown", [(float("nan"), "nan"), (float("inf"), "inf"),
                                         (-np.inf, "-inf"), (np.float64("nan"), "nan")])
def test_alpha_must_be_finite(act, value, shown):
    """A NaN or infinite slope is refused at construction, as the Dense layer refuses it."""
    ops = _ops32()
    W, b = ops[0][1], ops[0][2]
    for dt, w, bb in (("float32", W, b), ("float64", W.astype(np.float64),
                                          b.astype(np.float64))):
        _both(lambda c, w=w, bb=bb, dt=dt: c([("dense", w, bb, act, value)], 3, dt),
              ValueError, f"MLPPlan: layers[0] alpha must be finite, got {shown}")
        _both(lambda c, w=w, bb=bb, dt=dt: c([("dense", w, bb, "relu", 0.0),
                                              ("activation", act, value)], 3, dt),
              ValueError, f"MLPPlan: layers[1] alpha must be finite, got {shown}")


@pytest.mark.parametrize("value", [1e39, -1e39, np.float64(3.5e38)])
def test_alpha_must_stay_finite_in_float32(value):
    """The float32 kernels take alpha as float: 1e39 would reach them as inf. Refused for a
    float32 plan (as _real_param refuses the float32 kernels' hyperparameters), accepted and
    applied for a float64 one."""
    ops = _ops32()
    W, b = ops[0][1], ops[0][2]
    _both(lambda c: c([("dense", W, b, "leaky_relu", value)], 3), ValueError,
          f"MLPPlan: layers[0] alpha={float(value)!r} is out of range for float32: it rounds "
          f"to {'inf' if value > 0 else '-inf'}, and alpha must be finite")
    W64 = np.array([[1.0]])
    for plan_cls in (compiled.MLPPlan, reference.MLPPlan):
        got = plan_cls([("dense", W64, None, "leaky_relu", value)], 1, "float64").forward(
            np.array([[-2.0], [3.0]]))
        np.testing.assert_array_equal(got, [[-2.0 * float(value)], [3.0]])


def test_largest_float32_alpha_is_accepted():
    x = np.array([[-1.0]], np.float32)
    for plan_cls in (compiled.MLPPlan, reference.MLPPlan):
        big = float(np.finfo(np.float32).max)
        got = plan_cls([("dense", np.ones((1, 1), np.float32), None, "leaky_relu", big)],
                       1).forward(x)
        np.testing.assert_array_equal(got, [[-np.finfo(np.float32).max]])


def test_forward_errors():
    ops = _ops32()
    x = np.ones((5, 3), np.float32)
    _both(lambda c: c(ops, 3).forward(x.tolist()), TypeError,
          "MLPPlan.forward: x must be a numpy.ndarray, got list")
    _both(lambda c: c(ops, 3).forward(x.astype(np.float64)), TypeError,
          "MLPPlan.forward: x must have dtype float32 like the plan, got float64")
    _both(lambda c: c(ops, 3).forward(x.astype(np.int64)), TypeError,
          "MLPPlan.forward: x must have dtype float32 like the plan, got int64")
    _both(lambda c: c(ops, 3).forward(x[:, :2]), ValueError,
          "MLPPlan.forward: x must have shape (N, 3), got (5, 2)")
    _both(lambda c: c(ops, 3).forward(x[0]), ValueError,
          "MLPPlan.forward: x must have shape (N, 3), got (3,)")
    _both(lambda c: c(ops, 3).forward(x, out=np.empty((5, 3), np.float32)), ValueError,
          "MLPPlan.forward: out must have shape (5, 2), got (5, 3)")
    _both(lambda c: c(ops, 3).forward(x, out=np.empty((5, 2))), TypeError,
          "MLPPlan.forward: out must have dtype float32 like the other operands, got float64")
    ro = np.empty((5, 2), np.float32)
    ro.flags.writeable = False
    _both(lambda c: c(ops, 3).forward(x, out=ro), ValueError,
          "MLPPlan.forward: out is read-only; pass a writeable array")
    inside = x.reshape(-1)[:10].reshape(5, 2)     # out in x's own memory
    _both(lambda c: c(ops, 3).forward(x, out=inside), ValueError,
          "MLPPlan.forward: out overlaps an input array; pass a separate buffer")


def test_forward_allocates_nothing_after_the_first_call():
    rng = np.random.default_rng(6)
    ops = _layers(rng, np.float32, 64, (128, 32, 10), ("relu", "relu", "softmax"))
    plan = compiled.MLPPlan(ops, 64)
    x, out = rng.normal(size=(300, 64)).astype(np.float32), np.empty((300, 10), np.float32)
    plan.forward(x, out)                       # the first call of this size makes workspaces
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for n in (300, 1, 299, 300):           # smaller calls reuse the same workspace
            plan.forward(x[:n], out[:n])
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 512, peak - base      # a workspace would be >= 300 * 128 * 4 bytes


def test_ops_dispatches_to_the_active_backend():
    ops = _ops32()
    with nnfast.use_backend("python"):
        assert type(nnfast.ops.MLPPlan(ops, 3)) is reference.MLPPlan
    if backends.compiled_available():
        with nnfast.use_backend("c"):
            assert type(nnfast.ops.MLPPlan(ops, 3, "float32")) is compiled.MLPPlan


def test_out_of_memory_is_a_memory_error_and_the_plan_stays_usable():
    from nnfast._native import _kernels as K
    rng = np.random.default_rng(8)
    ops = _layers(rng, np.float32, 300, (400, 10), ("relu", "softmax"))
    plan = compiled.MLPPlan(ops, 300)
    x = rng.normal(size=(200, 300)).astype(np.float32)
    want = plan.forward(x)
    result = forward_in_fresh_thread_without_memory(K, plan, x)
    assert result == ["MLPPlan.forward: out of memory for the GEMM packing buffers (a few MB per "
                      "thread); the outputs were not computed"]
    np.testing.assert_array_equal(plan.forward(x), want)
