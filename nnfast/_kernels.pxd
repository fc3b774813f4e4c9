# C API of csrc/nnfast.h, mirrored for Cython. Keep in the same order as the header.
from libc.stdint cimport int64_t

cdef extern from "nnfast.h" nogil:
    # runtime
    int nnf_available_cpus()
    int nnf_have_openmp()

    # dispatch
    unsigned nnf_cpu_features()
    int nnf_isa_select(const char *name)
    int nnf_isa_active()
    const char *nnf_isa_name(int isa)
    void nnf_gemm_blocking(int dtype_size, int64_t out[5])
    enum:
        NNF_CPU_SSE2, NNF_CPU_SSE42, NNF_CPU_AVX, NNF_CPU_AVX2, NNF_CPU_FMA,
        NNF_CPU_AVX512F, NNF_CPU_AVX512DQ, NNF_CPU_AVX512BW, NNF_CPU_AVX512VL, NNF_CPU_NEON

    # GEMM
    ctypedef struct nnf_epilogue_t:
        const void *bias
        void *z
        int64_t ldz
        int act
        double act_alpha
    enum:
        NNF_ACT_IDENTITY, NNF_ACT_RELU, NNF_ACT_LEAKY_RELU, NNF_ACT_ELU, NNF_ACT_SIGMOID,
        NNF_ACT_TANH, NNF_ACT_GELU, NNF_ACT_GELU_TANH, NNF_ACT_SILU, NNF_ACT_SOFTPLUS,
        NNF_ACT_SOFTMAX, NNF_ACT_LOG_SOFTMAX
    void nnf_gemm_f32(float *C, int64_t ldc, const float *A, int64_t lda, const float *B,
                      int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                      float alpha, float beta, int nthreads)
    void nnf_gemm_f64(double *C, int64_t ldc, const double *A, int64_t lda, const double *B,
                      int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                      double alpha, double beta, int nthreads)
    void nnf_gemm_ep_f32(float *C, int64_t ldc, const float *A, int64_t lda, const float *B,
                         int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                         float alpha, float beta, const nnf_epilogue_t *ep, int nthreads)
    void nnf_gemm_ep_f64(double *C, int64_t ldc, const double *A, int64_t lda, const double *B,
                         int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                         double alpha, double beta, const nnf_epilogue_t *ep, int nthreads)
    double nnf_fma_peak(int dtype_size, int nthreads, double seconds)

    # ---- activations (kna)

    # ---- dense (kna)

    # ---- losses (knb)

    # ---- optimizers (knb)

    # ---- dropout (kna)

    # ---- reductions (kna)
