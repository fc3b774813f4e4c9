"""Optimizer updates against the textbook algorithms written out here, over several steps with
the gradient of a quadratic (so each step depends on the last), on both backends."""
import numpy as np
import pytest

from nnfast import ops

STEPS = 6
TOL = {np.float32: {"rtol": 2e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-14}}


def _problem(dtype, p=1031, seed=3):
    rng = np.random.default_rng(seed)
    target = rng.standard_normal(p)
    return rng.standard_normal(p).astype(dtype), target


def _grad(params, target):
    """Gradient of 0.5·||params - target||², in the params dtype."""
    return (params - target.astype(params.dtype)).astype(params.dtype)


def _run(dtype, step_fn, textbook, state_names, **hyper):
    """Runs STEPS updates through nnfast and through `textbook` (float64 NumPy)."""
    params, target = _problem(dtype)
    state = {k: np.zeros_like(params) for k in state_names}
    ref_p = params.astype(np.float64)
    ref_state = {k: np.zeros_like(ref_p) for k in state_names}
    for t in range(1, STEPS + 1):
        g = _grad(params, target)
        step_fn(params, g, state, t, **hyper)
        textbook(ref_p, g.astype(np.float64), ref_state, t, **hyper)
        np.testing.assert_allclose(params, ref_p, **TOL[dtype], err_msg=f"step {t}")
    return params


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.9, False, 0.0),
                                                  (0.9, True, 0.0), (0.8, True, 0.01),
                                                  (0.5, False, 0.1)])
def test_sgd(backend, dtype, momentum, nesterov, wd):
    def textbook(p, g, s, t, lr):
        g = g + wd * p
        if momentum:
            s["v"][:] = momentum * s["v"] + g
            d = g + momentum * s["v"] if nesterov else s["v"]
        else:
            d = g
        p -= lr * d

    def step(p, g, s, t, lr):
        ops.sgd_update(p, g, s["v"] if momentum else None, lr=lr, momentum=momentum,
                       nesterov=nesterov, weight_decay=wd)
    _run(dtype, step, textbook, ["v"], lr=0.1)


@pytest.mark.parametrize("wd,decoupled", [(0.0, False), (0.05, False), (0.05, True)],
                         ids=["adam", "adam_l2", "adamw"])
def test_adam(backend, dtype, wd, decoupled):
    b1, b2, eps = 0.85, 0.99, 1e-8

    def textbook(p, g, s, t, lr):
        if decoupled:             # AdamW: decay the weights, then the plain Adam step
            p *= 1 - lr * wd
        else:
            g = g + wd * p
        s["m"][:] = b1 * s["m"] + (1 - b1) * g
        s["v"][:] = b2 * s["v"] + (1 - b2) * g * g
        m_hat = s["m"] / (1 - b1 ** t)   # bias corrections
        v_hat = s["v"] / (1 - b2 ** t)
        p -= lr * m_hat / (np.sqrt(v_hat) + eps)

    def step(p, g, s, t, lr):
        ops.adam_update(p, g, s["m"], s["v"], t, lr=lr, beta1=b1, beta2=b2, eps=eps,
                        weight_decay=wd, decoupled=decoupled)
    _run(dtype, step, textbook, ["m", "v"], lr=0.05)


@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 0.0), (0.5, 0.01)])
def test_rmsprop(backend, dtype, momentum, wd):
    rho, eps = 0.9, 1e-7

    def textbook(p, g, s, t, lr):
        g = g + wd * p
        s["sq"][:] = rho * s["sq"] + (1 - rho) * g * g
        d = g / (np.sqrt(s["sq"]) + eps)
        if momentum:
            s["v"][:] = momentum * s["v"] + d
            d = s["v"]
        p -= lr * d

    def step(p, g, s, t, lr):
        ops.rmsprop_update(p, g, s["sq"], lr=lr, rho=rho, eps=eps, momentum=momentum,
                           velocity=s["v"] if momentum else None, weight_decay=wd)
    _run(dtype, step, textbook, ["sq", "v"], lr=0.01)


@pytest.mark.parametrize("wd", [0.0, 0.02])
def test_adagrad(backend, dtype, wd):
    eps = 1e-7

    def textbook(p, g, s, t, lr):
        g = g + wd * p
        s["acc"] += g * g
        p -= lr * g / (np.sqrt(s["acc"]) + eps)

    def step(p, g, s, t, lr):
        ops.adagrad_update(p, g, s["acc"], lr=lr, eps=eps, weight_decay=wd)
    _run(dtype, step, textbook, ["acc"], lr=0.1)


@pytest.mark.parametrize("n", [0, 1, 7, 100_003])
def test_clip_grad_norm(backend, dtype, n, threads):
    rng = np.random.default_rng(n)
    g = rng.standard_normal(n).astype(dtype)
    want = float(np.sqrt(np.sum(g.astype(np.float64) ** 2)))
    norms = []
    for nt in (1, 2):
        threads(nt)
        g1 = g.copy()
        norms.append(ops.clip_grad_norm(g1, 1.5))
        assert isinstance(norms[-1], float)
        if want > 1.5:
            np.testing.assert_allclose(np.linalg.norm(g1.astype(np.float64)), 1.5, rtol=1e-5)
            np.testing.assert_allclose(g1, g * dtype(1.5 / want), rtol=1e-6)
        else:
            np.testing.assert_array_equal(g1, g)
    assert norms[0] == norms[1]          # bit-identical for 1 and 2 threads
    assert norms[0] == pytest.approx(want, rel=1e-12)


def test_clip_grad_norm_edge_values(backend):
    g = np.array([3.0, 4.0])
    assert ops.clip_grad_norm(g, float("inf")) == 5.0 and g.tolist() == [3.0, 4.0]
    g = np.array([1e200, 1e200])           # the plain float64 sum of squares overflows
    assert ops.clip_grad_norm(g, 1.0) == pytest.approx(np.sqrt(2) * 1e200, rel=1e-14)
    np.testing.assert_allclose(g, [np.sqrt(0.5)] * 2, rtol=1e-14)
    g = np.array([3e-170, 4e-170])         # ... and underflows
    assert ops.clip_grad_norm(g, 1.0) == pytest.approx(5e-170, rel=1e-14)
    g = np.array([1.0, np.nan])            # NaN norm: returned, grads untouched
    assert np.isnan(ops.clip_grad_norm(g, 1.0)) and g[0] == 1.0
    g = np.array([1.0, np.inf])            # inf norm scales by 0 (inf entries become NaN)
    assert ops.clip_grad_norm(g, 1.0) == float("inf")
    assert g[0] == 0.0 and np.isnan(g[1])
    g = np.zeros(5, np.float32)
    assert ops.clip_grad_norm(g, 0.0) == 0.0


def test_updates_propagate_nan(backend):
    p, g = np.zeros(3), np.array([1.0, np.nan, 1.0])
    m, v = np.zeros(3), np.zeros(3)
    ops.adam_update(p, g, m, v, 1)
    assert np.isnan(p[1]) and np.isfinite(p[[0, 2]]).all()


def test_updates_with_denormals(backend):
    tiny = np.float32(1e-42)                # subnormal float32
    p = np.full(5, tiny, np.float32)
    g = np.full(5, tiny, np.float32)
    m, v = np.zeros(5, np.float32), np.zeros(5, np.float32)
    ops.adam_update(p, g, m, v, 1, lr=1e-3)
    assert np.isfinite(p).all() and np.isfinite(m).all() and (v >= 0).all()
