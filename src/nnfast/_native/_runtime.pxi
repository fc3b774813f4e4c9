# Process-wide settings and facts: threads, CPU features, kernel path.

def set_num_threads(int n):
    """Set the thread count used by every kernel (validated in nnfast._threads)."""
    global _nthreads
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _nthreads = n


def get_num_threads():
    return _nthreads


_FEATURES = (("sse2", NNF_CPU_SSE2), ("sse4.2", NNF_CPU_SSE42), ("avx", NNF_CPU_AVX),
             ("avx2", NNF_CPU_AVX2), ("fma", NNF_CPU_FMA), ("avx512f", NNF_CPU_AVX512F),
             ("avx512dq", NNF_CPU_AVX512DQ), ("avx512bw", NNF_CPU_AVX512BW),
             ("avx512vl", NNF_CPU_AVX512VL), ("neon", NNF_CPU_NEON))


def select_isa(name):
    """Force a kernel path: None/'' = best available, or 'generic' | 'avx2' | 'avx512'."""
    cdef bytes b = (name or "").encode()
    cdef int rc = nnf_isa_select(b)
    if rc == -1:
        raise ValueError(f"NNFAST_ISA: unknown kernel path {name!r}; "
                         "valid: 'generic', 'avx2', 'avx512'")
    if rc == -2:
        raise RuntimeError(f"NNFAST_ISA={name}: this CPU does not support the {name} path "
                           f"(features seen: {', '.join(cpu_features()) or 'none'})")
    return nnf_isa_name(nnf_isa_active()).decode()


def cpu_features():
    cdef unsigned f = nnf_cpu_features()
    return [n for n, bit in _FEATURES if f & bit]


def runtime_info():
    cdef int64_t b4[5]
    cdef int64_t b8[5]
    nnf_gemm_blocking(4, b4)
    nnf_gemm_blocking(8, b8)
    keys = ("MR", "NR", "MC", "KC", "NC")
    return {
        "openmp": bool(nnf_have_openmp()),
        "threading": get_threading(),
        "pool_workers": nnf_pool_workers(),
        "spin_us": nnf_pool_get_spin_us(),
        "cpu_features": cpu_features(),
        "kernel_path": nnf_isa_name(nnf_isa_active()).decode(),
        "gemm_blocking": {"float32": dict(zip(keys, [b4[i] for i in range(5)])),
                          "float64": dict(zip(keys, [b8[i] for i in range(5)]))},
    }


def fma_peak(int dtype_size=4, int nthreads=1, double seconds=0.2):
    """Measured FMA throughput (GFLOP/s) of the active path on nthreads threads."""
    if dtype_size not in (4, 8):
        raise ValueError(f"fma_peak: dtype_size must be 4 or 8, got {dtype_size}")
    if nthreads < 1:
        raise ValueError(f"fma_peak: nthreads must be >= 1, got {nthreads}")
    cdef double r
    with nogil:
        r = nnf_fma_peak(dtype_size, nthreads, seconds)
    return r


_THREADING = {"pool": NNF_THREADING_POOL, "openmp": NNF_THREADING_OPENMP}


def set_threading(name):
    """Which runtime runs the kernels' threads: 'pool' (nnfast's own, the default) or 'openmp'
    (builds with OpenMP only). Read from NNFAST_THREADING at import."""
    if name not in _THREADING:
        raise ValueError(f"NNFAST_THREADING: unknown runtime {name!r}; valid: 'pool', 'openmp'")
    if nnf_set_threading(_THREADING[name]) != 0:
        raise RuntimeError(f"NNFAST_THREADING={name}: this build has no OpenMP (it was compiled "
                           "without it); use 'pool'")


def get_threading():
    return "openmp" if nnf_get_threading() == NNF_THREADING_OPENMP else "pool"


def set_spin_us(int64_t us):
    """Microseconds a pool worker spins after its last chunk before it sleeps (default 1000;
    at most one second, so an idle process never holds a core for longer)."""
    if us < 0 or us > 1000000:
        raise ValueError(f"set_spin_us: us must be in [0, 1000000], got {us}")
    nnf_pool_set_spin_us(us)


def _pool_set_test_mode(int mode):
    """Test hook: 0 normal; 1 pool workers join every job 200 us late; 2 they never join (the
    calling thread runs every chunk)."""
    if mode not in (0, 1, 2):
        raise ValueError(f"_pool_set_test_mode: mode must be 0, 1 or 2, got {mode}")
    nnf_pool_set_test_mode(mode)
