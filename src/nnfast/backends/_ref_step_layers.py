"""One layer of the reference training step (nnfast/backends/_ref_step.py): its training
forward and its backward, each the clearest composition of this backend's functions in the
order csrc/nn/step.c calls the compiled ones, on the layer's workspace rows (``spec``: the
layer dict TrainStep documents)."""
from __future__ import annotations

from nnfast.backends._ref_activations import activation_backward, activation_forward
from nnfast.backends._ref_batchnorm import batch_norm_backward, batch_norm_forward
from nnfast.backends._ref_conv import conv2d_backward, conv2d_forward
from nnfast.backends._ref_dense import dense_backward, dense_forward
from nnfast.backends._ref_dropout import dropout_backward, dropout_forward
from nnfast.backends._ref_pool import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

_NEEDS_Z = frozenset({"relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus"})


def has_params(spec) -> bool:
    kind = spec.get("kind")
    return kind in ("dense", "conv2d") or (kind == "batch_norm" and (
        spec.get("gamma") is not None or spec.get("beta") is not None))


def _rows(a, n):
    return a.reshape(n, -1)


def forward_layer(spec, a, n: int, dropout_step: int):
    """One layer's training forward on the batch a (n rows) into its workspace rows."""
    kind = spec["kind"]
    act, alpha = spec.get("activation", "identity"), spec.get("alpha", 0.0)
    if kind == "dense":
        z = spec["z"][:n] if act in _NEEDS_Z else None
        return dense_forward(_rows(a, n), spec["W"], spec.get("b"), act, alpha,
                             out=spec["y"][:n], z=z)
    if kind == "conv2d":
        z = spec["z"][:n] if act in _NEEDS_Z else None
        return conv2d_forward(a, spec["W"], spec.get("b"), *_conv_geo(spec), act, alpha,
                              out=spec["y"][:n], z=z)
    if kind == "activation" and act != "identity":
        y = spec["y"][:n]
        activation_forward(_rows(a, n), act, alpha, out=_rows(y, n))
        return y
    if kind == "dropout" and spec["rate"] != 0.0:
        return dropout_forward(a, spec["rate"], spec["seed"], dropout_step, out=spec["y"][:n])
    if kind == "max_pool2d":
        return max_pool2d_forward(a, *_pool_geo(spec), out=spec["y"][:n],
                                  argmax=spec["argmax"][:n])[0]
    if kind == "avg_pool2d":
        return avg_pool2d_forward(a, *_pool_geo(spec), out=spec["y"][:n])
    if kind == "global_avg_pool2d":
        return global_avg_pool2d_forward(a, out=spec["y"][:n])
    if kind == "batch_norm":
        return batch_norm_forward(a, spec.get("gamma"), spec.get("beta"), spec["moving_mean"],
                                  spec["moving_variance"], True, spec.get("momentum", 0.99),
                                  spec.get("epsilon", 1e-3), out=spec["y"][:n],
                                  xhat=spec["xhat"][:n], inv_std=spec["inv_std"])[0]
    if kind == "flatten":
        return _rows(a, n)
    if kind == "reshape":
        return a.reshape((n,) + tuple(spec["shape"]))
    return a


def backward_layer(spec, g, x, y, n: int, need_dx: bool, dropout_step: int):
    """One layer's backward from g (d loss / d its output); returns d loss / d its input (g
    itself where the layer passes it on; None after the first trainable layer)."""
    kind = spec["kind"]
    act, alpha = spec.get("activation", "identity"), spec.get("alpha", 0.0)
    dx = spec["dx"][:n] if need_dx and spec.get("dx") is not None else None
    if kind in ("dense", "conv2d"):
        z = spec["z"][:n] if act in _NEEDS_Z else None
        if kind == "dense":
            out = dense_backward(g, _rows(x, n), spec["W"], z, y, act, alpha, dW=spec["dW"],
                                 db=spec.get("db"), dx=dx, dz=spec["dz"][:n], need_dx=need_dx)
        else:
            out = conv2d_backward(g, x, spec["W"], z, y, *_conv_geo(spec), act, alpha,
                                  dW=spec["dW"], db=spec.get("db"), dx=dx, dz=spec["dz"][:n],
                                  need_dx=need_dx)
        return out[0]
    if kind == "activation" and act != "identity":
        activation_backward(_rows(g, n), _rows(x, n) if act in _NEEDS_Z else None, _rows(y, n),
                            act, alpha, out=_rows(dx, n))
        return dx
    if kind == "dropout" and spec["rate"] != 0.0:
        return dropout_backward(g, spec["rate"], spec["seed"], dropout_step, out=dx)
    if kind == "max_pool2d":
        return max_pool2d_backward(g, x, spec["argmax"][:n], *_pool_geo(spec), dx=dx)
    if kind == "avg_pool2d":
        return avg_pool2d_backward(g, x, *_pool_geo(spec), dx=dx)
    if kind == "global_avg_pool2d":
        return global_avg_pool2d_backward(g, x, dx=dx)
    if kind == "batch_norm":
        return batch_norm_backward(g, spec["xhat"][:n], spec.get("gamma"), spec["inv_std"],
                                   dx=dx, dgamma=spec.get("dgamma"), dbeta=spec.get("dbeta"),
                                   need_dx=need_dx)[0]
    return g.reshape(x.shape)   # flatten, reshape, and the layers that pass their input on


def _conv_geo(spec) -> tuple:
    return (spec.get("strides", 1), spec.get("padding", "valid"), spec.get("dilation_rate", 1))


def _pool_geo(spec) -> tuple:
    return (spec.get("pool_size", 2), spec.get("strides"), spec.get("padding", "valid"))
