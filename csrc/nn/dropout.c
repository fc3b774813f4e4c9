/* Dropout with a counter-based mask (the hash is spelled out in nnfast.h, "dropout"):
 * element i's decision depends only on (seed, step, i), so chunks can run on any thread. */
#include <math.h>

#include "nnfast.h"
#include "runtime/par.h"

#define PAR_WORK 32768
#define GAMMA 0x9E3779B97F4A7C15ULL

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#define NNF_DEFINE_DROPOUT(T, SFX)                                                          \
typedef struct { T *y; const T *x; uint64_t key, cut; T scale; } drop_ctx_##SFX;           \
static void drop_part_##SFX(void *p, int64_t lo, int64_t hi, int w) {                      \
    const drop_ctx_##SFX *c = (const drop_ctx_##SFX *)p;                                   \
    (void)w;                                                                               \
    for (int64_t i = lo; i < hi; ++i) {                                                    \
        uint64_t bits = mix64(c->key + ((uint64_t)i + 1) * GAMMA);                         \
        c->y[i] = c->x[i] * ((bits >> 11) >= c->cut ? c->scale : (T)0);                    \
    }                                                                                      \
}                                                                                          \
void nnf_dropout_fwd_##SFX(T *y, const T *x, int64_t n, double rate, uint64_t seed,       \
                           uint64_t step, int nthreads) {                                  \
    if (rate == 0.0) {                                                                     \
        if (y != x) for (int64_t i = 0; i < n; ++i) y[i] = x[i];                           \
        return;                                                                            \
    }                                                                                      \
    /* u = (bits >> 11) 2^-53 >= rate  <=>  (bits >> 11) >= ceil(rate 2^53): both sides exact */ \
    drop_ctx_##SFX c = {y, x, mix64(mix64(seed) ^ step), (uint64_t)ceil(rate * 0x1.0p53),  \
                        (T)(1.0 / (1.0 - rate))};                                          \
    nnf_parallel_for(drop_part_##SFX, &c, n, NNF_PARTS(nthreads), n > PAR_WORK ? nthreads : 1); \
}                                                                                          \
void nnf_dropout_bwd_##SFX(T *dx, const T *dy, int64_t n, double rate, uint64_t seed,     \
                           uint64_t step, int nthreads) {                                  \
    nnf_dropout_fwd_##SFX(dx, dy, n, rate, seed, step, nthreads);                          \
}

NNF_DEFINE_DROPOUT(float, f32)
NNF_DEFINE_DROPOUT(double, f64)
