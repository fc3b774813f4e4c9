/* A convolution's filter gradient with vector lanes along the filters (conv_tmpl.h, "filter
 * gradient, lanes along F"): for np output pixels from pixel p0 (image n = p/(OH*OW), row oh,
 * column ow) and ntap adjacent taps of x, x + n*si + oh*sr + ow*sx + j for tap j (x points at
 * the run's first tap in the window of pixel 0 of image 0):
 *   out[j*F + f] = (accumulate ? out[j*F + f] : 0) + the sum over the pixels p in order of
 *                  x[origin(p) + j] * dz[(p-p0)*F + f]
 * the sum one FMA chain from 0 per element; every f < F, in chunks of one vector (the last
 * masked). The run is cut evenly into register blocks of at most UKR_CONVDW_RB taps (24 on
 * AVX-512, 8 on AVX2), each its own pass over the pixels: per pixel one vector of dz and a
 * broadcast of each tap at a constant displacement, a load per FMA. LeNet's conv2 (F = 16:
 * one vector on AVX-512 f32) has 8-pixel output rows and 30-tap runs: two blocks of 15.
 * The blocking never changes an element's chain, so it never changes the bits.
 * Included by each SIMD kernel file (its V_* macros, UKR_ATTR) after UKR_CONVDW_NAME. */
#ifndef UKR_CONVDW_RB
#define UKR_CONVDW_RB 8   /* 8 chains + dz of 16 registers */
#endif

/* NT (a constant after inlining: acc stays in registers, the taps at fixed displacements). */
static inline __attribute__((always_inline)) UKR_ATTR void
convdw_block(const int NT, int64_t p0, int64_t np, int64_t OH, int64_t OW, int64_t si,
             int64_t sr, int64_t sx, const UKR_T *x, const UKR_T *dz, int64_t F,
             int accumulate, UKR_T *out) {
    for (int64_t f0 = 0; f0 < F; f0 += UKR_VL) {
        const int r = F - f0 < UKR_VL ? (int)(F - f0) : UKR_VL;
        UKR_V acc[UKR_CONVDW_RB];
        _Pragma("GCC unroll 24")
        for (int j = 0; j < NT; ++j) acc[j] = V_ZERO();
        int64_t n = p0 / (OH * OW), q = p0 % (OH * OW), oh = q / OW, ow = q % OW;
        const UKR_T *d = dz + f0;
        for (int64_t left = np; left > 0;) {
            const int64_t run = OW - ow < left ? OW - ow : left;
            const UKR_T *xp = x + n * si + oh * sr + ow * sx;
            if (r == UKR_VL) {
                for (int64_t i = 0; i < run; ++i, xp += sx, d += F) {
                    const UKR_V dv = V_LOADU(d);
                    _Pragma("GCC unroll 24")
                    for (int j = 0; j < NT; ++j) acc[j] = V_FMA(V_BCAST(xp + j), dv, acc[j]);
                }
            } else {
                for (int64_t i = 0; i < run; ++i, xp += sx, d += F) {
                    const UKR_V dv = V_LOADU_N(d, r);
                    _Pragma("GCC unroll 24")
                    for (int j = 0; j < NT; ++j) acc[j] = V_FMA(V_BCAST(xp + j), dv, acc[j]);
                }
            }
            left -= run;
            ow = 0;
            if (++oh == OH) { oh = 0; ++n; }
        }
        _Pragma("GCC unroll 24")
        for (int j = 0; j < NT; ++j) {
            UKR_T *op = out + j * F + f0;
            if (r == UKR_VL) V_STOREU(op, accumulate ? V_ADD(V_LOADU(op), acc[j]) : acc[j]);
            else V_STOREU_N(op, r, accumulate ? V_ADD(V_LOADU_N(op, r), acc[j]) : acc[j]);
        }
    }
}

#define CONVDW_CASE(k)                                                                      \
    case k:                                                                                 \
        if (k <= UKR_CONVDW_RB)                                                             \
            convdw_block(k, p0, np, OH, OW, si, sr, sx, x + t0, dz, F, accumulate,          \
                         out + t0 * F);                                                     \
        break;

UKR_ATTR void UKR_CONVDW_NAME(int64_t p0, int64_t np, int64_t OH, int64_t OW, int64_t si,
                              int64_t sr, int64_t sx, const UKR_T *x, int64_t ntap,
                              const UKR_T *dz, int64_t F, int accumulate, UKR_T *out) {
    const int64_t nb = (ntap + UKR_CONVDW_RB - 1) / UKR_CONVDW_RB;
    for (int64_t b = 0, t0 = 0; b < nb; ++b) {
        const int64_t t1 = (b + 1) * ntap / nb;   /* even blocks: 30 taps = 15 + 15 */
        switch (t1 - t0) {
            CONVDW_CASE(1) CONVDW_CASE(2) CONVDW_CASE(3) CONVDW_CASE(4) CONVDW_CASE(5)
            CONVDW_CASE(6) CONVDW_CASE(7) CONVDW_CASE(8) CONVDW_CASE(9) CONVDW_CASE(10)
            CONVDW_CASE(11) CONVDW_CASE(12) CONVDW_CASE(13) CONVDW_CASE(14) CONVDW_CASE(15)
            CONVDW_CASE(16) CONVDW_CASE(17) CONVDW_CASE(18) CONVDW_CASE(19) CONVDW_CASE(20)
            CONVDW_CASE(21) CONVDW_CASE(22) CONVDW_CASE(23) CONVDW_CASE(24)
            default: break;
        }
        t0 = t1;
    }
}
#undef CONVDW_CASE
#undef UKR_CONVDW_RB

/* The forward sums with lanes along the filters (conv_tmpl.h, "forward, lanes along F"): for
 * R <= 8 output pixels with window origins xo[r] and the taps as nruns runs of len adjacent
 * values of x at xo[r] + roff[k] (tap t = k*len + j),
 *   out[r*ldo + f] = sum over the taps t in order of x[xo[r] + roff[k] + j] * W[t*F + f]
 * one FMA chain from 0 per element: the implicit GEMM's arithmetic on the same taps when they
 * fit one of its K blocks, so its bits. Per tap one vector of W and a broadcast per pixel (its
 * base in a register, the tap at an index): 8 pixels (LeNet's conv2 output row) x F = 16. */
static inline __attribute__((always_inline)) UKR_ATTR void
convfw_block(const int NP, const UKR_T *const *xo, const int64_t *roff, int64_t nruns,
             int64_t len, const UKR_T *W, int64_t F, UKR_T *out, int64_t ldo) {
    for (int64_t f0 = 0; f0 < F; f0 += UKR_VL) {
        const int r = F - f0 < UKR_VL ? (int)(F - f0) : UKR_VL;
        UKR_V acc[8];
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NP; ++i) acc[i] = V_ZERO();
        for (int64_t k = 0; k < nruns; ++k) {
            const UKR_T *b[8];
            _Pragma("GCC unroll 8")
            for (int i = 0; i < NP; ++i) b[i] = xo[i] + roff[k];
            const UKR_T *w = W + k * len * F + f0;
            if (r == UKR_VL) {
                /* unrolled: the pixels' pointers advance once per 4 taps (8 pointer adds per
                 * tap had the integer ports, not the FMAs, set the pace) */
                _Pragma("GCC unroll 4")
                for (int64_t j = 0; j < len; ++j, w += F) {
                    const UKR_V wv = V_LOADU(w);
                    _Pragma("GCC unroll 8")
                    for (int i = 0; i < NP; ++i) acc[i] = V_FMA(V_BCAST(b[i] + j), wv, acc[i]);
                }
            } else {
                for (int64_t j = 0; j < len; ++j, w += F) {
                    const UKR_V wv = V_LOADU_N(w, r);
                    _Pragma("GCC unroll 8")
                    for (int i = 0; i < NP; ++i) acc[i] = V_FMA(V_BCAST(b[i] + j), wv, acc[i]);
                }
            }
        }
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NP; ++i) {
            if (r == UKR_VL) V_STOREU(out + i * ldo + f0, acc[i]);
            else V_STOREU_N(out + i * ldo + f0, r, acc[i]);
        }
    }
}

#define CONVFW_CASE(k)                                                                      \
    case k: convfw_block(k, xo, roff, nruns, len, W, F, out, ldo); break;

UKR_ATTR void UKR_CONVFW_NAME(int64_t R, const UKR_T *const *xo, const int64_t *roff,
                              int64_t nruns, int64_t len, const UKR_T *W, int64_t F,
                              UKR_T *out, int64_t ldo) {
    switch (R) {
        CONVFW_CASE(1) CONVFW_CASE(2) CONVFW_CASE(3) CONVFW_CASE(4)
        CONVFW_CASE(5) CONVFW_CASE(6) CONVFW_CASE(7) CONVFW_CASE(8)
        default: break;
    }
}
#undef CONVFW_CASE
