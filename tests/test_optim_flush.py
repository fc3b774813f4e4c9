"""Decaying optimizer states are flushed to +0 below the smallest normal number, on both
backends alike (csrc/nn/optim.c: subnormal arithmetic costs ~100 cycles per operation on x86,
which made Adam epochs 1.7x slower once m held subnormals)."""
import importlib

import numpy as np
import pytest

from nnfast import backends
from nnfast.backends import reference

BOTH = [reference] + ([importlib.import_module("nnfast.backends.compiled")]
                      if backends.compiled_available() else [])


def _states(dtype):
    """A state holding a normal value that decays into the subnormal range in one step, one
    that stays normal, a negative one and a zero."""
    tiny = np.finfo(dtype).tiny
    return np.array([tiny * 1.5, 1.0, -tiny * 1.5, 0.0], dtype=dtype)


@pytest.mark.parametrize("be", BOTH, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_flushes_m_and_v_below_the_smallest_normal(be, dtype):
    p, g = np.ones(4, dtype), np.zeros(4, dtype)
    m, v = _states(dtype), np.abs(_states(dtype))
    be.adam_update(p, g, m, v, step=3, lr=0.1, beta1=0.5, beta2=0.5)
    # 0.5 * 1.5 * tiny is subnormal: flushed to +0 (the sign of -0 is not kept)
    np.testing.assert_array_equal(m, np.array([0, 0.5, 0, 0], dtype))
    assert not np.signbit(m).any()
    np.testing.assert_array_equal(v, np.array([0, 0.5, 0, 0], dtype))


@pytest.mark.parametrize("be", BOTH, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_flushes_the_velocity(be, nesterov):
    p, g, vel = np.ones(4, np.float32), np.zeros(4, np.float32), _states(np.float32)
    be.sgd_update(p, g, vel, lr=1.0, momentum=0.5, nesterov=nesterov)
    np.testing.assert_array_equal(vel, np.array([0, 0.5, 0, 0], np.float32))
    # the step used the flushed velocity: weights moved only where it stayed normal
    moved = np.float32(1) - (np.float32(0.5) * np.float32(0.5) if nesterov else np.float32(0.5))
    np.testing.assert_array_equal(p, np.array([1, moved, 1, 1], np.float32))


@pytest.mark.parametrize("be", BOTH, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_rmsprop_flushes_sq_and_velocity(be):
    p, g = np.ones(4, np.float64), np.zeros(4, np.float64)
    sq, vel = np.abs(_states(np.float64)), _states(np.float64)
    be.rmsprop_update(p, g, sq, lr=0.1, rho=0.5, momentum=0.5, velocity=vel)
    np.testing.assert_array_equal(sq, np.array([0, 0.5, 0, 0]))
    np.testing.assert_array_equal(vel, np.array([0, 0.5, 0, 0]))


def test_long_adam_run_flushes_on_both_backends_and_agrees():
    """Weights whose gradients stop (an always-0 input pixel, a dead unit): m decays through the
    subnormal range and ends at exactly 0 on both backends, which agree on the weights (within
    rounding: the reference applies the bias corrections in another order)."""
    if len(BOTH) < 2:
        pytest.skip("needs the compiled backend")
    n = 40000                                 # above the threaded size
    start = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    runs = []
    for be in BOTH:
        p, m, v = start.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
        grng = np.random.default_rng(1)
        for step in range(1, 1001):
            g = grng.standard_normal(n).astype(np.float32) * np.float32(step < 50)
            be.adam_update(p, g, m, v, step=step, lr=1e-3)
        runs.append((p, m, v))
    (p0, m0, v0), (p1, m1, v1) = runs
    assert (m0 == 0).all() and (m1 == 0).all()  # 0.9^950 · O(1) is far below float32's tiny
    assert not np.signbit(m0).any() and not np.signbit(m1).any()
    np.testing.assert_allclose(p1, p0, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(v1, v0, rtol=1e-4, atol=0)


@pytest.mark.skipif(not backends.compiled_available(), reason="compiled backend only")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_updates_treat_subnormal_gradients_as_zero(dtype):
    """The compiled kernels run with flush-to-zero / denormals-are-zero on x86 (docs/ops_api.md);
    the reference keeps IEEE subnormals. Either way the caller's MXCSR is left as it was."""
    import platform
    compiled = importlib.import_module("nnfast.backends.compiled")
    sub = np.finfo(dtype).tiny / 4          # a subnormal gradient
    p = np.zeros(3, dtype)
    compiled.sgd_update(p, np.full(3, sub, dtype), lr=1.0)
    ref = np.zeros(3, dtype)
    reference.sgd_update(ref, np.full(3, sub, dtype), lr=1.0)
    np.testing.assert_array_equal(ref, np.full(3, -sub, dtype))
    if platform.machine() in ("x86_64", "AMD64"):
        np.testing.assert_array_equal(p, np.zeros(3, dtype))
    # this thread's floating-point mode is restored: NumPy still produces subnormals here
    assert np.multiply(np.array([np.finfo(dtype).tiny], dtype), dtype(0.5))[0] != 0
