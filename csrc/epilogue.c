/* GEMM epilogue: bias, saved pre-activation and elementwise activation on one C tile. */
#include "act_scalar.h"
#include "nnfast.h"

#define NNF_DEFINE_EPILOGUE(T, SFX)                                                         \
void nnf_epilogue_tile_##SFX(const nnf_epilogue_t *ep, T *C, int64_t ldc,                 \
                             int64_t row0, int64_t col0, int64_t rows, int64_t cols) {    \
    const T *bias = (const T *)ep->bias;                                                   \
    T *z = (T *)ep->z;                                                                     \
    const T a = (T)ep->act_alpha;                                                          \
    for (int64_t i = row0; i < row0 + rows; ++i) {                                         \
        T *restrict c = C + i * ldc;                                                       \
        if (bias) {                                                                        \
            for (int64_t j = col0; j < col0 + cols; ++j) c[j] += bias[j];                  \
        }                                                                                  \
        if (z) {                                                                           \
            T *restrict zr = z + i * ep->ldz;                                              \
            for (int64_t j = col0; j < col0 + cols; ++j) zr[j] = c[j];                     \
        }                                                                                  \
        switch (ep->act) {                                                                 \
        case NNF_ACT_IDENTITY: break;                                                      \
        case NNF_ACT_RELU: /* branch-free form vectorizes; keeps NaN */                    \
            for (int64_t j = col0; j < col0 + cols; ++j) c[j] = c[j] < 0 ? (T)0 : c[j];    \
            break;                                                                         \
        default:                                                                           \
            for (int64_t j = col0; j < col0 + cols; ++j)                                   \
                c[j] = nnf_act_##SFX(ep->act, c[j], a);                                    \
        }                                                                                  \
    }                                                                                      \
}

NNF_DEFINE_EPILOGUE(float, f32)
NNF_DEFINE_EPILOGUE(double, f64)
