"""activation_backward against central finite differences of activation_forward (float64),
on both backends."""
import numpy as np
import pytest

from nnfast import ops

ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "gelu_tanh",
               "silu", "softplus", "softmax", "log_softmax")
ALPHA = {"leaky_relu": 0.1, "elu": 1.3}


def central_diff(f, x, h=1e-6):
    """d f(x) / dx for scalar f, one coordinate at a time."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        fm = f(x)
        x[i] = old
        g[i] = (fp - fm) / (2 * h)
    return g


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


def away_from_kinks(rng, shape):
    """Inputs in +-[0.05, 3]: relu/leaky_relu/elu have no derivative at 0."""
    return rng.uniform(0.05, 3.0, shape) * rng.choice([-1.0, 1.0], shape)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (4, 2)])
def test_activation_backward_matches_finite_differences(backend, activation, shape):
    rng = np.random.default_rng(7)
    alpha = ALPHA.get(activation, 0.0)
    z = away_from_kinks(rng, shape)
    weights = rng.standard_normal(shape)  # the loss is sum(weights * act(z))
    y = ops.activation_forward(z, activation, alpha)
    dz = ops.activation_backward(weights, z, y, activation, alpha)
    num = central_diff(lambda v: float(np.sum(weights * ops.activation_forward(v, activation,
                                                                               alpha))), z)
    assert rel_err(dz, num) < 1e-6, (activation, dz, num)
