"""Layers of a :class:`nnfast.Sequential` model: Dense, Activation, Dropout, Flatten.

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

from nnfast import initializers, ops, regularizers

ACTIVATIONS = ("identity", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "gelu_tanh",
               "silu", "softplus", "softmax", "log_softmax")
_ALIASES = {None: "identity", "linear": "identity", "swish": "silu"}
_DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}
# The backward of these reads the pre-activation z; the others work from y alone.
_NEEDS_Z = frozenset({"relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus"})


def _activation(name) -> str:
    name = _ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid activations: "
                         f"{', '.join(ACTIVATIONS)} (or None/'linear' for identity)")
    return name


def _alpha(activation: str, alpha) -> float:
    if alpha is None:
        return _DEFAULT_ALPHA.get(activation, 0.0)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
    return float(alpha)


def _shape(input_shape, what: str) -> tuple | None:
    if input_shape is None:
        return None
    try:
        dims = tuple(input_shape)
    except TypeError:
        raise ValueError(f"{what} must be a tuple of positive ints, got {input_shape!r}") from None
    # int() would turn 2.5 into 2 and None (Keras' batch dimension) into a TypeError
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) for d in dims):
        raise ValueError(f"{what} must be a tuple of positive ints, got {input_shape!r}")
    shape = tuple(int(d) for d in dims)
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"{what} must be a tuple of positive ints, got {input_shape!r}")
    return shape


class Layer:
    """Base class. Subclasses set ``output_shape`` in ``build`` and implement the passes."""

    has_params = False
    _owner = None   # weak reference to the model the layer belongs to (engine/layer_owner.py)

    def __init__(self, input_shape=None, name: str | None = None):
        self.input_shape = _shape(input_shape, f"{type(self).__name__}: input_shape")
        self.name = name
        self.output_shape: tuple | None = None
        self.built = False
        self.fused_head = False   # set by the model at compile time

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Per-sample output shape for a per-sample input shape (checks it; changes nothing)."""
        return tuple(input_shape)

    def build(self, input_shape: tuple) -> tuple:
        self.output_shape = self.compute_output_shape(input_shape)
        self.input_shape = tuple(input_shape)
        self.built = True
        return self.output_shape

    def param_shapes(self, input_shape: tuple | None = None) -> list:
        """[(name, shape)] of the parameters, in their order in the flat buffer, for the built
        input shape or the per-sample ``input_shape`` given."""
        return []

    def bind(self, params: list, grads: list) -> None:
        """Receive views into the model's flat parameter and gradient buffers."""

    def init_params(self, rng: np.random.Generator) -> None:
        """Fill the parameter views from ``rng``."""

    def workspace_shapes(self, need_dx: bool, training: bool) -> dict:
        """{name: per-sample shape} of the workspace arrays this layer needs."""
        return {}

    def forward(self, x, buf: dict, mode: str, step: int):
        return x

    def backward(self, dy, x, y, buf: dict, need_dx: bool, step: int):
        return dy

    def regularization(self, add_gradient: bool) -> float:
        return 0.0

    def count_params(self, input_shape: tuple | None = None) -> int:
        return sum(math.prod(s) for _, s in self.param_shapes(input_shape))

    def get_config(self) -> dict:
        cfg = {"name": self.name}
        if self.input_shape is not None:
            cfg["input_shape"] = list(self.input_shape)
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    def __getstate__(self):
        # a copied or unpickled layer belongs to no model (and a weakref cannot be pickled)
        state = dict(self.__dict__)
        state.pop("_owner", None)
        return state

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items()
                         if k not in ("name", "input_shape"))
        return f"{type(self).__name__}({args})"


class Dense(Layer):
    """y = act(x @ W + b), W of shape (in, out).

    >>> from nnfast.layers import Dense
    >>> Dense(3, activation="softmax").activation
    'softmax'
    """

    has_params = True

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
        self.activation = _activation(activation)
        self.alpha = _alpha(self.activation, alpha)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        initializers.get(kernel_initializer)
        initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.W = self.b = self.dW = self.db = None
        self._scratch = None

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

    def bind(self, params, grads):
        self.W, self.dW = params[0], grads[0]
        if self.use_bias:
            self.b, self.db = params[1], grads[1]
        if self.kernel_regularizer is not None:
            self._scratch = np.empty_like(self.W)

    def init_params(self, rng):
        k, m = self.W.shape
        self.W[...] = initializers.get(self.kernel_initializer)(self.W.shape, k, m, rng)
        if self.use_bias:
            self.b[...] = initializers.get(self.bias_initializer)(self.b.shape, k, m, rng)

    def _act(self, mode: str) -> str:
        return "identity" if self.fused_head and mode != "predict" else self.activation

    def workspace_shapes(self, need_dx, training):
        shapes = {"y": (self.units,)}
        if training:
            shapes["dz"] = (self.units,)
            if self.activation in _NEEDS_Z:
                shapes["z"] = (self.units,)
        if need_dx:
            shapes["dx"] = self.input_shape
        return shapes

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

    def regularization(self, add_gradient):
        reg = self.kernel_regularizer
        if reg is None:
            return 0.0
        if add_gradient:   # the training step: fit's thread alone uses the scratch array
            reg.add_gradient(self.W, self.dW, self._scratch)
            return reg.loss(self.W, self._scratch)
        return reg.loss(self.W, None)   # evaluate, from any thread: no shared scratch

    def get_config(self):
        reg = self.kernel_regularizer
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "alpha": self.alpha, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer,
                "kernel_regularizer": None if reg is None else reg.get_config()}


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
        return ops.activation_forward(x, self.activation, self.alpha, out=buf["y"])

    def backward(self, dy, x, y, buf, need_dx, step):
        if self._passthrough("train"):
            return dy
        z = x if self.activation in _NEEDS_Z else None
        return ops.activation_backward(dy, z, y, self.activation, self.alpha, out=buf["dx"])

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


LAYERS = {cls.__name__: cls for cls in (Dense, Activation, Dropout, Flatten)}


def from_config(entry: dict) -> Layer:
    """Rebuild a layer from ``{"class": name, "config": {...}}`` (only the classes above)."""
    cls = LAYERS.get(entry.get("class"))
    if cls is None:
        raise ValueError(f"unknown layer class {entry.get('class')!r}; valid layers: "
                         f"{', '.join(LAYERS)}")
    return cls.from_config(dict(entry["config"]))


__all__ = ["Layer", "Dense", "Activation", "Dropout", "Flatten", "ACTIVATIONS", "from_config"]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
