"""Layers of a :class:`nnfast.Sequential` model: Dense, Activation, Dropout, Flatten, and the
image layers Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
BatchNormalization, Reshape (nnfast/_conv_layers.py, nnfast/_norm_layers.py).

A layer owns no memory of its own. The model hands it views into the flat parameter and
gradient buffers (``bind``) and, per batch size, views into the workspace (``buf``: the arrays
named by ``workspace_shapes``). ``forward`` and ``backward`` call :mod:`nnfast.ops` only.

``mode`` is "train" (dropout active, logits at a fused head), "eval" (logits at a fused head)
or "predict" (the full activation). A *fused head* is a last layer whose softmax or sigmoid is
folded into the loss (see nnfast.losses): during training and evaluation it emits logits and its
backward starts from the gradient with respect to the logits.

>>> from nnfast import layers
>>> layers.Dense(10, activation="relu", input_dim=4).get_config()["units"]
10
"""
from __future__ import annotations

import math

import numpy as np

from nnfast import ops

# The base class and shared helpers live in _layer_base (so _conv_layers can use them too).
from nnfast._layer_base import (  # noqa: E402,F401
    _ALIASES,
    _DEFAULT_ALPHA,
    _NEEDS_Z,
    ACTIVATIONS,
    KernelLayer,
    Layer,
    _activation,
    _alpha,
    _shape,
)


class Dense(KernelLayer):
    """y = act(x @ W + b), W of shape (in, out).

    >>> from nnfast.layers import Dense
    >>> Dense(3, activation="softmax").activation
    'softmax'
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 kernel_regularizer=None, alpha: float | None = None, input_dim: int | None = None,
                 input_shape=None, name: str | None = None):
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense: units must be an int >= 1, got {units!r}")
        if input_dim is not None:
            if input_shape is not None:
                raise ValueError(f"Dense: give input_dim or input_shape, not both; got "
                                 f"input_dim={input_dim!r} and input_shape={input_shape!r}")
            if (isinstance(input_dim, bool) or not isinstance(input_dim, (int, np.integer))
                    or input_dim < 1):
                raise ValueError(f"Dense: input_dim must be a positive int, got {input_dim!r}")
            input_shape = (input_dim,)
        super().__init__(input_shape, name)
        self.units = int(units)
        self._init_kernel(activation, alpha, use_bias, kernel_initializer, bias_initializer,
                          kernel_regularizer)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1:
            raise ValueError(f"Dense {self.name!r}: expects 1-D features per sample, got input "
                             f"shape {tuple(input_shape)}; add a Flatten() layer before it")
        return (self.units,)

    def param_shapes(self, input_shape=None):
        shapes = [("kernel", ((input_shape or self.input_shape)[0], self.units))]
        if self.use_bias:
            shapes.append(("bias", (self.units,)))
        return shapes

    def init_params(self, rng):
        self._init_kernel_params(*self.W.shape, rng)

    def forward(self, x, buf, mode, step):
        act = self._act(mode)
        z = buf["z"] if act in _NEEDS_Z and mode == "train" else None
        return ops.dense_forward(x, self.W, self.b, act, self.alpha, out=buf["y"], z=z)

    def backward(self, dy, x, y, buf, need_dx, step):
        act = self._act("train")
        z = buf["z"] if act in _NEEDS_Z else None
        dx, _, _ = ops.dense_backward(dy, x, self.W, z, y, act, self.alpha, dW=self.dW,
                                      db=self.db, dx=buf["dx"] if need_dx else None,
                                      dz=buf["dz"], need_dx=need_dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "units": self.units, **self._kernel_config()}


def _rows(a):
    """a (N, ...) as (N, features): a view of a contiguous batch (a copy of a strided input)."""
    return a.reshape(a.shape[0], -1)


class Activation(Layer):
    """y = act(x), elementwise (softmax/log_softmax: over each row)."""

    def __init__(self, activation, alpha: float | None = None, input_shape=None,
                 name: str | None = None):
        super().__init__(input_shape, name)
        self.activation = _activation(activation)
        self.alpha = _alpha(self.activation, alpha)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 1 and self.activation in ("softmax", "log_softmax"):
            raise ValueError(f"Activation {self.name!r}: {self.activation} needs 1-D features per "
                             f"sample, got input shape {tuple(input_shape)}; add Flatten() first")
        return tuple(input_shape)

    def _passthrough(self, mode: str) -> bool:
        return self.activation == "identity" or (self.fused_head and mode != "predict")

    def workspace_shapes(self, need_dx, training):
        shapes = {"y": self.output_shape}
        if need_dx:
            shapes["dx"] = self.input_shape
        return shapes

    def forward(self, x, buf, mode, step):
        if self._passthrough(mode):
            return x
        # the kernels take (rows, features): an image batch is read as (N, H*W*C) and the
        # result viewed back (elementwise, so the same values; softmax needs 1-D, see build)
        y = buf["y"]
        ops.activation_forward(_rows(x), self.activation, self.alpha, out=_rows(y))
        return y

    def backward(self, dy, x, y, buf, need_dx, step):
        if self._passthrough("train"):
            return dy
        z = _rows(x) if self.activation in _NEEDS_Z else None
        dx = buf["dx"]
        ops.activation_backward(_rows(dy), z, _rows(y), self.activation, self.alpha,
                                out=_rows(dx))
        return dx

    def get_config(self):
        return {**super().get_config(), "activation": self.activation, "alpha": self.alpha}


class Dropout(Layer):
    """Training: y = x·keep/(1-rate), keep drawn from a counter-based RNG of (seed, step, index),
    so masks are the same on every backend and thread count. Inference: y = x."""

    def __init__(self, rate: float, seed: int | None = None, input_shape=None,
                 name: str | None = None):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be a number in [0, 1), got {rate!r}")
        super().__init__(input_shape, name)
        self.rate = float(rate)
        self.seed = seed          # None: derived from the model's seed at build time

    def workspace_shapes(self, need_dx, training):
        shapes = {"y": self.output_shape} if training else {}
        if need_dx:
            shapes["dx"] = self.input_shape
        return shapes

    def forward(self, x, buf, mode, step):
        if mode != "train" or self.rate == 0.0:
            return x
        return ops.dropout_forward(x, self.rate, self.seed, step, out=buf["y"])

    def backward(self, dy, x, y, buf, need_dx, step):
        if self.rate == 0.0:
            return dy
        return ops.dropout_backward(dy, self.rate, self.seed, step, out=buf["dx"])

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Flatten(Layer):
    """(N, d1, d2, ...) → (N, d1·d2·...), a view."""

    def compute_output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def forward(self, x, buf, mode, step):
        return x.reshape(x.shape[0], self.output_shape[0])

    def backward(self, dy, x, y, buf, need_dx, step):
        return dy.reshape(x.shape)


# The image layers live in their own modules (this one would pass 400 lines); defined after
# the base, imported here so nnfast.layers is the one public list.
from nnfast._conv_layers import (  # noqa: E402
    AveragePooling2D,
    Conv2D,
    GlobalAveragePooling2D,
    MaxPooling2D,
    Reshape,
)
from nnfast._norm_layers import BatchNormalization  # noqa: E402

LAYERS = {cls.__name__: cls for cls in (Dense, Activation, Dropout, Flatten, Conv2D,
                                        MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D,
                                        BatchNormalization, Reshape)}


def from_config(entry: dict) -> Layer:
    """Rebuild a layer from ``{"class": name, "config": {...}}`` (only the classes above)."""
    cls = LAYERS.get(entry.get("class"))
    if cls is None:
        raise ValueError(f"unknown layer class {entry.get('class')!r}; valid layers: "
                         f"{', '.join(LAYERS)}")
    return cls.from_config(dict(entry["config"]))


__all__ = ["Layer", "Dense", "Activation", "Dropout", "Flatten", "Conv2D", "MaxPooling2D",
           "AveragePooling2D", "GlobalAveragePooling2D", "BatchNormalization", "Reshape",
           "ACTIVATIONS", "from_config"]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
