/* Losses, each fused with its gradient: one sweep per row computes the row's loss (in double)
 * and writes its gradient. Rows are independent, so they are split across threads
 * (nnf_parallel_for) above a work threshold;
 * the loss total is summed afterwards in row order, so any thread count gives the same bits.
 * The math is stated in nnfast.h and in nnfast/backends/_ref_loss.py (the spec). */
#include <math.h>
#include "nnfast.h"
#include "par.h"

/* Below this many elements a batch runs on one thread (team start-up would dominate). */
#define NNF_LOSS_PAR_MIN 16384

/* The loss total: row losses summed in row order (the same bits for any thread count). */
static double nnf_sum_rows(const double *row_loss, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += row_loss[i];
    return s;
}

/* ------------------------------------------------------------ softmax cross-entropy ---- */
/* One row: m = max z (NaN skipped here, it reaches everything through exp), e = exp(z - m)
 * parked in g, s = Σe; then l and g = coef·(S·e/s - t'). Labels and probabilities differ
 * only in how t' is read. */
#define NNF_DEFINE_SOFTMAX_XENT(T, SFX, EXP)                                                   \
static void xent_row_##SFX(T *restrict g, double *row_loss, const T *restrict z,              \
                           const void *labels, int label_bytes, const T *restrict probs,       \
                           const T *sample_weight, const T *class_weight, double eps,          \
                           double scale, int64_t i, int64_t c) {                               \
    T m = z[0];                                                                               \
    for (int64_t j = 1; j < c; ++j) m = z[j] > m ? z[j] : m;                                  \
    double s = 0.0;                                                                           \
    for (int64_t j = 0; j < c; ++j) { T e = EXP(z[j] - m); g[j] = e; s += (double)e; }         \
    const double log_s = log(s);                                                              \
    const T inv_s = (T)(1.0 / s);                                                             \
    double w = sample_weight ? (double)sample_weight[i] : 1.0, l;                            \
    if (labels) {                                                                             \
        int64_t y = label_bytes == 4 ? (int64_t)((const int32_t *)labels)[i]                  \
                                     : ((const int64_t *)labels)[i];                          \
        if (class_weight) w *= (double)class_weight[y];                                       \
        l = log_s + (1.0 - eps) * (double)(m - z[y]);                                          \
        if (eps != 0.0) {                                                                     \
            double d = 0.0;                                                                   \
            for (int64_t j = 0; j < c; ++j) d += (double)(m - z[j]);                           \
            l += eps / (double)c * d;                                                         \
        }                                                                                     \
        const T coef = (T)(scale * w), t0 = (T)(eps / (double)c);                             \
        const T ty = (T)(1.0 - eps + eps / (double)c), ey = g[y];                             \
        for (int64_t j = 0; j < c; ++j) g[j] = coef * (g[j] * inv_s - t0);                    \
        g[y] = coef * (ey * inv_s - ty);                                                      \
    } else {                                                                                  \
        const T *restrict t = probs + i * c;                                                  \
        const T a1 = (T)(1.0 - eps), a0 = (T)(eps / (double)c);                               \
        double S = 0.0, d = 0.0, wc = 0.0;                                                    \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            T tp = eps != 0.0 ? a1 * t[j] + a0 : t[j];                                        \
            S += (double)tp;                                                                  \
            d += (double)(tp * (m - z[j]));                                                   \
            if (class_weight) wc += (double)t[j] * (double)class_weight[j];                   \
        }                                                                                     \
        if (class_weight) w *= wc;                                                            \
        l = S * log_s + d;                                                                    \
        const T coef = (T)(scale * w), Sp = (T)S * inv_s;                                     \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            T tp = eps != 0.0 ? a1 * t[j] + a0 : t[j];                                        \
            g[j] = coef * (Sp * g[j] - tp);                                                   \
        }                                                                                     \
    }                                                                                         \
    row_loss[i] = w * l;                                                                      \
}                                                                                             \
typedef struct {                                                                              \
    T *grad; double *row_loss; const T *logits; const void *labels; int label_bytes;          \
    const T *probs, *sample_weight, *class_weight; double eps, scale; int64_t c;              \
} xent_ctx_##SFX;                                                                             \
static void xent_part_##SFX(void *p, int64_t lo, int64_t hi, int w) {                         \
    const xent_ctx_##SFX *x = (const xent_ctx_##SFX *)p;                                      \
    const int64_t c = x->c;                                                                   \
    (void)w;                                                                                  \
    for (int64_t i = lo; i < hi; ++i)                                                         \
        xent_row_##SFX(x->grad + i * c, x->row_loss, x->logits + i * c, x->labels,            \
                       x->label_bytes, x->probs, x->sample_weight, x->class_weight, x->eps,   \
                       x->scale, i, c);                                                       \
}                                                                                             \
void nnf_softmax_xent_##SFX(T *grad, double *row_loss, double *total, const T *logits,        \
                            const void *labels, int label_bytes, const T *probs,              \
                            const T *sample_weight, const T *class_weight, double eps,        \
                            double scale, int64_t n, int64_t c, int nthreads) {               \
    xent_ctx_##SFX x = {grad, row_loss, logits, labels, label_bytes, probs, sample_weight,    \
                        class_weight, eps, scale, c};                                         \
    nnf_parallel_for(xent_part_##SFX, &x, n, NNF_PARTS(nthreads),                             \
                     n * c >= NNF_LOSS_PAR_MIN ? nthreads : 1);                               \
    *total = nnf_sum_rows(row_loss, n);                                                       \
}

NNF_DEFINE_SOFTMAX_XENT(float, f32, expf)
NNF_DEFINE_SOFTMAX_XENT(double, f64, exp)

/* ------------------------------------------------------- elementwise losses (BCE, MSE, Huber) */
/* One row of M elements: l = mean_j ℓ(p_j, t_j) accumulated in double, g_j = k·ℓ'(p_j, t_j)
 * with k = scale·w/M. NaN propagates through every formula (Huber's clip included). */
#define NNF_DEFINE_ELEM_LOSS(T, SFX, EXP, LOG1P, FABS)                                          \
static void elem_row_##SFX(int kind, T *restrict g, double *row_loss, const T *restrict p,     \
                           const T *restrict t, const T *sample_weight, double delta,         \
                           double scale, int64_t i, int64_t c) {                               \
    const double w = sample_weight ? (double)sample_weight[i] : 1.0;                          \
    double acc = 0.0;                                                                         \
    switch (kind) {                                                                           \
    case NNF_LOSS_BCE_LOGITS: {                                                               \
        const T k = (T)(scale * w / (double)c);                                               \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            T z = p[j], e = EXP(-FABS(z));                                                    \
            acc += (double)((z > 0 ? z : (T)0) - z * t[j] + LOG1P(e));                        \
            T sig = z >= 0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);                              \
            g[j] = k * (sig - t[j]);                                                          \
        }                                                                                     \
        break; }                                                                              \
    case NNF_LOSS_MSE: {                                                                      \
        const T k = (T)(scale * w / (double)c);                                               \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            T r = p[j] - t[j];                                                                \
            acc += (double)(r * r);                                                           \
            g[j] = k * ((T)2 * r);                                                            \
        }                                                                                     \
        break; }                                                                              \
    default: { /* NNF_LOSS_HUBER */                                                           \
        const T k = (T)(scale * w / (double)c), d = (T)delta, hd = (T)0.5 * d;               \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            T r = p[j] - t[j], a = FABS(r);                                                   \
            acc += (double)(a <= d ? (T)0.5 * r * r : d * (a - hd));                          \
            g[j] = k * (r < -d ? -d : (r > d ? d : r));                                       \
        }                                                                                     \
        break; }                                                                              \
    }                                                                                         \
    row_loss[i] = w * (acc / (double)c);                                                      \
}                                                                                             \
typedef struct {                                                                              \
    int kind; T *grad; double *row_loss; const T *pred, *target, *sample_weight;              \
    double delta, scale; int64_t c;                                                           \
} elem_ctx_##SFX;                                                                             \
static void elem_part_##SFX(void *p, int64_t lo, int64_t hi, int w) {                         \
    const elem_ctx_##SFX *x = (const elem_ctx_##SFX *)p;                                      \
    const int64_t c = x->c;                                                                   \
    (void)w;                                                                                  \
    for (int64_t i = lo; i < hi; ++i)                                                         \
        elem_row_##SFX(x->kind, x->grad + i * c, x->row_loss, x->pred + i * c,                \
                       x->target + i * c, x->sample_weight, x->delta, x->scale, i, c);        \
}                                                                                             \
void nnf_elem_loss_##SFX(int kind, T *grad, double *row_loss, double *total, const T *pred,   \
                         const T *target, const T *sample_weight, double delta, double scale, \
                         int64_t n, int64_t c, int nthreads) {                                \
    elem_ctx_##SFX x = {kind, grad, row_loss, pred, target, sample_weight, delta, scale, c};  \
    nnf_parallel_for(elem_part_##SFX, &x, n, NNF_PARTS(nthreads),                             \
                     n * c >= NNF_LOSS_PAR_MIN ? nthreads : 1);                               \
    *total = nnf_sum_rows(row_loss, n);                                                       \
}

NNF_DEFINE_ELEM_LOSS(float, f32, expf, log1pf, fabsf)
NNF_DEFINE_ELEM_LOSS(double, f64, exp, log1p, fabs)
