"""The Cython layer: ``_kernels`` (built from _kernels.pyx and its .pxi parts, one per op group)
wraps the C kernels of csrc/ declared in _kernels.pxd (a mirror of csrc/nnfast.h). Each wrapper
checks its arguments, allocates ``out`` when not given and calls C inside ``with nogil:``.
Used through nnfast.backends.compiled; see docs/architecture.md."""

import os

# An empty (or blank) OMP_NUM_THREADS means "unset" to nnfast (nnfast._threads.env_threads),
# but libgomp reads it when the extension loads and prints "Invalid value for environment
# variable OMP_NUM_THREADS" to stderr. Removing it before that load makes both agree; the
# variable is gone for this process and its children, as an unset one would be.
if "OMP_NUM_THREADS" in os.environ and not os.environ["OMP_NUM_THREADS"].strip():
    del os.environ["OMP_NUM_THREADS"]
del os
