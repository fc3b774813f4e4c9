"""``nnfast.from_onnx``: an ONNX file -> a Sequential (the reader is nnfast/onnx/_import.py,
which sits below the engine and is handed the class to build, as saving.py is)."""
from __future__ import annotations

from nnfast.engine.model import Sequential


def from_onnx(path, output: str | None = None) -> Sequential:
    """Build a :class:`nnfast.Sequential` from an ONNX file (extra ``onnx``).

    The graph must be one chain of the operators listed in nnfast/onnx/_import.py (Gemm,
    MatMul+Add, the activations, Flatten, Reshape, Dropout, Identity ...), as PyTorch's
    exporter, Keras' export and skl2onnx write them for multi-layer perceptrons, and the image
    operators of nnfast/onnx/_import_image.py (Conv, MaxPool, AveragePool, ReduceMean,
    BatchNormalization with the Transposes of a channels-last input, as ``to_onnx`` and tf2onnx
    write them): a file ``to_onnx`` wrote reads back to the same layers and weights, so
    ``predict`` is bit-identical. Channels-first graphs (PyTorch's CNN exports) are refused.
    The model's dtype is the graph input's (float -> float32, double -> float64); its input
    shape is the input's dimensions after the batch one, which must be fixed ints. ``output``:
    the name of the graph output to compute when there are several (skl2onnx's classifiers
    write "label" and "probabilities": pass ``output="probabilities"``).

    Raises
    ------
    ValueError
        naming the file, the node and the reason, before any model is built: an unsupported
        operator or pattern, a dynamic feature dimension, an initializer whose shape does not
        fit the graph or whose stored size differs from its shape, external data outside the
        model's directory, a truncated or corrupt protobuf.
    FileNotFoundError, TypeError
        no file at ``path``; ``path`` not a str or os.PathLike.
    ImportError
        the ``onnx`` package is not installed (``pip install "nnfast[onnx]"``).

    >>> import nnfast                                             # doctest: +SKIP
    >>> model = nnfast.from_onnx("mlp.onnx"); model.predict(x)   # doctest: +SKIP
    """
    from nnfast.onnx import _import
    return _import.read_onnx(path, Sequential, output)
