/* Activations, forward and backward (see nnfast.h, "activations").
 * Elementwise ones run over the flat array in fixed chunks, one loop per activation so the
 * compiler sees a constant `act` and inlines act_scalar.h without the switch; row-wise ones
 * (softmax, log_softmax) run one row per iteration, both through nnf_parallel_for (par.h).
 * Every output element depends only on its own row, so results do not depend on nthreads. */
#include <math.h>

#include "act_scalar.h"
#include "nnfast.h"
#include "runtime/par.h"

/* Below these element counts the work runs on one thread. */
#define PAR_CHEAP 65536        /* identity, relu, leaky_relu */
#define PAR_TRANSCENDENTAL 8192 /* everything calling exp/tanh/erf */

static inline int64_t par_threshold(int act) {
    return act == NNF_ACT_IDENTITY || act == NNF_ACT_RELU || act == NNF_ACT_LEAKY_RELU
               ? PAR_CHEAP : PAR_TRANSCENDENTAL;
}

/* One `case` per elementwise activation, each with a compile-time constant act. */
#define NNF_ACT_CASES(BODY)                                                                \
    case NNF_ACT_RELU: BODY(NNF_ACT_RELU); break;                                          \
    case NNF_ACT_LEAKY_RELU: BODY(NNF_ACT_LEAKY_RELU); break;                               \
    case NNF_ACT_ELU: BODY(NNF_ACT_ELU); break;                                            \
    case NNF_ACT_SIGMOID: BODY(NNF_ACT_SIGMOID); break;                                    \
    case NNF_ACT_TANH: BODY(NNF_ACT_TANH); break;                                          \
    case NNF_ACT_GELU: BODY(NNF_ACT_GELU); break;                                          \
    case NNF_ACT_GELU_TANH: BODY(NNF_ACT_GELU_TANH); break;                                \
    case NNF_ACT_SILU: BODY(NNF_ACT_SILU); break;                                          \
    case NNF_ACT_SOFTPLUS: BODY(NNF_ACT_SOFTPLUS); break;                                   \
    default: BODY(NNF_ACT_IDENTITY); break;

#define NNF_DEFINE_ACTIVATIONS(T, SFX, EXP, LOG)                                            \
static void act_fwd_range_##SFX(T *y, const T *x, int64_t lo, int64_t hi, int act, T a) {  \
    switch (act) {                                                                         \
    NNF_ACT_CASES(FWD_LOOP_##SFX)                                                          \
    }                                                                                      \
}                                                                                          \
/* dz = dy * act'(z, y); a missing z or y reads as 0 (act' does not use it then). */       \
static void act_bwd_range_##SFX(T *dz, const T *dy, const T *z, const T *y, int64_t lo,   \
                                int64_t hi, int act, T a) {                                \
    if (act == NNF_ACT_IDENTITY) {                                                         \
        for (int64_t i = lo; i < hi; ++i) dz[i] = dy[i];                                   \
        return;                                                                            \
    }                                                                                      \
    if (z && y) {                                                                          \
        switch (act) { NNF_ACT_CASES(BWD_LOOP_ZY_##SFX) }                                  \
    } else if (z) {                                                                        \
        switch (act) { NNF_ACT_CASES(BWD_LOOP_Z_##SFX) }                                   \
    } else {                                                                               \
        switch (act) { NNF_ACT_CASES(BWD_LOOP_Y_##SFX) }                                   \
    }                                                                                      \
}                                                                                          \
/* One row: y = softmax(x) or log_softmax(x), max-subtracted; y may equal x. */            \
static void softmax_row_##SFX(T *y, const T *x, int64_t M, int take_log) {                     \
    T m = x[0];                                                                            \
    int nan = 0;                                                                           \
    for (int64_t j = 0; j < M; ++j) { m = x[j] > m ? x[j] : m; nan |= x[j] != x[j]; }      \
    if (nan) { for (int64_t j = 0; j < M; ++j) y[j] = (T)NAN; return; }                    \
    double s = 0;                                                                          \
    if (take_log) {                                                                           \
        for (int64_t j = 0; j < M; ++j) s += (double)EXP(x[j] - m);                        \
        T ls = LOG((T)s);                                                                  \
        for (int64_t j = 0; j < M; ++j) y[j] = (x[j] - m) - ls;                            \
    } else {                                                                               \
        for (int64_t j = 0; j < M; ++j) { T e = EXP(x[j] - m); y[j] = e; s += (double)e; } \
        T st = (T)s;                                                                       \
        for (int64_t j = 0; j < M; ++j) y[j] = y[j] / st;                                  \
    }                                                                                      \
}                                                                                          \
static void softmax_bwd_row_##SFX(T *dz, const T *dy, const T *y, int64_t M, int take_log) {   \
    double s = 0;                                                                          \
    if (take_log) {                                                                           \
        for (int64_t j = 0; j < M; ++j) s += (double)dy[j];                                \
        T st = (T)s;                                                                       \
        for (int64_t j = 0; j < M; ++j) dz[j] = dy[j] - EXP(y[j]) * st;                    \
    } else {                                                                               \
        for (int64_t j = 0; j < M; ++j) s += (double)(dy[j] * y[j]);                       \
        T st = (T)s;                                                                       \
        for (int64_t j = 0; j < M; ++j) dz[j] = y[j] * (dy[j] - st);                       \
    }                                                                                      \
}                                                                                          \
typedef struct {                                                                           \
    T *out; const T *x, *dy, *z, *y;                                                       \
    int64_t M; int act; T alpha; int take_log;                                             \
} act_ctx_##SFX;                                                                           \
static void act_fwd_part_##SFX(void *p, int64_t lo, int64_t hi, int w) {                   \
    const act_ctx_##SFX *c = (const act_ctx_##SFX *)p;                                     \
    (void)w;                                                                               \
    act_fwd_range_##SFX(c->out, c->x, lo, hi, c->act, c->alpha);                           \
}                                                                                          \
static void act_bwd_part_##SFX(void *p, int64_t lo, int64_t hi, int w) {                   \
    const act_ctx_##SFX *c = (const act_ctx_##SFX *)p;                                     \
    (void)w;                                                                               \
    act_bwd_range_##SFX(c->out, c->dy, c->z, c->y, lo, hi, c->act, c->alpha);              \
}                                                                                          \
static void softmax_part_##SFX(void *p, int64_t lo, int64_t hi, int w) {                   \
    const act_ctx_##SFX *c = (const act_ctx_##SFX *)p;                                     \
    const int64_t M = c->M;                                                                \
    (void)w;                                                                               \
    for (int64_t i = lo; i < hi; ++i)                                                      \
        softmax_row_##SFX(c->out + i * M, c->x + i * M, M, c->take_log);                   \
}                                                                                          \
static void softmax_bwd_part_##SFX(void *p, int64_t lo, int64_t hi, int w) {               \
    const act_ctx_##SFX *c = (const act_ctx_##SFX *)p;                                     \
    const int64_t M = c->M;                                                                \
    (void)w;                                                                               \
    for (int64_t i = lo; i < hi; ++i)                                                      \
        softmax_bwd_row_##SFX(c->out + i * M, c->dy + i * M, c->y + i * M, M, c->take_log); \
}                                                                                          \
void nnf_activation_fwd_##SFX(T *y, const T *x, int64_t N, int64_t M, int act, T alpha,   \
                              int nthreads) {                                              \
    act_ctx_##SFX c = {y, x, 0, 0, 0, M, act, alpha, act == NNF_ACT_LOG_SOFTMAX};          \
    if (act == NNF_ACT_SOFTMAX || act == NNF_ACT_LOG_SOFTMAX) {                            \
        if (M == 0) return;                                                                \
        nnf_parallel_for(softmax_part_##SFX, &c, N, NNF_PARTS(nthreads),                   \
                         N * M > PAR_TRANSCENDENTAL ? nthreads : 1);                       \
        return;                                                                            \
    }                                                                                      \
    const int64_t n = N * M;                                                               \
    nnf_parallel_for(act_fwd_part_##SFX, &c, n, NNF_PARTS(nthreads),                       \
                     n > par_threshold(act) ? nthreads : 1);                               \
}                                                                                          \
void nnf_activation_bwd_##SFX(T *dz, const T *dy, const T *z, const T *y, int64_t N,      \
                              int64_t M, int act, T alpha, int nthreads) {                 \
    act_ctx_##SFX c = {dz, 0, dy, z, y, M, act, alpha, act == NNF_ACT_LOG_SOFTMAX};        \
    if (act == NNF_ACT_SOFTMAX || act == NNF_ACT_LOG_SOFTMAX) {                            \
        nnf_parallel_for(softmax_bwd_part_##SFX, &c, N, NNF_PARTS(nthreads),               \
                         N * M > PAR_TRANSCENDENTAL ? nthreads : 1);                       \
        return;                                                                            \
    }                                                                                      \
    const int64_t n = N * M;                                                               \
    nnf_parallel_for(act_bwd_part_##SFX, &c, n, NNF_PARTS(nthreads),                       \
                     n > par_threshold(act) ? nthreads : 1);                               \
}

#define FWD_LOOP_f32(ACT) for (int64_t i = lo; i < hi; ++i) y[i] = nnf_act_f32(ACT, x[i], a)
#define FWD_LOOP_f64(ACT) for (int64_t i = lo; i < hi; ++i) y[i] = nnf_act_f64(ACT, x[i], a)
#define BWD_LOOP_ZY_f32(ACT) \
    for (int64_t i = lo; i < hi; ++i) dz[i] = dy[i] * nnf_dact_f32(ACT, z[i], y[i], a)
#define BWD_LOOP_ZY_f64(ACT) \
    for (int64_t i = lo; i < hi; ++i) dz[i] = dy[i] * nnf_dact_f64(ACT, z[i], y[i], a)
#define BWD_LOOP_Z_f32(ACT) \
    for (int64_t i = lo; i < hi; ++i) dz[i] = dy[i] * nnf_dact_f32(ACT, z[i], 0.0f, a)
#define BWD_LOOP_Z_f64(ACT) \
    for (int64_t i = lo; i < hi; ++i) dz[i] = dy[i] * nnf_dact_f64(ACT, z[i], 0.0, a)
#define BWD_LOOP_Y_f32(ACT) \
    for (int64_t i = lo; i < hi; ++i) dz[i] = dy[i] * nnf_dact_f32(ACT, 0.0f, y[i], a)
#define BWD_LOOP_Y_f64(ACT) \
    for (int64_t i = lo; i < hi; ++i) dz[i] = dy[i] * nnf_dact_f64(ACT, 0.0, y[i], a)

NNF_DEFINE_ACTIVATIONS(float, f32, expf, logf)
NNF_DEFINE_ACTIVATIONS(double, f64, exp, log)
