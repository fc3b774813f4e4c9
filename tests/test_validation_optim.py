"""Bad arguments to the optimizer updates raise the same exception type and message on both
backends; in-place buffers must be contiguous, writeable and separate."""
import numpy as np
import pytest

from nnfast import ops


def _adam(**over):
    kw = {"params": np.zeros(6), "grads": np.ones(6), "m": np.zeros(6), "v": np.zeros(6),
          "step": 1, **over}
    return ops.adam_update(**kw)


BAD_ADAM = [
    ({"params": np.zeros(6, np.int32)}, TypeError, "params must have dtype float32 or float64"),
    ({"params": np.zeros((2, 3))}, ValueError, "params must be 1-D"),
    ({"params": np.zeros(12)[::2]}, ValueError, "params must be C-contiguous"),
    ({"grads": np.ones(5)}, ValueError, r"grads must have shape \(6,\) like params, got \(5,\)"),
    ({"grads": np.ones(6, np.float32)}, TypeError, "grads must have dtype float64 like"),
    ({"m": np.zeros(6, np.float32)}, TypeError, "m must have dtype float64 like"),
    ({"v": np.zeros(7)}, ValueError, r"v must have shape \(6,\), got \(7,\)"),
    ({"v": np.zeros(12)[::2]}, ValueError, "v must be C-contiguous"),
    ({"step": 0}, ValueError, r"step must be in \[1, 2\*\*63\) \(updates so far"),
    ({"step": 2**70}, ValueError, r"step must be in \[1, 2\*\*63\).*got 1180591620717411303424"),
    ({"step": 1.0}, TypeError, "step must be an integer, got float"),
    ({"step": True}, TypeError, "step must be an integer, got bool"),
    ({"lr": -1e-3}, ValueError, "lr must be >= 0, got -0.001"),
    ({"lr": "0.1"}, TypeError, "lr must be a real number, got str"),
    ({"beta1": 1.0}, ValueError, r"beta1 must be in \[0, 1\), got 1.0"),
    ({"beta2": float("nan")}, ValueError, r"beta2 must be in \[0, 1\), got nan"),
    ({"eps": 0.0}, ValueError, "eps must be > 0, got 0.0"),
    ({"weight_decay": -0.1}, ValueError, "weight_decay must be >= 0"),
]


@pytest.mark.parametrize("override,exc,match", BAD_ADAM)
def test_adam_rejects(backend, override, exc, match):
    with pytest.raises(exc, match=f"^adam_update: {match}"):
        _adam(**override)


def test_read_only_and_overlapping_buffers(backend):
    p = np.zeros(6)
    p.flags.writeable = False
    with pytest.raises(ValueError, match="^adam_update: params is read-only"):
        _adam(params=p)
    buf = np.zeros(12)
    with pytest.raises(ValueError, match="^adam_update: params overlaps an input array"):
        _adam(params=buf[:6], m=buf[3:9])
    g = np.ones(6)
    with pytest.raises(ValueError, match="^adam_update: params overlaps an input array"):
        _adam(params=g, grads=g)
    with pytest.raises(ValueError, match="^sgd_update: params overlaps"):
        ops.sgd_update(buf[:6], np.ones(6), velocity=buf[:6], momentum=0.9)
    g = np.ones(6)
    g.flags.writeable = False
    with pytest.raises(ValueError, match="^clip_grad_norm: grads is read-only"):
        ops.clip_grad_norm(g, 1.0)


def test_momentum_rules(backend):
    p, g = np.zeros(4), np.ones(4)
    with pytest.raises(ValueError, match="^sgd_update: velocity is required when momentum > 0"):
        ops.sgd_update(p, g, momentum=0.9)
    with pytest.raises(ValueError, match="^sgd_update: nesterov=True needs momentum > 0"):
        ops.sgd_update(p, g, np.zeros(4), nesterov=True)
    with pytest.raises(ValueError, match=r"^sgd_update: momentum must be in \[0, 1\)"):
        ops.sgd_update(p, g, np.zeros(4), momentum=1.0)
    with pytest.raises(ValueError, match="^rmsprop_update: velocity is required"):
        ops.rmsprop_update(p, g, np.zeros(4), momentum=0.5)
    with pytest.raises(ValueError, match=r"^rmsprop_update: rho must be in \[0, 1\)"):
        ops.rmsprop_update(p, g, np.zeros(4), rho=-0.1)
    with pytest.raises(ValueError, match="^adagrad_update: eps must be > 0"):
        ops.adagrad_update(p, g, np.zeros(4), eps=-1.0)
    with pytest.raises(ValueError, match="^clip_grad_norm: max_norm must be >= 0"):
        ops.clip_grad_norm(g, -1.0)
    with pytest.raises(ValueError, match="^clip_grad_norm: grads must be C-contiguous"):
        ops.clip_grad_norm(np.ones(8)[::2], 1.0)


def test_velocity_without_momentum_holds_the_step(backend):
    p, g, v = np.zeros(3), np.array([1.0, 2.0, 3.0]), np.full(3, 9.0)
    ops.sgd_update(p, g, v, lr=0.5)
    assert v.tolist() == [1.0, 2.0, 3.0] and p.tolist() == [-0.5, -1.0, -1.5]


def test_strided_grads_accepted(backend):
    p1, p2 = np.zeros(5), np.zeros(5)
    g = np.arange(10.0)
    ops.sgd_update(p1, g[::2], lr=0.1)
    ops.sgd_update(p2, np.ascontiguousarray(g[::2]), lr=0.1)
    np.testing.assert_array_equal(p1, p2)
    assert ops.sgd_update(p1, g[::2]) is None


def test_empty_buffers(backend):
    p = np.zeros(0, np.float32)
    ops.adam_update(p, p.copy(), p.copy(), p.copy(), 1)
    assert ops.clip_grad_norm(np.zeros(0), 1.0) == 0.0
