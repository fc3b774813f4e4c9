"""Iterables of batches as data: which x is one, reading its batches epoch by epoch
(:class:`Source`, Keras 3's epoch semantics, see nnfast/engine/iterables.py), and converting
each batch as arrays are converted, with the batch index in every error."""
from __future__ import annotations

import numbers

import numpy as np

from nnfast.engine import sample_weights as _weights
from nnfast.engine.checks import positive_int
from nnfast.engine.inputs import prepare


def is_batches(x) -> bool:
    """True when x is an iterable of batches rather than array data."""
    if x is None or isinstance(x, (np.ndarray, str, bytes, dict, numbers.Number)):
        return False
    if hasattr(x, "__array__") or hasattr(x, "__array_interface__"):
        return False
    try:    # a buffer (memoryview, array.array...): np.asarray reads it as array data, as model(x)
        with memoryview(x):
            return False
    except TypeError:
        pass
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(isinstance(b, tuple) and len(b) > 0
                                  and not isinstance(b[0], numbers.Number) for b in x)
    return hasattr(x, "__iter__") or (hasattr(x, "__getitem__") and hasattr(x, "__len__"))


def validation_is_batches(data, fn: str) -> bool:
    """How fit reads ``validation_data`` when x is an iterable of batches: False for arrays, True
    for batches, ValueError when it could be either.

    - arrays: a tuple or list of 2 or 3 items, none a tuple: ``(x_val, y_val[,
      sample_weight_val])``, Keras 3's ``unpack_x_y_sample_weight`` reading;
    - batches: a list of ``(x, y[, sample_weight])`` tuples (an nnfast extension: Keras 3 reads
      any list as ``(x_val, y_val, ...)`` and fails), or any other iterable (generator,
      PyDataset-like object);
    - a tuple holding tuples (``((x1, y1), (x2, y2))``), a list mixing tuples with other items,
      or an empty list: ValueError, rather than a guess that depends on the contents.
    """
    if isinstance(data, (list, tuple)):
        kind = type(data).__name__
        if not data:
            raise ValueError(f"{fn}: validation_data is an empty {kind}; expected (x_val, y_val[, "
                             "sample_weight_val]) arrays or a list of (x, y[, sample_weight]) "
                             "batches")
        tuples = sum(isinstance(item, tuple) for item in data)
        if tuples == 0:
            if len(data) in (2, 3):
                return False
            raise ValueError(f"{fn}: validation_data must be (x_val, y_val) or (x_val, y_val, "
                             f"sample_weight_val), got a {kind} of {len(data)} arrays")
        if isinstance(data, list) and tuples == len(data) and is_batches(data):
            return True
        raise ValueError(f"{fn}: validation_data is ambiguous: a {kind} of {len(data)} items, "
                         f"{tuples} of them tuples, could be arrays or batches; pass arrays as a "
                         "tuple (x_val, y_val[, sample_weight_val]) of NumPy arrays, or batches "
                         "as a list of (x, y[, sample_weight]) tuples or a generator")
    if is_batches(data):
        return True
    raise ValueError(f"{fn}: validation_data must be a tuple (x_val, y_val[, sample_weight_val]) "
                     "or an iterable of (x, y[, sample_weight]) batches, got "
                     f"{type(data).__name__}")


class Source:
    """Batches drawn from one iterable over the epochs of a call (see the module docstring)."""

    def __init__(self, data, fn: str, what: str):
        self.data, self.fn, self.what = data, fn, what
        if isinstance(data, (list, tuple)) or (hasattr(data, "__getitem__")
                                               and hasattr(data, "__len__")
                                               and not hasattr(data, "__next__")):
            self.kind, self.length = "sequence", len(data)
        elif hasattr(data, "__next__"):
            self.kind, self.length = "iterator", None
        else:
            self.kind = "iterable"
            self.length = len(data) if hasattr(data, "__len__") else None
        if self.length == 0:    # known before reading: not "ran out", nothing to read at all
            raise ValueError(f"{fn}: {what} has no batches (len({what}) is 0)")
        self.restartable = self.kind != "iterator"
        self._stream = None
        self._position = 0
        self.drawn = 0          # batches drawn so far: the index in error messages

    def _open(self, rng):
        self._position = 0
        if self.kind == "sequence":
            order = np.arange(self.length)
            if rng is not None:
                rng.shuffle(order)
            return (self.data[int(i)] for i in order)
        return self.data if self.kind == "iterator" else iter(self.data)

    def batches(self, steps, rng=None):
        """Up to ``steps`` raw batches (None: the rest of one pass, starting a new one first);
        ``self.ran_out`` tells afterwards whether the data ended before ``steps``."""
        self.ran_out = False
        if steps is None or self._stream is None:
            self._stream = self._open(rng)
        count = 0
        while steps is None or count < steps:
            try:
                item = next(self._stream)
            except StopIteration:
                self._stream = None
                self.ran_out = steps is not None
                return
            count += 1
            self._position += 1
            self.drawn += 1
            yield item
            if self.length is not None and self._position >= self.length and steps is not None:
                # a known end: the next epoch starts a new pass (silently when it is also the
                # end of this epoch, as Keras)
                self._stream = None
                self.ran_out = count < steps
                return

    def epoch_end(self) -> None:
        hook = getattr(self.data, "on_epoch_end", None)
        if self.kind == "sequence" and callable(hook):
            hook()


def unpack(item, index: int, fn: str, what: str, need_y: bool):
    """(x, y or None, sample_weight or None) of one batch."""
    if isinstance(item, (tuple, list)) and not (not need_y and isinstance(item, list)):
        if len(item) in (2, 3) or (len(item) == 1 and not need_y):
            return item[0], (item[1] if len(item) > 1 else None), \
                (item[2] if len(item) == 3 else None)
    elif not need_y:
        return item, None, None
    shape = f"a tuple of {len(item)}" if isinstance(item, (tuple, list)) else type(item).__name__
    raise ValueError(f"{fn}: batch {index} of {what} must be a tuple (x, y) or (x, y, "
                     f"sample_weight){' or x alone' if not need_y else ''}, got {shape}")


def convert(model, item, index, fn, what, class_weight=None, need_y=True):
    """The batch converted and checked as arrays are: (x, y, w or None)."""
    xb, yb, wb = unpack(item, index, fn, what, need_y)
    label = f"batch {index} " if what == "x" else f"{what} batch {index} "
    if not need_y:
        return prepare(model, xb, None, fn, label)[0], None, None
    if yb is None:
        raise ValueError(f"{fn}: {label}has no targets (y is None)")
    xb, yb = prepare(model, xb, yb, fn, label)
    w = _weights.sample_weights(wb, len(xb), model.dtype, fn, label + "sample_weight")
    if class_weight is not None:
        cw = _weights.class_sample_weights(class_weight, model.loss, yb,
                                           model.infer_output_shape(xb.shape[1:])[0],
                                           model.dtype, fn)
        w = _weights.combine(w, cw)
    return xb, yb, w


def check_args(fn, batch_size, steps, steps_name, sample_weight=None, validation_split=0.0,
               distributed=False):
    """The arguments that do not go with an iterable, rejected before any batch is read."""
    if batch_size is not None:
        raise ValueError(f"{fn}: batch_size must not be given when x is an iterable of batches "
                         f"(the iterable makes the batches), got batch_size={batch_size!r}")
    if sample_weight is not None:
        raise ValueError(f"{fn}: sample_weight must not be given when x is an iterable of "
                         "batches; yield (x, y, sample_weight) batches instead")
    if validation_split:
        raise ValueError(f"{fn}: validation_split={validation_split!r} needs array data; with "
                         "an iterable of batches pass validation_data")
    if distributed:
        raise ValueError(f"{fn}: distributed=True needs array data (each rank would iterate "
                         "its own iterable); pass each rank's arrays instead")
    return None if steps is None else positive_int(steps, steps_name, fn)


def array_args(fn: str, x, y=..., **steps) -> None:
    """With array x: y is required (fit, evaluate) and the step counts must stay None. An
    empty list or tuple is neither batches nor rows: said so, rather than asking for y."""
    if isinstance(x, (list, tuple)) and not x:
        raise ValueError(f"{fn}: x is an empty {type(x).__name__}: it holds no (x, y) batches "
                         "and no samples")
    if y is None:
        raise ValueError(f"{fn}: y is required when x is an array (or pass an iterable of "
                         "(x, y) batches as x)")
    for name, value in steps.items():
        if value is not None:
            raise ValueError(f"{fn}: {name} applies to an iterable of batches; with arrays "
                             f"leave it None (got {name}={value!r})")


class _Workspaces:
    """The model's workspace for the largest batch seen so far (batches vary in size)."""

    def __init__(self, model):
        self.model, self.ws = model, None

    def get(self, rows: int):
        if self.ws is None or self.ws.capacity < rows:
            if self.ws is not None:
                self.model._workspaces.give(self.ws)
            self.ws = self.model._workspaces.take(rows)
        return self.ws

    def close(self):
        if self.ws is not None:
            self.model._workspaces.give(self.ws)
            self.ws = None
