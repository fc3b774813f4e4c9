"""Every compiled kernel against its reference twin (tests/cases.py), over dtypes, shapes,
layouts, and 1 vs 2 threads (which must agree bit for bit)."""
import copy
import inspect
import zlib

import numpy as np
import pytest
from cases import CASES, Gen

import nnfast
from nnfast import backends
from nnfast.backends import reference

compiled = pytest.importorskip("nnfast.backends.compiled",
                               reason="compiled extension not built")

PARAMS = [
    pytest.param(case, dtype, shape, layout,
                 id=f"{case.label}-{np.dtype(dtype).name}-{'x'.join(map(str, shape))}-{layout}")
    for case in CASES for dtype in (np.float32, np.float64)
    for shape in case.shapes for layout in case.layouts
]


def _as_list(result):
    return list(result) if isinstance(result, tuple) else [result]


def _bound(fn, args, kwargs):
    return inspect.signature(fn).bind(*args, **kwargs).arguments


def _run(fn, args, kwargs, inplace, call=None):
    args, kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
    before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a
              for a in list(args) + list(kwargs.values())]
    result = _as_list(call(fn, args, kwargs) if call else fn(*args, **kwargs))
    bound = _bound(fn, args, kwargs)
    for name in inplace:
        result.append(bound[name])
    # Inputs must come back unchanged (in-place arguments and outputs excepted).
    outputs = {id(r) for r in result if isinstance(r, np.ndarray)}
    for orig, now in zip(before, list(args) + list(kwargs.values())):
        if isinstance(now, np.ndarray) and id(now) not in outputs:
            np.testing.assert_array_equal(now, orig, err_msg=f"{fn.__name__} modified an input")
    return result


def _compare(name, got, want, rtol, atol):
    assert len(got) == len(want), f"{name}: {len(got)} results, reference gives {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if w is None or g is None:
            assert g is None and w is None, f"{name}: result {i} is {g!r}, reference {w!r}"
            continue
        if isinstance(w, np.ndarray):
            assert isinstance(g, np.ndarray), f"{name}: result {i} is {type(g)}"
            assert g.shape == w.shape, f"{name}: result {i} shape {g.shape} != {w.shape}"
            assert g.dtype == w.dtype, f"{name}: result {i} dtype {g.dtype} != {w.dtype}"
        else:
            assert type(g) is type(w) or np.isscalar(g), f"{name}: result {i} type {type(g)}"
        g, w = np.asarray(g), np.asarray(w)
        if g.dtype.kind in "iub":
            np.testing.assert_array_equal(g, w, err_msg=f"{name}: result {i}")
            continue
        err = np.abs(g.astype(np.float64) - w.astype(np.float64))
        worst = float(np.nanmax(err)) if err.size else 0.0
        np.testing.assert_allclose(
            g, w, rtol=rtol, atol=atol,
            err_msg=f"{name}: result {i}, largest abs difference {worst:.3g}")


@pytest.mark.parametrize("case,dtype,shape,layout", PARAMS)
def test_compiled_matches_reference(case, dtype, shape, layout, threads):
    seed = zlib.crc32(repr((case.label, np.dtype(dtype).name, shape, layout)).encode())
    args, kwargs = case.make(Gen(seed, dtype, layout), shape)
    want = _run(getattr(reference, case.name), args, kwargs, case.inplace, case.call)
    results = {}
    for n in (1, 2):
        threads(n)
        results[n] = _run(getattr(compiled, case.name), args, kwargs, case.inplace, case.call)
    name = np.dtype(dtype).name
    _compare(case.label, results[1], want, case.rtol[name], case.atol[name])
    for r1, r2 in zip(results[1], results[2]):  # thread count must not change a single bit
        if isinstance(r1, np.ndarray):
            np.testing.assert_array_equal(r1, r2, err_msg=f"{case.label}: 1 vs 2 threads differ")
        else:
            assert r1 == r2 or (r1 != r1 and r2 != r2), f"{case.label}: 1 vs 2 threads differ"


def test_every_backend_function_has_a_case():
    covered = {c.name for c in CASES}
    assert set(reference.__all__) <= covered, set(reference.__all__) - covered


def test_backends_export_identical_names_and_signatures():
    assert compiled.__all__ == reference.__all__
    for name in reference.__all__:
        ref_sig = inspect.signature(getattr(reference, name))
        c_sig = inspect.signature(getattr(compiled, name))
        assert list(ref_sig.parameters) == list(c_sig.parameters), name
        for p in ref_sig.parameters:
            assert ref_sig.parameters[p].default == c_sig.parameters[p].default, (name, p)
    assert backends.BACKENDS == ("c", "python")
    assert nnfast.get_backend() in backends.BACKENDS
