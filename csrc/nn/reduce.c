/* Reductions: row-wise argmax, accuracy count, column sums (see nnfast.h, "reductions"). */
#include "nnfast.h"
#include "runtime/par.h"

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
typedef struct {                                                                           \
    int64_t *out; const T *x; const int64_t *labels; T *sums; int64_t N, M;                \
    int accumulate; int64_t hits;                                                          \
} red_ctx_##SFX;                                                                           \
static void argmax_part_##SFX(void *p, int64_t lo, int64_t hi, int w) {                    \
    const red_ctx_##SFX *c = (const red_ctx_##SFX *)p;                                     \
    (void)w;                                                                               \
    for (int64_t i = lo; i < hi; ++i) c->out[i] = argmax_row_##SFX(c->x + i * c->M, c->M); \
}                                                                                          \
void nnf_argmax_rows_##SFX(int64_t *out, const T *x, int64_t N, int64_t M, int nthreads) { \
    red_ctx_##SFX c = {out, x, 0, 0, N, M, 0, 0};                                          \
    nnf_parallel_for(argmax_part_##SFX, &c, N, NNF_PARTS(nthreads),                        \
                     N * M > PAR_WORK ? nthreads : 1);                                     \
}                                                                                          \
static void hits_part_##SFX(void *p, int64_t lo, int64_t hi, int w) {                      \
    red_ctx_##SFX *c = (red_ctx_##SFX *)p;                                                 \
    int64_t h = 0;                                                                         \
    (void)w;                                                                               \
    for (int64_t i = lo; i < hi; ++i)                                                      \
        h += argmax_row_##SFX(c->x + i * c->M, c->M) == c->labels[i];                      \
    __atomic_fetch_add(&c->hits, h, __ATOMIC_RELAXED); /* an integer count: any order */  \
}                                                                                          \
int64_t nnf_accuracy_##SFX(const T *x, const int64_t *labels, int64_t N, int64_t M,       \
                           int nthreads) {                                                 \
    red_ctx_##SFX c = {0, x, labels, 0, N, M, 0, 0};                                       \
    nnf_parallel_for(hits_part_##SFX, &c, N, NNF_PARTS(nthreads),                          \
                     N * M > PAR_WORK ? nthreads : 1);                                     \
    return c.hits;                                                                         \
}                                                                                          \
/* Column block bj: the block's column sums over every row, in row order, in double. */    \
static void colsum_part_##SFX(void *p, int64_t b0, int64_t b1, int w) {                    \
    const red_ctx_##SFX *c = (const red_ctx_##SFX *)p;                                     \
    const int64_t N = c->N, M = c->M;                                                      \
    (void)w;                                                                               \
    for (int64_t bj = b0; bj < b1; ++bj) {                                                 \
        int64_t j0 = bj * COLBLK, wd = M - j0 < COLBLK ? M - j0 : COLBLK;                  \
        double acc[COLBLK];                                                                \
        for (int64_t j = 0; j < wd; ++j) acc[j] = 0;                                       \
        for (int64_t i = 0; i < N; ++i) {                                                  \
            const T *restrict r = c->x + i * M + j0;                                       \
            for (int64_t j = 0; j < wd; ++j) acc[j] += (double)r[j];                       \
        }                                                                                  \
        T *o = c->sums + j0;                                                               \
        if (c->accumulate) for (int64_t j = 0; j < wd; ++j) o[j] += (T)acc[j];             \
        else for (int64_t j = 0; j < wd; ++j) o[j] = (T)acc[j];                            \
    }                                                                                      \
}                                                                                          \
void nnf_column_sums_##SFX(T *out, const T *x, int64_t N, int64_t M, int accumulate,      \
                           int nthreads) {                                                 \
    if (M >= 1 && M <= 16) { /* one block either way: on the calling thread */             \
        colsum_narrow_##SFX(out, x, N, M, accumulate);                                     \
        return;                                                                            \
    }                                                                                      \
    int64_t nblk = (M + COLBLK - 1) / COLBLK;                                              \
    red_ctx_##SFX c = {0, x, 0, out, N, M, accumulate, 0};                                 \
    nnf_parallel_for(colsum_part_##SFX, &c, nblk, nblk,                                    \
                     N * M > PAR_WORK && nblk > 1 ? nthreads : 1);                         \
}

/* Narrow column sums (M <= 16: a convolution's or small layer's bias gradient): the same
 * row-order double sums, the accumulators of a constant width in registers. With the stack
 * array of the general loop every row stored each sum and loaded it back, and that round trip,
 * not the add, set the pace (LeNet's conv1 db, 36864 rows x 6: ~130 us). */
#define NNF_DEFINE_COLSUM_NARROW(T, SFX)                                                    \
static inline __attribute__((always_inline)) void                                          \
colsum_w_##SFX(const int WD, T *o, const T *x, int64_t N, int accumulate) {                \
    double acc[16];                                                                        \
    for (int j = 0; j < WD; ++j) acc[j] = 0;                                               \
    for (int64_t i = 0; i < N; ++i) {                                                      \
        const T *restrict r = x + i * WD;                                                  \
        for (int j = 0; j < WD; ++j) acc[j] += (double)r[j];                               \
    }                                                                                      \
    if (accumulate) for (int j = 0; j < WD; ++j) o[j] += (T)acc[j];                        \
    else for (int j = 0; j < WD; ++j) o[j] = (T)acc[j];                                    \
}                                                                                          \
static void colsum_narrow_##SFX(T *o, const T *x, int64_t N, int64_t M, int accumulate) {  \
    switch (M) {                                                                           \
    case 1: colsum_w_##SFX(1, o, x, N, accumulate); break;                                 \
    case 2: colsum_w_##SFX(2, o, x, N, accumulate); break;                                 \
    case 3: colsum_w_##SFX(3, o, x, N, accumulate); break;                                 \
    case 4: colsum_w_##SFX(4, o, x, N, accumulate); break;                                 \
    case 5: colsum_w_##SFX(5, o, x, N, accumulate); break;                                 \
    case 6: colsum_w_##SFX(6, o, x, N, accumulate); break;                                 \
    case 7: colsum_w_##SFX(7, o, x, N, accumulate); break;                                 \
    case 8: colsum_w_##SFX(8, o, x, N, accumulate); break;                                 \
    case 9: colsum_w_##SFX(9, o, x, N, accumulate); break;                                 \
    case 10: colsum_w_##SFX(10, o, x, N, accumulate); break;                               \
    case 11: colsum_w_##SFX(11, o, x, N, accumulate); break;                               \
    case 12: colsum_w_##SFX(12, o, x, N, accumulate); break;                               \
    case 13: colsum_w_##SFX(13, o, x, N, accumulate); break;                               \
    case 14: colsum_w_##SFX(14, o, x, N, accumulate); break;                               \
    case 15: colsum_w_##SFX(15, o, x, N, accumulate); break;                               \
    default: colsum_w_##SFX(16, o, x, N, accumulate); break;                               \
    }                                                                                      \
}

NNF_DEFINE_COLSUM_NARROW(float, f32)
NNF_DEFINE_COLSUM_NARROW(double, f64)
NNF_DEFINE_REDUCE(float, f32)
NNF_DEFINE_REDUCE(double, f64)
