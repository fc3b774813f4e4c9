/* GEMM epilogue: bias, saved pre-activation and elementwise activation on one C tile, in one
 * pass per row while the tile is hot. The activation is a compile-time constant in each loop so
 * act_scalar.h inlines without its switch (and relu/leaky_relu/identity vectorize); the values
 * are exactly act_scalar.h's. */
#include "act_scalar.h"
#include "nnfast.h"

/* One row segment c[j0..j1): v = c + bias (bias may be NULL: no add, so -0.0 stays -0.0);
 * z[j] = v when z != NULL; c = act(v). */
#define EP_ROW(T, SFX, ACT)                                                                 \
    do {                                                                                    \
        if (bias && zr) {                                                                   \
            for (int64_t j = j0; j < j1; ++j) {                                             \
                T v = c[j] + bias[j]; zr[j] = v; c[j] = nnf_act_##SFX(ACT, v, a); }         \
        } else if (bias) {                                                                  \
            for (int64_t j = j0; j < j1; ++j) c[j] = nnf_act_##SFX(ACT, c[j] + bias[j], a); \
        } else if (zr) {                                                                    \
            for (int64_t j = j0; j < j1; ++j) { zr[j] = c[j]; c[j] = nnf_act_##SFX(ACT, c[j], a); } \
        } else {                                                                            \
            for (int64_t j = j0; j < j1; ++j) c[j] = nnf_act_##SFX(ACT, c[j], a);           \
        }                                                                                   \
    } while (0)

#define NNF_DEFINE_EPILOGUE(T, SFX)                                                         \
void nnf_epilogue_tile_##SFX(const nnf_epilogue_t *ep, T *C, int64_t ldc,                 \
                             int64_t row0, int64_t col0, int64_t rows, int64_t cols) {    \
    const T *restrict bias = (const T *)ep->bias;                                          \
    const T a = (T)ep->act_alpha;                                                          \
    const int64_t j0 = col0, j1 = col0 + cols;                                             \
    for (int64_t i = row0; i < row0 + rows; ++i) {                                         \
        T *restrict c = C + i * ldc;                                                       \
        T *restrict zr = ep->z ? (T *)ep->z + i * ep->ldz : (T *)0;                        \
        switch (ep->act) {                                                                 \
        case NNF_ACT_IDENTITY:                                                             \
            if (bias) for (int64_t j = j0; j < j1; ++j) c[j] += bias[j];                   \
            if (zr) for (int64_t j = j0; j < j1; ++j) zr[j] = c[j];                        \
            break;                                                                         \
        case NNF_ACT_RELU: EP_ROW(T, SFX, NNF_ACT_RELU); break;                            \
        case NNF_ACT_LEAKY_RELU: EP_ROW(T, SFX, NNF_ACT_LEAKY_RELU); break;                \
        case NNF_ACT_ELU: EP_ROW(T, SFX, NNF_ACT_ELU); break;                              \
        case NNF_ACT_SIGMOID: EP_ROW(T, SFX, NNF_ACT_SIGMOID); break;                      \
        case NNF_ACT_TANH: EP_ROW(T, SFX, NNF_ACT_TANH); break;                            \
        case NNF_ACT_GELU: EP_ROW(T, SFX, NNF_ACT_GELU); break;                            \
        case NNF_ACT_GELU_TANH: EP_ROW(T, SFX, NNF_ACT_GELU_TANH); break;                  \
        case NNF_ACT_SILU: EP_ROW(T, SFX, NNF_ACT_SILU); break;                            \
        case NNF_ACT_SOFTPLUS: EP_ROW(T, SFX, NNF_ACT_SOFTPLUS); break;                    \
        default: break; /* row-wise activations are applied after the GEMM */             \
        }                                                                                  \
    }                                                                                      \
}

NNF_DEFINE_EPILOGUE(float, f32)
NNF_DEFINE_EPILOGUE(double, f64)
