/* Dropout with a counter-based mask (the hash is spelled out in nnfast.h, "dropout"):
 * element i's decision depends only on (seed, step, i), so chunks can run on any thread. */
#include <math.h>

#include "nnfast.h"
#include "par.h"

#define PAR_WORK 32768
#define CHUNK 4096
#define GAMMA 0x9E3779B97F4A7C15ULL

static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#define NNF_DEFINE_DROPOUT(T, SFX)                                                          \
void nnf_dropout_fwd_##SFX(T *y, const T *x, int64_t n, double rate, uint64_t seed,       \
                           uint64_t step, int nthreads) {                                  \
    (void)nthreads;                                                                        \
    if (rate == 0.0) {                                                                     \
        if (y != x) for (int64_t i = 0; i < n; ++i) y[i] = x[i];                           \
        return;                                                                            \
    }                                                                                      \
    const uint64_t key = mix64(mix64(seed) ^ step);                                        \
    const T scale = (T)(1.0 / (1.0 - rate));                                               \
    /* u = (bits >> 11) 2^-53 >= rate  <=>  (bits >> 11) >= ceil(rate 2^53): both sides exact */ \
    const uint64_t cut = (uint64_t)ceil(rate * 0x1.0p53);                                  \
    int64_t nchunks = (n + CHUNK - 1) / CHUNK;                                             \
    NNF_PAR_FOR(n > PAR_WORK, c, nchunks,                                                  \
        int64_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;                      \
        for (int64_t i = lo; i < hi; ++i) {                                                \
            uint64_t bits = mix64(key + ((uint64_t)i + 1) * GAMMA);                        \
            y[i] = x[i] * ((bits >> 11) >= cut ? scale : (T)0);                            \
        });                                                                                \
}                                                                                          \
void nnf_dropout_bwd_##SFX(T *dx, const T *dy, int64_t n, double rate, uint64_t seed,     \
                           uint64_t step, int nthreads) {                                  \
    nnf_dropout_fwd_##SFX(dx, dy, n, rate, seed, step, nthreads);                          \
}

NNF_DEFINE_DROPOUT(float, f32)
NNF_DEFINE_DROPOUT(double, f64)
