"""Learning-rate schedules: objects passed as an optimizer's ``learning_rate``.

Keras 3's ``keras.optimizers.schedules`` (names, arguments, defaults and formulas): the
optimizer evaluates ``schedule(step)`` at each update with ``step = optimizer.iterations``
before the update, so the first update uses ``schedule(0)``. Values are computed in float64
(Keras: the dtype of ``initial_learning_rate``, float32 in practice; the two agree to float32
rounding).

Saved with the model as ``{"class": name, "config": get_config()}`` inside the optimizer's
config; ``from_config`` builds only the classes of this module, by name, with their arguments
validated, so a model file never runs code.

Arguments are checked when the schedule is made: ``ValueError`` naming the argument, the value
given and what was expected (Keras checks only ``decay_steps > 0`` and the boundaries' count).

>>> from nnfast.optimizers import SGD, schedules
>>> lr = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
>>> lr(20)
0.025
>>> SGD(learning_rate=lr).learning_rate   # the value at iterations = 0
0.1
"""
from __future__ import annotations

import math

import numpy as np


def _real(cls: str, name: str, value, low=-math.inf, low_open=False, allow_none=False):
    if value is None and allow_none:
        return None
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value) and (value > low if low_open else value >= low))
    if not ok:
        bound = "a finite number" if low == -math.inf else \
            f"a finite number {'>' if low_open else '>='} {low:g}"
        raise ValueError(f"{cls}: {name} must be {bound}, got {value!r}")
    return float(value)


def _flag(cls: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{cls}: {name} must be True or False, got {value!r}")
    return bool(value)


def _name(cls: str, value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{cls}: name must be a string, got {value!r}")
    return value


def _step(step) -> float:
    if isinstance(step, bool) or not isinstance(step, (int, float, np.integer, np.floating)) \
            or not step >= 0:
        raise ValueError(f"learning-rate schedule: step must be a number >= 0, got {step!r}")
    return float(step)


class LearningRateSchedule:
    """Base class: ``__call__(step) -> float`` and ``get_config()``; Keras'
    ``keras.optimizers.schedules.LearningRateSchedule``."""

    def __call__(self, step) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate · decay_rate ** (step / decay_steps)``; with ``staircase`` the
    exponent is floored."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        c = type(self).__name__
        self.initial_learning_rate = _real(c, "initial_learning_rate", initial_learning_rate, 0)
        self.decay_steps = _real(c, "decay_steps", decay_steps, 0, low_open=True)
        self.decay_rate = _real(c, "decay_rate", decay_rate, 0)
        self.staircase = _flag(c, "staircase", staircase)
        self.name = _name(c, name)

    def _exponent(self, step):
        p = _step(step) / self.decay_steps
        return math.floor(p) if self.staircase else p

    def __call__(self, step):
        return self.initial_learning_rate * self.decay_rate ** self._exponent(step)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class InverseTimeDecay(ExponentialDecay):
    """``initial_learning_rate / (1 + decay_rate · step / decay_steps)``; with ``staircase``
    ``step / decay_steps`` is floored."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._exponent(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary.
    ``boundaries``: increasing numbers; ``values``: one more than ``boundaries``."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        c = type(self).__name__
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise ValueError(f"{c}: boundaries and values must be lists of numbers, got "
                             f"boundaries={boundaries!r}, values={values!r}")
        if len(boundaries) != len(values) - 1 or not boundaries:
            raise ValueError(f"{c}: values must have one more entry than boundaries (and "
                             f"boundaries at least one), got {len(boundaries)} boundaries and "
                             f"{len(values)} values")
        self.boundaries = [_real(c, f"boundaries[{i}]", b) for i, b in enumerate(boundaries)]
        if any(a >= b for a, b in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"{c}: boundaries must be strictly increasing, got {boundaries!r}")
        self.values = [_real(c, f"values[{i}]", v, 0) for i, v in enumerate(values)]
        self.name = _name(c, name)

    def __call__(self, step):
        step = _step(step)
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values),
                "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) · (1 - s / d) ** power + end`` with ``s = min(step, decay_steps)``,
    ``d = decay_steps``; with ``cycle``, ``s = step`` and ``d = decay_steps · ceil(step /
    decay_steps)`` (1 at step 0)."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        c = type(self).__name__
        self.initial_learning_rate = _real(c, "initial_learning_rate", initial_learning_rate, 0)
        self.decay_steps = _real(c, "decay_steps", decay_steps, 0, low_open=True)
        self.end_learning_rate = _real(c, "end_learning_rate", end_learning_rate, 0)
        self.power = _real(c, "power", power, 0)
        self.cycle = _flag(c, "cycle", cycle)
        self.name = _name(c, name)

    def __call__(self, step):
        step, d = _step(step), self.decay_steps
        if self.cycle:
            d = d * (1.0 if step == 0 else math.ceil(step / d))
        else:
            step = min(step, d)
        return ((self.initial_learning_rate - self.end_learning_rate) * (1 - step / d)
                ** self.power + self.end_learning_rate)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay with an optional linear warmup (Keras 3, after Loshchilov & Hutter, SGDR).

    Without ``warmup_target``: ``lr0 · ((1 - alpha) · ½(1 + cos(π·s/decay_steps)) + alpha)``,
    ``s = min(step, decay_steps)``. With it: ``step < warmup_steps`` rises linearly from
    ``initial_learning_rate`` to ``warmup_target``, then the cosine decays from
    ``warmup_target`` over ``decay_steps`` more steps."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        c = type(self).__name__
        self.initial_learning_rate = _real(c, "initial_learning_rate", initial_learning_rate, 0)
        self.decay_steps = _real(c, "decay_steps", decay_steps, 0, low_open=True)
        self.alpha = _real(c, "alpha", alpha, 0)
        self.name = _name(c, name)
        self.warmup_target = _real(c, "warmup_target", warmup_target, 0, allow_none=True)
        self.warmup_steps = _real(c, "warmup_steps", warmup_steps, 0)

    def _decay(self, step, lr):
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return lr * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        step = _step(step)
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            return ((self.warmup_target - self.initial_learning_rate) * step / self.warmup_steps
                    + self.initial_learning_rate)
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


SCHEDULES = {cls.__name__: cls for cls in (ExponentialDecay, InverseTimeDecay,
                                           PiecewiseConstantDecay, PolynomialDecay, CosineDecay)}


def serialize(schedule: LearningRateSchedule) -> dict:
    """``{"class": name, "config": {...}}``, the form kept in a model file."""
    return {"class": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(spec) -> LearningRateSchedule:
    """A schedule from :func:`serialize`'s dict: only the classes of this module, by name."""
    if not isinstance(spec, dict) or set(spec) != {"class", "config"} \
            or not isinstance(spec["config"], dict):
        raise ValueError(f"a learning-rate schedule must be given as {{'class': name, "
                         f"'config': {{...}}}}, got {spec!r}")
    cls = SCHEDULES.get(spec["class"])
    if cls is None:
        raise ValueError(f"unknown learning-rate schedule class {spec['class']!r}; valid: "
                         f"{', '.join(SCHEDULES)}")
    try:
        return cls.from_config(dict(spec["config"]))
    except TypeError as exc:   # an unknown or missing argument name
        raise ValueError(f"invalid {spec['class']} config {spec['config']!r} ({exc})") from None


__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "CosineDecay", "serialize", "deserialize"]


def __dir__():  # tab completion shows the public names only
    return list(__all__)
