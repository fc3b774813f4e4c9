/* Generic C microkernels (every CPU, the fallback and the reference for the SIMD paths):
 * nnf_sgemm_ukr_generic_4x8 and nnf_dgemm_ukr_generic_4x4. Plain loops with constant trip
 * counts that the compiler vectorizes for the baseline ISA (SSE2 on x86-64, NEON on arm64):
 * 4x8 f32 / 4x4 f64 = 8 accumulator registers of 128 bits. Built as ISO C, so a*b + c is not
 * contracted into an FMA: this path rounds the same on every compiler and CPU.
 * Contract: see gemm_kernels.h. */
#include "gemm_kernels.h"

#define NNF_DEFINE_GENERIC_UKR(T, NAME, MR, NR)                                              \
static inline __attribute__((always_inline)) void                                          \
NAME##_body(const int R, int64_t k, T alpha, const T *restrict a, int64_t rsa, int64_t csa, \
            const T *restrict b, int64_t ldb, T beta, T *restrict c, int64_t ldc) {         \
    T acc[MR][NR];                                                                          \
    for (int i = 0; i < R; ++i)                                                            \
        for (int j = 0; j < NR; ++j) acc[i][j] = 0;                                         \
    for (int64_t p = 0; p < k; ++p) {                                                       \
        const T *restrict bp = b + p * ldb;                                                 \
        for (int i = 0; i < R; ++i) {                                                      \
            const T av = a[i * rsa + p * csa];                                              \
            for (int j = 0; j < NR; ++j) acc[i][j] += av * bp[j];                           \
        }                                                                                   \
    }                                                                                       \
    if (beta == (T)0) {                                                                     \
        for (int i = 0; i < R; ++i)                                                        \
            for (int j = 0; j < NR; ++j) c[i * ldc + j] = alpha * acc[i][j];                \
    } else {                                                                                \
        for (int i = 0; i < R; ++i)                                                        \
            for (int j = 0; j < NR; ++j)                                                    \
                c[i * ldc + j] = beta * c[i * ldc + j] + alpha * acc[i][j];                 \
    }                                                                                       \
}                                                                                           \
void NAME(int64_t k, T alpha, const T *a, int64_t rsa, int64_t csa, const T *b, int64_t ldb, \
          T beta, T *c, int64_t ldc) {                                                      \
    if (rsa == 1 && csa == MR && ldb == NR)                                                 \
        NAME##_body(MR, k, alpha, a, 1, MR, b, NR, beta, c, ldc);                           \
    else                                                                                    \
        NAME##_body(MR, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc);                       \
}                                                                                           \
/* bottom edge: rows 0..mr-1 only (1 <= mr < MR) */                                         \
void NAME##_edge(int mr, int64_t k, T alpha, const T *a, int64_t rsa, int64_t csa,          \
                 const T *b, int64_t ldb, T beta, T *c, int64_t ldc) {                      \
    switch (mr) {                                                                           \
    case 1: NAME##_body(1, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc); break;             \
    case 2: NAME##_body(2, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc); break;             \
    case 3: NAME##_body(3, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc); break;             \
    default: break;                                                                         \
    }                                                                                       \
}

NNF_DEFINE_GENERIC_UKR(float, nnf_sgemm_ukr_generic_4x8, 4, 8)
NNF_DEFINE_GENERIC_UKR(double, nnf_dgemm_ukr_generic_4x4, 4, 4)

/* Few rows (mr <= NNF_ROWS_MAX), B read in place (see ukr_simd.h's rows kernel): the same
 * per-element arithmetic as the kernels above, 8 columns at a time. */
#define NNF_DEFINE_GENERIC_ROWS(T, NAME)                                                     \
static inline __attribute__((always_inline)) void                                          \
NAME##_body(const int R, int64_t k, T alpha, const T *restrict a, int64_t rsa, int64_t csa, \
            const T *restrict b, int64_t ldb, T beta, T *restrict c, int64_t ldc, int64_t n) { \
    for (int64_t j0 = 0; j0 < n; j0 += 8) {                                                 \
        const int w = n - j0 < 8 ? (int)(n - j0) : 8;                                      \
        T acc[NNF_ROWS_MAX][8];                                                             \
        for (int i = 0; i < R; ++i)                                                        \
            for (int j = 0; j < 8; ++j) acc[i][j] = 0;                                      \
        for (int64_t p = 0; p < k; ++p) {                                                   \
            const T *restrict bp = b + p * ldb + j0;                                        \
            for (int i = 0; i < R; ++i) {                                                  \
                const T av = a[i * rsa + p * csa];                                          \
                if (w == 8) for (int j = 0; j < 8; ++j) acc[i][j] += av * bp[j];            \
                else for (int j = 0; j < w; ++j) acc[i][j] += av * bp[j];                   \
            }                                                                               \
        }                                                                                   \
        for (int i = 0; i < R; ++i) {                                                      \
            T *restrict cr = c + i * ldc + j0;                                              \
            if (beta == (T)0) for (int j = 0; j < w; ++j) cr[j] = alpha * acc[i][j];        \
            else for (int j = 0; j < w; ++j) cr[j] = beta * cr[j] + alpha * acc[i][j];      \
        }                                                                                   \
    }                                                                                       \
}                                                                                           \
void NAME(int mr, int64_t k, T alpha, const T *a, int64_t rsa, int64_t csa, const T *b,    \
          int64_t ldb, T beta, T *c, int64_t ldc, int64_t n) {                              \
    switch (mr) {                                                                           \
    case 1: NAME##_body(1, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n); break;          \
    case 2: NAME##_body(2, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n); break;          \
    case 3: NAME##_body(3, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n); break;          \
    case 4: NAME##_body(4, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n); break;          \
    default: break;                                                                         \
    }                                                                                       \
}

NNF_DEFINE_GENERIC_ROWS(float, nnf_sgemm_rows_generic)
NNF_DEFINE_GENERIC_ROWS(double, nnf_dgemm_rows_generic)

/* Single-channel direct convolution, one output row (see conv1_simd.h): 8 pixels x up to 4
 * filters per block, plain loops; per element the generic microkernel's arithmetic (a product
 * added to the sum, taps in order from 0, no FMA contraction). */
#define NNF_DEFINE_GENERIC_CONV1(T, NAME)                                                    \
void NAME(int64_t OW, int64_t KH, int64_t KW, int64_t F, const T *const *rows, const T *W,    \
          T *out, int64_t ldo) {                                                              \
    for (int64_t ow0 = 0; ow0 < OW; ow0 += 8) {                                              \
        for (int64_t f0 = 0; f0 < F; f0 += 4) {                                             \
            const int fg = F - f0 < 4 ? (int)(F - f0) : 4;                                   \
            T acc[4][8];                                                                     \
            for (int f = 0; f < 4; ++f)                                                     \
                for (int l = 0; l < 8; ++l) acc[f][l] = 0;                                   \
            for (int64_t kh = 0; kh < KH; ++kh) {                                            \
                if (!rows[kh]) continue;                                                     \
                const T *restrict r = rows[kh] + ow0;                                        \
                for (int64_t kw = 0; kw < KW; ++kw) {                                        \
                    const T *restrict w = W + (kh * KW + kw) * F + f0;                       \
                    for (int f = 0; f < fg; ++f)                                             \
                        for (int l = 0; l < 8; ++l) acc[f][l] += w[f] * r[kw + l];           \
                }                                                                            \
            }                                                                                \
            for (int f = 0; f < fg; ++f)                                                     \
                for (int l = 0; l < 8; ++l) out[(f0 + f) * ldo + ow0 + l] = acc[f][l];       \
        }                                                                                    \
    }                                                                                        \
}

NNF_DEFINE_GENERIC_CONV1(float, nnf_sconv1_generic)
NNF_DEFINE_GENERIC_CONV1(double, nnf_dconv1_generic)

/* Its filter gradient (see conv1_simd.h): the same lane-wise partial sums, 8 lanes at a time,
 * a product added to each (no FMA contraction). */
#define NNF_DEFINE_GENERIC_CONV1_DW(T, NAME)                                                 \
void NAME(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F, const T *const *rows,    \
          const T *dzT, int64_t ldo, T *acc) {                                               \
    for (int64_t rr = 0; rr < R; ++rr)                                                      \
    for (int64_t ow0 = 0; ow0 < OW; ow0 += 8) {                                              \
        const int rem = OW - ow0 < 8 ? (int)(OW - ow0) : 8;                                  \
        for (int64_t kh = 0; kh < KH; ++kh) {                                                \
            if (!rows[rr * KH + kh]) continue;                                               \
            for (int64_t kw = 0; kw < KW; ++kw) {                                            \
                const T *restrict r = rows[rr * KH + kh] + ow0 + kw;                         \
                T xv[8];                                                                     \
                for (int l = 0; l < 8; ++l) xv[l] = l < rem ? r[l] : (T)0;                   \
                for (int64_t f = 0; f < F; ++f) {                                            \
                    const T *restrict d = dzT + (rr * F + f) * ldo + ow0;                    \
                    T *restrict a = acc + ((kh * KW + kw) * F + f) * NNF_CONV1_CHUNK         \
                                    + ow0 % NNF_CONV1_CHUNK;                                 \
                    for (int l = 0; l < 8; ++l) a[l] += xv[l] * d[l];                        \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
}

NNF_DEFINE_GENERIC_CONV1_DW(float, nnf_sconv1_dw_generic)
NNF_DEFINE_GENERIC_CONV1_DW(double, nnf_dconv1_dw_generic)

/* A convolution's filter gradient, lanes along the filters (see conv_lanes_simd.h): the same
 * chains, 8 taps x 8 filters at a time, in plain C. */
#define NNF_DEFINE_GENERIC_CONVDW(T, NAME)                                                   \
NNF_CONVDW_PROTO(T, NAME) {                                                                 \
    for (int64_t t0 = 0; t0 < ntap; t0 += 8) {                                              \
        const int nt = ntap - t0 < 8 ? (int)(ntap - t0) : 8;                               \
        for (int64_t f0 = 0; f0 < F; f0 += 8) {                                             \
            const int w = F - f0 < 8 ? (int)(F - f0) : 8;                                  \
            T acc[8][8] = {{0}};                                                            \
            int64_t n = p0 / (OH * OW), q = p0 % (OH * OW), oh = q / OW, ow = q % OW;       \
            const T *d = dz + f0;                                                           \
            for (int64_t left = np; left > 0;) {                                            \
                const int64_t run = OW - ow < left ? OW - ow : left;                        \
                const T *xp = x + t0 + n * si + oh * sr + ow * sx;                          \
                for (int64_t i = 0; i < run; ++i, xp += sx, d += F)                         \
                    for (int j = 0; j < nt; ++j)                                            \
                        for (int l = 0; l < w; ++l) acc[j][l] += xp[j] * d[l];              \
                left -= run;                                                                \
                ow = 0;                                                                     \
                if (++oh == OH) { oh = 0; ++n; }                                            \
            }                                                                               \
            for (int j = 0; j < nt; ++j)                                                    \
                for (int l = 0; l < w; ++l) {                                               \
                    T *op = out + (t0 + j) * F + f0 + l;                                    \
                    *op = accumulate ? *op + acc[j][l] : acc[j][l];                         \
                }                                                                           \
        }                                                                                   \
    }                                                                                       \
}

NNF_DEFINE_GENERIC_CONVDW(float, nnf_sconvdw_generic)
NNF_DEFINE_GENERIC_CONVDW(double, nnf_dconvdw_generic)

/* A convolution's forward sums, lanes along the filters (see conv_lanes_simd.h): the same
 * chains in plain C, 8 filters at a time. */
#define NNF_DEFINE_GENERIC_CONVFW(T, NAME)                                                   \
NNF_CONVFW_PROTO(T, NAME) {                                                                 \
    for (int64_t f0 = 0; f0 < F; f0 += 8) {                                                 \
        const int w = F - f0 < 8 ? (int)(F - f0) : 8;                                      \
        for (int64_t i = 0; i < R; ++i) {                                                   \
            T acc[8] = {0};                                                                 \
            for (int64_t k = 0; k < nruns; ++k) {                                           \
                const T *b = xo[i] + roff[k], *wk = W + k * len * F + f0;                   \
                for (int64_t j = 0; j < len; ++j)                                           \
                    for (int l = 0; l < w; ++l) acc[l] += b[j] * wk[j * F + l];             \
            }                                                                               \
            for (int l = 0; l < w; ++l) out[i * ldo + f0 + l] = acc[l];                     \
        }                                                                                   \
    }                                                                                       \
}

NNF_DEFINE_GENERIC_CONVFW(float, nnf_sconvfw_generic)
NNF_DEFINE_GENERIC_CONVFW(double, nnf_dconvfw_generic)
