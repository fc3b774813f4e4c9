"""The models `nnfast train` builds: the MLP (``--model dense``) and the LeNet-class CNN
(``--model cnn``).

The CNN, for an (H, W, 1) image (digits 8x8, MNIST and Fashion-MNIST 28x28):
  Conv2D(6, 5x5, padding "same") - MaxPooling2D(2) - Conv2D(16, 5x5, "same") - MaxPooling2D(2)
  - Flatten - Dense(120) - Dense(84) - Dense(classes, softmax)
LeNet-5's filter counts and head (LeCun et al. 1998), with "same" padding in both convolutions
so that the 8x8 digits keep pixels through both stages (LeNet-5 pads only the first; its second
"valid" 5x5 convolution has nothing left to slide over on 4x4). ``--hidden`` replaces the head
(120,84), ``--activation`` applies to the convolutions and the head (default relu), ``--dropout``
follows each hidden Dense layer.
"""
from __future__ import annotations

import math

OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
              "adagrad": "Adagrad"}
DEFAULT_HIDDEN = {"dense": [128], "cnn": [120, 84]}
CONV = ((6, 5), (16, 5))   # (filters, kernel size) of the two stages
POOL = 2


def hidden_sizes(args) -> list[int]:
    """--hidden, or the default head of --model."""
    return DEFAULT_HIDDEN[args.model] if args.hidden is None else args.hidden


def cnn_flat_features(image_shape: tuple) -> int:
    """Features entering the dense head: "same" convolutions keep H x W, each valid 2x2 pool
    floors it to H // 2 (Keras' rule)."""
    h, w = image_shape[0], image_shape[1]
    for _ in CONV:
        h, w = h // POOL, w // POOL
    return h * w * CONV[-1][0]


def cnn_conv_params(channels: int) -> int:
    """Weights and biases of the two convolutions."""
    n, c = 0, channels
    for filters, k in CONV:
        n += (k * k * c + 1) * filters
        c = filters
    return n


def architecture(args, sample_shape: tuple, n_classes: int) -> str:
    """The model in one word: ``64-128-10`` or ``8x8x1-c6k5-p2-c16k5-p2-120-84-10``."""
    head = [*hidden_sizes(args), n_classes]
    if args.model == "dense":
        return "-".join(str(u) for u in [math.prod(sample_shape), *head])
    stages = "-".join(f"c{f}k{k}-p{POOL}" for f, k in CONV)
    return "-".join(["x".join(map(str, sample_shape)), stages, *map(str, head)])


def build_model(args, sample_shape: tuple, n_classes: int, seed: int):
    """The compiled model. MLP: samples of more than one dimension (images) go through a
    Flatten layer first, so the model takes them in the shape they have on disk. CNN: samples
    are (H, W, C) images (``load_dataset(..., as_images=True)``)."""
    import nnfast
    from nnfast import layers, optimizers

    act = args.activation or "relu"
    model = nnfast.Sequential(dtype=args.dtype, seed=seed)
    first: dict = {}
    if args.model == "cnn":
        for i, (filters, k) in enumerate(CONV):
            model.add(layers.Conv2D(filters, k, padding="same", activation=act,
                                    **({"input_shape": sample_shape} if i == 0 else {})))
            model.add(layers.MaxPooling2D(POOL))
        model.add(layers.Flatten())
    elif len(sample_shape) > 1:
        model.add(layers.Flatten(input_shape=sample_shape))
    else:
        first = {"input_dim": math.prod(sample_shape)}
    for units in hidden_sizes(args):
        model.add(layers.Dense(units, activation=act, **first))
        first = {}
        if args.dropout > 0:
            model.add(layers.Dropout(args.dropout))
    model.add(layers.Dense(n_classes, activation="softmax", **first))
    opt = getattr(optimizers, OPTIMIZERS[args.optimizer])(learning_rate=args.lr)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
