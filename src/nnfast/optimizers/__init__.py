"""Optimizers: one fused :mod:`nnfast.ops` update over the model's flat parameter buffer per step.

The state (moments, accumulators) is a set of flat arrays mirroring the parameter buffer, so
save/load, ``get_weights`` and distributed reductions all see the same layout. ``clipnorm`` clips
the global L2 norm of the gradient buffer before the update.

``learning_rate`` is a number or a schedule from :mod:`nnfast.optimizers.schedules` (Keras 3).
Reading ``optimizer.learning_rate`` gives the rate the next update uses: the number, or
``schedule(iterations)``. Callbacks may set a number between steps; setting it on an optimizer
built with a schedule raises ``TypeError``, as in Keras (so ``LearningRateScheduler`` and
``ReduceLROnPlateau`` raise when they try to change it). The schedule object itself is
``optimizer.learning_rate_schedule`` (None for a number).

Parameter names and defaults follow Keras.

Hyperparameters are checked at construction (finite, in range: ``epsilon`` > 0, rates such as
``beta_1`` in [0, 1)) and again against the model's dtype when the optimizer is built for it
(at ``compile`` of a built model, or when the model is built), before any step: the kernels
compute in that dtype, so in a float32 model ``learning_rate=1e39`` would be inf (training to
NaN), ``epsilon=1e-50`` would be 0 and ``beta_2=1 - 1e-9`` would be 1. Keras 3 checks none of
these (only SGD's ``momentum`` in [0, 1]) and trains to NaN or Inf; nnfast refuses them, naming
the optimizer, the parameter, the value and the dtype.

>>> from nnfast import optimizers
>>> opt = optimizers.Adam(learning_rate=1e-3)
>>> opt.get_config()["learning_rate"]
0.001
"""
from __future__ import annotations

import math

import numpy as np

from nnfast import ops
from nnfast.optimizers import schedules


def _number(cls: str, name: str, value, low=0.0, high=math.inf, closed_high=True,
            closed_low=True):
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
          and math.isfinite(value) and (value >= low if closed_low else value > low)
          and (value <= high if closed_high else value < high))
    if not ok:
        bound = f"{'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}"
        raise ValueError(f"{cls}: {name} must be a finite number in {bound}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: subclasses name their state arrays in ``_state_names`` and implement
    ``_update(params, grads)``."""

    _state_names: tuple = ()

    def __init__(self, learning_rate: float, weight_decay: float = 0.0,
                 clipnorm: float | None = None):
        name = type(self).__name__
        if isinstance(learning_rate, schedules.LearningRateSchedule):
            self.learning_rate_schedule = learning_rate
            self._learning_rate = None
        else:
            self.learning_rate_schedule = None
            self._learning_rate = _number(name, "learning_rate", learning_rate)
        self.weight_decay = _number(name, "weight_decay", weight_decay)
        self.clipnorm = None if clipnorm is None else _number(name, "clipnorm", clipnorm, 1e-300)
        self.iterations = 0
        self.state: dict[str, np.ndarray] = {}
        self.size: int | None = None   # parameters the state was built for

    @property
    def learning_rate(self) -> float:
        """The rate of the next update: the number, or ``schedule(iterations)``."""
        if self.learning_rate_schedule is not None:
            return float(self.learning_rate_schedule(self.iterations))
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if self.learning_rate_schedule is not None:
            # Keras 3 (BaseOptimizer.learning_rate setter) raises TypeError here too.
            raise TypeError(
                f"{type(self).__name__}: this optimizer was created with a learning-rate "
                f"schedule ({type(self.learning_rate_schedule).__name__}) as its "
                f"learning_rate, so its learning rate cannot be set (got {value!r}); create the "
                f"optimizer with a number as learning_rate to change it during training")
        self._learning_rate = _number(type(self).__name__, "learning_rate", value)

    # rates that must stay below 1 once rounded to the model's dtype
    _UNIT = ("beta_1", "beta_2", "momentum", "rho")

    def check_dtype(self, dtype) -> None:
        """Raise ValueError if a hyperparameter leaves its range once rounded to ``dtype``
        (float32: beyond 3.4e38 is inf, 1 - 1e-9 is 1, 1e-50 is 0)."""
        dtype = np.dtype(dtype)
        cls = type(self).__name__
        for name, value in self.get_config().items():
            if isinstance(value, bool) or not isinstance(value, float):
                continue
            with np.errstate(over="ignore", under="ignore"):
                r = float(dtype.type(value))
            why = ("rounds to inf" if math.isinf(r) else
                   "rounds to 1.0, and it must be < 1" if name in self._UNIT and r >= 1 else
                   "rounds to 0.0, and it must be > 0" if value > 0 and r == 0 and name in
                   ("epsilon", "clipnorm") else None)
            if why:
                raise ValueError(f"{cls}: {name}={value!r} is out of range for a {dtype} model: "
                                 f"it {why} in {dtype}; use a value {dtype} can hold, or a "
                                 f"{'float64' if dtype == np.float32 else 'smaller'} model")

    def build(self, size: int, dtype) -> None:
        """Allocate the state for a flat buffer of ``size`` parameters (zeroed); first checks
        the hyperparameters against ``dtype`` (check_dtype)."""
        self.check_dtype(dtype)
        self.state = {n: np.zeros(size, dtype=dtype) for n in self._state_names}
        self.iterations = 0
        self.size = int(size)

    def step(self, params: np.ndarray, grads: np.ndarray) -> None:
        """One update of ``params`` in place from ``grads`` (which clipnorm may scale)."""
        if self.clipnorm is not None:
            ops.clip_grad_norm(grads, self.clipnorm)
        # The counter moves after the update: an interrupted step leaves it consistent.
        self._update(params, grads, self.iterations + 1)
        self.iterations += 1

    def _update(self, params, grads, t):
        raise NotImplementedError

    def get_config(self) -> dict:
        lr = (self._learning_rate if self.learning_rate_schedule is None
              else schedules.serialize(self.learning_rate_schedule))
        return {"learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm}

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        """The optimizer of ``get_config()``; a schedule's dict is rebuilt by
        :func:`nnfast.optimizers.schedules.deserialize` (known classes only)."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """v = momentum·v + g; params -= lr·(g + momentum·v if nesterov else v)."""

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clipnorm: float | None = None):
        super().__init__(learning_rate, weight_decay, clipnorm)
        self.momentum = _number("SGD", "momentum", momentum, 0.0, 1.0, closed_high=False)
        self.nesterov = bool(nesterov)
        self._state_names = ("velocity",) if self.momentum else ()

    def _update(self, params, grads, t):
        ops.sgd_update(params, grads, self.state.get("velocity"), lr=self.learning_rate,
                       momentum=self.momentum, nesterov=self.nesterov,
                       weight_decay=self.weight_decay)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam with bias correction; weight_decay is L2 added to the gradient (see AdamW)."""

    _state_names = ("m", "v")
    _decoupled = False

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, weight_decay: float = 0.0, clipnorm: float | None = None):
        super().__init__(learning_rate, weight_decay, clipnorm)
        name = type(self).__name__
        self.beta_1 = _number(name, "beta_1", beta_1, 0.0, 1.0, closed_high=False)
        self.beta_2 = _number(name, "beta_2", beta_2, 0.0, 1.0, closed_high=False)
        self.epsilon = _number(name, "epsilon", epsilon, closed_low=False)

    def _update(self, params, grads, t):
        ops.adam_update(params, grads, self.state["m"], self.state["v"], t,
                        lr=self.learning_rate, beta1=self.beta_1, beta2=self.beta_2,
                        eps=self.epsilon, weight_decay=self.weight_decay,
                        decoupled=self._decoupled)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class AdamW(Adam):
    """Adam with decoupled weight decay: params -= lr·(m̂/(√v̂ + eps) + wd·params)."""

    _decoupled = True

    def __init__(self, learning_rate: float = 0.001, weight_decay: float = 0.004,
                 beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 clipnorm: float | None = None):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, clipnorm)


class RMSprop(Optimizer):
    """sq = ρ·sq + (1-ρ)·g²; params -= lr·g/(√sq + eps) (momentum: through a velocity)."""

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, weight_decay: float = 0.0, clipnorm: float | None = None):
        super().__init__(learning_rate, weight_decay, clipnorm)
        self.rho = _number("RMSprop", "rho", rho, 0.0, 1.0, closed_high=False)
        self.momentum = _number("RMSprop", "momentum", momentum, 0.0, 1.0, closed_high=False)
        self.epsilon = _number("RMSprop", "epsilon", epsilon, closed_low=False)
        self._state_names = ("sq", "velocity") if self.momentum else ("sq",)

    def _update(self, params, grads, t):
        ops.rmsprop_update(params, grads, self.state["sq"], lr=self.learning_rate, rho=self.rho,
                           eps=self.epsilon, momentum=self.momentum,
                           velocity=self.state.get("velocity"), weight_decay=self.weight_decay)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon}


class Adagrad(Optimizer):
    """acc += g²; params -= lr·g/(√acc + eps); acc starts at initial_accumulator_value."""

    _state_names = ("acc",)

    def __init__(self, learning_rate: float = 0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, weight_decay: float = 0.0, clipnorm: float | None = None):
        super().__init__(learning_rate, weight_decay, clipnorm)
        self.initial_accumulator_value = _number("Adagrad", "initial_accumulator_value",
                                                 initial_accumulator_value)
        self.epsilon = _number("Adagrad", "epsilon", epsilon, closed_low=False)

    def build(self, size, dtype):
        super().build(size, dtype)
        self.state["acc"].fill(self.initial_accumulator_value)

    def _update(self, params, grads, t):
        ops.adagrad_update(params, grads, self.state["acc"], lr=self.learning_rate,
                           eps=self.epsilon, weight_decay=self.weight_decay)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value":
                self.initial_accumulator_value, "epsilon": self.epsilon}


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
_BY_CLASS = {cls.__name__: cls for cls in OPTIMIZERS.values()}


def get(spec) -> Optimizer:
    """An optimizer from a name ("adam", ...) or an instance (returned as is)."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec.lower() in OPTIMIZERS:
        return OPTIMIZERS[spec.lower()]()
    raise ValueError(f"unknown optimizer {spec!r}; valid optimizers: {', '.join(OPTIMIZERS)} "
                     "or an instance from nnfast.optimizers")


def from_config(class_name: str, config: dict) -> Optimizer:
    cls = _BY_CLASS.get(class_name)
    if cls is None:
        raise ValueError(f"unknown optimizer class {class_name!r}; valid: {', '.join(_BY_CLASS)}")
    return cls.from_config(config)


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "from_config",
           "schedules"]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
