"""nnfast: fast CPU neural networks for Python.

C kernels with OpenMP behind a thin Cython layer, a plain-NumPy reference backend that mirrors
them function for function, and NumPy-compatible ops such as :func:`nnfast.matmul`.
"""
from nnfast import _threadpoolctl
from nnfast._info import info
from nnfast._matmul import matmul
from nnfast._threads import get_num_threads, set_num_threads
from nnfast._version import __version__
from nnfast.backends import get_backend, set_backend, use_backend

_threadpoolctl.install()  # threadpoolctl lists and limits nnfast once it is imported

__all__ = [
    "__version__", "matmul", "info",
    "get_backend", "set_backend", "use_backend",
    "get_num_threads", "set_num_threads",
]
__all__ += ["Sequential", "load_model", "from_onnx", "callbacks", "datasets", "distributed",
            "initializers", "layers", "losses", "metrics", "ops", "optimizers", "regularizers"]

# The model API loads on first use, so `import nnfast` stays light.
_LAZY = {"Sequential": ("nnfast.engine.model", "Sequential"),
         "load_model": ("nnfast.engine.model", "load_model"),
         "from_onnx": ("nnfast.engine.interchange", "from_onnx")}
_SUBMODULES = ("layers", "optimizers", "losses", "callbacks", "initializers", "regularizers",
               "metrics", "ops", "datasets", "distributed")


def __getattr__(name):
    import importlib
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"nnfast.{name}")
    else:
        raise AttributeError(f"module 'nnfast' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():  # the public names only (imported submodules and helpers stay out of sight)
    return list(__all__)
