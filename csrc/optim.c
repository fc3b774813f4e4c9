/* Optimizer updates in place over flat parameter buffers: one pass over memory, each update a
 * branch-free loop over a block of restrict pointers (the variant flags are loop-invariant, so
 * the compiler unswitches and vectorizes). Blocks are fixed-size and elementwise, so the thread
 * count never changes a bit; clip_grad_norm sums fixed blocks in order for the same reason.
 * The math is stated in nnfast.h and in nnfast/backends/_ref_optim.py (the spec). */
/* sqrt vectorizes only when it need not set errno; nothing in nnfast reads errno, and NaN/Inf
 * semantics are unchanged (unlike -ffast-math). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("-fno-math-errno")
#endif
#include <math.h>
#include <stdlib.h>
#include "nnfast.h"

#define NNF_OPT_BLOCK 8192           /* elements per block */
#define NNF_OPT_PAR_MIN (1 << 15)    /* below this many elements one thread does it all */

/* Runs body(lo, hi) over [0, p) in blocks, on several threads when p is large. */
#define NNF_OPT_BLOCKS(body)                                                                 \
    {                                                                                        \
        const int64_t nb_ = (p + NNF_OPT_BLOCK - 1) / NNF_OPT_BLOCK;                         \
        if (nthreads > 1 && p >= NNF_OPT_PAR_MIN) {                                          \
            _Pragma("omp parallel for schedule(static) num_threads(nthreads)")               \
            for (int64_t b_ = 0; b_ < nb_; ++b_) {                                           \
                int64_t lo = b_ * NNF_OPT_BLOCK;                                             \
                int64_t hi = lo + NNF_OPT_BLOCK < p ? lo + NNF_OPT_BLOCK : p;                \
                body;                                                                        \
            }                                                                                \
        } else if (p > 0) {                                                                  \
            int64_t lo = 0, hi = p;                                                          \
            body;                                                                            \
        }                                                                                    \
    }

#define NNF_DEFINE_OPTIM(T, SFX, SQRT, FABS)                                                    \
static void sgd_blk_##SFX(T *restrict w, T *restrict vel, const T *restrict gr, T lr, T mu,   \
                          int nesterov, T wd, int64_t lo, int64_t hi) {                       \
    if (mu == 0) {                                                                            \
        for (int64_t i = lo; i < hi; ++i) {                                                   \
            T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                        \
            if (vel) vel[i] = g;                                                              \
            w[i] -= lr * g;                                                                   \
        }                                                                                     \
    } else {                                                                                  \
        for (int64_t i = lo; i < hi; ++i) {                                                   \
            T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                        \
            T v = mu * vel[i] + g;                                                            \
            vel[i] = v;                                                                       \
            w[i] -= lr * (nesterov ? g + mu * v : v);                                         \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
void nnf_sgd_update_##SFX(T *params, T *velocity, const T *grads, double lr, double momentum, \
                          int nesterov, double weight_decay, int64_t p, int nthreads) {       \
    NNF_OPT_BLOCKS(sgd_blk_##SFX(params, velocity, grads, (T)lr, (T)momentum, nesterov,       \
                                 (T)weight_decay, lo, hi))                                    \
}                                                                                             \
                                                                                              \
static void adam_blk_##SFX(T *restrict w, T *restrict m, T *restrict v, const T *restrict gr, \
                           T b1, T b2, T a, T rs, T eps, T wd, int decoupled, T lrwd,         \
                           int64_t lo, int64_t hi) {                                          \
    const T c1 = (T)1 - b1, c2 = (T)1 - b2;                                                   \
    for (int64_t i = lo; i < hi; ++i) {                                                       \
        T g = (!decoupled && wd != 0) ? gr[i] + wd * w[i] : gr[i];                            \
        T mi = b1 * m[i] + c1 * g;                                                            \
        T vi = b2 * v[i] + c2 * (g * g);                                                      \
        m[i] = mi;                                                                            \
        v[i] = vi;                                                                            \
        T wi = w[i];                                                                          \
        T upd = a * mi / (SQRT(vi) * rs + eps);                                               \
        w[i] = decoupled ? wi - (upd + lrwd * wi) : wi - upd;                                 \
    }                                                                                         \
}                                                                                             \
void nnf_adam_update_##SFX(T *params, T *m, T *v, const T *grads, double lr, double beta1,    \
                           double beta2, double eps, double weight_decay, int decoupled,      \
                           int64_t step, int64_t p, int nthreads) {                           \
    const double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);  \
    const T a = (T)(lr / bc1), rs = (T)(1.0 / sqrt(bc2));                                     \
    const T lrwd = (T)(lr * weight_decay);                                                    \
    NNF_OPT_BLOCKS(adam_blk_##SFX(params, m, v, grads, (T)beta1, (T)beta2, a, rs, (T)eps,     \
                                  (T)weight_decay, decoupled && weight_decay != 0, lrwd,      \
                                  lo, hi))                                                    \
}                                                                                             \
                                                                                              \
static void rmsprop_blk_##SFX(T *restrict w, T *restrict sq, T *restrict vel,                 \
                              const T *restrict gr, T lr, T rho, T eps, T mu, T wd,           \
                              int64_t lo, int64_t hi) {                                       \
    const T c = (T)1 - rho;                                                                   \
    for (int64_t i = lo; i < hi; ++i) {                                                       \
        T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                            \
        T s = rho * sq[i] + c * (g * g);                                                      \
        sq[i] = s;                                                                            \
        T u = g / (SQRT(s) + eps);                                                            \
        if (vel) { u = mu != 0 ? mu * vel[i] + u : u; vel[i] = u; }                           \
        w[i] -= lr * u;                                                                       \
    }                                                                                         \
}                                                                                             \
void nnf_rmsprop_update_##SFX(T *params, T *sq, T *velocity, const T *grads, double lr,       \
                              double rho, double eps, double momentum, double weight_decay,   \
                              int64_t p, int nthreads) {                                      \
    NNF_OPT_BLOCKS(rmsprop_blk_##SFX(params, sq, velocity, grads, (T)lr, (T)rho, (T)eps,      \
                                     (T)momentum, (T)weight_decay, lo, hi))                   \
}                                                                                             \
                                                                                              \
static void adagrad_blk_##SFX(T *restrict w, T *restrict acc, const T *restrict gr, T lr,     \
                              T eps, T wd, int64_t lo, int64_t hi) {                          \
    for (int64_t i = lo; i < hi; ++i) {                                                       \
        T g = wd != 0 ? gr[i] + wd * w[i] : gr[i];                                            \
        T s = acc[i] + g * g;                                                                 \
        acc[i] = s;                                                                           \
        w[i] -= lr * (g / (SQRT(s) + eps));                                                   \
    }                                                                                         \
}                                                                                             \
void nnf_adagrad_update_##SFX(T *params, T *acc, const T *grads, double lr, double eps,       \
                              double weight_decay, int64_t p, int nthreads) {                 \
    NNF_OPT_BLOCKS(adagrad_blk_##SFX(params, acc, grads, (T)lr, (T)eps, (T)weight_decay,      \
                                     lo, hi))                                                 \
}                                                                                             \
                                                                                              \
/* Σ (x/div)² over one block in double, four interleaved partial sums (a fixed order). */     \
static double sumsq_blk_##SFX(const T *restrict x, double div, int64_t lo, int64_t hi) {     \
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                    \
    int64_t i = lo;                                                                           \
    if (div == 1.0) {                                                                         \
        for (; i + 4 <= hi; i += 4) {                                                         \
            double a0 = x[i], a1 = x[i + 1], a2 = x[i + 2], a3 = x[i + 3];                    \
            s0 += a0 * a0; s1 += a1 * a1; s2 += a2 * a2; s3 += a3 * a3;                       \
        }                                                                                     \
        for (; i < hi; ++i) { double a = x[i]; s0 += a * a; }                                 \
    } else {                                                                                  \
        for (; i < hi; ++i) { double a = (double)x[i] / div; s0 += a * a; }                   \
    }                                                                                         \
    return (s0 + s1) + (s2 + s3);                                                             \
}                                                                                             \
static double sumsq_##SFX(const T *x, double div, int64_t p, int nthreads) {                  \
    const int64_t nb = (p + NNF_OPT_BLOCK - 1) / NNF_OPT_BLOCK;                               \
    double total = 0.0;                                                                       \
    double *part = (nthreads > 1 && p >= NNF_OPT_PAR_MIN) ? malloc(nb * sizeof(double)) : NULL; \
    if (part) {                                                                               \
        _Pragma("omp parallel for schedule(static) num_threads(nthreads)")                    \
        for (int64_t b = 0; b < nb; ++b) {                                                    \
            int64_t lo = b * NNF_OPT_BLOCK, hi = lo + NNF_OPT_BLOCK < p ? lo + NNF_OPT_BLOCK : p; \
            part[b] = sumsq_blk_##SFX(x, div, lo, hi);                                        \
        }                                                                                     \
        for (int64_t b = 0; b < nb; ++b) total += part[b];                                    \
        free(part);                                                                           \
    } else { /* the same blocks in the same order */                                          \
        for (int64_t b = 0; b < nb; ++b) {                                                    \
            int64_t lo = b * NNF_OPT_BLOCK, hi = lo + NNF_OPT_BLOCK < p ? lo + NNF_OPT_BLOCK : p; \
            total += sumsq_blk_##SFX(x, div, lo, hi);                                         \
        }                                                                                     \
    }                                                                                         \
    return total;                                                                             \
}                                                                                             \
static void scale_blk_##SFX(T *restrict x, T k, int64_t lo, int64_t hi) {                    \
    for (int64_t i = lo; i < hi; ++i) x[i] *= k;                                              \
}                                                                                             \
void nnf_clip_grad_norm_##SFX(double *norm, T *grads, double max_norm, int64_t p,            \
                              int nthreads) {                                                 \
    double ss = sumsq_##SFX(grads, 1.0, p, nthreads), nrm = sqrt(ss);                         \
    if (ss == INFINITY || ss < 1e-280) { /* possibly over- or underflowed: rescale */         \
        double amax = 0.0;                                                                    \
        for (int64_t i = 0; i < p; ++i) {                                                     \
            double a = FABS((double)grads[i]);                                                \
            amax = a > amax ? a : amax;                                                       \
        }                                                                                     \
        if (amax > 0.0 && amax < INFINITY)                                                    \
            nrm = amax * sqrt(sumsq_##SFX(grads, amax, p, nthreads));                          \
    }                                                                                         \
    *norm = nrm;                                                                              \
    if (nrm > max_norm) {                                                                     \
        const T k = (T)(max_norm / nrm);                                                      \
        NNF_OPT_BLOCKS(scale_blk_##SFX(grads, k, lo, hi))                                     \
    }                                                                                         \
}

NNF_DEFINE_OPTIM(float, f32, sqrtf, fabs)
NNF_DEFINE_OPTIM(double, f64, sqrt, fabs)
