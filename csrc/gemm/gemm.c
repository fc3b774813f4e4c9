/* Foundation GEMM: cache-blocked loops, parallel over row blocks of C.
 * The packed framework with ISA microkernels replaces the inner loops (issue 9). */
#include "nnfast.h"
#ifdef NNF_HAVE_OPENMP
#include <omp.h>
#endif

#define MB 64
#define KB 256

#define NNF_DEFINE_GEMM(T, SFX)                                                             \
void nnf_gemm_ep_##SFX(T *C, int64_t ldc, const T *A, int64_t lda, const T *B, int64_t ldb, \
                       int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,          \
                       T alpha, T beta, const nnf_epilogue_t *ep, int nthreads) {          \
    int64_t nblk = (m + MB - 1) / MB;                                                       \
    (void)nthreads;                                                                         \
    _Pragma("omp parallel for schedule(static) num_threads(nthreads) if(m * n * k > 65536)") \
    for (int64_t bi = 0; bi < nblk; ++bi) {                                                 \
        int64_t i0 = bi * MB, i1 = i0 + MB < m ? i0 + MB : m;                               \
        for (int64_t i = i0; i < i1; ++i) {                                                 \
            T *c = C + i * ldc;                                                             \
            if (beta == 0) for (int64_t j = 0; j < n; ++j) c[j] = 0;                        \
            else if (beta != 1) for (int64_t j = 0; j < n; ++j) c[j] *= beta;               \
        }                                                                                   \
        for (int64_t p0 = 0; alpha != 0 && p0 < k; p0 += KB) {                             \
            int64_t p1 = p0 + KB < k ? p0 + KB : k;                                         \
            for (int64_t i = i0; i < i1; ++i) {                                             \
                T *restrict c = C + i * ldc;                                                \
                for (int64_t p = p0; p < p1; ++p) {                                         \
                    T a = alpha * (trans_a ? A[p * lda + i] : A[i * lda + p]);              \
                    if (!trans_b) {                                                         \
                        const T *restrict b = B + p * ldb;                                  \
                        for (int64_t j = 0; j < n; ++j) c[j] += a * b[j];                   \
                    } else {                                                                \
                        for (int64_t j = 0; j < n; ++j) c[j] += a * B[j * ldb + p];         \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
        if (ep) nnf_epilogue_tile_##SFX(ep, C, ldc, i0, 0, i1 - i0, n);                     \
    }                                                                                       \
}                                                                                           \
void nnf_gemm_##SFX(T *C, int64_t ldc, const T *A, int64_t lda, const T *B, int64_t ldb,    \
                    int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,             \
                    T alpha, T beta, int nthreads) {                                       \
    nnf_gemm_ep_##SFX(C, ldc, A, lda, B, ldb, m, n, k, trans_a, trans_b, alpha, beta,      \
                      (const nnf_epilogue_t *)0, nthreads);                                 \
}

NNF_DEFINE_GEMM(float, f32)
NNF_DEFINE_GEMM(double, f64)
