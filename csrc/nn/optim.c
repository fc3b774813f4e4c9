/* Optimizer updates in place over flat parameter buffers: one pass over memory, each update a
 * loop over a block of restrict pointers (the variant flags are loop-invariant, so the compiler
 * unswitches and vectorizes). Blocks are fixed-size and the updates elementwise, so the thread
 * count never changes a bit; clip_grad_norm sums fixed blocks in order for the same reason.
 * The block kernels are compiled twice, for baseline x86-64 (SSE2) and for AVX, and chosen at
 * run time from the CPU features. Neither uses FMA and -std=c11 forbids contraction, so both
 * give the same bits: the choice is about speed only.
 * The math is stated in nnfast.h and in src/nnfast/backends/_ref_optim.py (the spec). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include "nnfast.h"
#include "runtime/par.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NNF_OPT_X86 1
#define NNF_ATTR_AVX __attribute__((target("avx")))
#else
#define NNF_OPT_X86 0
#define NNF_ATTR_AVX
#endif

#define NNF_OPT_BLOCK 8192           /* elements per block */
#define NNF_OPT_PAR_MIN (1 << 15)    /* below this many elements one thread does it all */
#define NNF_OPT_CHUNK 256            /* sub-block whose square roots go through a stack buffer */

static int nnf_opt_avx(void) {
#if NNF_OPT_X86
    static int avx = -1;
    if (avx < 0) avx = (nnf_cpu_features() & NNF_CPU_AVX) != 0;
    return avx;
#else
    return 0;
#endif
}

/* out = sqrt(x), elementwise. The compiler will not vectorize sqrtf/sqrt while they may set
 * errno (the default; -fno-math-errno would have to be global), so the updates compute their
 * square roots here, a chunk at a time, with SSE2 / AVX. sqrt is correctly rounded on every
 * path, so the bits never depend on which one ran. */
static inline void vsqrt_f32_gen(float *restrict out, const float *restrict x, int64_t n) {
    int64_t i = 0;
#if NNF_OPT_X86
    for (; i + 4 <= n; i += 4) _mm_storeu_ps(out + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
#endif
    for (; i < n; ++i) out[i] = sqrtf(x[i]);
}
static inline void vsqrt_f64_gen(double *restrict out, const double *restrict x, int64_t n) {
    int64_t i = 0;
#if NNF_OPT_X86
    for (; i + 2 <= n; i += 2) _mm_storeu_pd(out + i, _mm_sqrt_pd(_mm_loadu_pd(x + i)));
#endif
    for (; i < n; ++i) out[i] = sqrt(x[i]);
}
#if NNF_OPT_X86
NNF_ATTR_AVX static inline void vsqrt_f32_avx(float *restrict out, const float *restrict x,
                                              int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
    vsqrt_f32_gen(out + i, x + i, n - i);
}
NNF_ATTR_AVX static inline void vsqrt_f64_avx(double *restrict out, const double *restrict x,
                                              int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(out + i, _mm256_sqrt_pd(_mm256_loadu_pd(x + i)));
    vsqrt_f64_gen(out + i, x + i, n - i);
}
#else
#define vsqrt_f32_avx vsqrt_f32_gen
#define vsqrt_f64_avx vsqrt_f64_gen
#endif

/* Splits [lo, hi) into chunks [c0, c1) of at most NNF_OPT_CHUNK elements. */
#define NNF_OPT_CHUNKS(c0, c1)                                                                     \
    for (int64_t c0 = lo, c1; c1 = c0 + NNF_OPT_CHUNK < hi ? c0 + NNF_OPT_CHUNK : hi, c0 < hi;     \
         c0 = c1)

/* Runs PART(&ctx, lo, hi, worker) over [0, p), on several threads when p is large. */
#define NNF_OPT_RUN(PART, ctx) \
    nnf_parallel_for(PART, &(ctx), p, NNF_PARTS(nthreads), p >= NNF_OPT_PAR_MIN ? nthreads : 1)

/* State values that decay geometrically (momentum velocity, Adam's m and v, RMSprop's sq) are
 * flushed to +0 once their magnitude falls below the type's smallest normal number. A weight
 * whose gradient stays 0 (a pixel that is always 0, a dead unit) otherwise leaves its m in the
 * subnormal range for hundreds of steps, and on x86 every operation on a subnormal takes a
 * microcode assist of ~100+ cycles: Fashion-MNIST 784-256-128-10 with Adam held ~11k subnormal
 * m values from the second epoch on, and its epochs went from 0.69 s to 1.2 s. The flushed
 * values are below 1.2e-38 (float32) / 2.3e-308 (float64), far under anything an update can
 * show. The reference (src/nnfast/backends/_ref_optim.py) flushes the same values. */
#define NNF_FLUSH(T, x) ((x) > -NNF_TINY(T) && (x) < NNF_TINY(T) ? (T)0 : (x))

/* The update kernels run with flush-to-zero and denormals-are-zero (x86's MXCSR, this
 * thread, for the call only): the flush above keeps the *states* normal, but intermediates
 * still went subnormal (g*g of a tiny gradient, lr*m of a tiny m), each a microcode assist:
 * 784-256-128-10 Adam epochs took 1.4-1.6 s after the first instead of 1.0-1.1 s (1 thread).
 * Only values under FLT_MIN / DBL_MIN change, to 0, as the documented flush does. */
#if NNF_OPT_X86
#define NNF_FTZ_BEGIN unsigned nnf_csr_ = _mm_getcsr(); _mm_setcsr(nnf_csr_ | 0x8040u);
#define NNF_FTZ_END _mm_setcsr(nnf_csr_);
#else
#define NNF_FTZ_BEGIN
#define NNF_FTZ_END
#endif
#define NNF_TINY(T) (sizeof(T) == 4 ? (T)FLT_MIN : (T)DBL_MIN)

/* The four update kernels over one block [lo, hi), compiled once per ISA. */
#define NNF_DEFINE_OPT_BLOCKS(T, SFX, ISA, ATTR)                                                   \
ATTR static void sgd_blk_##SFX##_##ISA(T *restrict w, T *restrict vel, const T *restrict gr,       \
                                       T lr, T mu, int nesterov, T wd, int64_t lo, int64_t hi) {   \
    if (mu == 0) {                                                                                 \
        for (int64_t i = lo; i < hi; ++i) {                                                        \
            T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                             \
            if (vel) vel[i] = g;                                                                   \
            w[i] -= lr * g;                                                                        \
        }                                                                                          \
    } else {                                                                                       \
        for (int64_t i = lo; i < hi; ++i) {                                                        \
            T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                             \
            T v = mu * vel[i] + g;                                                                 \
            v = NNF_FLUSH(T, v);                                                                   \
            vel[i] = v;                                                                            \
            w[i] -= lr * (nesterov ? g + mu * v : v);                                              \
        }                                                                                          \
    }                                                                                              \
}                                                                                                  \
ATTR static void adam_blk_##SFX##_##ISA(T *restrict w, T *restrict m, T *restrict v,               \
                                        const T *restrict gr, T b1, T b2, T a, T rs, T eps,        \
                                        T wd, int decoupled, T lrwd, int64_t lo, int64_t hi) {     \
    const T c1_ = (T)1 - b1, c2_ = (T)1 - b2;                                                      \
    T rt[NNF_OPT_CHUNK];                                                                           \
    NNF_OPT_CHUNKS(c0, c1) {                                                                       \
        for (int64_t i = c0; i < c1; ++i) {                                                        \
            T g = (!decoupled && wd != 0) ? gr[i] + wd * w[i] : gr[i];                             \
            const T mi = b1 * m[i] + c1_ * g, vi = b2 * v[i] + c2_ * (g * g);                      \
            m[i] = NNF_FLUSH(T, mi);                                                               \
            v[i] = NNF_FLUSH(T, vi);                                                               \
        }                                                                                          \
        vsqrt_##SFX##_##ISA(rt, v + c0, c1 - c0);                                                  \
        for (int64_t i = c0; i < c1; ++i) {                                                        \
            T wi = w[i], upd = a * m[i] / (rt[i - c0] * rs + eps);                                 \
            w[i] = decoupled ? wi - (upd + lrwd * wi) : wi - upd;                                  \
        }                                                                                          \
    }                                                                                              \
}                                                                                                  \
ATTR static void rmsprop_blk_##SFX##_##ISA(T *restrict w, T *restrict sq, T *restrict vel,         \
                                           const T *restrict gr, T lr, T rho, T eps, T mu,         \
                                           T wd, int64_t lo, int64_t hi) {                         \
    const T c = (T)1 - rho;                                                                        \
    T rt[NNF_OPT_CHUNK];                                                                           \
    NNF_OPT_CHUNKS(c0, c1) {                                                                       \
        for (int64_t i = c0; i < c1; ++i) {                                                        \
            T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                             \
            const T si = rho * sq[i] + c * (g * g);                                                \
            sq[i] = NNF_FLUSH(T, si);                                                              \
        }                                                                                          \
        vsqrt_##SFX##_##ISA(rt, sq + c0, c1 - c0);                                                 \
        for (int64_t i = c0; i < c1; ++i) {                                                        \
            T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                             \
            T u = g / (rt[i - c0] + eps);                                                          \
            if (vel) {                                                                             \
                if (mu != 0) { u = mu * vel[i] + u; u = NNF_FLUSH(T, u); }                         \
                vel[i] = u;                                                                        \
            }                                                                                      \
            w[i] -= lr * u;                                                                        \
        }                                                                                          \
    }                                                                                              \
}                                                                                                  \
ATTR static void adagrad_blk_##SFX##_##ISA(T *restrict w, T *restrict acc, const T *restrict gr,   \
                                           T lr, T eps, T wd, int64_t lo, int64_t hi) {            \
    T rt[NNF_OPT_CHUNK];                                                                           \
    NNF_OPT_CHUNKS(c0, c1) {                                                                       \
        for (int64_t i = c0; i < c1; ++i) {                                                        \
            T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                             \
            acc[i] += g * g;                                                                       \
        }                                                                                          \
        vsqrt_##SFX##_##ISA(rt, acc + c0, c1 - c0);                                                \
        for (int64_t i = c0; i < c1; ++i) {                                                        \
            T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                             \
            w[i] -= lr * (g / (rt[i - c0] + eps));                                                 \
        }                                                                                          \
    }                                                                                              \
}

NNF_DEFINE_OPT_BLOCKS(float, f32, gen, )
NNF_DEFINE_OPT_BLOCKS(double, f64, gen, )
NNF_DEFINE_OPT_BLOCKS(float, f32, avx, NNF_ATTR_AVX)
NNF_DEFINE_OPT_BLOCKS(double, f64, avx, NNF_ATTR_AVX)

/* The block kernel of the CPU's best path. */
#define NNF_OPT_PICK(name, SFX) (nnf_opt_avx() ? name##_blk_##SFX##_avx : name##_blk_##SFX##_gen)

/* Drivers (bias corrections and hyperparameter casts once per call) and clip_grad_norm. Each
 * update's arguments travel to the threads in one context; a part runs the block kernel. */
#define NNF_DEFINE_OPTIM(T, SFX)                                                                   \
typedef struct {                                                                                   \
    T *w, *s1, *s2; const T *g; T h[8]; int f1, f2; void *blk;                                     \
} opt_ctx_##SFX;                                                                                   \
static void sgd_part_##SFX(void *p, int64_t lo, int64_t hi, int wk) {                              \
    const opt_ctx_##SFX *c = (const opt_ctx_##SFX *)p;                                             \
    __typeof__(sgd_blk_##SFX##_gen) *blk = (__typeof__(sgd_blk_##SFX##_gen) *)c->blk;              \
    (void)wk;                                                                                      \
    NNF_FTZ_BEGIN                                                                                  \
    blk(c->w, c->s1, c->g, c->h[0], c->h[1], c->f1, c->h[2], lo, hi);                              \
    NNF_FTZ_END                                                                                    \
}                                                                                                  \
static void adam_part_##SFX(void *p, int64_t lo, int64_t hi, int wk) {                             \
    const opt_ctx_##SFX *c = (const opt_ctx_##SFX *)p;                                             \
    __typeof__(adam_blk_##SFX##_gen) *blk = (__typeof__(adam_blk_##SFX##_gen) *)c->blk;            \
    (void)wk;                                                                                      \
    NNF_FTZ_BEGIN                                                                                  \
    blk(c->w, c->s1, c->s2, c->g, c->h[0], c->h[1], c->h[2], c->h[3], c->h[4], c->h[5], c->f1,     \
        c->h[6], lo, hi);                                                                          \
    NNF_FTZ_END                                                                                    \
}                                                                                                  \
static void rmsprop_part_##SFX(void *p, int64_t lo, int64_t hi, int wk) {                          \
    const opt_ctx_##SFX *c = (const opt_ctx_##SFX *)p;                                             \
    __typeof__(rmsprop_blk_##SFX##_gen) *blk = (__typeof__(rmsprop_blk_##SFX##_gen) *)c->blk;      \
    (void)wk;                                                                                      \
    NNF_FTZ_BEGIN                                                                                  \
    blk(c->w, c->s1, c->s2, c->g, c->h[0], c->h[1], c->h[2], c->h[3], c->h[4], lo, hi);            \
    NNF_FTZ_END                                                                                    \
}                                                                                                  \
static void adagrad_part_##SFX(void *p, int64_t lo, int64_t hi, int wk) {                          \
    const opt_ctx_##SFX *c = (const opt_ctx_##SFX *)p;                                             \
    __typeof__(adagrad_blk_##SFX##_gen) *blk = (__typeof__(adagrad_blk_##SFX##_gen) *)c->blk;      \
    (void)wk;                                                                                      \
    NNF_FTZ_BEGIN                                                                                  \
    blk(c->w, c->s1, c->g, c->h[0], c->h[1], c->h[2], lo, hi);                                     \
    NNF_FTZ_END                                                                                    \
}                                                                                                  \
void nnf_sgd_update_##SFX(T *params, T *velocity, const T *grads, double lr, double momentum,      \
                          int nesterov, double weight_decay, int64_t p, int nthreads) {            \
    opt_ctx_##SFX c = {params, velocity, 0, grads, {(T)lr, (T)momentum, (T)weight_decay},          \
                       nesterov, 0, (void *)NNF_OPT_PICK(sgd, SFX)};                               \
    NNF_OPT_RUN(sgd_part_##SFX, c);                                                                \
}                                                                                                  \
void nnf_adam_update_##SFX(T *params, T *m, T *v, const T *grads, double lr, double beta1,         \
                           double beta2, double eps, double weight_decay, int decoupled,           \
                           int64_t step, int64_t p, int nthreads) {                                \
    const double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);       \
    const T a = (T)(lr / bc1), rs = (T)(1.0 / sqrt(bc2)), lrwd = (T)(lr * weight_decay);           \
    opt_ctx_##SFX c = {params, m, v, grads,                                                        \
                       {(T)beta1, (T)beta2, a, rs, (T)eps, (T)weight_decay, lrwd},                 \
                       decoupled && weight_decay != 0, 0, (void *)NNF_OPT_PICK(adam, SFX)};        \
    NNF_OPT_RUN(adam_part_##SFX, c);                                                               \
}                                                                                                  \
void nnf_rmsprop_update_##SFX(T *params, T *sq, T *velocity, const T *grads, double lr,            \
                              double rho, double eps, double momentum, double weight_decay,        \
                              int64_t p, int nthreads) {                                           \
    opt_ctx_##SFX c = {params, sq, velocity, grads,                                                \
                       {(T)lr, (T)rho, (T)eps, (T)momentum, (T)weight_decay}, 0, 0,                \
                       (void *)NNF_OPT_PICK(rmsprop, SFX)};                                        \
    NNF_OPT_RUN(rmsprop_part_##SFX, c);                                                            \
}                                                                                                  \
void nnf_adagrad_update_##SFX(T *params, T *acc, const T *grads, double lr, double eps,            \
                              double weight_decay, int64_t p, int nthreads) {                      \
    opt_ctx_##SFX c = {params, acc, 0, grads, {(T)lr, (T)eps, (T)weight_decay}, 0, 0,              \
                       (void *)NNF_OPT_PICK(adagrad, SFX)};                                        \
    NNF_OPT_RUN(adagrad_part_##SFX, c);                                                            \
}                                                                                                  \
/* Σ (x/div)² over one block in double, four interleaved partial sums (fixed order). */ \
static double sumsq_blk_##SFX(const T *restrict x, double div, int64_t lo, int64_t hi) {           \
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                         \
    int64_t i = lo;                                                                                \
    if (div == 1.0) {                                                                              \
        for (; i + 4 <= hi; i += 4) {                                                              \
            double a0 = x[i], a1 = x[i + 1], a2 = x[i + 2], a3 = x[i + 3];                         \
            s0 += a0 * a0; s1 += a1 * a1; s2 += a2 * a2; s3 += a3 * a3;                            \
        }                                                                                          \
        for (; i < hi; ++i) { double a = x[i]; s0 += a * a; }                                      \
    } else {                                                                                       \
        for (; i < hi; ++i) { double a = (double)x[i] / div; s0 += a * a; }                        \
    }                                                                                              \
    return (s0 + s1) + (s2 + s3);                                                                  \
}                                                                                                  \
typedef struct { const T *x; double div; double *part; int64_t p; } sumsq_ctx_##SFX;        \
static void sumsq_part_##SFX(void *ctx, int64_t b0, int64_t b1, int wk) {                          \
    const sumsq_ctx_##SFX *c = (const sumsq_ctx_##SFX *)ctx;                                       \
    (void)wk;                                                                                      \
    for (int64_t b = b0; b < b1; ++b) {                                                            \
        int64_t lo = b * NNF_OPT_BLOCK;                                                            \
        int64_t hi = lo + NNF_OPT_BLOCK < c->p ? lo + NNF_OPT_BLOCK : c->p;                        \
        c->part[b] = sumsq_blk_##SFX(c->x, c->div, lo, hi);                                       \
    }                                                                                              \
}                                                                                                  \
static double sumsq_##SFX(const T *x, double div, int64_t p, int nthreads) {                       \
    const int64_t nb = (p + NNF_OPT_BLOCK - 1) / NNF_OPT_BLOCK;                                    \
    double total = 0.0;                                                                            \
    double *part = (nthreads > 1 && p >= NNF_OPT_PAR_MIN) ? malloc(nb * sizeof(double)) : NULL;    \
    if (part) { /* block partials on any threads, summed in block order */                        \
        sumsq_ctx_##SFX c = {x, div, part, p};                                                     \
        nnf_parallel_for(sumsq_part_##SFX, &c, nb, NNF_PARTS(nthreads), nthreads);                 \
        for (int64_t b = 0; b < nb; ++b) total += part[b];                                         \
        free(part);                                                                                \
    } else { /* the same blocks in the same order */                                               \
        for (int64_t b = 0; b < nb; ++b) {                                                         \
            int64_t lo = b * NNF_OPT_BLOCK, hi = lo + NNF_OPT_BLOCK < p ? lo + NNF_OPT_BLOCK : p;  \
            total += sumsq_blk_##SFX(x, div, lo, hi);                                              \
        }                                                                                          \
    }                                                                                              \
    return total;                                                                                  \
}                                                                                                  \
typedef struct { T *x; T k; } scale_ctx_##SFX;                                                     \
static void scale_part_##SFX(void *ctx, int64_t lo, int64_t hi, int wk) {                          \
    const scale_ctx_##SFX *c = (const scale_ctx_##SFX *)ctx;                                       \
    (void)wk;                                                                                      \
    for (int64_t i = lo; i < hi; ++i) c->x[i] *= c->k;                                             \
}                                                                                                  \
void nnf_clip_grad_norm_##SFX(double *norm, T *grads, double max_norm, int64_t p,                  \
                              int nthreads) {                                                      \
    double ss = sumsq_##SFX(grads, 1.0, p, nthreads), nrm = sqrt(ss);                              \
    if (ss == INFINITY || ss < 1e-280) { /* possibly over- or underflowed: rescale */              \
        double amax = 0.0;                                                                         \
        for (int64_t i = 0; i < p; ++i) {                                                          \
            double a = fabs((double)grads[i]);                                                     \
            amax = a > amax ? a : amax;                                                            \
        }                                                                                          \
        if (amax > 0.0 && amax < INFINITY)                                                         \
            nrm = amax * sqrt(sumsq_##SFX(grads, amax, p, nthreads));                              \
    }                                                                                              \
    *norm = nrm;                                                                                   \
    if (nrm > max_norm) {                                                                          \
        scale_ctx_##SFX c = {grads, (T)(max_norm / nrm)};                                          \
        NNF_OPT_RUN(scale_part_##SFX, c);                                                          \
    }                                                                                              \
}

NNF_DEFINE_OPTIM(float, f32)
NNF_DEFINE_OPTIM(double, f64)
