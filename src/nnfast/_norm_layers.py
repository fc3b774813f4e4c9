"""BatchNormalization (re-exported by nnfast.layers), Keras 3's layer over the last axis.

Training ("train" mode, inside fit): batch mean and biased variance over every axis but the
last, moving statistics updated in place as moving = moving·momentum + batch·(1 − momentum).
Evaluation and prediction: the moving statistics. gamma and beta are trainable parameters in
the model's flat parameter buffer; moving_mean and moving_variance are non-trainable weights in
its flat *state* buffer (Layer.state_shapes), which the optimizer never sees (no weight decay,
no momentum), and which get_weights/set_weights and the model file carry.

>>> from nnfast import layers
>>> bn = layers.BatchNormalization()
>>> bn.momentum, bn.epsilon
(0.99, 0.001)
"""
from __future__ import annotations

import math

import numpy as np

from nnfast import initializers, ops
from nnfast._layer_base import Layer

__all__ = ["BatchNormalization"]


class BatchNormalization(Layer):
    """y = gamma·(x − mean)/sqrt(var + epsilon) + beta per channel (the last axis).

    Keras 3 arguments and defaults (momentum=0.99, epsilon=1e-3, center, scale, the four
    initializers). Only axis=-1 (channels last) is supported. get_weights order:
    [gamma, beta, moving_mean, moving_variance] (those present), as Keras.
    """

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3,
                 center: bool = True, scale: bool = True, beta_initializer: str = "zeros",
                 gamma_initializer: str = "ones", moving_mean_initializer: str = "zeros",
                 moving_variance_initializer: str = "ones", input_shape=None,
                 name: str | None = None):
        super().__init__(input_shape, name)
        if axis not in (-1,):
            raise ValueError(f"BatchNormalization: only axis=-1 (channels last) is supported, "
                             f"got axis={axis!r}")
        for what, v, lo_ok in (("momentum", momentum, True), ("epsilon", epsilon, False)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v < 0 or (what == "momentum" and v > 1) or (v == 0 and not lo_ok):
                want = "in [0, 1]" if what == "momentum" else "> 0"
                raise ValueError(f"BatchNormalization: {what} must be a number {want}, "
                                 f"got {v!r}")
        self.axis, self.momentum, self.epsilon = -1, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        for init in (beta_initializer, gamma_initializer, moving_mean_initializer,
                     moving_variance_initializer):
            initializers.get(init)
        self.gamma = self.beta = self.dgamma = self.dbeta = None
        self.moving_mean = self.moving_variance = None
        self._inv_std = None

    @property
    def has_params(self) -> bool:
        return self.center or self.scale

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _channels(self, input_shape=None) -> int:
        return (input_shape or self.input_shape)[-1]

    def param_shapes(self, input_shape=None):
        c = self._channels(input_shape)
        return ([("gamma", (c,))] if self.scale else []) + \
               ([("beta", (c,))] if self.center else [])

    def state_shapes(self, input_shape=None):
        c = self._channels(input_shape)
        return [("moving_mean", (c,)), ("moving_variance", (c,))]

    def bind(self, params, grads):
        params, grads = list(params), list(grads)
        if self.scale:
            self.gamma, self.dgamma = params.pop(0), grads.pop(0)
        if self.center:
            self.beta, self.dbeta = params.pop(0), grads.pop(0)

    def init_params(self, rng):
        c = self._channels()
        if self.scale:
            self.gamma[...] = initializers.get(self.gamma_initializer)((c,), c, c, rng)
        if self.center:
            self.beta[...] = initializers.get(self.beta_initializer)((c,), c, c, rng)

    def bind_state(self, views):
        self.moving_mean, self.moving_variance = views
        self._inv_std = np.empty_like(self.moving_mean)

    def init_state(self):
        c = self._channels()
        rng = np.random.default_rng(0)   # the moving-statistic initializers are constants
        self.moving_mean[...] = initializers.get(self.moving_mean_initializer)((c,), c, c, rng)
        self.moving_variance[...] = initializers.get(self.moving_variance_initializer)(
            (c,), c, c, rng)

    def weight_arrays(self):
        return [a for a in (self.gamma, self.beta) if a is not None] + \
               [self.moving_mean, self.moving_variance]

    def workspace_shapes(self, need_dx, training):
        shapes = {"y": self.output_shape}
        if training:
            shapes["xhat"] = self.input_shape
        if need_dx:
            shapes["dx"] = self.input_shape
        return shapes

    def forward(self, x, buf, mode, step):
        training = mode == "train"
        y, _, _ = ops.batch_norm_forward(x, self.gamma, self.beta, self.moving_mean,
                                         self.moving_variance, training, self.momentum,
                                         self.epsilon, out=buf["y"],
                                         xhat=buf["xhat"] if training else None,
                                         inv_std=self._inv_std if training else None)
        return y

    def backward(self, dy, x, y, buf, need_dx, step):
        dx, _, _ = ops.batch_norm_backward(dy, buf["xhat"], self.gamma, self._inv_std,
                                           dx=buf["dx"] if need_dx else None, dgamma=self.dgamma,
                                           dbeta=self.dbeta, need_dx=need_dx)
        return dx

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": self.beta_initializer,
                "gamma_initializer": self.gamma_initializer,
                "moving_mean_initializer": self.moving_mean_initializer,
                "moving_variance_initializer": self.moving_variance_initializer}
