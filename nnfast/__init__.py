"""nnfast: fast CPU neural networks for Python.

C kernels with OpenMP behind a thin Cython layer, a plain-NumPy reference backend that mirrors
them function for function, and NumPy-compatible ops such as :func:`nnfast.matmul`.
"""
from nnfast._info import info
from nnfast._matmul import matmul
from nnfast._threads import get_num_threads, set_num_threads
from nnfast._version import __version__
from nnfast.backends import get_backend, set_backend, use_backend

__all__ = [
    "__version__", "matmul", "info",
    "get_backend", "set_backend", "use_backend",
    "get_num_threads", "set_num_threads",
]
