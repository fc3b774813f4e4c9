"""Reference inference plan of a network with image layers (plain NumPy): the spec for the
compiled ``NetPlan`` (nnfast/_native/_netplan.pxi, csrc/nn/netplan.c).

A plan is the predict-mode forward pass of a stack of convolution, pooling, batch-norm,
reshape, dense and activation layers, checked once when it is built and then run over any
number of samples. Each op is the reference function the layer-by-layer path calls, in order.
"""
from __future__ import annotations

import math

import numpy as np

from nnfast.backends._ref_activations import _check_activation, activation_forward
from nnfast.backends._ref_batchnorm import batch_norm_forward
from nnfast.backends._ref_checks import _check_out, _float_array, _native
from nnfast.backends._ref_conv import conv2d_forward
from nnfast.backends._ref_dense import dense_forward
from nnfast.backends._ref_geometry import geometry, padding_mode, pair
from nnfast.backends._ref_plan import _alpha, _in_place, _what
from nnfast.backends._ref_pool import (
    avg_pool2d_forward,
    global_avg_pool2d_forward,
    max_pool2d_forward,
)

__all__ = ["NetPlan"]

# descriptor kind: its length (kind included)
_LENGTHS = {"dense": 5, "activation": 3, "conv2d": 8, "max_pool2d": 4, "avg_pool2d": 4,
            "global_avg_pool2d": 1, "batch_norm": 6, "reshape": 2}
_SHAPES = ("('dense', W, b, activation, alpha), ('activation', activation, alpha), "
           "('conv2d', W, b, strides, padding, dilation_rate, activation, alpha), "
           "('max_pool2d' or 'avg_pool2d', pool_size, strides, padding), "
           "('global_avg_pool2d',), "
           "('batch_norm', gamma, beta, moving_mean, moving_variance, epsilon) or "
           "('reshape', target_shape)")


def _dims(fn: str, name: str, value) -> tuple:
    """A per-sample shape: a non-empty tuple or list of ints >= 1."""
    ok = isinstance(value, (tuple, list)) and len(value) > 0 and all(
        not isinstance(d, (bool, np.bool_)) and isinstance(d, (int, np.integer)) and d >= 1
        for d in value)
    if not ok:
        raise ValueError(f"{fn}: {name} must be a non-empty tuple of ints >= 1, got {value!r}")
    return tuple(int(d) for d in value)


def _image(where: str, kind: str, shape: tuple) -> tuple:
    if len(shape) != 3:
        raise ValueError(f"{where} {kind} needs images (H, W, C) per sample, got shape {shape}")
    return shape


def _weight(fn: str, i: int, name: str, a, ndim: int, dtype) -> None:
    """A weight the plan keeps and reads in place: an array of ndim dims and the plan's dtype,
    C-contiguous, aligned, native."""
    _float_array(fn, f"layers[{i}] {name}", a, ndim)
    if _native(a.dtype) != dtype:
        raise TypeError(f"{fn}: layers[{i}] {name} must have dtype {dtype} like the other "
                        f"operands, got {a.dtype}")
    _in_place(f"{fn}: layers[{i}]", name, a)


def _vector(fn: str, i: int, name: str, v, c: int, dtype) -> None:
    _weight(fn, i, name, v, 1, dtype)
    if v.shape != (c,):
        raise ValueError(f"{fn}: layers[{i}] {name} must have shape ({c},) (one value per "
                         f"channel), got {v.shape}")


def _epsilon(where: str, eps) -> float:
    if isinstance(eps, (str, bytes, bool, np.bool_)) or eps is None:
        raise TypeError(f"{where} epsilon must be a real number, got {type(eps).__name__}")
    try:
        v = float(eps)
    except (TypeError, ValueError):
        raise TypeError(f"{where} epsilon must be a real number, got "
                        f"{type(eps).__name__}") from None
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{where} epsilon must be a finite number >= 0, got {v!r}")
    return v


def check_net_args(layers, input_shape, dtype) -> tuple:
    """(dtype, input_shape, output_shape, ops) from the constructor's arguments, each op a
    checked descriptor with its window geometry resolved; the messages are the compiled
    plan's."""
    fn = "NetPlan"
    if dtype not in ("float32", "float64") and not (
            isinstance(dtype, (np.dtype, type)) and np.dtype(dtype) in (np.float32, np.float64)):
        raise ValueError(f"{fn}: dtype must be 'float32' or 'float64', got {dtype!r}")
    dtype = np.dtype(dtype)
    input_shape = _dims(fn, "input_shape", input_shape)
    if not isinstance(layers, (list, tuple)):
        raise TypeError(f"{fn}: layers must be a list of layer descriptors {_SHAPES}, got "
                        f"{type(layers).__name__}")
    shape, ops = input_shape, []
    for i, entry in enumerate(layers):
        kind = entry[0] if isinstance(entry, tuple) and entry else None
        if not isinstance(kind, str) or _LENGTHS.get(kind) != len(entry):
            raise ValueError(f"{fn}: layers[{i}] must be a tuple {_SHAPES}; got {_what(entry)}")
        where = f"{fn}: layers[{i}]"
        if kind == "dense":
            _, W, b, activation, alpha = entry
            if len(shape) != 1:
                raise ValueError(f"{where} dense needs 1-D features per sample, got shape "
                                 f"{shape}")
            _weight(fn, i, "W", W, 2, dtype)
            if W.shape[0] != shape[0]:
                raise ValueError(f"{where} W must have shape ({shape[0]}, M) to take the "
                                 f"{shape[0]} features before it, got {W.shape}")
            if b is not None:
                _vector(fn, i, "b", b, W.shape[1], dtype)
            _check_activation(where, activation)
            op, shape = (kind, W, b, activation, _alpha(where, alpha, dtype)), (W.shape[1],)
        elif kind == "activation":
            _, activation, alpha = entry
            _check_activation(where, activation)
            if activation in ("softmax", "log_softmax") and len(shape) != 1:
                raise ValueError(f"{where} {activation} needs 1-D features per sample, got "
                                 f"shape {shape}")
            op = (kind, activation, _alpha(where, alpha, dtype))
        elif kind == "conv2d":
            _, W, b, strides, padding, dilation, activation, alpha = entry
            h, w, c = _image(where, kind, shape)
            _weight(fn, i, "W", W, 4, dtype)
            if W.shape[2] != c or 0 in W.shape:
                raise ValueError(f"{where} W must have shape (KH, KW, {c}, F), none of them 0, "
                                 f"to take the {c} channels before it, got {W.shape}")
            f = W.shape[3]
            if b is not None:
                _vector(fn, i, "b", b, f, dtype)
            g = geometry(where, (h, w), W.shape[:2], strides, padding, dilation)
            _check_activation(where, activation)
            op = (kind, W, b, (g["SH"], g["SW"]), padding_mode(where, padding),
                  (g["DH"], g["DW"]), activation, _alpha(where, alpha, dtype))
            shape = (g["OH"], g["OW"], f)
        elif kind in ("max_pool2d", "avg_pool2d"):
            _, pool_size, strides, padding = entry
            h, w, c = _image(where, kind, shape)
            size = pair(where, "pool_size", pool_size)
            g = geometry(where, (h, w), size, size if strides is None else strides, padding)
            op = (kind, size, (g["SH"], g["SW"]), padding_mode(where, padding))
            shape = (g["OH"], g["OW"], c)
        elif kind == "global_avg_pool2d":
            op, shape = (kind,), (_image(where, kind, shape)[2],)
        elif kind == "batch_norm":
            _, gamma, beta, mean, var, eps = entry
            c = shape[-1]
            for name, v in (("gamma", gamma), ("beta", beta), ("moving_mean", mean),
                            ("moving_variance", var)):
                if v is not None or name.startswith("moving"):
                    _vector(fn, i, name, v, c, dtype)
            op = (kind, gamma, beta, mean, var, _epsilon(where, eps))
        else:
            target = _dims(where, "target_shape", entry[1])
            if math.prod(target) != math.prod(shape):
                raise ValueError(f"{where} cannot reshape {shape} ({math.prod(shape)} values) to "
                                 f"{target} ({math.prod(target)} values)")
            op, shape = (kind, target), target
        ops.append(op)
    return dtype, input_shape, shape, ops


class NetPlan:
    """The predict-mode forward pass of a network with image layers, checked once, run on any
    number of samples (channels last, as Keras 3).

    ``layers`` lists one descriptor per op, in order (Dropout has none; Flatten is a
    ``reshape`` to one dimension):

    - ``("dense", W, b, activation, alpha)``: ``dense_forward`` on 1-D samples;
    - ``("activation", activation, alpha)``: ``activation_forward`` over each sample's values
      (softmax and log_softmax only on 1-D samples, as the Activation layer);
    - ``("conv2d", W, b, strides, padding, dilation_rate, activation, alpha)``:
      ``conv2d_forward``, W (KH, KW, C, F);
    - ``("max_pool2d" | "avg_pool2d", pool_size, strides, padding)``: ``max_pool2d_forward``
      / ``avg_pool2d_forward`` (strides None: pool_size);
    - ``("global_avg_pool2d",)``: ``global_avg_pool2d_forward``, (H, W, C) -> (C,);
    - ``("batch_norm", gamma, beta, moving_mean, moving_variance, epsilon)``:
      ``batch_norm_forward`` with training=False over the last axis (gamma, beta may be None);
    - ``("reshape", target_shape)``: the samples' values in a new shape (no computation).

    ``input_shape`` is one sample's shape, ``dtype`` "float32" or "float64" (every array must
    have it). The arrays are read in place: later changes to their values (set_weights,
    training, the moving statistics) are seen by the next ``forward``.

    Raises, at construction: TypeError for a non-list, a non-array weight, one of another
    dtype, a non-str activation or a non-real alpha or epsilon; ValueError for a bad dtype or
    input_shape, an unknown descriptor, an op that does not take the shape before it (an image
    op on 1-D samples, W or a per-channel vector of the wrong shape, a window larger than a
    "valid" input, a reshape that changes the number of values), a weight the plan cannot read
    in place (byte-swapped, unaligned or not C-contiguous), an unknown activation, an alpha or
    epsilon that is NaN or infinite (or alpha infinite once rounded to float32), a negative
    epsilon. Each message names the op (``layers[i]``) and the argument.

    >>> W = np.ones((2, 2, 1, 1))
    >>> NetPlan([("conv2d", W, None, 1, "valid", 1, "relu", 0.0)], (3, 3, 1), "float64"
    ...         ).forward(np.ones((1, 3, 3, 1)))[0, :, :, 0]
    array([[4., 4.],
           [4., 4.]])
    """

    def __init__(self, layers, input_shape, dtype="float32"):
        self.dtype, self.input_shape, self.output_shape, self._ops = check_net_args(
            layers, input_shape, dtype)
        self.n_features = math.prod(self.input_shape)
        self.n_outputs = math.prod(self.output_shape)

    def forward(self, x, out=None):
        """y (N, *output_shape) from x (N, *input_shape) of the plan's dtype (either byte
        order, any layout); x may also be given with each sample flattened, (N, n_features),
        and out then as (N, n_outputs). ``out``, C-contiguous, writeable, not overlapping x, is
        written and returned when given.

        Raises TypeError for a non-array x or out, or one of another dtype; ValueError for
        another shape of x or out, a read-only or overlapping out."""
        fn = "NetPlan.forward"
        n = self._check_x(fn, x)
        if out is None:
            out = np.empty((n,) + self.output_shape, self.dtype)
        else:
            flat = isinstance(out, np.ndarray) and out.ndim == 2
            _check_out(fn, "out", out, (n, self.n_outputs) if flat else (n,) + self.output_shape,
                       self.dtype, (x,))
        if n == 0:
            return out
        a = x.reshape((n,) + self.input_shape)
        for op in self._ops:
            a = _apply(op, a)
        out[...] = a.reshape(out.shape)
        return out

    def _check_x(self, fn: str, x) -> int:
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{fn}: x must be a numpy.ndarray, got {type(x).__name__}")
        if _native(x.dtype) != self.dtype:
            raise TypeError(f"{fn}: x must have dtype {self.dtype} like the plan, got {x.dtype}")
        if x.shape[1:] != self.input_shape and not (x.ndim == 2
                                                    and x.shape[1] == self.n_features):
            raise ValueError(f"{fn}: x must have shape {_x_shapes(self)}, got {x.shape}")
        return x.shape[0]

    def __repr__(self):
        return (f"NetPlan({len(self._ops)} ops, {self.input_shape} -> {self.output_shape}, "
                f"{self.dtype})")


def _x_shapes(plan) -> str:
    one = "(N, " + ", ".join(map(str, plan.input_shape)) + ")"
    return one if len(plan.input_shape) == 1 else f"{one} or (N, {plan.n_features})"


def _apply(op, a):
    """One op of the plan on a (N, *shape): the reference function of its layer."""
    kind = op[0]
    if kind == "dense":
        return dense_forward(a, *op[1:])
    if kind == "activation":
        return activation_forward(a.reshape(len(a), -1), *op[1:]).reshape(a.shape)
    if kind == "conv2d":
        return conv2d_forward(a, *op[1:])
    if kind == "max_pool2d":
        return max_pool2d_forward(a, *op[1:])[0]
    if kind == "avg_pool2d":
        return avg_pool2d_forward(a, *op[1:])
    if kind == "global_avg_pool2d":
        return global_avg_pool2d_forward(a)
    if kind == "batch_norm":
        _, gamma, beta, mean, var, eps = op
        return batch_norm_forward(a, gamma, beta, mean, var, False, 0.99, eps)[0]
    return a.reshape((len(a),) + op[1])
