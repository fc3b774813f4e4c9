"""The overlap test behind every out= check: the compiled layer computes it from data pointer,
shape and strides in C; it must answer exactly like np.may_share_memory (bounds only)."""
import numpy as np
import pytest

from nnfast import backends, ops

kernels = pytest.importorskip("nnfast._native._kernels") if backends.compiled_available() else None
needs_c = pytest.mark.skipif(kernels is None, reason="compiled extension not built")

BUF = np.arange(60.0)
M = BUF.reshape(6, 10)
CASES = {
    "same array": (M, M),
    "disjoint slices": (BUF[:30], BUF[30:]),
    "adjacent rows": (M[:3], M[3:]),
    "one shared element": (BUF[:31], BUF[30:]),
    "interleaved views": (BUF[::2], BUF[1::2]),
    "interleaved columns": (M[:, ::2], M[:, 1::2]),
    "negative strides": (BUF[::-1], BUF[:1]),
    "negative strides disjoint": (BUF[29::-1], BUF[30:]),
    "negative 2-D": (M[::-1, ::-1][:3], M[:3]),
    "transpose": (M.T, M),
    "transpose of a block": (M[:3].T, M[3:]),
    "zero-size": (BUF[5:5], BUF),
    "zero-size both": (M[:0], M[:0]),
    "zero-size with a zero-length axis": (M[:, :0], M),
    "different buffers": (np.arange(60.0), BUF),
    "0-d view": (BUF[7:8].reshape(()), BUF[7:]),
    "broadcast (zero stride)": (np.broadcast_to(BUF[:1], (4, 3)), BUF[:2]),
    "float32 view of the bytes": (BUF.view(np.float32)[1::4], BUF[:1]),
    "list input": (BUF, [1.0, 2.0]),
    "memoryview input": (BUF, memoryview(BUF)),
}


@needs_c
@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy_on_named_cases(name):
    a, b = CASES[name]
    assert kernels._may_share_memory(a, b) == np.may_share_memory(a, b)
    if isinstance(b, np.ndarray):
        assert kernels._may_share_memory(b, a) == np.may_share_memory(b, a)


@needs_c
def test_interleaved_views_count_as_overlapping():
    # Bounds only (MAY_SHARE_BOUNDS): no element is shared, yet the extents intersect.
    assert not np.shares_memory(BUF[::2], BUF[1::2])
    assert kernels._may_share_memory(BUF[::2], BUF[1::2])


def _random_view(rng, base):
    """A view of base with random start/stop/step (negative too), axis order and dtype."""
    v = base
    if rng.random() < 0.3:
        v = v.view(np.float32 if v.dtype == np.float64 else np.float64)
    if rng.random() < 0.5:
        v = v[: v.size - v.size % 6].reshape(-1, 6 if v.size >= 6 else 1)
    idx = []
    for n in v.shape:
        a, b = sorted(rng.integers(-1, n + 1, 2))
        step = int(rng.choice([1, 2, 3, -1, -2]))
        idx.append(slice(a, b, step) if step > 0 else slice(b, a, step))
    v = v[tuple(idx)]
    if v.ndim == 2 and rng.random() < 0.3:
        v = v.T
    return v


@needs_c
def test_matches_numpy_on_random_views():
    rng = np.random.default_rng(0)
    shared = np.zeros(48)
    bases = [shared, shared, shared, np.zeros(48), np.zeros(8, np.float32)]
    seen = {True: 0, False: 0}
    for _ in range(5000):
        a = _random_view(rng, bases[rng.integers(len(bases))])
        b = _random_view(rng, bases[rng.integers(len(bases))])
        expected = np.may_share_memory(a, b)
        got = kernels._may_share_memory(a, b)
        assert got == expected, (a.__array_interface__, b.__array_interface__)
        seen[expected] += 1
    assert min(seen.values()) > 500  # both answers well exercised


def test_out_checks_reject_interleaved_and_accept_disjoint(backend):
    big = np.arange(32.0).reshape(8, 4)
    x = big[::2]  # rows 0, 2, 4, 6: its extent covers the odd rows between them
    assert not np.shares_memory(big[1], x)
    with pytest.raises(ValueError, match="column_sums: out overlaps an input array"):
        ops.column_sums(x, out=big[1])
    with pytest.raises(ValueError, match="column_sums: out overlaps an input array"):
        ops.column_sums(x[::-1], out=big[5])
    np.testing.assert_array_equal(ops.column_sums(x[:2], out=big[7]), x[:2].sum(0))
    with pytest.raises(ValueError, match="dense_backward: db overlaps an input array"):
        ops.dense_backward(x, x.T.copy(), np.eye(4), None, None, db=big[3])
    rows = np.zeros((2, 16))
    rows[0] = np.arange(16.0)
    src = rows[0].reshape(4, 4)
    ops.activation_forward(src, "relu", out=rows[1].reshape(4, 4))  # disjoint rows: accepted
    np.testing.assert_array_equal(rows[1], rows[0])
    ops.activation_forward(src[:0], "relu", out=rows[1, :0].reshape(0, 4))  # zero-size: accepted
    with pytest.raises(ValueError, match="activation_forward: out overlaps an input array"):
        ops.activation_forward(src.T, "relu", out=src)
    params = np.zeros(8)
    with pytest.raises(ValueError, match="sgd_update: params overlaps an input array"):
        ops.sgd_update(params, params[::-1])
    xi = np.zeros((3, 4))
    with pytest.raises(ValueError, match="argmax_rows: out overlaps an input array"):
        ops.argmax_rows(xi, out=xi.view(np.int64)[0, :3])
