"""The data arguments of fit / evaluate / predict, checked and converted before the model changes.

``prepare`` converts x (and y against the loss) once; ``fit_data`` adds the row weights
(nnfast/engine/sample_weights.py) and the validation set, from ``validation_data`` or
``validation_split``.
"""
from __future__ import annotations

import numpy as np

from nnfast.engine import sample_weights as _weights
from nnfast.engine.checks import as_array, as_features, check_feature_shape, check_lengths


def features(model, x, fn: str, what: str = "x"):
    """The input-shape rule of fit, evaluate, predict and the ``nnfast`` command, in one place.

    ``x`` must be an array of samples, ``(n_samples, *input_shape)``, the model's per-sample
    input shape exactly (Keras 3: predict and fit take batches). Nothing is flattened or
    reshaped on the caller's behalf: a 1-D x is refused (scikit-learn's rule), with the exact
    reshape when the model knows its input shape (``x.reshape(1, 64)`` for one sample of a
    64-feature model, ``x.reshape(-1, 1)`` for a one-feature model); samples of another shape
    with the same size are refused with the reshape that fits (``x.reshape(len(x), 64)`` for
    (5, 8, 8) into a 64-feature model). Returns x C-contiguous in the model dtype.

    Raises ValueError (shape, emptiness, NaN/Inf, naming ``fn`` and ``what``) or TypeError
    (not numeric).
    """
    if not model.layers:
        raise ValueError(f"{fn}: the model has no layers")
    expected = model.input_shape if model.built else model._declared_input_shape()
    x = as_features(x, model.dtype, fn, what, expected)
    check_feature_shape(x, expected, fn, what)
    return x


def prepare(model, x, y, fn: str, what: str = ""):
    """Convert and check x (and y against the loss) without changing the model."""
    x = features(model, x, fn, what + "x")
    # features() checked x's samples against a built model's input shape: its output shape holds
    out_shape = model.output_shape if model.built else model.infer_output_shape(x.shape[1:])
    if y is None:
        return x, None
    if model.loss is None:
        raise ValueError(f"{fn}: the model is not compiled; call model.compile(...) first")
    check_output_rows(model, out_shape, fn)
    y = as_array(y, what + "y", fn)
    check_lengths(x, y, fn, what + "x", what + "y")
    y = model.loss.prepare_targets(y, out_shape, model.dtype, f"{fn}: {what}y")
    if not y.flags.aligned:   # as x (checks.as_features): the one-call step needs aligned rows
        y = np.require(y, None, ("C", "A"))
    return x, y


def check_output_rows(model, out_shape: tuple, fn: str) -> None:
    """The losses take 2-D predictions, (batch, features): a model whose output per sample is
    not 1-D (it ends in Conv2D, a pooling, BatchNormalization or a Reshape to an image) is
    refused by fit, evaluate, train_on_batch and test_on_batch (all come through ``prepare``)
    before any work. **Differs from Keras 3**, which trains such models (the loss over every
    output value: autoencoders, segmentation); nnfast's fused loss kernels and training step
    take rows of features (docs/model.md, "Input shapes")."""
    if len(out_shape) != 1:
        shape = (None,) + tuple(out_shape)
        raise ValueError(
            f"{fn}: the model's output has shape {shape}, but the loss {model.loss.name!r} "
            f"needs 2-D (batch, features) predictions; end the model with Flatten() (and a "
            f"Dense layer to the number of targets) so each sample's output is one row")


def fit_data(model, x, y, sample_weight, class_weight, validation_split, validation_data,
             fn: str = "fit") -> tuple:
    """``(x, y, w, val)`` for training: w the row weights (sample_weight × class_weight, or
    None), val ``(x_val, y_val, w_val or None)`` or None. As in Keras, validation_split takes the
    last rows with their sample weights; class_weight applies to the training rows only."""
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) \
            or not 0.0 <= validation_split < 1.0:
        raise ValueError(f"{fn}: validation_split must be a number in [0, 1), got "
                         f"{validation_split!r}")
    x, y = prepare(model, x, y, fn)
    sw = _weights.sample_weights(sample_weight, len(x), model.dtype, fn)
    _weights.require_some_weight(sw, fn, "the sample_weight values")
    cw = _weights.class_sample_weights(class_weight, model.loss, y,
                                       model.infer_output_shape(x.shape[1:])[0], model.dtype, fn)
    val = None
    if validation_data is not None:
        val = validation_arrays(model, validation_data, fn, x.shape[1:])
    elif validation_split > 0.0:
        n_val = int(len(x) * validation_split)
        if n_val == 0 or n_val == len(x):
            raise ValueError(f"{fn}: validation_split={validation_split} leaves "
                             f"{len(x) - n_val} training and {n_val} validation samples; "
                             "both must be >= 1")
        val = (x[-n_val:], y[-n_val:], None if sw is None else sw[-n_val:])
        _weights.require_some_weight(val[2], fn, f"the sample_weight values of the validation "
                                                 f"split (the last {n_val} rows)")
        train = slice(None, -n_val)
        x, y = x[train], y[train]
        sw, cw = (None if sw is None else sw[train]), (None if cw is None else cw[train])
    w = _weights.combine(sw, cw)
    _weights.require_some_weight(w, fn, "the training sample weights "
                                        "(sample_weight × class_weight)")
    return x, y, w, val


def validation_arrays(model, data, fn: str, feature_shape=None) -> tuple:
    """(x_val, y_val, weights or None) from a (x, y) or (x, y, sample_weight) tuple, x_val's
    samples checked against ``feature_shape`` (the training samples') when given."""
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError(f"{fn}: validation_data must be a tuple (x_val, y_val) or "
                         "(x_val, y_val, sample_weight_val)")
    xv, yv = prepare(model, data[0], data[1], fn, "validation_data ")
    if feature_shape is not None:
        check_feature_shape(xv, feature_shape, fn, "validation_data x")
    wv = _weights.sample_weights(data[2] if len(data) == 3 else None, len(xv), model.dtype, fn,
                                 "validation_data sample_weight")
    _weights.require_some_weight(wv, fn, "the validation_data sample_weight values")
    return xv, yv, wv
