"""argmax_rows, accuracy, column_sums: bad input -> exception, NaN and ties, on both backends."""
import numpy as np
import pytest

from nnfast import ops

L = np.array([[0.1, 0.9, 0.9], [2.0, -1.0, 0.0], [np.nan, 5.0, np.nan], [1.0, np.nan, 7.0]])


@pytest.mark.parametrize("call, exc, match", [
    (lambda: ops.argmax_rows(np.ones((3, 0))), ValueError,
     r"argmax_rows: x must have at least one column, got shape \(3, 0\)"),
    (lambda: ops.argmax_rows(np.ones(3)), ValueError, r"argmax_rows: x must be 2-D, got 1-D"),
    (lambda: ops.argmax_rows(np.ones((2, 2)), out=np.empty(2, np.int32)), TypeError,
     r"argmax_rows: out must have dtype int64, got int32"),
    (lambda: ops.argmax_rows(np.ones((2, 2)), out=np.empty(3, np.int64)), ValueError,
     r"argmax_rows: out must have shape \(2,\), got \(3,\)"),
    (lambda: ops.argmax_rows(np.ones((2, 2)), out=np.empty(4, np.int64)[::2]), ValueError,
     r"argmax_rows: out must be C-contiguous"),
    (lambda: ops.accuracy(np.ones((0, 3)), np.ones(0, np.int64)), ValueError,
     r"accuracy: logits must have at least one row, got shape \(0, 3\)"),
    (lambda: ops.accuracy(np.ones((2, 3)), np.array([0, 3])), ValueError,
     r"accuracy: labels must lie in \[0, 3\), got values in \[0, 3\]"),
    (lambda: ops.accuracy(np.ones((2, 3)), np.array([-1, 0])), ValueError,
     r"accuracy: labels must lie in \[0, 3\), got values in \[-1, 0\]"),
    (lambda: ops.accuracy(np.ones((2, 3)), np.array([0.0, 1.0])), TypeError,
     r"accuracy: labels must have dtype int32 or int64, got float64"),
    (lambda: ops.accuracy(np.ones((2, 3)), np.array([0, 1, 2])), ValueError,
     r"accuracy: labels must have shape \(2,\), got \(3,\)"),
    (lambda: ops.accuracy(np.ones((2, 3), np.int64), np.array([0, 1])), TypeError,
     r"accuracy: logits must have dtype float32 or float64, got int64"),
    (lambda: ops.column_sums(np.ones((2, 3)), out=np.empty(3, np.float32)), TypeError,
     r"column_sums: out must have dtype float64 like the other operands, got float32"),
    (lambda: ops.column_sums(np.ones((2, 3)), out=np.empty(2)), ValueError,
     r"column_sums: out must have shape \(3,\), got \(2,\)"),
    (lambda: ops.column_sums(np.ones((2, 2, 2))), ValueError,
     r"column_sums: x must be 2-D, got 3-D"),
])
def test_bad_arguments(backend, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_read_only_and_overlapping_out(backend):
    ro = np.empty(3, np.int64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="argmax_rows: out is read-only"):
        ops.argmax_rows(np.ones((3, 2)), out=ro)
    x = np.ones((4, 4))
    with pytest.raises(ValueError, match="column_sums: out overlaps an input array"):
        ops.column_sums(x, out=x[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_argmax_ties_nan_and_accuracy(backend, dtype):
    x = L.astype(dtype)
    np.testing.assert_array_equal(ops.argmax_rows(x), [1, 0, 0, 1])  # first max, first NaN
    assert ops.accuracy(x, np.array([1, 0, 0, 2], np.int32)) == 0.75
    out = np.empty(4, np.int64)
    assert ops.argmax_rows(x, out=out) is out
    assert ops.accuracy(np.zeros((5, 1), dtype), np.zeros(5, np.int64)) == 1.0  # one class
    assert isinstance(ops.accuracy(x, np.zeros(4, np.int64)), float)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_sums_accurate_and_nan(backend, dtype):
    x = np.ones((10_001, 3), dtype)
    x[:, 1] = 0.1
    x[5, 2] = np.nan
    s = ops.column_sums(x)
    assert s.dtype == dtype
    np.testing.assert_allclose(s[:2], [10_001, 1000.1], rtol=1e-7)  # double accumulator
    assert np.isnan(s[2])
    np.testing.assert_array_equal(ops.column_sums(np.ones((0, 4), dtype)), 0)
    assert ops.column_sums(np.ones((3, 0), dtype)).shape == (0,)
