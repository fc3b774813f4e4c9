"""The Cython layer: ``_kernels`` (built from _kernels.pyx and its .pxi parts, one per op group)
wraps the C kernels of csrc/ declared in _kernels.pxd (a mirror of csrc/nnfast.h). Each wrapper
checks its arguments, allocates ``out`` when not given and calls C inside ``with nogil:``.
Used through nnfast.backends.compiled; see docs/architecture.md."""
