"""Image layers, channels last as Keras 3 (re-exported by nnfast.layers): Conv2D,
MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Reshape (BatchNormalization:
_norm_layers.py).

Per-sample shapes are (height, width, channels). Geometry errors (wrong rank or channel count,
a window larger than a "valid" input, an output without pixels, non-positive strides) are
ValueErrors naming the layer and the shapes, raised when the model is built. The kernels and
their conventions: docs/conv.md.

>>> from nnfast import layers
>>> layers.Conv2D(8, 3, padding="same").compute_output_shape((28, 28, 1))
(28, 28, 8)
"""
from __future__ import annotations

import math

import numpy as np

from nnfast import ops
from nnfast._layer_base import _NEEDS_Z, KernelLayer, Layer
from nnfast.backends._ref_geometry import geometry, padding_mode, pair

__all__ = ["AveragePooling2D", "Conv2D", "GlobalAveragePooling2D", "MaxPooling2D", "Reshape"]


def _positive_int(what: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    return int(value)


def _image(layer, input_shape) -> tuple:
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: expects images of shape "
                         f"(height, width, channels) per sample, got input shape {shape}")
    return shape


# The largest kernel size, stride, dilation or pool size a layer takes: 2**31 - 1 keeps the
# window's dilated extent (k - 1) * d + 1 and every size derived from it inside int64, which
# the kernels compute in (a larger value made predict raise a raw OverflowError). Keras has no
# such bound; no image comes near it.
_MAX_WINDOW = 2**31 - 1


def _pair_arg(layer, name: str, value) -> tuple:
    """Keras' int-or-pair argument, checked at construction: TypeError (not ints), ValueError
    (below 1, or above 2**31 - 1, which no image needs and int64 sizes cannot hold)."""
    a, b = pair(type(layer).__name__, name, value)
    if a > _MAX_WINDOW or b > _MAX_WINDOW:
        raise ValueError(f"{type(layer).__name__}: {name} must be at most {_MAX_WINDOW} "
                         f"(2**31 - 1), got {value!r}")
    return a, b


class Conv2D(KernelLayer):
    """2-D convolution, y = act(conv(x, kernel) + bias); kernel (kh, kw, in_channels, filters).

    Keras 3 arguments and defaults. "same" padding keeps ceil(size / stride) pixels, the odd
    padding pixel at the bottom/right; strides > 1 together with dilation_rate > 1 is refused,
    as Keras does. Weights are initialized with fan_in = kh·kw·in_channels and
    fan_out = kh·kw·filters (Keras' rule for convolution kernels).

    >>> Conv2D(6, 5).compute_output_shape((28, 28, 1))
    (24, 24, 6)
    """


    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid",
                 dilation_rate=(1, 1), activation=None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros",
                 kernel_regularizer=None, alpha: float | None = None, input_shape=None,
                 name: str | None = None):
        super().__init__(input_shape, name)
        self.filters = _positive_int("Conv2D: filters", filters)
        self.kernel_size = _pair_arg(self, "kernel_size", kernel_size)
        self.strides = _pair_arg(self, "strides", strides)
        self.dilation_rate = _pair_arg(self, "dilation_rate", dilation_rate)
        self.padding = padding_mode("Conv2D", padding)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"Conv2D: strides > 1 cannot be combined with dilation_rate > 1 "
                             f"(as in Keras), got strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self._init_kernel(activation, alpha, use_bias, kernel_initializer, bias_initializer,
                          kernel_regularizer)

    def _geo(self, input_shape):
        h, w, _ = _image(self, input_shape)
        return geometry(f"Conv2D {self.name!r}", (h, w), self.kernel_size, self.strides,
                        self.padding, self.dilation_rate)

    def compute_output_shape(self, input_shape):
        g = self._geo(input_shape)
        return (g["OH"], g["OW"], self.filters)

    def param_shapes(self, input_shape=None):
        c = _image(self, input_shape or self.input_shape)[2]
        shapes = [("kernel", self.kernel_size + (c, self.filters))]
        if self.use_bias:
            shapes.append(("bias", (self.filters,)))
        return shapes

    def init_params(self, rng):
        kh, kw, c, f = self.W.shape
        self._init_kernel_params(kh * kw * c, kh * kw * f, rng)

    def _geo_args(self):
        return self.strides, self.padding, self.dilation_rate

    def forward(self, x, buf, mode, step):
        act = self._act(mode)
        z = buf["z"] if act in _NEEDS_Z and mode == "train" else None
        return ops.conv2d_forward(x, self.W, self.b, *self._geo_args(), act, self.alpha,
                                  out=buf["y"], z=z)

    def backward(self, dy, x, y, buf, need_dx, step):
        act = self._act("train")
        z = buf["z"] if act in _NEEDS_Z else None
        dx, _, _ = ops.conv2d_backward(dy, x, self.W, z, y, *self._geo_args(), act, self.alpha,
                                       dW=self.dW, db=self.db,
                                       dx=buf["dx"] if need_dx else None, dz=buf["dz"],
                                       need_dx=need_dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                **self._kernel_config()}


class _Pooling2D(Layer):
    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid",
                 input_shape=None, name: str | None = None):
        super().__init__(input_shape, name)
        self.pool_size = _pair_arg(self, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _pair_arg(self, "strides", strides)
        self.padding = padding_mode(type(self).__name__, padding)

    def compute_output_shape(self, input_shape):
        h, w, c = _image(self, input_shape)
        g = geometry(f"{type(self).__name__} {self.name!r}", (h, w), self.pool_size,
                     self.strides, self.padding)
        return (g["OH"], g["OW"], c)

    def _geo_args(self):
        return self.pool_size, self.strides, self.padding

    def workspace_shapes(self, need_dx, training):
        shapes = {"y": self.output_shape}
        if need_dx:
            shapes["dx"] = self.input_shape
        return shapes

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(_Pooling2D):
    """Max over pool_size windows (Keras 3: strides default to pool_size, "valid" padding).
    The backward routes each gradient to the first maximum of its window.

    >>> MaxPooling2D().compute_output_shape((24, 24, 6))
    (12, 12, 6)
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding: str = "valid",
                 input_shape=None, name: str | None = None):
        super().__init__(pool_size, strides, padding, input_shape, name)
        self._argmax = None   # the last training batch's argmax (fit runs on one thread)

    def forward(self, x, buf, mode, step):
        arg = None
        if mode == "train":
            shape = (x.shape[0],) + self.output_shape
            if self._argmax is None or self._argmax.shape[1:] != shape[1:] or \
                    self._argmax.shape[0] < shape[0]:
                self._argmax = np.empty(shape, np.int64)
            arg = self._argmax[:shape[0]]
        y, _ = ops.max_pool2d_forward(x, *self._geo_args(), out=buf["y"], argmax=arg)
        return y

    def backward(self, dy, x, y, buf, need_dx, step):
        arg = self._argmax[:x.shape[0]]
        return ops.max_pool2d_backward(dy, x, arg, *self._geo_args(), dx=buf["dx"])

    def __getstate__(self):
        state = super().__getstate__()
        state["_argmax"] = None
        return state


class AveragePooling2D(_Pooling2D):
    """Mean over pool_size windows; with "same" padding each window is divided by the number of
    its pixels inside the image (Keras 3 on TensorFlow/JAX; docs/conv.md).

    >>> AveragePooling2D(3, strides=2, padding="same").compute_output_shape((7, 7, 2))
    (4, 4, 2)
    """

    def forward(self, x, buf, mode, step):
        return ops.avg_pool2d_forward(x, *self._geo_args(), out=buf["y"])

    def backward(self, dy, x, y, buf, need_dx, step):
        return ops.avg_pool2d_backward(dy, x, *self._geo_args(), dx=buf["dx"])


class GlobalAveragePooling2D(Layer):
    """(height, width, channels) -> (channels,): the mean over every pixel (keepdims=False).

    >>> GlobalAveragePooling2D().compute_output_shape((7, 7, 32))
    (32,)
    """

    def compute_output_shape(self, input_shape):
        return (_image(self, input_shape)[2],)

    def workspace_shapes(self, need_dx, training):
        shapes = {"y": self.output_shape}
        if need_dx:
            shapes["dx"] = self.input_shape
        return shapes

    def forward(self, x, buf, mode, step):
        return ops.global_avg_pool2d_forward(x, out=buf["y"])

    def backward(self, dy, x, y, buf, need_dx, step):
        return ops.global_avg_pool2d_backward(dy, x, dx=buf["dx"])


class Reshape(Layer):
    """(...) -> target_shape per sample, a view; one entry may be -1 (inferred), as Keras.

    >>> Reshape((8, 8, 1)).compute_output_shape((64,))
    (8, 8, 1)
    """

    def __init__(self, target_shape, input_shape=None, name: str | None = None):
        super().__init__(input_shape, name)
        try:
            dims = tuple(target_shape)
        except TypeError:
            raise ValueError(f"Reshape: target_shape must be a tuple of positive ints (one may "
                             f"be -1), got {target_shape!r}") from None
        bad = any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or
                  (d < 1 and d != -1) for d in dims)
        if not dims or bad or sum(d == -1 for d in dims) > 1:
            raise ValueError(f"Reshape: target_shape must be a tuple of positive ints (one may "
                             f"be -1), got {target_shape!r}")
        self.target_shape = tuple(int(d) for d in dims)

    def compute_output_shape(self, input_shape):
        size = math.prod(input_shape)
        known = math.prod(d for d in self.target_shape if d != -1)
        if -1 in self.target_shape:
            if size % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape input shape "
                                 f"{tuple(input_shape)} ({size} values) to "
                                 f"{self.target_shape}")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape input shape "
                             f"{tuple(input_shape)} ({size} values) to {self.target_shape} "
                             f"({known} values)")
        return self.target_shape

    def forward(self, x, buf, mode, step):
        return x.reshape((x.shape[0],) + self.output_shape)

    def backward(self, dy, x, y, buf, need_dx, step):
        return dy.reshape(x.shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}
