/* Reductions: row-wise argmax, accuracy count, column sums (see nnfast.h, "reductions"). */
#include "nnfast.h"
#include "par.h"

#define PAR_WORK 32768 /* elements below which reductions run on one thread */
#define COLBLK 256     /* columns per block in column_sums (the double accumulators fit in L1) */

#define NNF_DEFINE_REDUCE(T, SFX)                                                           \
/* First index of the row maximum; the first NaN wins (np.argmax semantics). M >= 1. */    \
static inline int64_t argmax_row_##SFX(const T *x, int64_t M) {                            \
    int64_t best = 0;                                                                      \
    T m = x[0];                                                                            \
    if (m != m) return 0;                                                                  \
    for (int64_t j = 1; j < M; ++j) {                                                      \
        T v = x[j];                                                                        \
        if (v != v) return j;                                                              \
        if (v > m) { m = v; best = j; }                                                    \
    }                                                                                      \
    return best;                                                                           \
}                                                                                          \
void nnf_argmax_rows_##SFX(int64_t *out, const T *x, int64_t N, int64_t M, int nthreads) { \
    NNF_PAR_FOR(N * M > PAR_WORK, i, N, out[i] = argmax_row_##SFX(x + i * M, M));         \
}                                                                                          \
int64_t nnf_accuracy_##SFX(const T *x, const int64_t *labels, int64_t N, int64_t M,       \
                           int nthreads) {                                                 \
    int64_t hits = 0; /* an integer count: exact in any order */                           \
    if (nthreads > 1 && N * M > PAR_WORK) {                                                \
        _Pragma("omp parallel for schedule(static) num_threads(nthreads) reduction(+:hits)") \
        for (int64_t i = 0; i < N; ++i) hits += argmax_row_##SFX(x + i * M, M) == labels[i]; \
    } else {                                                                               \
        for (int64_t i = 0; i < N; ++i) hits += argmax_row_##SFX(x + i * M, M) == labels[i]; \
    }                                                                                      \
    return hits;                                                                           \
}                                                                                          \
void nnf_column_sums_##SFX(T *out, const T *x, int64_t N, int64_t M, int accumulate,      \
                           int nthreads) {                                                 \
    int64_t nblk = (M + COLBLK - 1) / COLBLK;                                              \
    NNF_PAR_FOR(N * M > PAR_WORK && nblk > 1, bj, nblk,                                    \
        int64_t j0 = bj * COLBLK, w = M - j0 < COLBLK ? M - j0 : COLBLK;                   \
        double acc[COLBLK];                                                                \
        for (int64_t j = 0; j < w; ++j) acc[j] = 0;                                        \
        for (int64_t i = 0; i < N; ++i) {                                                  \
            const T *restrict r = x + i * M + j0;                                          \
            for (int64_t j = 0; j < w; ++j) acc[j] += (double)r[j];                        \
        }                                                                                  \
        if (accumulate) for (int64_t j = 0; j < w; ++j) out[j0 + j] += (T)acc[j];          \
        else for (int64_t j = 0; j < w; ++j) out[j0 + j] = (T)acc[j];);                    \
}

NNF_DEFINE_REDUCE(float, f32)
NNF_DEFINE_REDUCE(double, f64)
