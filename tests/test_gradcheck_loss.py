"""Every loss gradient against central finite differences in float64 (relative error < 1e-6),
for every reduction, with label smoothing and weights, on both backends."""
import numpy as np
import pytest

from nnfast import ops

REDUCTIONS = ("mean", "sum", "none")


def _scalar(loss):
    return float(np.sum(loss)) if isinstance(loss, np.ndarray) else loss


def _check(fn, x, h=1e-6):
    """fn(x) -> (loss, grad); grad must match central differences of the (summed) loss."""
    _, grad = fn(x)
    fd = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        fd[idx] = (_scalar(fn(xp)[0]) - _scalar(fn(xm)[0])) / (2 * h)
    err = np.linalg.norm(grad - fd) / max(np.linalg.norm(fd), 1e-300)
    assert err < 1e-6, f"relative error {err:.3g}"


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("targets", ["labels64", "labels32", "probs"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weights", [False, True])
def test_softmax_cross_entropy(backend, rng, reduction, targets, smoothing, weights):
    n, c = 5, 4
    z = rng.standard_normal((n, c)) * 2
    if targets == "probs":
        y = rng.uniform(0, 1, (n, c))
        y /= y.sum(1, keepdims=True)
    else:
        y = rng.integers(0, c, n).astype(np.int64 if targets == "labels64" else np.int32)
    kw = {"label_smoothing": smoothing, "reduction": reduction}
    if weights:
        kw.update(sample_weight=rng.uniform(0.1, 2, n), class_weight=rng.uniform(0.1, 3, c))
    _check(lambda x: ops.softmax_cross_entropy(x, y, **kw), z)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weights", [False, True])
@pytest.mark.parametrize("loss", ["binary_cross_entropy", "mse", "huber"])
def test_elementwise_losses(backend, rng, loss, reduction, weights):
    n, m = 4, 3
    pred = rng.standard_normal((n, m)) * 3
    target = rng.uniform(0, 1, (n, m)) if loss == "binary_cross_entropy" \
        else rng.standard_normal((n, m))
    kw = {"reduction": reduction}
    if weights:
        kw["sample_weight"] = rng.uniform(0.1, 2, n)
    if loss == "huber":
        kw["delta"] = 0.7
        # keep |pred - target| away from the kink at delta, where the derivative jumps
        r = pred - target
        near = np.abs(np.abs(r) - 0.7) < 1e-3
        pred[near] += 0.01
    _check(lambda x: getattr(ops, loss)(x, target, **kw), pred)


def test_grad_of_large_logits(backend, rng):
    """Finite differences still agree around logits of magnitude 1e4 (shifted rows)."""
    z = rng.standard_normal((3, 5)) + np.array([[1e4], [-1e4], [0.0]])
    y = np.array([0, 4, 2])
    _check(lambda x: ops.softmax_cross_entropy(x, y, label_smoothing=0.05), z, h=1e-5)
