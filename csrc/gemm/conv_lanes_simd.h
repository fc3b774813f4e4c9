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

/* Rows [r0, r1) (image r / H, row r % H) of a convolution's input gradient at unit width
 * stride and dilation and no width padding, lanes along a kernel row's run of KWC = KW*C taps
 * (conv_tmpl.h, "input gradient, lanes along the taps"): per input row drow = 0, then for the
 * kernel rows kh reaching it in order (output row oh) and the output pixels ow from OW-1 down,
 *   drow[ow*C + j] += sum over f in order of G[(oh, ow), f] * WT[f*Kc + kh*KWC + j],  j < KWC
 * the sum one FMA chain from 0: the GEMM's im2col-gradient element, added in col2im's order
 * ((kh, kw) per input pixel), so the same bits as the GEMM and col2im it replaces, without
 * writing the im2col gradient. CONVDX_P pixels share each vector of WT. The runs of
 * neighbouring pixels overlap (C apart): added through memory, each add waits for the last
 * store; on AVX-512 (CONVDX_REGROW) a row of up to 8 vectors stays in registers and each run
 * is moved to its place by a two-source permute, added under a mask (the same adds in the
 * same order). KWC <= 4 vectors (2 with CONVDX_REGROW), else the caller keeps the GEMM. */
#include <string.h>

#ifndef CONVDX_P
#define CONVDX_P 4
#endif

/* The runs of P pixels ow, ow-1, ... (their sums over f) into r. */
static inline __attribute__((always_inline)) UKR_ATTR void
convdx_runs(const int NV, const int P, UKR_V r[][4], const UKR_T *dz, int64_t ow, int64_t F,
            int rl, const UKR_T *wt, int64_t Kc) {
    _Pragma("GCC unroll 4")
    for (int p = 0; p < P; ++p) {
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; ++v) r[p][v] = V_ZERO();
    }
    for (int64_t f = 0; f < F; ++f) {
        UKR_V wv[4];
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; ++v)
            wv[v] = v < NV - 1 || rl == UKR_VL ? V_LOADU(wt + f * Kc + v * UKR_VL)
                                               : V_LOADU_N(wt + f * Kc + v * UKR_VL, rl);
        _Pragma("GCC unroll 4")
        for (int p = 0; p < P; ++p) {
            const UKR_V a = V_BCAST(dz + (ow - p) * F + f);
            _Pragma("GCC unroll 4")
            for (int v = 0; v < NV; ++v) r[p][v] = V_FMA(a, wv[v], r[p][v]);
        }
    }
}

/* The kernel rows reaching input row ih, in order: their output rows' gradient and first
 * taps; returns how many. */
static inline int64_t convdx_taps(int64_t ih, int64_t KH, int64_t SH, int64_t PT, int64_t DH,
                                  int64_t OH, const UKR_T *Gn, int64_t OWF, int64_t KWC,
                                  const UKR_T **dzr, int64_t *t0) {
    int64_t nk = 0;
    for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t t = ih + PT - kh * DH;
        if (t < 0 || t % SH) continue;
        const int64_t oh = t / SH;
        if (oh >= OH) continue;
        dzr[nk] = Gn + oh * OWF;
        t0[nk++] = kh * KWC;
    }
    return nk;
}

#if defined(CONVDX_REGROW)
/* P pixels from ow down: their runs, each moved into place and added to the row acc. P is a
 * constant here: a runtime P indexed the runs and put them on the stack. */
static inline __attribute__((always_inline)) UKR_ATTR void
convdx_regblock(const int NV, const int RV, const int P, UKR_V *acc, const UKR_T *dz,
                int64_t ow, int64_t F, int rl, const UKR_T *wt, int64_t Kc, const RG_IDX *idx,
                const RG_MASK *msk) {
    UKR_V r[CONVDX_P][4];
    convdx_runs(NV, P, r, dz, ow, F, rl, wt, Kc);
    _Pragma("GCC unroll 4")
    for (int p = 0; p < P; ++p) {
        const UKR_V hi = NV == 2 ? r[p][1] : r[p][0];
        _Pragma("GCC unroll 8")
        for (int m = 0; m < RV; ++m) {
            const RG_MASK k = msk[(ow - p) * RV + m];
            if (k) acc[m] = RG_MADD(acc[m], k, RG_PERM2(r[p][0], idx[(ow - p) * RV + m], hi));
        }
    }
}

/* One input row in registers: RV vectors of drow. idx[ow*RV + m] / msk[...]: where pixel ow's
 * run lands in vector m (two-source permute indices into its 2 run vectors, and the lanes). */
static inline __attribute__((always_inline)) UKR_ATTR void
convdx_regrow(const int NV, const int RV, int64_t nk, const UKR_T *const *dzr,
              const int64_t *t0, int64_t OW, int64_t F, int64_t KWC, const UKR_T *WT,
              int64_t Kc, const RG_IDX *idx, const RG_MASK *msk, UKR_T *drow, int64_t WC) {
    const int rl = (int)(KWC - (NV - 1) * UKR_VL);
    UKR_V acc[8];
    _Pragma("GCC unroll 8")
    for (int m = 0; m < RV; ++m) acc[m] = V_ZERO();
    for (int64_t e = 0; e < nk; ++e) {
        int64_t ow = OW - 1;
        for (; ow + 1 >= CONVDX_P; ow -= CONVDX_P)
            convdx_regblock(NV, RV, CONVDX_P, acc, dzr[e], ow, F, rl, WT + t0[e], Kc, idx, msk);
        for (; ow >= 0; --ow)
            convdx_regblock(NV, RV, 1, acc, dzr[e], ow, F, rl, WT + t0[e], Kc, idx, msk);
    }
    _Pragma("GCC unroll 8")
    for (int m = 0; m < RV; ++m) {
        const int64_t left = WC - m * UKR_VL;
        if (left >= UKR_VL) V_STOREU(drow + m * UKR_VL, acc[m]);
        else V_STOREU_N(drow + m * UKR_VL, (int)left, acc[m]);
    }
}
#endif

/* P pixels from ow down through memory: each pixel's run added after the last one's. */
static inline __attribute__((always_inline)) UKR_ATTR void
convdx_memblock(const int NV, const int P, const UKR_T *dz, int64_t ow, int64_t F, int rl,
                const UKR_T *wt, int64_t Kc, int64_t C, UKR_T *drow) {
    UKR_V r[CONVDX_P][4];
    convdx_runs(NV, P, r, dz, ow, F, rl, wt, Kc);
    _Pragma("GCC unroll 4")
    for (int p = 0; p < P; ++p) {
        UKR_T *d = drow + (ow - p) * C;
        _Pragma("GCC unroll 4")
        for (int v = 0; v < NV; ++v) {
            if (v < NV - 1 || rl == UKR_VL)
                V_STOREU(d + v * UKR_VL, V_ADD(V_LOADU(d + v * UKR_VL), r[p][v]));
            else
                V_STOREU_N(d + v * UKR_VL, rl, V_ADD(V_LOADU_N(d + v * UKR_VL, rl), r[p][v]));
        }
    }
}

/* One input row through memory. */
static inline __attribute__((always_inline)) UKR_ATTR void
convdx_memrow(const int NV, int64_t nk, const UKR_T *const *dzr, const int64_t *t0, int64_t OW,
              int64_t F, int64_t KWC, int64_t C, const UKR_T *WT, int64_t Kc, UKR_T *drow,
              int64_t WC) {
    const int rl = (int)(KWC - (NV - 1) * UKR_VL);
    for (int64_t i = 0; i < WC; ++i) drow[i] = 0;
    for (int64_t e = 0; e < nk; ++e) {
        int64_t ow = OW - 1;
        for (; ow + 1 >= CONVDX_P; ow -= CONVDX_P)
            convdx_memblock(NV, CONVDX_P, dzr[e], ow, F, rl, WT + t0[e], Kc, C, drow);
        for (; ow >= 0; --ow)
            convdx_memblock(NV, 1, dzr[e], ow, F, rl, WT + t0[e], Kc, C, drow);
    }
}

UKR_ATTR void UKR_CONVDX_NAME(int64_t r0, int64_t r1, int64_t H, int64_t W, int64_t C,
                              int64_t OH, int64_t OW, int64_t F, int64_t KH, int64_t KW,
                              int64_t SH, int64_t PT, int64_t DH, const UKR_T *G,
                              const UKR_T *WT, UKR_T *dx) {
    const int64_t KWC = KW * C, Kc = KH * KWC, WC = W * C;
    const int NV = (int)((KWC + UKR_VL - 1) / UKR_VL);
    const UKR_T *dzr[64];
    int64_t t0[64];
#if defined(CONVDX_REGROW)
    const int RV = (int)((WC + UKR_VL - 1) / UKR_VL);
    RG_IDX idx[64 * 8];
    RG_MASK msk[64 * 8];
    const int reg = NV <= 2 && RV <= 8 && OW <= 64;
    for (int64_t ow = 0; reg && ow < OW; ++ow)
        for (int m = 0; m < RV; ++m) {   /* run element j lands at m*VL + l = ow*C + j */
            RG_LANE lanes[UKR_VL];
            RG_MASK k = 0;
            for (int l = 0; l < UKR_VL; ++l) {
                const int64_t j = m * UKR_VL + l - ow * C;
                const int in = j >= 0 && j < KWC;
                lanes[l] = (RG_LANE)(in ? j : 0);
                k |= (RG_MASK)(in << l);
            }
            memcpy(&idx[ow * RV + m], lanes, sizeof lanes);
            msk[ow * RV + m] = k;
        }
#endif
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / H, ih = r % H;
        const int64_t nk = convdx_taps(ih, KH, SH, PT, DH, OH, G + n * OH * OW * F, OW * F, KWC,
                                       dzr, t0);
        UKR_T *drow = dx + r * WC;
#if defined(CONVDX_REGROW)
        if (reg) {
#define CONVDX_RG(nv, rv)                                                                   \
    case (nv) * 16 + (rv):                                                                  \
        convdx_regrow(nv, rv, nk, dzr, t0, OW, F, KWC, WT, Kc, idx, msk, drow, WC);         \
        break;
            switch (NV * 16 + RV) {
                CONVDX_RG(1, 1) CONVDX_RG(1, 2) CONVDX_RG(1, 3) CONVDX_RG(1, 4)
                CONVDX_RG(1, 5) CONVDX_RG(1, 6) CONVDX_RG(1, 7) CONVDX_RG(1, 8)
                CONVDX_RG(2, 1) CONVDX_RG(2, 2) CONVDX_RG(2, 3) CONVDX_RG(2, 4)
                CONVDX_RG(2, 5) CONVDX_RG(2, 6) CONVDX_RG(2, 7) CONVDX_RG(2, 8)
                default: break;
            }
#undef CONVDX_RG
            continue;
        }
#endif
        switch (NV) {
        case 1: convdx_memrow(1, nk, dzr, t0, OW, F, KWC, C, WT, Kc, drow, WC); break;
        case 2: convdx_memrow(2, nk, dzr, t0, OW, F, KWC, C, WT, Kc, drow, WC); break;
        case 3: convdx_memrow(3, nk, dzr, t0, OW, F, KWC, C, WT, Kc, drow, WC); break;
        case 4: convdx_memrow(4, nk, dzr, t0, OW, F, KWC, C, WT, Kc, drow, WC); break;
        default: break;
        }
    }
}
#undef CONVDX_P
