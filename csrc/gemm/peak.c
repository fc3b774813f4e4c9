/* nnf_fma_peak: the machine's own FMA roof for the active kernel path, so GEMM figures can be
 * quoted as a percentage of it. Each thread runs NNF_PEAK_CHAINS independent FMA chains
 * x = x*m + a (m, a chosen so x stays near 1: no overflow, no denormals). 12 chains cover
 * 2 FMA pipes x 4-5 cycles latency on Zen 3/4/5 and Intel cores. */
#include <time.h>
#include "gemm_kernels.h"
#include "nnfast.h"
#include "runtime/par.h"

#define NNF_PEAK_CHAINS 12

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Generic: 128-bit wide chains written as plain arrays (mul + add: this path has no FMA). */
#define NNF_DEFINE_PEAK_GENERIC(T, SFX)                                                      \
double nnf_peak_generic_##SFX(int64_t iters, float *sink) {                                 \
    enum { W = 16 / sizeof(T) };                                                            \
    T x[NNF_PEAK_CHAINS][W];                                                                \
    const T m = (T)0.9999, a = (T)0.0001;                                                   \
    for (int c = 0; c < NNF_PEAK_CHAINS; ++c)                                               \
        for (int l = 0; l < W; ++l) x[c][l] = (T)1 + (T)0.001 * (T)(c * W + l);            \
    for (int64_t it = 0; it < iters; ++it)                                                  \
        for (int c = 0; c < NNF_PEAK_CHAINS; ++c)                                           \
            for (int l = 0; l < W; ++l) x[c][l] = x[c][l] * m + a;                          \
    T s = 0;                                                                                \
    for (int c = 0; c < NNF_PEAK_CHAINS; ++c)                                               \
        for (int l = 0; l < W; ++l) s += x[c][l];                                           \
    *sink = (float)s;                                                                       \
    return 2.0 * (double)iters * NNF_PEAK_CHAINS * W;                                       \
}
NNF_DEFINE_PEAK_GENERIC(float, f32)
NNF_DEFINE_PEAK_GENERIC(double, f64)

#if defined(__x86_64__)
#include <immintrin.h>
#define NNF_DEFINE_PEAK_SIMD(NAME, ATTR, V, PFX, SFX, LANES, CVT)                             \
ATTR double NAME(int64_t iters, float *sink) {                                              \
    V x[NNF_PEAK_CHAINS];                                                                   \
    const V m = PFX##_set1_##SFX(0.9999), a = PFX##_set1_##SFX(0.0001);                     \
    _Pragma("GCC unroll 12")                                                                \
    for (int c = 0; c < NNF_PEAK_CHAINS; ++c) x[c] = PFX##_set1_##SFX(1.0 + 0.001 * c);     \
    for (int64_t it = 0; it < iters; ++it) {                                                \
        _Pragma("GCC unroll 12")                                                            \
        for (int c = 0; c < NNF_PEAK_CHAINS; ++c) x[c] = PFX##_fmadd_##SFX(x[c], m, a);     \
    }                                                                                       \
    V s = x[0];                                                                             \
    _Pragma("GCC unroll 12")                                                                \
    for (int c = 1; c < NNF_PEAK_CHAINS; ++c) s = PFX##_add_##SFX(s, x[c]);                 \
    *sink = (float)CVT(s);                                                                      \
    return 2.0 * (double)iters * NNF_PEAK_CHAINS * LANES;                                   \
}
#define NNF_AVX2 __attribute__((target("avx2,fma")))
#define NNF_AVX512 __attribute__((target("avx512f,avx2,fma")))
NNF_DEFINE_PEAK_SIMD(nnf_peak_avx2_f32, NNF_AVX2, __m256, _mm256, ps, 8, _mm256_cvtss_f32)
NNF_DEFINE_PEAK_SIMD(nnf_peak_avx2_f64, NNF_AVX2, __m256d, _mm256, pd, 4, _mm256_cvtsd_f64)
NNF_DEFINE_PEAK_SIMD(nnf_peak_avx512_f32, NNF_AVX512, __m512, _mm512, ps, 16, _mm512_cvtss_f32)
NNF_DEFINE_PEAK_SIMD(nnf_peak_avx512_f64, NNF_AVX512, __m512d, _mm512, pd, 8, _mm512_cvtsd_f64)
#endif

/* One thread's share: the chains for `dur` seconds from t0; flops into flops[i] per part. */
typedef struct {
    nnf_peak_fn fn;
    double t0, dur;
    double *flops;
} nnf_peak_job_t;

static void nnf_peak_part(void *ctx, int64_t lo, int64_t hi, int worker) {
    const nnf_peak_job_t *jb = (const nnf_peak_job_t *)ctx;
    (void)worker;
    for (int64_t i = lo; i < hi; ++i) {
        float sink = 0.0f;
        volatile float keep;
        double f = 0.0;
        do {
            f += jb->fn(1 << 14, &sink);
        } while (now_s() - jb->t0 < jb->dur);
        keep = sink;
        (void)keep;
        jb->flops[i] = f;
    }
}

/* Runs the active path's chains on nthreads threads (one part each, through the parallel
 * runtime) for about `seconds` (after a short warm-up that lets the clock ramp); returns total
 * GFLOP/s. A thread that cannot start in time leaves its part to the others: a lower figure. */
double nnf_fma_peak(int dtype_size, int nthreads, double seconds) {
    double flops[NNF_MAX_THREADS];
    if (nthreads > NNF_MAX_THREADS) nthreads = NNF_MAX_THREADS;
    if (nthreads < 1) nthreads = 1;
    nnf_peak_job_t jb = {nnf_active_peak(dtype_size), 0.0, 0.0, flops};
    double total = 0.0, t1 = 0.0;
    for (int pass = 0; pass < 2; ++pass) {
        jb.dur = pass == 0 ? 0.05 : seconds;
        jb.t0 = now_s();
        nnf_parallel_for(nnf_peak_part, &jb, nthreads, nthreads, nthreads);
        t1 = now_s();
        total = 0.0;
        for (int i = 0; i < nthreads; ++i) total += flops[i];
    }
    return t1 > jb.t0 ? total / (t1 - jb.t0) * 1e-9 : 0.0;
}
