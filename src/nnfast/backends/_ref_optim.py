"""Reference optimizer updates (plain NumPy): the spec for nnf_*_update_* in csrc/nn/optim.c.

All updates work in place on flat 1-D buffers of P elements: `params` and the state buffers
(velocity, moments, accumulators) must be C-contiguous, writeable, of the dtype of `params` and
must not overlap one another or `grads`; `grads` (read only) may have any layout. They return
None. Hyperparameters are real numbers (NaN rejected): lr >= 0, weight_decay >= 0,
momentum/betas/rho in [0, 1), eps > 0 (these two also once rounded to the buffers' dtype, in
which the update runs: eps=1e-50 or beta1=1-1e-9 are rejected for float32); Adam's step is an
integer >= 1. With weight_decay the gradient used below is g = grads + weight_decay·params
(except AdamW, see adam_update). Arithmetic is in the buffers' dtype, hyperparameters cast to
it; Adam's bias corrections are computed in float64. `grads` may be byte-swapped or unaligned
(read as NumPy reads it); the in-place buffers must be native and aligned.
"""
from __future__ import annotations

import numpy as np

from nnfast.backends._ref_checks import _check_out, _float_array, _real_param, _step_param

__all__ = ["adagrad_update", "adam_update", "clip_grad_norm", "rmsprop_update", "sgd_update"]


def _buffers(fn: str, params, grads, **state):
    """Checks params, grads and the state buffers (None = not used); returns the dtype."""
    dtype = _float_array(fn, "params", params, 1)
    p = params.shape[0]
    others = (grads,) + tuple(s for s in state.values() if s is not None)
    _check_out(fn, "params", params, (p,), dtype, others)
    _float_array(fn, "grads", grads, 1, dtype)
    if grads.shape != (p,):
        raise ValueError(f"{fn}: grads must have shape {(p,)} like params, got {grads.shape}")
    for name, buf in state.items():
        if buf is not None:
            others = (params, grads) + tuple(s for k, s in state.items()
                                             if k != name and s is not None)
            _check_out(fn, name, buf, (p,), dtype, others)
    return dtype


def _lr_wd(fn: str, lr, weight_decay) -> tuple:
    return (_real_param(fn, "lr", lr, 0.0),
            _real_param(fn, "weight_decay", weight_decay, 0.0))


def _unit(fn: str, name: str, value, dtype) -> float:
    """A rate in [0, 1) that stays below 1 in the buffers' dtype (1 - 1e-9 is 1.0 in float32)."""
    return _real_param(fn, name, value, 0.0, 1.0, hi_open=True, dtype=dtype)


def _eps(fn: str, value, dtype) -> float:
    """eps > 0, also in the buffers' dtype (1e-50 is 0.0 in float32: a division by zero)."""
    return _real_param(fn, "eps", value, 0.0, lo_open=True, dtype=dtype)


def _decayed(grads, params, wd: float):
    return grads + wd * params if wd else grads


def _flush(state) -> None:
    """Values of a decaying optimizer state (momentum velocity, Adam's m and v, RMSprop's sq)
    whose magnitude is below the dtype's smallest normal number become +0, in place: the
    compiled kernels do this because arithmetic on subnormals costs ~100 cycles per operation on
    x86 (csrc/nn/optim.c has the measurement); here it keeps the two backends' values alike."""
    state[np.abs(state) < np.finfo(state.dtype).tiny] = 0


def sgd_update(params, grads, velocity=None, lr=0.01, momentum=0.0, nesterov=False,
               weight_decay=0.0):
    """SGD with momentum and Nesterov (PyTorch's convention, dampening 0):
    g = grads + wd·params; v = μ·v + g (flushed: _flush; v = g when μ == 0, velocity may then be
    None);
    step = g + μ·v if nesterov else v; params -= lr·step. nesterov needs μ > 0.

    >>> import numpy as np
    >>> p, v = np.ones(2), np.zeros(2)
    >>> sgd_update(p, np.array([1.0, -1.0]), v, lr=0.5, momentum=0.9); p.tolist()
    [0.5, 1.5]
    """
    fn = "sgd_update"
    dtype = _buffers(fn, params, grads, velocity=velocity)
    lr, wd = _lr_wd(fn, lr, weight_decay)
    mu = _unit(fn, "momentum", momentum, dtype)
    if mu > 0 and velocity is None:
        raise ValueError(f"{fn}: velocity is required when momentum > 0 (got momentum={mu!r})")
    if nesterov and mu == 0:
        raise ValueError(f"{fn}: nesterov=True needs momentum > 0")
    g = _decayed(grads, params, wd)
    if mu == 0:
        if velocity is not None:
            velocity[...] = g
        step = g
    else:
        velocity *= mu
        velocity += g
        _flush(velocity)
        step = g + mu * velocity if nesterov else velocity
    params -= lr * step


def adam_update(params, grads, m, v, step, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8,
                weight_decay=0.0, decoupled=False):
    """Adam (decoupled=True: AdamW). step = number of updates including this one.
    g = grads + wd·params unless decoupled; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²
    (m and v flushed to +0 below the smallest normal number: _flush);
    m̂ = m/(1-β1^step); v̂ = v/(1-β2^step) (bias corrections in float64);
    params -= lr·(m̂/(√v̂ + eps) + (wd·params if decoupled else 0)).

    >>> import numpy as np
    >>> p, m, v = np.zeros(1), np.zeros(1), np.zeros(1)
    >>> adam_update(p, np.array([3.0]), m, v, step=1, lr=0.1, eps=0.0001); p.round(6).tolist()
    [-0.099997]
    """
    fn = "adam_update"
    dtype = _buffers(fn, params, grads, m=m, v=v)
    s = _step_param(fn, step)
    lr, wd = _lr_wd(fn, lr, weight_decay)
    b1, b2 = _unit(fn, "beta1", beta1, dtype), _unit(fn, "beta2", beta2, dtype)
    eps = _eps(fn, eps, dtype)
    g = grads if decoupled else _decayed(grads, params, wd)
    m *= b1
    m += (1.0 - b1) * g
    v *= b2
    v += (1.0 - b2) * (g * g)
    _flush(m)
    _flush(v)
    bc1, bc2 = 1.0 - b1 ** s, 1.0 - b2 ** s
    update = (m / bc1) / (np.sqrt(v / bc2) + eps)
    if decoupled and wd:
        update = update + wd * params
    params -= lr * update


def rmsprop_update(params, grads, sq, lr=0.001, rho=0.9, eps=1e-7, momentum=0.0,
                   velocity=None, weight_decay=0.0):
    """RMSprop: g = grads + wd·params; sq = ρ·sq + (1-ρ)·g² (flushed: _flush); step = g/(√sq + eps);
    with velocity: v = μ·v + step (v = step when μ == 0), step = v; params -= lr·step.
    velocity is required when momentum > 0.

    >>> import numpy as np
    >>> p, sq = np.zeros(1), np.zeros(1)
    >>> rmsprop_update(p, np.array([2.0]), sq, lr=0.1, rho=0.75); p.round(6).tolist()
    [-0.2]
    """
    fn = "rmsprop_update"
    dtype = _buffers(fn, params, grads, sq=sq, velocity=velocity)
    lr, wd = _lr_wd(fn, lr, weight_decay)
    rho, mu = _unit(fn, "rho", rho, dtype), _unit(fn, "momentum", momentum, dtype)
    eps = _eps(fn, eps, dtype)
    if mu > 0 and velocity is None:
        raise ValueError(f"{fn}: velocity is required when momentum > 0 (got momentum={mu!r})")
    g = _decayed(grads, params, wd)
    sq *= rho
    sq += (1.0 - rho) * (g * g)
    _flush(sq)
    step = g / (np.sqrt(sq) + eps)
    if velocity is not None:
        if mu == 0:
            velocity[...] = step
        else:
            velocity *= mu
            velocity += step
            _flush(velocity)
        step = velocity
    params -= lr * step


def adagrad_update(params, grads, acc, lr=0.01, eps=1e-7, weight_decay=0.0):
    """Adagrad: g = grads + wd·params; acc += g²; params -= lr·g/(√acc + eps).

    >>> import numpy as np
    >>> p, acc = np.zeros(1), np.zeros(1)
    >>> adagrad_update(p, np.array([2.0]), acc, lr=0.1); p.round(6).tolist(), acc.tolist()
    ([-0.1], [4.0])
    """
    fn = "adagrad_update"
    dtype = _buffers(fn, params, grads, acc=acc)
    lr, wd = _lr_wd(fn, lr, weight_decay)
    eps = _eps(fn, eps, dtype)
    g = _decayed(grads, params, wd)
    acc += g * g
    params -= lr * (g / (np.sqrt(acc) + eps))


# Outside (1e-280, inf) a float64 sum of squares may have under- or overflowed.
_SS_LOW = 1e-280


def clip_grad_norm(grads, max_norm):
    """Clip by global L2 norm, in place: norm = √(Σ g²) accumulated in float64 (rescaled by
    max|g| when the plain sum under- or overflows); if norm > max_norm (>= 0, may be inf):
    grads *= max_norm/norm (cast to the dtype). Returns the norm before clipping as a float;
    a NaN norm leaves grads unchanged. An infinite norm scales by 0 (inf entries become NaN).

    >>> import numpy as np
    >>> g = np.array([3.0, 4.0]); clip_grad_norm(g, 1.0), g.tolist()
    (5.0, [0.6000000000000001, 0.8])
    """
    fn = "clip_grad_norm"
    dtype = _float_array(fn, "grads", grads, 1)
    _check_out(fn, "grads", grads, grads.shape, dtype, ())
    max_norm = _real_param(fn, "max_norm", max_norm, 0.0)
    g = grads.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # handled below, as in C
        ss = float(np.sum(g * g))
        norm = float(np.sqrt(ss))
        if ss == float("inf") or ss < _SS_LOW:
            amax = float(np.max(np.abs(g))) if g.size else 0.0
            if 0.0 < amax < float("inf"):
                norm = amax * float(np.sqrt(np.sum((g / amax) ** 2)))
        if norm > max_norm:
            grads *= dtype.type(max_norm / norm)
    return norm
