"""The base of every layer (nnfast.layers.Layer) and the helpers the layer modules share
(activation names, shape checks). It lives apart from nnfast/layers.py so that the layer
modules (layers.py, _conv_layers.py) import it without importing each other."""
from __future__ import annotations

import math

import numpy as np

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
