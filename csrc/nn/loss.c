/* Losses, each fused with its gradient: one sweep per row computes the row's loss and writes its
 * gradient. Rows are independent, so they are split across threads (nnf_parallel_for) above a
 * work threshold; the loss total is summed afterwards in row order, so any thread count gives
 * the same bits.
 * The math and the special-value conventions are stated in nnfast.h and in
 * src/nnfast/backends/_ref_loss.py (the spec). Arithmetic is in double for both dtypes (terms, row
 * sums, the total, the gradient, which is rounded to T once); only exp/log1p of arguments that
 * cannot overflow run in T. */
#include <math.h>
#include "nnfast.h"
#include "runtime/par.h"

/* Below this many elements a batch runs on one thread (team start-up would dominate). */
#define NNF_LOSS_PAR_MIN 16384

/* The loss total: row losses summed in row order (the same bits for any thread count). */
static double nnf_sum_rows(const double *row_loss, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += row_loss[i];
    return s;
}

/* k·x for a term of weight w (k = w times positive factors): a weight of exactly 0 removes the
 * term even where x is +-inf (0·inf taken as 0, not NaN); NaN in x still propagates. */
static inline double weigh(double w, double k, double x) {
    return w == 0.0 ? (x == x ? 0.0 : x) : k * x;
}

/* ------------------------------------------------------------ softmax cross-entropy ---- */
/* One row: m = max z (NaN skipped here, it reaches everything through exp), e = exp(z - m) in T
 * (<= 1, no overflow) parked in g, s = Σe; l = S·log s + Σ_{t'≠0} t'·(m - z) with m - z in
 * double (so float32 logits of opposite sign near 1e38 do not overflow) and terms of target 0
 * skipped (a -inf logit there has probability 0 and adds nothing); g = coef·(S·e/s - t').
 * A +inf logit, a NaN or a row of -inf make s NaN: NaN loss and gradient row, as torch. */
#define NNF_DEFINE_SOFTMAX_XENT(T, SFX, EXP)                                                   \
static void xent_row_##SFX(T *restrict g, double *row_loss, const T *restrict z,              \
                           const void *labels, int label_bytes, const T *restrict probs,       \
                           const T *sample_weight, const T *class_weight, double eps,          \
                           double scale, int64_t i, int64_t c) {                               \
    T m = z[0];                                                                               \
    for (int64_t j = 1; j < c; ++j) m = z[j] > m ? z[j] : m;                                  \
    double s = 0.0;                                                                           \
    for (int64_t j = 0; j < c; ++j) { T e = EXP(z[j] - m); g[j] = e; s += (double)e; }         \
    const double log_s = log(s), inv_s = 1.0 / s, md = (double)m;                             \
    double w = sample_weight ? (double)sample_weight[i] : 1.0, l;                            \
    if (labels) {                                                                             \
        int64_t y = label_bytes == 4 ? (int64_t)((const int32_t *)labels)[i]                  \
                                     : ((const int64_t *)labels)[i];                          \
        if (class_weight) w *= (double)class_weight[y];                                       \
        l = log_s + (1.0 - eps) * (md - (double)z[y]);                                         \
        if (eps != 0.0) { /* every t' >= eps/C > 0: no term vanishes */                      \
            double d = 0.0;                                                                   \
            for (int64_t j = 0; j < c; ++j) d += md - (double)z[j];                            \
            l += eps / (double)c * d;                                                         \
        }                                                                                     \
        const double coef = scale * w, t0 = eps / (double)c, ty = 1.0 - eps + t0;             \
        const double ey = (double)g[y];                                                       \
        for (int64_t j = 0; j < c; ++j) g[j] = (T)weigh(w, coef, (double)g[j] * inv_s - t0);   \
        g[y] = (T)weigh(w, coef, ey * inv_s - ty);                                            \
    } else {                                                                                  \
        const T *restrict t = probs + i * c;                                                  \
        const double a1 = 1.0 - eps, a0 = eps / (double)c;                                    \
        double S = 0.0, d = 0.0, wc = 0.0;                                                    \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            double tp = eps != 0.0 ? a1 * (double)t[j] + a0 : (double)t[j];                   \
            S += tp;                                                                          \
            if (tp != 0.0) d += tp * (md - (double)z[j]);                                     \
            if (class_weight) wc += (double)t[j] * (double)class_weight[j];                   \
        }                                                                                     \
        if (class_weight) w *= wc;                                                            \
        l = S * log_s + d;                                                                    \
        const double coef = scale * w, Sp = S * inv_s;                                        \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            double tp = eps != 0.0 ? a1 * (double)t[j] + a0 : (double)t[j];                   \
            g[j] = (T)weigh(w, coef, Sp * (double)g[j] - tp);                                 \
        }                                                                                     \
    }                                                                                         \
    row_loss[i] = weigh(w, w, l);                                                             \
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
/* One row of M elements: l = mean_j ℓ(p_j, t_j), g_j = k·ℓ'(p_j, t_j) with k = scale·w/M, all in
 * double (float32 residuals near 1e38 and their squares stay finite). NaN propagates through
 * every formula (Huber's clip included). BCE is t·softplus(-z) + (1-t)·softplus(z) written as
 * (z > 0 ? (1-t)·z : t·(-z)) + log1p(e^-|z|), its linear part weighed so that a target of exactly
 * 1 (z = +inf) or 0 (z = -inf) gives 0: the loss at z = +-inf is its limit, not NaN. */
#define NNF_DEFINE_ELEM_LOSS(T, SFX, EXP, LOG1P, FABS)                                          \
static void elem_row_##SFX(int kind, T *restrict g, double *row_loss, const T *restrict p,     \
                           const T *restrict t, const T *sample_weight, double delta,         \
                           double scale, int64_t i, int64_t c) {                               \
    const double w = sample_weight ? (double)sample_weight[i] : 1.0;                          \
    const double k = scale * w / (double)c;                                                   \
    double acc = 0.0;                                                                         \
    switch (kind) {                                                                           \
    case NNF_LOSS_BCE_LOGITS: {                                                               \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            const T zt = p[j], e = EXP(-FABS(zt));                                            \
            const double z = (double)zt, tj = (double)t[j];                                   \
            const double lin = z > 0 ? weigh(1.0 - tj, 1.0 - tj, z) : weigh(tj, tj, -z);      \
            acc += lin + (double)LOG1P(e);                                                    \
            const T sig = zt >= 0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);                       \
            g[j] = (T)weigh(w, k, (double)sig - tj);                                          \
        }                                                                                     \
        break; }                                                                              \
    case NNF_LOSS_MSE: {                                                                      \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            const double r = (double)p[j] - (double)t[j];                                     \
            acc += r * r;                                                                     \
            g[j] = (T)weigh(w, 2.0 * k, r); /* (2k)·r: 2r may overflow in float64 */          \
        }                                                                                     \
        break; }                                                                              \
    default: { /* NNF_LOSS_HUBER */                                                           \
        const double hd = 0.5 * delta;                                                        \
        for (int64_t j = 0; j < c; ++j) {                                                     \
            const double r = (double)p[j] - (double)t[j], a = fabs(r);                        \
            acc += a <= delta ? 0.5 * r * r : delta * (a - hd);                               \
            g[j] = (T)weigh(w, k, r < -delta ? -delta : (r > delta ? delta : r));             \
        }                                                                                     \
        break; }                                                                              \
    }                                                                                         \
    row_loss[i] = weigh(w, w, acc / (double)c);                                               \
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
