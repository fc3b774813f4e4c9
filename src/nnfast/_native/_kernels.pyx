# cython: language_level=3
"""Thin wrappers over the C kernels of csrc/: validate every argument, allocate outputs,
release the GIL, call C. Each public function mirrors one in nnfast/backends/reference.py
(same name, arguments, defaults and return values). Kernels in C check nothing."""
cimport numpy as cnp
import numpy as np
from libc.stdint cimport int64_t, uintptr_t

cnp.import_array()

# One thread count for the process; set through nnfast.set_num_threads.
cdef int _nthreads = 1

include "_validate.pxi"
include "_runtime.pxi"
include "_gemm.pxi"
include "_activations.pxi"
include "_dense.pxi"
include "_dropout.pxi"
include "_reduce.pxi"
include "_loss.pxi"
include "_optim.pxi"
include "_plan.pxi"
include "_step.pxi"
include "_step_layers.pxi"
include "_conv.pxi"
include "_pool.pxi"
include "_batchnorm.pxi"
include "_netplan.pxi"
