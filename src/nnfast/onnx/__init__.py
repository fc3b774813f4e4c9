"""ONNX interchange: :meth:`nnfast.Sequential.to_onnx` and :func:`nnfast.from_onnx`.

Needs the ``onnx`` extra (``pip install "nnfast[onnx]"``); ``import nnfast`` never imports this
package nor ``onnx``. The file is written and read with the ``onnx`` package only; running an
exported file needs an ONNX runtime (ONNX Runtime is what the tests use).

- ``_export.py``: a built Sequential -> one standard ONNX graph (``write_onnx``).
- ``_files.py``: reading a file safely: the protobuf, the initializers and their sizes, external
  data confined to the model's directory.
- ``_import.py``: an ONNX graph -> the layers of a Sequential (``read_onnx``).
- ``_fold.py``: folding constants (Constant, Cast/Transpose/Reshape/... of constants).
- ``_patterns.py``: recognising, by structure, the elementwise subgraphs (gelu, silu ...) that
  exporters emit.

This part sits below the engine (docs/architecture.md): reading is handed the class to build,
``read_onnx(path, Sequential)``, as ``engine/saving.py`` is for nnfast's own files.
"""
DEFAULT_OPSET = 17
MIN_OPSET = 13   # Softmax/LogSoftmax over one axis and Dropout's ratio input
MAX_OPSET = 21   # the newest opset the tests run on ONNX Runtime

__all__ = ["DEFAULT_OPSET", "MAX_OPSET", "MIN_OPSET", "require_onnx"]


def require_onnx():
    """The ``onnx`` module, or ImportError naming the extra to install."""
    try:
        import onnx
    except ImportError as exc:
        raise ImportError('ONNX export and import need the onnx package: '
                          'pip install "nnfast[onnx]"') from exc
    return onnx
