"""The base of every layer (nnfast.layers.Layer) and the helpers the layer modules share
(activation names, shape checks). It lives apart from nnfast/layers.py so that the layer
modules (layers.py, _conv_layers.py) import it without importing each other."""
from __future__ import annotations

import math

import numpy as np

from nnfast import initializers, regularizers

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


# Geometry the weights, workspaces and plans are laid out for: read-only once the layer is
# built (a change used to fail later with the plans' internal messages, or be ignored).
_GEOMETRY = frozenset({
    "units", "filters", "kernel_size", "strides", "padding", "dilation_rate", "pool_size",
    "target_shape", "axis", "use_bias", "center", "scale"})
# What the inference plan copies out of a layer when it is built: assigning one of these on a
# built layer drops its model's cached plan, so predict runs the new value. (fit's one-call
# step compares its own watched values before every batch, nnfast/engine/step.py.)
_PLAN_READS = frozenset({"activation", "alpha", "epsilon"})


class Layer:
    """Base class. Subclasses set ``output_shape`` in ``build`` and implement the passes.

    Once built, a layer's geometry (units, filters, kernel_size, strides, padding,
    dilation_rate, pool_size, target_shape, axis, use_bias, center, scale) is read-only:
    assigning it raises AttributeError and changes nothing (Keras 3 accepts such assignments,
    then ignores them or fails in the next call, depending on the attribute). activation,
    alpha, epsilon, rate, momentum, seed and kernel_regularizer may change at any time, inside
    fit too (a callback's): the next batch, predict or evaluate runs the new value."""

    has_params = False
    _owner = None   # weak reference to the model the layer belongs to (engine/layer_owner.py)

    def __setattr__(self, name, value):
        if name in _GEOMETRY and self.__dict__.get("built", False):
            kind = type(self).__name__
            raise AttributeError(
                f"{kind} {self.name!r}: {name} cannot change once the layer is built (it is "
                f"{getattr(self, name)!r}, assigned {value!r}): its weights and the model's "
                f"plans are laid out for it. Use a new layer, e.g. "
                f"{kind}.from_config({{**layer.get_config(), {name!r}: ...}}), in a new model")
        if name == "activation":
            value = _activation(value)       # as the constructors: ValueError naming the valid
        object.__setattr__(self, name, value)
        if name in _PLAN_READS and self._owner is not None:
            model = self._owner()
            if model is not None:
                model._layer_config_changed()

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
        """Trainable parameters: this layer's share of the model's flat parameter buffer."""
        return sum(math.prod(s) for _, s in self.param_shapes(input_shape))

    def state_shapes(self, input_shape: tuple | None = None) -> list:
        """[(name, shape)] of non-trainable weights (BatchNormalization's moving statistics).
        They live in the model's flat *state* buffer, which no optimizer sees (so neither a
        weight decay nor a momentum ever moves them), and are saved with the model."""
        return []

    def count_state(self, input_shape: tuple | None = None) -> int:
        return sum(math.prod(s) for _, s in self.state_shapes(input_shape))

    def bind_state(self, views: list) -> None:
        """Receive views into the model's flat state buffer (as ``state_shapes`` lists them)."""

    def init_state(self) -> None:
        """Fill the state views with their initial values."""

    def weight_arrays(self) -> list:
        """The arrays get_weights returns for this layer, in Keras' order: the parameters
        (kernel, then bias), then the non-trainable weights."""
        if not self.has_params:
            return []
        return [self.W] + ([self.b] if getattr(self, "use_bias", False) else [])

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


class KernelLayer(Layer):
    """What Dense and Conv2D share: a kernel W (and bias b) in the flat parameter buffer,
    y = act(op(x, W) + b) with the bias and activation fused into the kernel's epilogue, an
    optional kernel regularizer, and Keras' initializer arguments."""

    has_params = True

    def _init_kernel(self, activation, alpha, use_bias, kernel_initializer, bias_initializer,
                     kernel_regularizer) -> None:
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

    def bind(self, params, grads):
        self.W, self.dW = params[0], grads[0]
        if self.use_bias:
            self.b, self.db = params[1], grads[1]
        if self.kernel_regularizer is not None:
            self._scratch = np.empty_like(self.W)

    def _init_kernel_params(self, fan_in: int, fan_out: int, rng) -> None:
        self.W[...] = initializers.get(self.kernel_initializer)(self.W.shape, fan_in, fan_out, rng)
        if self.use_bias:
            self.b[...] = initializers.get(self.bias_initializer)(self.b.shape, fan_in, fan_out,
                                                                  rng)

    def _act(self, mode: str) -> str:
        return "identity" if self.fused_head and mode != "predict" else self.activation

    def workspace_shapes(self, need_dx, training):
        shapes = {"y": self.output_shape}
        if training:
            shapes["dz"] = self.output_shape
            if self.activation in _NEEDS_Z:
                shapes["z"] = self.output_shape
        if need_dx:
            shapes["dx"] = self.input_shape
        return shapes

    def regularization(self, add_gradient):
        reg = self.kernel_regularizer
        if reg is None:
            return 0.0
        if add_gradient:   # the training step: fit's thread alone uses the scratch array
            reg.add_gradient(self.W, self.dW, self._scratch)
            return reg.loss(self.W, self._scratch)
        return reg.loss(self.W, None)   # evaluate, from any thread: no shared scratch

    def _kernel_config(self) -> dict:
        reg = self.kernel_regularizer
        return {"activation": self.activation, "alpha": self.alpha, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer,
                "kernel_regularizer": None if reg is None else reg.get_config()}
