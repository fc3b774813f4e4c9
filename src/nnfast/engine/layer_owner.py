"""Which model a layer belongs to, and the checks on the layers a model is given.

A Keras 3 layer can sit in several models and shares its weights between them. nnfast cannot:
a model keeps all its parameters in one flat buffer and each layer's ``W`` and ``b`` are views
into it (docs/architecture.md), so a second model building the layer would rebind those views
to its own buffer and the first model would silently predict with, train and save weights
that are no longer its own. A layer object therefore belongs to the first model it is added
to (construction or ``add``); adding it to another raises ValueError saying what to do instead.
The tie is a weak reference: once that model is gone, the layer may join another one.
``copy.copy`` / ``copy.deepcopy`` / pickle of a layer give a layer that belongs to no model.
"""
from __future__ import annotations

import weakref

from nnfast import layers as _layers


def owner(layer):
    """The model ``layer`` belongs to, or None."""
    ref = getattr(layer, "_owner", None)
    return ref() if ref is not None else None


def check_layer(model, layer, fn: str) -> None:
    """TypeError for a non-layer; ValueError for a layer already in ``model`` or in another."""
    if not isinstance(layer, _layers.Layer):
        raise TypeError(f"{fn}: expected a layer from nnfast.layers, got {type(layer).__name__}")
    label = f"layer {layer.name!r}" if layer.name is not None else f"this {type(layer).__name__}"
    if any(layer is other for other in model.layers):
        raise ValueError(f"{fn}: {label} is already in the model; a layer can appear once (to "
                         f"use the same transformation twice, create a second layer)")
    other = owner(layer)
    if other is not None and other is not model:
        raise ValueError(
            f"{fn}: {label} ({type(layer).__name__}) already belongs to model {other.name!r}; "
            f"nnfast layers cannot be shared between models (each model keeps its weights in "
            f"one flat buffer; Keras would share them): create a new layer, e.g. "
            f"{type(layer).__name__}.from_config(layer.get_config()), and copy weights with "
            f"get_weights()/set_weights() on the models if you want the same values")


def claim(model, layer) -> None:
    layer._owner = weakref.ref(model)


def release(model, layers) -> None:
    """Undo ``claim`` for layers of a model whose construction failed."""
    for layer in layers:
        if owner(layer) is model:
            layer._owner = None
