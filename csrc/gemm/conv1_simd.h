/* Direct convolution of one input channel (conv_tmpl.h, "single-channel direct path"), one
 * output row: out[f*ldo + ow] = sum over taps (kh, kw) in order of rows[kh][ow + kw] *
 * W[(kh*KW + kw)*F + f], for ow < OW rounded up to whole chunks and every filter f < F.
 * Vector lanes run along the output row (a first layer's F = 6 filters would fill 6 of 16
 * lanes); a register block holds CV1_FG filters x CV1_CW vectors of pixels. rows[kh] NULL
 * adds nothing (conv_tmpl.h passes a row of zeros for the vertical padding instead, so that a
 * NaN or Inf weight times a padding zero is NaN there, as in the GEMM). Per element: one FMA chain over the taps from 0, the arithmetic of
 * the implicit GEMM's microkernel on the same taps, so the results are the same bits.
 * Included by each SIMD kernel file (its V_* macros and UKR_ATTR); reads rows up to
 * roundup(OW, NNF_CONV1_CHUNK) + KW - 1 and writes out up to that many columns. */
#ifndef CV1_FG
#define CV1_FG 6
#endif
#ifndef CV1_CW
#define CV1_CW 2
#endif

static inline __attribute__((always_inline)) UKR_ATTR void
conv1_block(const int FG, int64_t ow0, int64_t KH, int64_t KW, int64_t F, int64_t f0,
            const UKR_T *const *rows, const UKR_T *restrict W, UKR_T *restrict out,
            int64_t ldo) {
    UKR_V acc[CV1_FG][CV1_CW];
    _Pragma("GCC unroll 8")
    for (int f = 0; f < FG; ++f) {
        _Pragma("GCC unroll 4")
        for (int c = 0; c < CV1_CW; ++c) acc[f][c] = V_ZERO();
    }
    for (int64_t kh = 0; kh < KH; ++kh) {
        const UKR_T *r = rows[kh];
        if (!r) continue;
        r += ow0;
        const UKR_T *w = W + kh * KW * F + f0;
        for (int64_t kw = 0; kw < KW; ++kw, w += F) {
            UKR_V xv[CV1_CW];
            _Pragma("GCC unroll 4")
            for (int c = 0; c < CV1_CW; ++c) xv[c] = V_LOADU(r + kw + c * UKR_VL);
            _Pragma("GCC unroll 8")
            for (int f = 0; f < FG; ++f) {
                const UKR_V wv = V_BCAST(w + f);
                _Pragma("GCC unroll 4")
                for (int c = 0; c < CV1_CW; ++c) acc[f][c] = V_FMA(wv, xv[c], acc[f][c]);
            }
        }
    }
    _Pragma("GCC unroll 8")
    for (int f = 0; f < FG; ++f) {
        _Pragma("GCC unroll 4")
        for (int c = 0; c < CV1_CW; ++c)
            V_STOREU(out + (f0 + f) * ldo + ow0 + c * UKR_VL, acc[f][c]);
    }
}

UKR_ATTR void UKR_CONV1_NAME(int64_t OW, int64_t KH, int64_t KW, int64_t F,
                             const UKR_T *const *rows, const UKR_T *W, UKR_T *out,
                             int64_t ldo) {
    for (int64_t ow0 = 0; ow0 < OW; ow0 += CV1_CW * UKR_VL) {
        int64_t f0 = 0;
        for (; f0 + CV1_FG <= F; f0 += CV1_FG)
            conv1_block(CV1_FG, ow0, KH, KW, F, f0, rows, W, out, ldo);
        switch (F - f0) {   /* the last filters: a block of as many (constant trip counts) */
        case 1: conv1_block(1, ow0, KH, KW, F, f0, rows, W, out, ldo); break;
        case 2: conv1_block(2, ow0, KH, KW, F, f0, rows, W, out, ldo); break;
        case 3: conv1_block(3, ow0, KH, KW, F, f0, rows, W, out, ldo); break;
        case 4: conv1_block(4, ow0, KH, KW, F, f0, rows, W, out, ldo); break;
        case 5: conv1_block(5, ow0, KH, KW, F, f0, rows, W, out, ldo); break;
#if CV1_FG > 6
        case 6: conv1_block(6, ow0, KH, KW, F, f0, rows, W, out, ldo); break;
        case 7: conv1_block(7, ow0, KH, KW, F, f0, rows, W, out, ldo); break;
#endif
        default: break;
        }
    }
}

/* The filter gradient's row kernel (conv_tmpl.h dw1_part): for every tap (kh, kw) and filter
 * f, acc[((kh*KW + kw)*F + f)*NNF_CONV1_CHUNK + l] += rows[rr*KH + kh][ow + kw] *
 * dzT[(rr*F + f)*ldo + ow] over the R output rows rr in order and their pixels ow < OW with
 * ow % NNF_CONV1_CHUNK == l: lane-wise partial sums along the output rows (one FMA chain per
 * lane, rows in order), reduced in lane order by the caller; a NULL row adds nothing (the caller
 * passes a zero row for the padding: see above). Pixels
 * past OW are masked off the x loads (and dzT is zero there), so nothing beyond a row enters
 * a sum. R rows per call share each load and store of the sums (R = 1 gives the same bits). */
#ifndef CV1_DW_FB
#define CV1_DW_FB 6
#endif
#ifndef CV1_DW_R
#define CV1_DW_R 4
#endif

static inline __attribute__((always_inline)) UKR_ATTR void
conv1_dw_block(const int FB, const int R, int64_t ow0, int rem, int64_t KH, int64_t KW,
               int64_t F, int64_t f0, const UKR_T *const *rows, const UKR_T *restrict dzT,
               int64_t ldo, UKR_T *restrict acc) {
    UKR_V dv[CV1_DW_R][CV1_DW_FB];
    _Pragma("GCC unroll 4")
    for (int rr = 0; rr < R; ++rr) {
        _Pragma("GCC unroll 8")
        for (int f = 0; f < FB; ++f) dv[rr][f] = V_LOADU(dzT + (rr * F + f0 + f) * ldo + ow0);
    }
    UKR_T *a0 = acc + f0 * NNF_CONV1_CHUNK + ow0 % NNF_CONV1_CHUNK;
    for (int64_t kh = 0; kh < KH; ++kh) {
        const UKR_T *r[CV1_DW_R];
        _Pragma("GCC unroll 4")
        for (int rr = 0; rr < R; ++rr) r[rr] = rows[rr * KH + kh];
        for (int64_t kw = 0; kw < KW; ++kw) {
            UKR_V xv[CV1_DW_R];
            _Pragma("GCC unroll 4")
            for (int rr = 0; rr < R; ++rr)
                xv[rr] = !r[rr] ? V_ZERO()
                                : rem == UKR_VL ? V_LOADU(r[rr] + ow0 + kw)
                                                : V_LOADU_N(r[rr] + ow0 + kw, rem);
            UKR_T *a = a0 + (kh * KW + kw) * F * NNF_CONV1_CHUNK;
            _Pragma("GCC unroll 8")
            for (int f = 0; f < FB; ++f) {
                UKR_T *af = a + f * NNF_CONV1_CHUNK;
                UKR_V s = V_LOADU(af);
                _Pragma("GCC unroll 4")
                for (int rr = 0; rr < R; ++rr)
                    if (r[rr]) s = V_FMA(xv[rr], dv[rr][f], s);
                V_STOREU(af, s);
            }
        }
    }
}

static inline __attribute__((always_inline)) UKR_ATTR void
conv1_dw_rows(const int R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
              const UKR_T *const *rows, const UKR_T *dzT, int64_t ldo, UKR_T *acc) {
    for (int64_t ow0 = 0; ow0 < OW; ow0 += UKR_VL) {
        const int rem = OW - ow0 < UKR_VL ? (int)(OW - ow0) : UKR_VL;
        int64_t f0 = 0;
        for (; f0 + CV1_DW_FB <= F; f0 += CV1_DW_FB)
            conv1_dw_block(CV1_DW_FB, R, ow0, rem, KH, KW, F, f0, rows, dzT, ldo, acc);
        switch (F - f0) {
        case 1: conv1_dw_block(1, R, ow0, rem, KH, KW, F, f0, rows, dzT, ldo, acc); break;
        case 2: conv1_dw_block(2, R, ow0, rem, KH, KW, F, f0, rows, dzT, ldo, acc); break;
        case 3: conv1_dw_block(3, R, ow0, rem, KH, KW, F, f0, rows, dzT, ldo, acc); break;
        case 4: conv1_dw_block(4, R, ow0, rem, KH, KW, F, f0, rows, dzT, ldo, acc); break;
        case 5: conv1_dw_block(5, R, ow0, rem, KH, KW, F, f0, rows, dzT, ldo, acc); break;
        default: break;
        }
    }
}

/* R output rows in groups of CV1_DW_R (the rows stay in order, so any grouping gives the
 * same bits); see conv1_dw_block. */
UKR_ATTR void UKR_CONV1_DW_NAME(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
                                const UKR_T *const *rows, const UKR_T *dzT, int64_t ldo,
                                UKR_T *acc) {
    for (int64_t r0 = 0; r0 < R; r0 += CV1_DW_R) {
        const int64_t n = R - r0 < CV1_DW_R ? R - r0 : CV1_DW_R;
        const UKR_T *const *rw = rows + r0 * KH;
        const UKR_T *d = dzT + r0 * F * ldo;
        switch (n) {
        case 1: conv1_dw_rows(1, OW, KH, KW, F, rw, d, ldo, acc); break;
#if CV1_DW_R >= 2
        case 2: conv1_dw_rows(2, OW, KH, KW, F, rw, d, ldo, acc); break;
#endif
#if CV1_DW_R >= 4
        case 3: conv1_dw_rows(3, OW, KH, KW, F, rw, d, ldo, acc); break;
        case 4: conv1_dw_rows(4, OW, KH, KW, F, rw, d, ldo, acc); break;
#endif
        default: break;
        }
    }
}
