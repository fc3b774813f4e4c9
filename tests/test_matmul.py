"""nnfast.matmul is a drop-in for np.matmul: values, shape, dtype, exceptions, out=."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnfast

F32, F64 = np.float32, np.float64


def _tol(dtype, k):
    eps = np.finfo(dtype).eps if np.dtype(dtype).kind == "f" else 0
    return 4 * eps * max(k, 1) ** 0.5 * 8


def assert_like_numpy(a, b, out=None, **kw):
    want = np.matmul(a, b)
    got = nnfast.matmul(a, b) if out is None else nnfast.matmul(a, b, out=out)
    assert type(got) is type(want), (type(got), type(want))
    assert np.shape(got) == np.shape(want)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    k = np.shape(a)[-1] if np.ndim(a) else 1
    np.testing.assert_allclose(got, want, rtol=_tol(np.asarray(want).dtype, k),
                               atol=_tol(np.asarray(want).dtype, k), **kw)
    return got


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (2, 3, 4), (17, 31, 13), (64, 784, 256),
                                   (0, 3, 4), (3, 0, 4), (3, 4, 0)])
def test_2d(rng, dtype, m, k, n):
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    assert_like_numpy(a, b)


@pytest.mark.parametrize("da,db", [(F32, F64), (F64, F32), (np.int64, F32), (F32, np.int32),
                                   (np.float16, F32), (bool, F64), (np.int8, F64)])
def test_type_promotion(rng, da, db):
    a = (rng.standard_normal((5, 6)) * 3).astype(da)
    b = (rng.standard_normal((6, 7)) * 3).astype(db)
    got = assert_like_numpy(a, b)
    assert got.dtype == np.result_type(da, db)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, bool, np.complex64,
                                   np.complex128, np.float16, object])
def test_other_dtypes_are_numpys_result_exactly(rng, dtype):
    a = (rng.standard_normal((4, 5)) * 4).astype(dtype)
    b = (rng.standard_normal((5, 3)) * 4).astype(dtype)
    got, want = nnfast.matmul(a, b), np.matmul(a, b)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)),
                                   ((5, 2, 3), (3,)), ((3,), (5, 3, 4)), ((0,), (0,)),
                                   ((1,), (1, 0))])
def test_one_dimensional_operands(rng, sa, sb):
    for dtype in (F32, F64):
        assert_like_numpy(rng.standard_normal(sa).astype(dtype),
                          rng.standard_normal(sb).astype(dtype))


@pytest.mark.parametrize("sa,sb", [((4, 2, 3), (3, 5)), ((2, 3), (4, 3, 5)),
                                   ((2, 1, 3, 4), (5, 4, 2)), ((0, 2, 3), (3, 4)),
                                   ((3, 2, 0), (3, 0, 4)), ((2, 2, 3, 4), (1, 4, 6))])
def test_broadcast_stacks(rng, sa, sb):
    for dtype in (F32, F64):
        assert_like_numpy(rng.standard_normal(sa).astype(dtype),
                          rng.standard_normal(sb).astype(dtype))


def test_lists_and_scalars_in_lists():
    assert_like_numpy([[1.0, 2.0], [3.0, 4.0]], [[5.0], [6.0]])
    assert_like_numpy([1, 2, 3], [4, 5, 6])  # integers: NumPy's own result


@pytest.mark.parametrize("make", [
    lambda x: x.T,                              # transposed view -> op=T, no copy
    lambda x: np.asfortranarray(x),
    lambda x: x[::2, ::3],                      # sliced (non-unit strides)
    lambda x: x[::-1],                          # negative row stride
    lambda x: x[:, ::-1],                       # negative column stride
    lambda x: x[3:-7, 5:-11],                   # offset view with a large leading dimension
], ids=["T", "fortran", "strided", "neg-rows", "neg-cols", "sliced"])
def test_views(rng, make):
    for dtype in (F32, F64):
        base_a = rng.standard_normal((80, 90)).astype(dtype)
        a = make(base_a)
        b = make(rng.standard_normal((200, 200)).astype(dtype))[: a.shape[1], :23]
        ca, cb = a.copy(), b.copy()
        assert_like_numpy(a, b)
        np.testing.assert_array_equal(a, ca)  # inputs never modified
        np.testing.assert_array_equal(b, cb)


def test_out_is_honoured_and_returned(rng):
    a = rng.standard_normal((6, 7)).astype(F32)
    b = rng.standard_normal((7, 5)).astype(F32)
    out = np.full((6, 5), np.nan, F32)
    res = nnfast.matmul(a, b, out=out)
    assert res is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    # non-contiguous out is written through, like NumPy
    big = np.zeros((6, 10), F32)
    res = nnfast.matmul(a, b, out=big[:, ::2])
    np.testing.assert_allclose(big[:, ::2], a @ b, rtol=1e-5, atol=1e-5)
    assert np.all(big[:, 1::2] == 0)
    # out aliasing an input gives the right answer (computed into a temporary)
    sq = rng.standard_normal((5, 5))
    want = sq @ sq
    nnfast.matmul(sq, sq, out=sq)
    np.testing.assert_allclose(sq, want, rtol=1e-12, atol=1e-12)


def test_out_of_another_dtype_behaves_like_numpy(rng):
    a = rng.standard_normal((3, 4)).astype(F32)
    b = rng.standard_normal((4, 2)).astype(F32)
    out64 = np.empty((3, 2), F64)
    nnfast.matmul(a, b, out=out64)
    np.testing.assert_allclose(out64, np.matmul(a, b), rtol=1e-6)


def _np_exc(a, b, **kw):
    with pytest.raises(Exception) as info:
        np.matmul(a, b, **kw)
    return info.type


@pytest.mark.parametrize("a,b,kw", [
    (np.ones((2, 3), F32), np.ones((4, 2), F32), {}),              # core mismatch
    (np.ones((2, 2, 3)), np.ones((3, 3, 2)), {}),                  # batch not broadcastable
    (np.float32(3.0), np.ones((3,), F32), {}),                     # 0-d operand
    (np.ones((2, 3)), 2.0, {}),                                    # 0-d operand (scalar)
    (np.ones((2, 3), F32), np.ones((3, 4), F32), {"out": np.empty((2, 5), F32)}),
    (np.ones((2, 3), F32), np.ones((3, 4), F32), {"out": np.empty((2, 4), np.int32)}),
    (np.ones((2, 3), F32), np.ones((3, 4), F32), {"out": [[0] * 4] * 2}),
])
def test_errors_match_numpy(a, b, kw):
    want = _np_exc(a, b, **kw)
    with pytest.raises(want):
        nnfast.matmul(a, b, **kw)


def test_zero_dim_raises_value_error():
    with pytest.raises(ValueError):
        nnfast.matmul(np.float64(1.0), np.ones(2))


def test_read_only_out_raises_like_numpy():
    out = np.empty((2, 2))
    out.flags.writeable = False
    with pytest.raises(ValueError):
        np.matmul(np.ones((2, 2)), np.ones((2, 2)), out=out)
    with pytest.raises(ValueError):
        nnfast.matmul(np.ones((2, 2)), np.ones((2, 2)), out=out)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_subclass_keeps_numpy_semantics():
    m = np.asmatrix(np.eye(2))
    got = nnfast.matmul(m, m)
    assert type(got) is type(np.matmul(m, m))


@pytest.mark.parametrize("backend", ["c", "python"])
def test_both_backends(rng, backend):
    if backend == "c" and not nnfast.backends.compiled_available():
        pytest.skip("compiled extension not built")
    with nnfast.use_backend(backend):
        a = rng.standard_normal((3, 9, 11)).astype(F32)
        b = rng.standard_normal((11, 4)).astype(F32)
        assert_like_numpy(a, b)


shapes = st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 40))
# Hypothesis times the drawing of examples (the too_slow health check) by the wall clock, which
# a loaded machine stretches (the tests run two at a time under pytest-xdist); deadline=None
# for the same reason. What is checked is every example's result, never its speed.
LOAD_PROOF = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=150, **LOAD_PROOF)
@given(shape=shapes, dtype=st.sampled_from([F32, F64]), ta=st.booleans(), tb=st.booleans(),
       batch=st.sampled_from([(), (1,), (3,), (2, 1)]), data=st.data())
def test_property_matches_numpy(shape, dtype, ta, tb, batch, data):
    m, k, n = shape
    elems = st.floats(-4, 4, width=32)
    a = data.draw(hnp.arrays(dtype, batch + ((k, m) if ta else (m, k)), elements=elems))
    b = data.draw(hnp.arrays(dtype, (n, k) if tb else (k, n), elements=elems))
    a = np.swapaxes(a, -1, -2) if ta else a
    b = b.T if tb else b
    assert_like_numpy(a, b)


@settings(max_examples=60, **LOAD_PROOF)
@given(sa=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
       sb=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))
def test_property_shapes_and_errors_like_numpy(sa, sb):
    a, b = np.ones(sa, F32), np.ones(sb, F64)
    try:
        want = np.matmul(a, b)
    except Exception as exc:  # noqa: BLE001 - we compare the exception type
        with pytest.raises(type(exc)):
            nnfast.matmul(a, b)
        return
    got = nnfast.matmul(a, b)
    assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == want.dtype
    np.testing.assert_allclose(got, want)


@pytest.mark.skipif(not nnfast.backends.compiled_available(), reason="compiled extension not built")
def test_transposed_operand_is_not_copied(rng):
    import tracemalloc

    x = rng.standard_normal((4000, 300)).astype(F32)    # 4.8 MB
    dy = rng.standard_normal((4000, 16)).astype(F32)
    with nnfast.use_backend("c"):
        nnfast.matmul(x.T, dy)  # warm up
        tracemalloc.start()
        got = nnfast.matmul(x.T, dy)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    np.testing.assert_allclose(got, x.T @ dy, rtol=1e-4, atol=1e-3)
    assert peak < 1_000_000, f"matmul(x.T, dy) allocated {peak} bytes: the operand was copied"
