"""The JSON document of a model file (``model.json``): parsing with bounds, and one check per field.

A model file may come from anyone, so nothing in the document is trusted. :func:`parse` reads
it with hard bounds (size, nesting, string length, integer size; NaN, Infinity and duplicate
keys refused) and :func:`check_document` checks every field against :data:`DOCUMENT`, a table
of ``field: check``; adding a field to the format is adding one line there (or to the per-class
tables below). A problem raises :class:`FieldError`, a ``ValueError`` whose message starts with
the field's path (``model.layers[1].config.units``); the reader adds the file name.

Sizes that must agree with each other (the parameter count the layers imply and the arrays'
shapes) are compared by the reader (nnfast/engine/saving.py) once the layers exist; this module
only bounds each size on its own.

>>> from nnfast.engine import model_doc
>>> model_doc.parse(b'{"a": 1, "a": 2}')
Traceback (most recent call last):
...
nnfast.engine.model_doc.FieldError: model.json: duplicate key 'a'
"""
from __future__ import annotations

import functools
import inspect
import json
import math

from nnfast import layers as _layers
from nnfast import losses as _losses
from nnfast import metrics as _metrics
from nnfast import optimizers as _optimizers
from nnfast.metrics._confusion import MAX_THRESHOLDS as AUC_MAX_THRESHOLDS
from nnfast.optimizers import schedules as _schedules

FORMAT = "nnfast.model"
FORMAT_VERSION = 1

# Bounds: far above what nnfast writes (a 100-layer model's document is ~40 KB), low enough
# that parsing a hostile document costs a few MB at most (1 MiB of "[[],[],...]" is ~25 MB of
# Python lists, the worst case).
MAX_JSON_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_STRING = 1024
MAX_LAYERS = 1024
MAX_RANK = 8                  # dimensions of a per-sample input shape
MAX_DIM = 2**31 - 1           # one size (units, a dimension); the file must also hold the data
MAX_COUNT = 2**63 - 1         # steps, epochs, iterations: int64 in the kernels
MAX_SEED = 2**64 - 1          # seeds are uint64 in the dropout kernels
MAX_ARRAYS = 16
MAX_METRICS = 16
DTYPES = ("float32", "float64")


class FieldError(ValueError):
    """A field of the document is missing, of the wrong type or out of bounds."""

    def __init__(self, field: str, problem: str):
        field = field or "model.json"       # the document itself
        super().__init__(f"{field}: {problem}")
        self.field = field


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------- parsing
def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise FieldError("model.json", f"duplicate key {_short(key)}")
        out[key] = value
    return out


def _constant(name):
    raise FieldError("model.json", f"{name} is not allowed (JSON has no NaN or Infinity)")


def _float(text):
    value = float(text)
    if not math.isfinite(value):   # 1e400 parses as inf
        raise FieldError("model.json", f"number {_short(text)} is out of range")
    return value


def _int(text):
    if len(text) > 21:   # before int() spends time on thousands of digits
        raise FieldError("model.json", f"integer {_short(text)} is out of range")
    return int(text)


def _walk(value, field: str, depth: int) -> None:
    """Bound nesting, strings and integers everywhere, also in fields no table knows yet."""
    if depth > MAX_DEPTH:
        raise FieldError(field, f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise FieldError(field, f"a string of {len(value)} characters; at most {MAX_STRING}")
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -MAX_SEED <= value <= MAX_SEED:
            raise FieldError(field, f"integer {_short(value)} is out of range")
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{field}.{key}" if field else key
            _walk(key, f"a key in {field or 'model.json'}", depth + 1)
            _walk(item, inner, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{field}[{i}]", depth + 1)


def parse(data: bytes) -> dict:
    """The document from the bytes of model.json; FieldError for anything but bounded JSON."""
    if len(data) > MAX_JSON_BYTES:
        raise FieldError("model.json", f"{len(data)} bytes; at most {MAX_JSON_BYTES}")
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates,
                         parse_constant=_constant, parse_float=_float, parse_int=_int)
    except FieldError:
        raise
    except RecursionError:
        raise FieldError("model.json", f"nested deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as exc:   # JSONDecodeError is a ValueError
        raise FieldError("model.json", f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise FieldError("model.json", f"expected a JSON object, got {type(doc).__name__}")
    _walk(doc, "", 0)
    return doc


# ---------------------------------------------------------------------------------- checks
# A check is ``check(value, field)``; it returns nothing and raises FieldError.

def integer(low: int, high: int):
    def check(value, field):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise FieldError(field, f"expected an integer in [{low}, {high}], got {_short(value)}")
    return check


def number(low: float = -math.inf, high: float = math.inf):
    def check(value, field):
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not low <= value <= high):
            raise FieldError(field, f"expected a number in [{low}, {high}], got {_short(value)}")
    return check


def string(choices: tuple | None = None):
    def check(value, field):
        if not isinstance(value, str) or (choices is not None and value not in choices):
            wanted = "a string" if choices is None else f"one of {', '.join(choices)}"
            raise FieldError(field, f"expected {wanted}, got {_short(value)}")
    return check


def boolean(value, field):
    if not isinstance(value, bool):
        raise FieldError(field, f"expected true or false, got {_short(value)}")


def anything(value, field):
    """Any JSON value (already bounded by parse); the constructor it goes to checks it."""


def constant(expected):
    def check(value, field):
        if value != expected or type(value) is not type(expected):
            raise FieldError(field, f"expected {expected!r}, got {_short(value)}")
    return check


def nullable(inner):
    def check(value, field):
        if value is not None:
            inner(value, field)
    return check


def list_of(item, max_len: int, min_len: int = 0):
    def check(value, field):
        if not isinstance(value, list) or not min_len <= len(value) <= max_len:
            raise FieldError(field, f"expected a list of {min_len} to {max_len} items, got "
                                    f"{_short(value)}")
        for i, v in enumerate(value):
            item(v, f"{field}[{i}]")
    return check


def _object(value, field):
    if not isinstance(value, dict):
        raise FieldError(field, f"expected an object, got {_short(value)}")


def record(fields: dict):
    """An object with exactly these keys, each checked by its own check."""
    def check(value, field):
        _object(value, field)
        for key in fields:
            if key not in value:
                raise FieldError(field, f"missing field {key!r}")
        for key in value:
            if key not in fields:
                raise FieldError(field, f"unknown field {_short(key)}; expected "
                                        f"{', '.join(fields)}")
        for key, inner in fields.items():
            inner(value[key], f"{field}.{key}" if field else key)
    return check


def mapping(value_check, max_len: int):
    def check(value, field):
        _object(value, field)
        if len(value) > max_len:
            raise FieldError(field, f"{len(value)} entries; at most {max_len}")
        for key, item in value.items():
            value_check(item, f"{field}.{key}")
    return check


@functools.lru_cache(maxsize=None)
def _parameters(cls) -> tuple[list, list]:
    """The constructor's keyword names, and those without a default."""
    params = inspect.signature(cls.__init__).parameters
    names = [n for n, p in params.items() if n != "self"
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return names, [n for n in names if params[n].default is inspect.Parameter.empty]


def class_config(classes: dict, field_checks: dict):
    """``{"class": name, "config": {...}}``: the class from a fixed registry (never imported by
    name), the config's keys among the constructor's parameters, the required ones present, and
    each key with a check in ``field_checks[name]`` (or ``field_checks["*"]``) checked."""
    def check(value, field):
        record({"class": string(tuple(classes)), "config": _object})(value, field)
        names, required = _parameters(classes[value["class"]])
        config, where = value["config"], f"{field}.config"
        for key in config:
            if key not in names:
                raise FieldError(where, f"unknown field {_short(key)} for {value['class']}; "
                                        f"expected {', '.join(names)}")
        for name in required:
            if name not in config:
                raise FieldError(where, f"missing field {name!r}")
        checks = {**field_checks.get("*", {}), **field_checks.get(value["class"], {})}
        for key, item in config.items():
            checks.get(key, anything)(item, f"{where}.{key}")
    return check


SIZE = integer(1, MAX_DIM)
SHAPE = list_of(SIZE, MAX_RANK, min_len=1)
COUNT = integer(0, MAX_COUNT)
# optimizer iterations, state.step and state.epoch: the next step (count + 1) must still be
# an int64 step for the kernels (adam's bias correction takes step in [1, 2**63))
STEPS = integer(0, MAX_COUNT - 1)
SEED = integer(0, MAX_SEED)

# Per-class fields whose bounds the constructors do not state themselves (sizes, seeds) or that
# must not reach a constructor with another type; the constructors check the values of the rest.
LAYER_FIELDS = {
    "*": {"name": nullable(string()), "input_shape": nullable(SHAPE)},
    "Dense": {"units": SIZE, "input_dim": nullable(SIZE), "use_bias": boolean,
              "activation": nullable(string()), "alpha": nullable(number()),
              "kernel_initializer": string(), "bias_initializer": string(),
              "kernel_regularizer": nullable(record({"l1": number(0), "l2": number(0)}))},
    "Activation": {"activation": nullable(string()), "alpha": nullable(number())},
    "Dropout": {"rate": number(0, 1), "seed": nullable(SEED)},
}
def number_or(inner, low: float = 0):
    """A number >= low, or an object that ``inner`` checks (a schedule, a metric's class)."""
    def check(value, field):
        (inner if isinstance(value, dict) else number(low))(value, field)
    return check


def string_or(inner):
    def check(value, field):
        (inner if isinstance(value, dict) else string())(value, field)
    return check


# Schedules and metrics: only the classes of their registries, keys among the constructor's
# parameters; the constructors check the values (nnfast/optimizers/schedules.py, metrics/).
SCHEDULE = class_config(_schedules.SCHEDULES, {})
# Fields that size something (an array per threshold, a column index, top-k) are bounded here
# too, so a hostile file fails at load naming the field, not at the first evaluate.
METRIC = class_config(_metrics.CLASSES, {
    "AUC": {"num_thresholds": integer(2, AUC_MAX_THRESHOLDS)},
    "Precision": {"class_id": nullable(integer(0, MAX_DIM)),
                  "thresholds": nullable(number(0, 1))},
    "Recall": {"class_id": nullable(integer(0, MAX_DIM)), "thresholds": nullable(number(0, 1))},
    "TopKCategoricalAccuracy": {"k": integer(1, MAX_DIM)},
    "SparseTopKCategoricalAccuracy": {"k": integer(1, MAX_DIM)},
    "R2Score": {"num_regressors": integer(0, MAX_COUNT)},
})

OPTIMIZER_FIELDS = {
    "*": {"learning_rate": number_or(SCHEDULE), "weight_decay": number(0),
          "clipnorm": nullable(number(0))},
    "SGD": {"nesterov": boolean},
}
LOSS_FIELDS = {"*": {"label_smoothing": number(0, 1), "delta": number(0)}}

_LAYER_CLASSES = dict(_layers.LAYERS)
_OPTIMIZER_CLASSES = {cls.__name__: cls for cls in _optimizers.OPTIMIZERS.values()}
_LOSS_CLASSES = {cls.__name__: cls for cls in _losses.LOSSES.values()}

DOCUMENT = record({
    "format": constant(FORMAT),
    "format_version": integer(1, FORMAT_VERSION),
    "nnfast_version": string(),
    "model": record({
        "name": string(),
        "dtype": string(DTYPES),
        "seed": nullable(SEED),
        "layers": list_of(class_config(_LAYER_CLASSES, LAYER_FIELDS), MAX_LAYERS),
    }),
    "built": boolean,
    "input_shape": nullable(SHAPE),
    "compile": nullable(record({
        "loss": class_config(_LOSS_CLASSES, LOSS_FIELDS),
        "optimizer": record({
            "class": string(tuple(_OPTIMIZER_CLASSES)),
            "config": _object,           # checked with its class just below
            "iterations": STEPS,
        }),
        "metrics": list_of(string_or(METRIC), MAX_METRICS),
    })),
    "state": record({"step": STEPS, "epoch": STEPS}),
    "arrays": mapping(record({
        "file": string(),
        "shape": list_of(integer(0, MAX_COUNT), MAX_RANK),
        "dtype": string(DTYPES),
    }), MAX_ARRAYS),
})


def check_version(doc: dict) -> None:
    """The format and version first, so a newer file says so rather than listing new fields."""
    if doc.get("format") != FORMAT:
        raise FieldError("format", f"not an nnfast model file (format is "
                                   f"{_short(doc.get('format'))}, expected {FORMAT!r})")
    version = doc.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FieldError("format_version", f"invalid format_version {_short(version)}")
    if version > FORMAT_VERSION:
        raise FieldError("format_version", f"written by a newer nnfast (format version "
                                           f"{version}, {_short(doc.get('nnfast_version'))}); "
                                           f"this nnfast reads format versions up to "
                                           f"{FORMAT_VERSION}")


def check_document(doc: dict) -> None:
    """Every field of a parsed document, in document order; FieldError for the first bad one."""
    check_version(doc)
    DOCUMENT(doc, "")
    if doc["compile"] is not None:
        opt = doc["compile"]["optimizer"]
        class_config(_OPTIMIZER_CLASSES, OPTIMIZER_FIELDS)(opt_entry(opt),
                                                           "compile.optimizer")


def opt_entry(opt: dict) -> dict:
    """The ``{class, config}`` part of the optimizer entry (which also holds ``iterations``)."""
    return {"class": opt["class"], "config": opt["config"]}
