/* Dense layer forward and backward (see nnfast.h, "dense"): GEMMs through the public
 * nnf_gemm_* API, bias and elementwise activation in the GEMM epilogue, transposed operands
 * read in place through the trans flags. Thread-count independence comes from the parts:
 * GEMM never splits K across threads, column sums run rows in order. */
#include "nnfast.h"

#define NNF_DEFINE_DENSE(T, SFX)                                                            \
int nnf_dense_fwd_##SFX(T *y, T *z, const T *x, int64_t ldx, int trans_x, const T *W,     \
                        int64_t ldw, int trans_w, const T *b, int64_t N, int64_t K,        \
                        int64_t M, int act, T alpha, int nthreads) {                       \
    int rowwise = act == NNF_ACT_SOFTMAX || act == NNF_ACT_LOG_SOFTMAX;                    \
    nnf_epilogue_t ep = {b, z, M, rowwise ? NNF_ACT_IDENTITY : act, (double)alpha};        \
    /* y (N x M) = x (N x K) . W (K x M), then z = y + b, y = act(z) tile by tile */       \
    if (N == 0 || M == 0) return NNF_OK;                                                   \
    int st = nnf_gemm_ep_##SFX(y, M, x, ldx, W, ldw, N, M, K, trans_x, trans_w, (T)1,     \
                               (T)0, &ep, nthreads);                                       \
    if (st != NNF_OK) return st;                                                           \
    if (rowwise) nnf_activation_fwd_##SFX(y, y, N, M, act, alpha, nthreads);               \
    return NNF_OK;                                                                         \
}                                                                                          \
int nnf_dense_bwd_##SFX(T *dx, T *dW, T *db, T *dz, const T *dy, const T *x, int64_t ldx,  \
                        int trans_x, const T *W, int64_t ldw, int trans_w, const T *z,     \
                        const T *y, int64_t N, int64_t K, int64_t M, int act, T alpha,     \
                        int accumulate, int nthreads) {                                    \
    const T *g = dy;                                                                       \
    int st = NNF_OK;                                                                       \
    if (dz) {                                                                              \
        nnf_activation_bwd_##SFX(dz, dy, z, y, N, M, act, alpha, nthreads);                \
        g = dz;                                                                            \
    }                                                                                      \
    /* dx first, then dW, then db: a GEMM out of memory writes nothing, so an accumulating \
     * dW/db is either fully updated or left as it was */                                  \
    /* dx (N x K) = dz (N x M) . W^T (M x K) */                                            \
    if (dx && N > 0 && K > 0)                                                              \
        st = nnf_gemm_##SFX(dx, K, g, M ? M : 1, W, ldw, N, K, M, 0, !trans_w, (T)1, (T)0, \
                            nthreads);                                                     \
    if (st != NNF_OK) return st;                                                           \
    /* dW (K x M) = x^T (K x N) . dz (N x M): x^T is x read with the opposite flag */      \
    if (K > 0 && M > 0)                                                                    \
        st = nnf_gemm_##SFX(dW, M, x, ldx, g, M, K, M, N, !trans_x, 0, (T)1,               \
                            accumulate ? (T)1 : (T)0, nthreads);                           \
    if (st != NNF_OK) return st;                                                           \
    nnf_column_sums_##SFX(db, g, N, M, accumulate, nthreads);                              \
    return NNF_OK;                                                                         \
}

NNF_DEFINE_DENSE(float, f32)
NNF_DEFINE_DENSE(double, f64)
