"""dropout_forward/backward: the documented counter hash, bad input -> exception, NaN, on
both backends."""
import numpy as np
import pytest

from nnfast import ops

MASK64 = 2**64 - 1


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def keep_python_ints(seed, step, i, rate):
    """The formula of docs/ops_api.md / csrc/nnfast.h, with Python ints."""
    key = mix64(mix64(seed) ^ step)
    bits = mix64((key + (i + 1) * 0x9E3779B97F4A7C15) & MASK64)
    return (bits >> 11) * 2.0**-53 >= rate


def test_splitmix64_reference_vector():
    # The first output of SplitMix64 seeded with 0 (Vigna's splitmix64.c), as a sanity anchor.
    assert mix64(0x9E3779B97F4A7C15) == 0xE220A8397B1DCDAF


@pytest.mark.parametrize("seed, step", [(0, 0), (1, 2), (2**64 - 1, 2**64 - 1), (123456789, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mask_is_the_documented_hash(backend, seed, step, dtype):
    rate = 0.37
    x = np.ones((9, 11), dtype)
    y = ops.dropout_forward(x, rate, seed, step)
    want = np.array([keep_python_ints(seed, step, i, rate) for i in range(x.size)]).reshape(9, 11)
    np.testing.assert_array_equal(y != 0, want)
    np.testing.assert_array_equal(y[want], dtype(1 / (1 - rate)))
    np.testing.assert_array_equal(ops.dropout_backward(x, rate, seed, step), y)


def test_mask_statistics_and_keys(backend):
    x = np.ones(200_000, np.float32)
    y = ops.dropout_forward(x, 0.25, 3, 0)
    assert abs(np.mean(y != 0) - 0.75) < 0.005
    assert abs(float(y.mean()) - 1.0) < 0.01  # E[y] = x
    assert (ops.dropout_forward(x, 0.25, 3, 1) != y).any()  # another step, another mask
    assert (ops.dropout_forward(x, 0.25, 4, 0) != y).any()  # another seed, another mask
    np.testing.assert_array_equal(ops.dropout_forward(x, 0.25, np.uint64(3), np.int64(0)), y)


def test_rate_zero_is_identity_and_nan_stays(backend):
    x = np.array([[1.5, -0.0, np.nan, 2.0]])
    np.testing.assert_array_equal(ops.dropout_forward(x, 0.0, 1, 1), x)
    y = ops.dropout_forward(np.full(64, np.nan), 0.5, 1, 1)
    assert np.isnan(y).all()  # dropped NaNs stay NaN (x * 0)


def test_any_shape_and_layout(backend):
    x = np.arange(60.0).reshape(3, 4, 5)
    y = ops.dropout_forward(x, 0.5, 9, 9)
    assert y.shape == x.shape
    yf = ops.dropout_forward(np.asfortranarray(x), 0.5, 9, 9)
    np.testing.assert_array_equal(yf, y)  # the flat index is the row-major one
    assert ops.dropout_forward(np.full((), 2.0), 0.5, 1, 1).shape == ()


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"rate": 1.0}, ValueError, r"dropout_forward: rate must be in \[0, 1\), got 1.0"),
    ({"rate": -0.1}, ValueError, r"dropout_forward: rate must be in \[0, 1\), got -0.1"),
    ({"rate": float("nan")}, ValueError, r"dropout_forward: rate must be in \[0, 1\), got nan"),
    ({"rate": "0.5"}, TypeError, r"dropout_forward: rate must be a float, got str"),
    ({"seed": -1}, ValueError, r"dropout_forward: seed must be in \[0, 2\*\*64\), got -1"),
    ({"seed": 2**64}, ValueError, r"dropout_forward: seed must be in \[0, 2\*\*64\)"),
    ({"seed": 1.0}, TypeError, r"dropout_forward: seed must be an int, got float"),
    ({"step": True}, TypeError, r"dropout_forward: step must be an int, got bool"),
    ({"step": -5}, ValueError, r"dropout_forward: step must be in \[0, 2\*\*64\), got -5"),
    ({"x": np.ones(3, np.int32)}, TypeError,
     r"dropout_forward: x must have dtype float32 or float64, got int32"),
    ({"out": np.ones(3, np.float32)}, TypeError,
     r"dropout_forward: out must have dtype float64 like the other operands"),
    ({"out": np.ones(4)}, ValueError, r"dropout_forward: out must have shape \(3,\), got \(4,\)"),
])
def test_bad_arguments(backend, kwargs, exc, match):
    args = {"x": np.ones(3), "rate": 0.5, "seed": 1, "step": 2, **kwargs}
    with pytest.raises(exc, match=match):
        ops.dropout_forward(**args)


def test_backward_checks_and_overlap(backend):
    with pytest.raises(TypeError, match="dropout_backward: dy must be a numpy.ndarray"):
        ops.dropout_backward([1.0], 0.5, 1, 1)
    dy = np.ones(5)
    with pytest.raises(ValueError, match="dropout_backward: out overlaps an input array"):
        ops.dropout_backward(dy, 0.5, 1, 1, out=dy)
