"""Pins nnfast's loss and optimizer conventions against PyTorch where they coincide (see
docs/ops_api.md for where they differ on purpose). Skipped without torch."""
import numpy as np
import pytest

from nnfast import ops

torch = pytest.importorskip("torch")
F = torch.nn.functional



def _torch_loss_grad(fn, z, *args, **kw):
    t = torch.tensor(z, requires_grad=True)
    out = fn(t, *args, **kw)
    out.sum().backward()
    return out.detach().numpy(), t.grad.numpy()


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_labels_smoothing(backend, rng, smoothing, reduction):
    z, y = rng.standard_normal((9, 5)) * 3, rng.integers(0, 5, 9)
    want, gw = _torch_loss_grad(F.cross_entropy, z, torch.tensor(y), label_smoothing=smoothing,
                                reduction=reduction)
    got, g = ops.softmax_cross_entropy(z, y, label_smoothing=smoothing, reduction=reduction)
    _close(got, want)
    _close(g, gw)


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_cross_entropy_class_weights(backend, rng, reduction):
    """PyTorch's "mean" divides by Σ w[label]; nnfast's by N (documented). sum/none agree."""
    z, y, w = rng.standard_normal((9, 5)), rng.integers(0, 5, 9), rng.uniform(0.1, 3, 5)
    want, gw = _torch_loss_grad(F.cross_entropy, z, torch.tensor(y), weight=torch.tensor(w),
                                reduction=reduction)
    got, g = ops.softmax_cross_entropy(z, y, class_weight=w, reduction=reduction)
    _close(got, want)
    _close(g, gw)
    got, _ = ops.softmax_cross_entropy(z, y, class_weight=w, reduction="mean")
    assert got == pytest.approx(float(np.sum(want)) / 9, rel=1e-12)


def test_cross_entropy_weights_with_smoothing_differs_as_documented(backend, rng):
    """nnfast: w[label]·smoothed loss; PyTorch: (1-ε)·w[y]·nll + ε/C·Σ_c w_c·(-log p_c)."""
    z, y, w, eps = rng.standard_normal((6, 4)), rng.integers(0, 4, 6), rng.uniform(0.5, 2, 4), 0.2
    logp = torch.log_softmax(torch.tensor(z), 1).numpy()
    ours = w[y] * ((1 - eps) * -logp[np.arange(6), y] - eps / 4 * logp.sum(1))
    got, _ = ops.softmax_cross_entropy(z, y, class_weight=w, label_smoothing=eps,
                                       reduction="none")
    _close(got, ours)
    theirs = F.cross_entropy(torch.tensor(z), torch.tensor(y), weight=torch.tensor(w),
                             label_smoothing=eps, reduction="none").numpy()
    assert not np.allclose(got, theirs)


def test_cross_entropy_probabilities(backend, rng):
    z = rng.standard_normal((7, 4))
    p = rng.uniform(0, 1, (7, 4))
    p /= p.sum(1, keepdims=True)
    want, gw = _torch_loss_grad(F.cross_entropy, z, torch.tensor(p), label_smoothing=0.1)
    got, g = ops.softmax_cross_entropy(z, p, label_smoothing=0.1)
    _close(got, want)
    _close(g, gw)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits(backend, rng, reduction):
    z, t = rng.standard_normal((6, 3)) * 5, rng.uniform(0, 1, (6, 3))
    want, gw = _torch_loss_grad(F.binary_cross_entropy_with_logits, z, torch.tensor(t),
                                reduction=reduction)
    got, g = ops.binary_cross_entropy(z, t, reduction=reduction)
    # nnfast "sum" sums the per-sample means over M = 3; PyTorch sums every element
    k = 1 if reduction == "mean" else 3
    _close(got * k, want)
    _close(g * k, gw)


@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_and_mse(backend, rng, delta):
    p, t = rng.standard_normal((5, 4)) * 2, rng.standard_normal((5, 4))
    want, gw = _torch_loss_grad(F.huber_loss, p, torch.tensor(t), delta=delta)
    got, g = ops.huber(p, t, delta=delta)
    _close(got, want)
    _close(g, gw)
    want, gw = _torch_loss_grad(F.mse_loss, p, torch.tensor(t))
    got, g = ops.mse(p, t)
    _close(got, want)
    _close(g, gw)


OPTIMIZERS = [
    ("sgd", lambda q: torch.optim.SGD(q, lr=0.1, momentum=0.9, nesterov=True,
                                      weight_decay=0.01),
     lambda p, g, s, t: ops.sgd_update(p, g, s[0], lr=0.1, momentum=0.9, nesterov=True,
                                       weight_decay=0.01)),
    ("adam", lambda q: torch.optim.Adam(q, lr=0.01, betas=(0.8, 0.95), eps=1e-8,
                                        weight_decay=0.01),
     lambda p, g, s, t: ops.adam_update(p, g, s[0], s[1], t, lr=0.01, beta1=0.8, beta2=0.95,
                                        weight_decay=0.01)),
    ("adamw", lambda q: torch.optim.AdamW(q, lr=0.01, weight_decay=0.1),
     lambda p, g, s, t: ops.adam_update(p, g, s[0], s[1], t, lr=0.01, weight_decay=0.1,
                                        decoupled=True)),
    ("rmsprop", lambda q: torch.optim.RMSprop(q, lr=0.01, alpha=0.9, eps=1e-7, momentum=0.5),
     lambda p, g, s, t: ops.rmsprop_update(p, g, s[0], lr=0.01, rho=0.9, eps=1e-7,
                                           momentum=0.5, velocity=s[1])),
    ("adagrad", lambda q: torch.optim.Adagrad(q, lr=0.1, eps=1e-7),
     lambda p, g, s, t: ops.adagrad_update(p, g, s[0], lr=0.1, eps=1e-7)),
]


@pytest.mark.parametrize("name,make_torch,step", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_optimizers_match_torch(backend, rng, name, make_torch, step):
    target = rng.standard_normal(257)
    p = rng.standard_normal(257)
    tp = torch.tensor(p.copy(), requires_grad=True)
    opt = make_torch([tp])
    state = [np.zeros(257), np.zeros(257)]
    for t in range(1, 8):
        g = p - target
        step(p, g, state, t)
        opt.zero_grad()
        tp.grad = tp.detach() - torch.tensor(target)
        opt.step()
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{name} step {t}")
