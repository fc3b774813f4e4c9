"""NetPlan's bad input (nnfast/_native/_netplan.pxi, nnfast/backends/_ref_netplan.py): the same
exception type and exact message on both backends, naming the op (layers[i]) and the argument,
raised at construction (weights, shapes, geometry) or by forward (x, out); forward's out and the
reshape-only plan. The plan under Sequential: tests/test_plan_conv.py."""
import math

import numpy as np
import pytest

import nnfast
from nnfast import backends, ops
from nnfast.backends import reference
from nnfast.backends._ref_activations import ACTIVATIONS
from nnfast.backends._ref_netplan import _SHAPES


# ---- bad input: the same type and message on both backends --------------------------------
def _arr(*shape, dtype=np.float32):
    return np.random.default_rng(0).normal(size=shape).astype(dtype)


def _conv_op(W=None, b=None, strides=1, padding="valid", dilation=1, act="relu", alpha=0.0):
    return ("conv2d", _arr(3, 3, 2, 4) if W is None else W, b, strides, padding, dilation, act,
            alpha)


P = "NetPlan: layers[0]"
CONSTRUCTOR_ERRORS = [
    ([_conv_op()], (5, 5), ValueError,
     f"{P} conv2d needs images (H, W, C) per sample, got shape (5, 5)"),
    ([_conv_op()], (5, 5, 3), ValueError,
     f"{P} W must have shape (KH, KW, 3, F), none of them 0, to take the 3 channels before "
     f"it, got (3, 3, 2, 4)"),
    ([_conv_op(W=_arr(3, 3, 2, 4, dtype=np.float64))], (5, 5, 2), TypeError,
     f"{P} W must have dtype float32 like the other operands, got float64"),
    ([_conv_op(W=_arr(3, 3, 2))], (5, 5, 2), ValueError,
     f"{P} W must be 4-D, got 3-D with shape (3, 3, 2)"),
    ([_conv_op(W=np.asfortranarray(_arr(3, 3, 2, 4)))], (5, 5, 2), ValueError,
     f"{P} W must be C-contiguous, aligned and in native byte order: the plan reads it in "
     f"place, so later changes to its values (set_weights, training) are seen"),
    ([_conv_op(b=_arr(5))], (5, 5, 2), ValueError,
     f"{P} b must have shape (4,) (one value per channel), got (5,)"),
    ([_conv_op()], (2, 5, 2), ValueError,
     f"{P}: the 3x3 window is larger than the 2x5 input with padding "
     f"'valid'; the output would have no pixels"),
    ([_conv_op(strides=0)], (5, 5, 2), ValueError, f"{P}: strides must be positive, got 0"),
    ([_conv_op(padding="full")], (5, 5, 2), ValueError,
     f"{P}: padding must be 'valid' or 'same', got 'full'"),
    ([_conv_op(act="swish")], (5, 5, 2), ValueError,
     f"{P}: activation must be one of {', '.join(ACTIVATIONS)}; got 'swish'"),
    ([_conv_op(alpha=float("inf"))], (5, 5, 2), ValueError, f"{P} alpha must be finite, got inf"),
    ([("max_pool2d", 6, None, "valid")], (5, 5, 2), ValueError,
     f"{P}: the 6x6 window is larger than the 5x5 input with padding "
     f"'valid'; the output would have no pixels"),
    ([("avg_pool2d", (2, 1.5), None, "same")], (5, 5, 2), TypeError,
     f"{P}: pool_size must be an int or a pair of ints, got (2, 1.5)"),
    ([("global_avg_pool2d",)], (10,), ValueError,
     f"{P} global_avg_pool2d needs images (H, W, C) per sample, got shape (10,)"),
    ([("dense", _arr(10, 3), None, "relu", 0.0)], (5, 2, 1), ValueError,
     f"{P} dense needs 1-D features per sample, got shape (5, 2, 1)"),
    ([("activation", "softmax", 0.0)], (5, 2, 1), ValueError,
     f"{P} softmax needs 1-D features per sample, got shape (5, 2, 1)"),
    ([("batch_norm", None, None, _arr(3), _arr(2), 1e-3)], (4, 4, 2), ValueError,
     f"{P} moving_mean must have shape (2,) (one value per channel), got (3,)"),
    ([("batch_norm", None, None, _arr(2), None, 1e-3)], (4, 4, 2), TypeError,
     f"{P} moving_variance must be a numpy.ndarray, got NoneType"),
    ([("batch_norm", None, None, _arr(2), _arr(2), float("nan"))], (4, 4, 2), ValueError,
     f"{P} epsilon must be a finite number >= 0, got nan"),
    ([("batch_norm", None, None, _arr(2), _arr(2), "1e-3")], (4, 4, 2), TypeError,
     f"{P} epsilon must be a real number, got str"),
    ([("reshape", (3, 3))], (4, 2), ValueError,
     f"{P} cannot reshape (4, 2) (8 values) to (3, 3) (9 values)"),
    ([("reshape", (0, 8))], (8,), ValueError,
     f"{P}: target_shape must be a non-empty tuple of ints >= 1, got (0, 8)"),
    ([("conv2d", 1)], (8,), ValueError,
     f"{P} must be a tuple " + _SHAPES + "; got a tuple of 2 starting 'conv2d'"),
    ([], (0, 3), ValueError, "NetPlan: input_shape must be a non-empty tuple of ints >= 1, got "
     "(0, 3)"),
    ("conv2d", (3,), TypeError, "NetPlan: layers must be a list of layer descriptors "
     + _SHAPES + ", got str"),
]


@pytest.mark.parametrize("layers,shape,exc,message", CONSTRUCTOR_ERRORS)
def test_constructor_errors_name_the_op_and_argument(layers, shape, exc, message, backend):
    with pytest.raises(exc) as info:
        ops.NetPlan(layers, shape, "float32")
    assert str(info.value) == message


def test_the_error_names_the_failing_op_index(backend):
    layers = [("reshape", (4, 4, 2)), _conv_op(), ("max_pool2d", 3, None, "valid")]
    with pytest.raises(ValueError) as info:
        ops.NetPlan(layers, (32,), "float32")
    assert str(info.value) == ("NetPlan: layers[2]: the 3x3 window is larger "
                               "than the 2x2 input with padding 'valid'; the output would have "
                               "no pixels")


@pytest.mark.parametrize("x,exc,message", [
    (_arr(2, 5, 5), ValueError,
     "NetPlan.forward: x must have shape (N, 5, 5, 2) or (N, 50), got (2, 5, 5)"),
    (_arr(2, 5, 5, 1), ValueError,
     "NetPlan.forward: x must have shape (N, 5, 5, 2) or (N, 50), got (2, 5, 5, 1)"),
    (_arr(2, 5, 5, 2, dtype=np.float64), TypeError,
     "NetPlan.forward: x must have dtype float32 like the plan, got float64"),
    ([[1.0]], TypeError, "NetPlan.forward: x must be a numpy.ndarray, got list"),
])
def test_forward_errors(x, exc, message, backend):
    plan = ops.NetPlan([_conv_op()], (5, 5, 2), "float32")
    with pytest.raises(exc) as info:
        plan.forward(x)
    assert str(info.value) == message


def test_forward_out_is_checked_written_and_returned(backend):
    plan = ops.NetPlan([_conv_op(), ("reshape", (36,))], (5, 5, 2), "float32")
    assert plan.output_shape == (36,) and plan.n_features == 50 and plan.n_outputs == 36
    x = _arr(3, 5, 5, 2)
    out = np.empty((3, 36), np.float32)
    assert plan.forward(x, out) is out
    np.testing.assert_array_equal(out, plan.forward(x))
    with pytest.raises(ValueError) as info:
        plan.forward(x, np.empty((3, 35), np.float32))
    assert str(info.value) == "NetPlan.forward: out must have shape (3, 36), got (3, 35)"
    with pytest.raises(ValueError) as info:
        plan.forward(x, np.empty((3, 3, 3, 4), np.float32))   # 4-D: the per-sample shape
    assert str(info.value) == ("NetPlan.forward: out must be 2-D, got 4-D with shape "
                               "(3, 3, 3, 4)")
    image_out = ops.NetPlan([_conv_op()], (5, 5, 2), "float32")
    flat = np.empty((3, 36), np.float32)          # an image output given as rows
    assert image_out.forward(x, flat) is flat
    np.testing.assert_array_equal(flat, out)


def test_reshapes_only_copy_the_values(backend):
    plan = ops.NetPlan([("reshape", (2, 6)), ("reshape", (12,))], (3, 4), "float64")
    x = _arr(5, 3, 4, dtype=np.float64)
    np.testing.assert_array_equal(plan.forward(x), x.reshape(5, 12))


def test_ops_dispatches_netplan_to_the_active_backend():
    with nnfast.use_backend("python"):
        assert type(ops.NetPlan([_conv_op()], (5, 5, 2))) is reference.NetPlan
    if backends.compiled_available():
        from nnfast.backends import compiled
        with nnfast.use_backend("c"):
            assert type(ops.NetPlan([_conv_op()], (5, 5, 2))) is compiled.NetPlan
    assert math.prod((5, 5, 2)) == ops.NetPlan([_conv_op()], (5, 5, 2)).n_features
