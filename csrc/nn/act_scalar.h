/* Scalar forms of the elementwise activations and their derivatives, shared by the
 * activation kernels and the GEMM epilogue so both compute bit-identical values.
 * Derivatives take the pre-activation z and the output y (whichever is cheaper is used).
 * NaN in -> NaN out for every function (no clamps that would hide it).
 * Extremes: every function and derivative is finite wherever its true value is, and equals its
 * limit at z = +-inf (gelu, gelu_tanh, silu -> z and 0, their derivatives -> 1 and 0; leaky_relu
 * with alpha 0 -> 0 at -inf). Where a factor has saturated to exactly 0 (1 + erf, 1 + tanh,
 * 1 - tanh^2, the Gaussian pdf, the sigmoid) the product is taken as 0 instead of 0 * inf = NaN,
 * which also covers z^2, z^3 overflowing (float32 |z| > 1.8e19) after tanh has saturated.
 * torch.nn.functional gives NaN at some of these limits (gelu(-inf), silu(-inf), the gelu and
 * silu derivatives at +-inf, gelu_tanh's derivative for float32 |z| > 1.8e19); we do not. */
#ifndef NNF_ACT_SCALAR_H
#define NNF_ACT_SCALAR_H

#include <math.h>
#include "nnfast.h"

#define NNF_DEFINE_ACT(T, SFX, EXP, LOG1P, EXPM1, TANH, ERF, SQRT)                        \
static inline T nnf_act_##SFX(int act, T z, T a) {                                        \
    switch (act) {                                                                        \
    case NNF_ACT_RELU: return z > 0 ? z : (z == z ? (T)0 : z);                             \
    case NNF_ACT_LEAKY_RELU: { /* a = 0, z = -inf: -0, not 0 * -inf (flat selects) */     \
        T n = a * z; n = n != n && z == z ? -(T)0 : n; return z > 0 ? z : n; }            \
    case NNF_ACT_ELU: return z > 0 ? z : a * EXPM1(z);                                    \
    case NNF_ACT_SIGMOID:                                                                 \
        if (z >= 0) { return (T)1 / ((T)1 + EXP(-z)); }                                   \
        else { T e = EXP(z); return e / ((T)1 + e); }                                      \
    case NNF_ACT_TANH: return TANH(z);                                                    \
    case NNF_ACT_GELU: { /* q = 0 only for z << 0 (then -0, also at -inf) */             \
        T q = (T)1 + ERF(z * (T)0.70710678118654752440);                                  \
        return q == 0 ? -(T)0 : (T)0.5 * z * q; }                                         \
    case NNF_ACT_GELU_TANH: { /* z^3 may overflow: tanh(+-inf) = +-1 is then exact */     \
        T u = (T)0.79788456080286535588 * (z + (T)0.044715 * z * z * z);                  \
        T q = (T)1 + TANH(u);                                                             \
        return q == 0 ? -(T)0 : (T)0.5 * z * q; }                                         \
    case NNF_ACT_SILU:                                                                    \
        if (z >= 0) { return z / ((T)1 + EXP(-z)); }                                      \
        else { T e = EXP(z); return e == 0 ? -(T)0 : z * e / ((T)1 + e); }                \
    case NNF_ACT_SOFTPLUS: /* log(1+e^z) = max(z,0) + log1p(e^-|z|) */                    \
        return (z > 0 ? z : (T)0) + LOG1P(EXP(-(z > 0 ? z : -z)));                        \
    default: return z;                                                                    \
    }                                                                                     \
}                                                                                         \
/* d act / d z, given z and y = act(z) */                                                 \
static inline T nnf_dact_##SFX(int act, T z, T y, T a) {                                  \
    switch (act) {                                                                        \
    /* two flat selects (not nested) so loops stay branch-free and vectorize */         \
    case NNF_ACT_RELU: { T d = z > 0 ? (T)1 : (T)0; return z == z ? d : z; }            \
    case NNF_ACT_LEAKY_RELU: { T d = z > 0 ? (T)1 : a; return z == z ? d : z; }         \
    case NNF_ACT_ELU: { T d = z > 0 ? (T)1 : y + a; return z == z ? d : z; }            \
    case NNF_ACT_SIGMOID: return y * ((T)1 - y);                                          \
    case NNF_ACT_TANH: return (T)1 - y * y;                                               \
    case NNF_ACT_GELU: { /* Phi(z) + z phi(z); phi = 0 for |z| >~ 39 (z = +-inf too) */  \
        T cdf = (T)0.5 * ((T)1 + ERF(z * (T)0.70710678118654752440));                     \
        T pdf = (T)0.39894228040143267794 * EXP((T)-0.5 * z * z);                          \
        return cdf + (pdf == 0 ? (T)0 : z * pdf); }                                       \
    case NNF_ACT_GELU_TANH: { /* sech^2 = 1 - t^2 is 0 long before z^2 overflows */       \
        T c = (T)0.79788456080286535588;                                                  \
        T t = TANH(c * (z + (T)0.044715 * z * z * z));                                    \
        T sech2 = (T)1 - t * t;                                                           \
        return (T)0.5 * ((T)1 + t) + (sech2 == 0 ? (T)0                                    \
             : (T)0.5 * z * sech2 * c * ((T)1 + (T)3 * (T)0.044715 * z * z)); }           \
    case NNF_ACT_SILU: { /* s (1 + z (1 - s)); s = 1 or 0 exactly at the far tails */     \
        T s = nnf_act_##SFX(NNF_ACT_SIGMOID, z, a), q = (T)1 - s;                          \
        return s == 0 ? -(T)0 : s * ((T)1 + (q == 0 ? (T)0 : z * q)); }                  \
    case NNF_ACT_SOFTPLUS: return nnf_act_##SFX(NNF_ACT_SIGMOID, z, a);                   \
    default: return (T)1;                                                                 \
    }                                                                                     \
}

NNF_DEFINE_ACT(float, f32, expf, log1pf, expm1f, tanhf, erff, sqrtf)
NNF_DEFINE_ACT(double, f64, exp, log1p, expm1, tanh, erf, sqrt)
#undef NNF_DEFINE_ACT

#endif
