/* nnf_all_finite_<f32|f64>: whether no value of x[0:n] is NaN or +-Inf (see nnfast.h,
 * "reductions"). The engine's check of every predict / fit input, so it runs at the batch-1
 * serving path's latency and over whole training sets.
 *
 * An integer exponent test: a value is NaN or +-Inf exactly when its exponent bits are all
 * ones, i.e. when |bits| (the sign bit cleared) >= the bits of +Inf. Adding the lowest
 * exponent bit to |bits| then carries into the sign bit, and into it only then:
 *   f32: (bits & 0x7fffffff) + 0x00800000 >= 0x80000000  <=>  bits & 0x7f800000 == 0x7f800000
 * so OR-ing these sums over x and testing the sign bit once answers for every value. No
 * floating-point operation is involved (subnormals, -0.0 and signalling NaNs read as plain
 * bits, no FP exception is raised), and and/add/or vectorize at every width without
 * -ffast-math (which would fold the float formulation v - v == 0 to true).
 *
 * Compiled three times (baseline, AVX2, AVX-512F) and picked by the active kernel path
 * (NNFAST_ISA), like the GEMM kernels. Blocks of 4096 values with an exit after each: a
 * non-finite value early in a large x costs one block. Serial: at batch sizes the engine
 * checks this is memory-bound (256 x 784 float32 in ~4-6 us from L2). */
#include "nnfast.h"

typedef uint32_t __attribute__((may_alias)) nnf_u32a;
typedef uint64_t __attribute__((may_alias)) nnf_u64a;

#define FIN_BLOCK 4096
#define FIN_LANES 64 /* independent OR chains per step: 4 zmm / 8 ymm / 16 xmm of u32 */

#define NNF_DEFINE_FINITE_BODY(U, UA, ABS, LOW, SIGN, NAME, ATTR)                            \
static ATTR int NAME(const void *x, int64_t n) {                                            \
    const UA *p = (const UA *)x;                                                             \
    int64_t i = 0;                                                                           \
    while (i < n) {                                                                          \
        const int64_t end = n - i < FIN_BLOCK ? n : i + FIN_BLOCK;                           \
        U acc[FIN_LANES] = {0};                                                              \
        for (; i + FIN_LANES <= end; i += FIN_LANES)                                         \
            for (int j = 0; j < FIN_LANES; ++j) acc[j] |= (p[i + j] & (ABS)) + (LOW);        \
        U any = 0;                                                                           \
        for (; i < end; ++i) any |= (p[i] & (ABS)) + (LOW);                                  \
        for (int j = 0; j < FIN_LANES; ++j) any |= acc[j];                                   \
        if (any & (SIGN)) return 0;                                                          \
    }                                                                                        \
    return 1;                                                                                \
}

#define NNF_DEFINE_FINITE(SUFFIX, ATTR)                                                      \
NNF_DEFINE_FINITE_BODY(uint32_t, nnf_u32a, 0x7fffffffu, 0x00800000u, 0x80000000u,           \
                       finite_f32_##SUFFIX, ATTR)                                            \
NNF_DEFINE_FINITE_BODY(uint64_t, nnf_u64a, 0x7fffffffffffffffull, 0x0010000000000000ull,    \
                       0x8000000000000000ull, finite_f64_##SUFFIX, ATTR)

NNF_DEFINE_FINITE(generic, )
#if defined(__x86_64__)
NNF_DEFINE_FINITE(avx2, __attribute__((target("avx2"))))
NNF_DEFINE_FINITE(avx512, __attribute__((target("avx512f"))))
#endif

int nnf_all_finite_f32(const float *x, int64_t n) {
#if defined(__x86_64__)
    switch (nnf_isa_active()) {
    case NNF_ISA_AVX512: return finite_f32_avx512(x, n);
    case NNF_ISA_AVX2: return finite_f32_avx2(x, n);
    default: break;
    }
#endif
    return finite_f32_generic(x, n);
}

int nnf_all_finite_f64(const double *x, int64_t n) {
#if defined(__x86_64__)
    switch (nnf_isa_active()) {
    case NNF_ISA_AVX512: return finite_f64_avx512(x, n);
    case NNF_ISA_AVX2: return finite_f64_avx2(x, n);
    default: break;
    }
#endif
    return finite_f64_generic(x, n);
}
