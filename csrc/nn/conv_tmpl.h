/* conv.c's body, included once per dtype with T (float | double) and SFX (f32 | f64). */
#define CV_CAT_(a, b) a##b
#define CV_CAT(a, b) CV_CAT_(a, b)
#define CV(name) CV_CAT(name##_, SFX)

#include "gemm/tcopy_tmpl.h"

typedef struct {
    T *cols;             /* im2col: (rows x Kc) out; col2im: (rows x Kc) in */
    T *dx;               /* col2im out */
    const T *x;
    const nnf_conv_geom_t *g;
    int64_t n0;          /* first image of the block */
} CV(conv_ctx);

/* Rows [lo, hi) of the block's output-row list (image n0 + r / OH, output row r % OH): each
 * output pixel's KH*KW*C taps, zeros outside the image. The geometry is read into locals (the
 * build has -fno-strict-aliasing: each store would reload it from g), and each kernel row's
 * in-image output range is found once per row, so the copies run without bounds checks. */
static void CV(im2col_part)(void *p, int64_t lo, int64_t hi, int w) {
    const CV(conv_ctx) *c = (const CV(conv_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t C = g->C, H = g->H, W = g->W, OH = g->OH, OW = g->OW, KH = g->KH, KW = g->KW;
    const int64_t SH = g->SH, SW = g->SW, PT = g->PT, PLf = g->PL, DH = g->DH, DW = g->DW;
    const int64_t Kc = KH * KW * C, KWC = KW * C;
    /* output columns [owa, owb) whose whole kernel row lies inside the image: its first tap
     * (kw = 0) and its last (kw = KW-1) are */
    int64_t owa, owb, unused;
    conv_tap_cols(-PLf, SW, W, &owa, &unused);
    conv_tap_cols((KW - 1) * DW - PLf, SW, W, &unused, &owb);
    if (owb > OW) owb = OW;
    if (owa > owb) owa = owb;
    T *const cols = c->cols;
    const T *const x = c->x;
    (void)w;
    for (int64_t r = lo; r < hi; ++r) {
        const int64_t n = c->n0 + r / OH, oh = r % OH;
        const T *img = x + n * H * W * C;
        T *const rowc = cols + r * OW * Kc;
        for (int64_t kh = 0; kh < KH; ++kh) {
            const int64_t ih = oh * SH - PT + kh * DH;
            T *const dk = rowc + kh * KWC;
            if (ih < 0 || ih >= H) {
                for (int64_t ow = 0; ow < OW; ++ow) memset(dk + ow * Kc, 0, (size_t)KWC * sizeof(T));
                continue;
            }
            const T *const srow = img + ih * W * C;
            /* edge columns [0, owa) and [owb, OW): tap by tap, zeros outside */
            for (int64_t e = 0; e < OW - (owb - owa); ++e) {
                const int64_t ow = e < owa ? e : owb + (e - owa);
                T *restrict d = dk + ow * Kc;
                const int64_t iw0 = ow * SW - PLf;
                for (int64_t kw = 0; kw < KW; ++kw) {
                    const int64_t iw = iw0 + kw * DW;
                    if (iw < 0 || iw >= W) {
                        for (int64_t k = 0; k < C; ++k) d[kw * C + k] = 0;
                    } else {
                        const T *restrict s = srow + iw * C;
                        for (int64_t k = 0; k < C; ++k) d[kw * C + k] = s[k];
                    }
                }
            }
            /* interior columns: the kernel row in the image */
            if (DW == 1) {
                for (int64_t ow = owa; ow < owb; ++ow) {
                    T *restrict d = dk + ow * Kc;
                    const T *restrict s = srow + (ow * SW - PLf) * C;
                    for (int64_t i = 0; i < KWC; ++i) d[i] = s[i];
                }
            } else {
                for (int64_t ow = owa; ow < owb; ++ow) {
                    T *restrict d = dk + ow * Kc;
                    const T *restrict s0 = srow + (ow * SW - PLf) * C;
                    for (int64_t kw = 0; kw < KW; ++kw) {
                        const T *restrict s = s0 + kw * DW * C;
                        for (int64_t k = 0; k < C; ++k) d[kw * C + k] = s[k];
                    }
                }
            }
        }
    }
}

/* Input rows [lo, hi) of the block (image n0 + r / H, row r % H): each pixel's gradient is
 * the sum of the im2col-gradient taps that read it, gathered in (kh, kw) order. The geometry
 * is read into locals (-fno-strict-aliasing: every += through dst would reload it from g),
 * and the kernel rows that reach input row ih are found once per row. */
static void CV(col2im_part)(void *p, int64_t lo, int64_t hi, int w) {
    const CV(conv_ctx) *c = (const CV(conv_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t C = g->C, H = g->H, W = g->W, OH = g->OH, OW = g->OW, KH = g->KH, KW = g->KW;
    const int64_t SH = g->SH, SW = g->SW, PT = g->PT, PLf = g->PL, DH = g->DH, DW = g->DW;
    const int64_t Kc = KH * KW * C, n0 = c->n0;
    const T *const cols = c->cols;
    T *const dx = c->dx;
    int64_t ohs[64], khs[64];   /* the (kh, oh) pairs reaching row ih (KH <= 64; else below) */
    (void)w;
    for (int64_t r = lo; r < hi; ++r) {
        const int64_t b = r / H, ih = r % H;
        int64_t nk = 0;
        for (int64_t kh = 0; kh < KH && KH <= 64; ++kh) {
            const int64_t oh = conv_tap_row(ih, kh, SH, PT, DH, OH);
            if (oh < 0) continue;
            ohs[nk] = oh;
            khs[nk++] = kh;
        }
        T *const drow = dx + ((n0 + b) * H + ih) * W * C;
        if (SW == 1 && KH <= 64) {
            /* stride 1: tap (kh, kw) reaches pixels iw = ow - PL + kw*DW, a run of adjacent
             * pixels per (kh, kw); each pixel still sums its taps in (kh, kw) order */
            for (int64_t i = 0; i < W * C; ++i) drow[i] = 0;
            if (DW == 1) {
                /* an output pixel's taps of one kernel row are KW*C adjacent columns of its
                 * cols row and reach KW*C adjacent values of drow: one run per (kh, ow), the
                 * output pixels taken from the right so that each input pixel still gets its
                 * taps in kw order */
                for (int64_t e = 0; e < nk; ++e) {
                    const T *const crow = cols + (b * OH + ohs[e]) * OW * Kc + khs[e] * KW * C;
                    for (int64_t ow = OW - 1; ow >= 0; --ow) {
                        const int64_t k0 = PLf - ow > 0 ? PLf - ow : 0;
                        const int64_t k1 = W + PLf - ow < KW ? W + PLf - ow : KW;
                        if (k1 <= k0) continue;
                        T *restrict dst = drow + (ow - PLf + k0) * C;
                        const T *restrict src = crow + ow * Kc + k0 * C;
                        const int64_t len = (k1 - k0) * C;
                        for (int64_t t = 0; t < len; ++t) dst[t] += src[t];
                    }
                }
                continue;
            }
            for (int64_t e = 0; e < nk; ++e) {
                const int64_t kh = khs[e];
                const T *const crow = cols + (b * OH + ohs[e]) * OW * Kc + kh * KW * C;
                for (int64_t kw = 0; kw < KW; ++kw) {
                    const int64_t sh = kw * DW - PLf;   /* iw = ow + sh */
                    const int64_t a = sh < 0 ? -sh : 0, z = OW < W - sh ? OW : W - sh;
                    for (int64_t ow = a; ow < z; ++ow) {
                        T *restrict dst = drow + (ow + sh) * C;
                        const T *restrict src = crow + ow * Kc + kw * C;
                        for (int64_t k = 0; k < C; ++k) dst[k] += src[k];
                    }
                }
            }
            continue;
        }
        for (int64_t iw = 0; iw < W; ++iw) {
            T *restrict dst = drow + iw * C;
            for (int64_t k = 0; k < C; ++k) dst[k] = 0;
            for (int64_t e = 0; e < (KH <= 64 ? nk : KH); ++e) {
                int64_t kh, oh;
                if (KH <= 64) {
                    kh = khs[e];
                    oh = ohs[e];
                } else {
                    kh = e;
                    oh = conv_tap_row(ih, kh, SH, PT, DH, OH);
                    if (oh < 0) continue;
                }
                for (int64_t kw = 0; kw < KW; ++kw) {
                    const int64_t ow = conv_tap_row(iw, kw, SW, PLf, DW, OW);
                    if (ow < 0) continue;
                    const T *restrict src =
                        cols + ((b * OH + oh) * OW + ow) * Kc + (kh * KW + kw) * C;
                    for (int64_t k = 0; k < C; ++k) dst[k] += src[k];
                }
            }
        }
    }
}

/* The implicit GEMM's B panel (nnf_gemm_cb_*): taps [p0, p0+kc) (rows, (kh, kw, c) order, as
 * the im2col row) of output pixels [j0, j0+nc) (columns), read from x where the GEMM packs:
 * im2col's matrix is never written. A panel's pixels run along output rows, so for one tap a
 * row segment reads x at a fixed stride SW*C (contiguous for C = 1, stride 1: conv1 of LeNet),
 * with the taps outside the image found once per segment instead of per element. */
typedef struct { const T *x; const nnf_conv_geom_t *g; } CV(taps_ctx);

#define CV_MAX_KW 64   /* kernel widths whose in-image column bounds are kept on the stack */
#define CV_MAX_KH 64   /* kernel heights the direct path keeps row pointers of on the stack */

static void CV(pack_taps)(void *ctx, T *dst, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                          int NR) {
    const CV(taps_ctx) *cx = (const CV(taps_ctx) *)ctx;
    const nnf_conv_geom_t *g = cx->g;
    const int64_t C = g->C, H = g->H, W = g->W, OH = g->OH, OW = g->OW, KW = g->KW;
    const int64_t SH = g->SH, SW = g->SW, PT = g->PT, PLf = g->PL, DH = g->DH, DW = g->DW;
    const int64_t P = OH * OW, step = SW * C, KWC = KW * C;
    const T *const x = cx->x;
    /* output columns [lo[kw], hi[kw]) read tap column kw inside the image (once per call:
     * two divisions per segment and tap were a third of the packing) */
    int64_t lo_c[CV_MAX_KW], hi_c[CV_MAX_KW];
    const int keep = KW <= CV_MAX_KW;
    for (int64_t kw = 0; keep && kw < KW; ++kw)
        conv_tap_cols(kw * DW - PLf, SW, W, &lo_c[kw], &hi_c[kw]);
    /* whole windows per pixel (all taps, a kernel row of each pixel at a time) when the panel
     * holds every tap: a pixel's kernel row is KW*C adjacent values of x (DW = 1) */
    const int pixel_major = p0 == 0 && kc == KWC * g->KH && keep;
    if (nc < NR)
        for (int64_t p = 0; p < kc; ++p)
            for (int64_t j = nc; j < NR; ++j) dst[p * NR + j] = 0;
    int64_t n = j0 / P, q = j0 % P, oh = q / OW, ow = q % OW;
    for (int64_t j = 0; j < nc;) {
        const int64_t seg = nc - j < OW - ow ? nc - j : OW - ow;
        const T *const img = x + n * H * W * C;
        if (pixel_major) {
            for (int64_t kh = 0; kh < g->KH; ++kh) {
                const int64_t ih = oh * SH - PT + kh * DH;
                T *const dk = dst + kh * KWC * NR + j;
                if (ih < 0 || ih >= H) {
                    for (int64_t t = 0; t < KWC; ++t)
                        for (int64_t i = 0; i < seg; ++i) dk[t * NR + i] = 0;
                    continue;
                }
                const T *const srow = img + ih * W * C;
                /* pixels whose kernel row lies inside the image: KW*C adjacent values each,
                 * SW*C apart, transposed into the panel's columns in register blocks */
                int64_t ia = lo_c[0] - ow, ib = hi_c[KW - 1] - ow;
                ia = ia < 0 ? 0 : (ia > seg ? seg : ia);
                ib = ib < ia ? ia : (ib > seg ? seg : ib);
                if (DW != 1)
                    ia = ib = seg;   /* every pixel tap by tap */
                else if (ib > ia)
                    CV_CAT(nnf_tcopy_, SFX)(dk + ia, NR, srow + ((ow + ia) * SW - PLf) * C,
                                            step, ib - ia, KWC);
                /* the rest, [0, ia) and [ib, seg): tap by tap, zeros outside the image */
                for (int64_t e = 0; e < seg - (ib - ia); ++e) {
                    const int64_t i = e < ia ? e : ib + (e - ia);
                    const int64_t o = ow + i, iw0 = o * SW - PLf;
                    for (int64_t kw = 0; kw < KW; ++kw) {
                        T *restrict d = dk + kw * C * NR + i;
                        if (o < lo_c[kw] || o >= hi_c[kw]) {
                            for (int64_t c = 0; c < C; ++c) d[c * NR] = 0;
                        } else {
                            const T *restrict s = srow + (iw0 + kw * DW) * C;
                            for (int64_t c = 0; c < C; ++c) d[c * NR] = s[c];
                        }
                    }
                }
            }
        } else {
            int64_t c = p0 % C, kw = (p0 / C) % KW, kh = p0 / KWC;
            for (int64_t p = 0; p < kc; ++p) {
                T *restrict d = dst + p * NR + j;
                const int64_t ih = oh * SH - PT + kh * DH;
                if (ih < 0 || ih >= H) {
                    for (int64_t i = 0; i < seg; ++i) d[i] = 0;
                } else {
                    /* pixel ow + i reads column (ow + i)*SW + off: inside for i in [lo, hi) */
                    const int64_t off = kw * DW - PLf;
                    int64_t lo, hi;
                    if (keep) {
                        lo = lo_c[kw];
                        hi = hi_c[kw];
                    } else {
                        conv_tap_cols(off, SW, W, &lo, &hi);
                    }
                    lo = lo - ow < 0 ? 0 : (lo - ow > seg ? seg : lo - ow);
                    hi = hi - ow < lo ? lo : (hi - ow > seg ? seg : hi - ow);
                    const T *restrict s = img + (ih * W + ow * SW + off + lo * SW) * C + c;
                    for (int64_t i = 0; i < lo; ++i) d[i] = 0;
                    if (step == 1)
                        for (int64_t i = lo; i < hi; ++i) d[i] = s[i - lo];
                    else
                        for (int64_t i = lo; i < hi; ++i) d[i] = s[(i - lo) * step];
                    for (int64_t i = hi; i < seg; ++i) d[i] = 0;
                }
                if (++c == C) {
                    c = 0;
                    if (++kw == KW) { kw = 0; ++kh; }
                }
            }
        }
        j += seg;
        ow += seg;
        if (ow == OW) {
            ow = 0;
            if (++oh == OH) { oh = 0; ++n; }
        }
    }
}

/* Bias, z and elementwise activation over whole output rows after the implicit GEMM: the
 * OW*F values of an output row are contiguous, so the epilogue runs on rows that long with the
 * bias tiled OW times (bt), instead of on OW rows of F (6 for LeNet's conv1, where the per-row
 * setup cost more than the arithmetic). Same per-element arithmetic as the GEMM epilogue. */
typedef struct { T *y; const nnf_epilogue_t *ep; int64_t len; } CV(ep_ctx);

static void CV(ep_part)(void *p, int64_t lo, int64_t hi, int w) {
    const CV(ep_ctx) *c = (const CV(ep_ctx) *)p;
    (void)w;
    CV(nnf_epilogue_tile)(c->ep, c->y, c->len, lo, 0, hi - lo, c->len);
}

/* The implicit GEMM's B panel for the filter gradient: rows = output pixels [pix0 + p0,
 * + kc), columns = taps [j0, j0+nc): the rows of im2col's matrix, read from x where the GEMM
 * packs them. The taps of one kernel row kh are KW*C adjacent values of x when the row lies in
 * the image (DW = 1), copied as one run. */
typedef struct { const T *x; const nnf_conv_geom_t *g; int64_t pix0; } CV(rows_ctx);

static void CV(pack_rows)(void *ctx, T *dst, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                          int NR) {
    const CV(rows_ctx) *cx = (const CV(rows_ctx) *)ctx;
    const nnf_conv_geom_t *g = cx->g;
    const int64_t C = g->C, H = g->H, W = g->W, OH = g->OH, OW = g->OW, KH = g->KH, KW = g->KW;
    const int64_t SH = g->SH, SW = g->SW, PT = g->PT, PLf = g->PL, DH = g->DH, DW = g->DW;
    const int64_t P = OH * OW, KWC = KW * C, j1 = j0 + nc;
    const T *const x = cx->x;
    const int64_t pix = cx->pix0 + p0;
    const int full = j0 == 0 && nc == KH * KWC && DW == 1;   /* the panel holds every tap */
    int64_t n = pix / P, q = pix % P, oh = q / OW, ow = q % OW;
    for (int64_t p = 0; p < kc; ++p) {
        T *const d = dst + p * NR - j0;   /* d[t]: tap t of this pixel */
        if (nc < NR) memset(d + j0 + nc, 0, (size_t)(NR - nc) * sizeof(T));
        const T *const img = x + n * H * W * C;
        const int64_t iw0 = ow * SW - PLf, ih0 = oh * SH - PT;
        const int inrow = iw0 >= 0 && iw0 + (KW - 1) * DW < W;
        if (full && inrow && ih0 >= 0 && ih0 + (KH - 1) * DH < H) {
            /* the whole window inside the image: KH runs of KW*C values, DH rows apart */
            const T *restrict s = img + (ih0 * W + iw0) * C;
            T *restrict dk = d;
            const int64_t rs = DH * W * C;
            switch (KWC) {   /* LeNet's 5x5x1 and 3x3x1 windows as fixed-length copies */
            case 3:
                for (int64_t kh = 0; kh < KH; ++kh)
                    for (int i = 0; i < 3; ++i) dk[kh * 3 + i] = s[kh * rs + i];
                break;
            case 5:
                for (int64_t kh = 0; kh < KH; ++kh)
                    for (int i = 0; i < 5; ++i) dk[kh * 5 + i] = s[kh * rs + i];
                break;
            default:
                for (int64_t kh = 0; kh < KH; ++kh)
                    memcpy(dk + kh * KWC, s + kh * rs, (size_t)KWC * sizeof(T));
            }
            goto next;
        }
        for (int64_t kh = j0 / KWC; kh < KH && kh * KWC < j1; ++kh) {
            const int64_t ta = kh * KWC > j0 ? kh * KWC : j0;
            const int64_t tb = (kh + 1) * KWC < j1 ? (kh + 1) * KWC : j1;
            const int64_t ih = oh * SH - PT + kh * DH;
            T *restrict dk = d + ta;
            if (ih < 0 || ih >= H) {
                for (int64_t t = 0; t < tb - ta; ++t) dk[t] = 0;
                continue;
            }
            const T *const srow = img + ih * W * C;
            if (inrow && DW == 1) {
                const T *restrict s = srow + iw0 * C + (ta - kh * KWC);
                const int64_t len = tb - ta;
                switch (len) {   /* short kernel rows as fixed-length copies (see im2col) */
                case 3: for (int i = 0; i < 3; ++i) dk[i] = s[i]; break;
                case 5: for (int i = 0; i < 5; ++i) dk[i] = s[i]; break;
                case 7: for (int i = 0; i < 7; ++i) dk[i] = s[i]; break;
                default:
                    if (len >= 16) memcpy(dk, s, (size_t)len * sizeof(T));
                    else for (int64_t t = 0; t < len; ++t) dk[t] = s[t];
                }
                continue;
            }
            for (int64_t t = ta; t < tb; ++t) {
                const int64_t r = t - kh * KWC, kw = r / C, c = r % C;
                const int64_t iw = iw0 + kw * DW;
                d[t] = iw >= 0 && iw < W ? srow[iw * C + c] : (T)0;
            }
        }
    next:
        if (++ow == OW) {
            ow = 0;
            if (++oh == OH) { oh = 0; ++n; }
        }
    }
}

/* The filter gradient as implicit GEMMs over S fixed segments of the output pixels (S from
 * the pixel count alone, never the thread count), one segment per task, each into its own
 * partial sum, then the partials added in segment order: the same bits for any nthreads, and
 * both threads busy even where the product has a single column panel (conv1: 25 taps). */
#define CV_DW_SEG_PIXELS 2048
#define CV_DW_MAX_SEGS 32

static int64_t CV(dw_segments)(int64_t pixels) {
    int64_t s = pixels / CV_DW_SEG_PIXELS;
    return s < 1 ? 1 : (s > CV_DW_MAX_SEGS ? CV_DW_MAX_SEGS : s);
}

typedef struct {
    T *part;                 /* S x (Kc x F) */
    const T *G, *x;
    const nnf_conv_geom_t *g;
    int64_t S, NP;
    int st[CV_DW_MAX_SEGS];
    CV(convdw_fn) lanes;     /* the ISA's lanes-along-F kernel where every window is inside */
} CV(dw_ctx);

/* Every window lies inside the image (no padding reaches a tap): the lanes-along-F kernel
 * reads x at the window origin plus the tap's offset, with no bounds to check. */
static int CV(windows_inside)(const nnf_conv_geom_t *g) {
    return g->PT == 0 && g->PL == 0 && (g->OH - 1) * g->SH + (g->KH - 1) * g->DH < g->H &&
           (g->OW - 1) * g->SW + (g->KW - 1) * g->DW < g->W;
}

/* Segment [a, b)'s partial dW by the lanes-along-F kernel (gemm/conv_lanes_simd.h): blocks of
 * NNF_CONVDW_BLOCK pixels from a (dz's block stays in L1 across the taps), in each every run
 * of adjacent taps (a kernel row's KW*C at unit width dilation, else one (kh, kw)'s C), one
 * FMA chain per element and block, the blocks' sums added in order. Shapes alone fix the
 * blocks, so the bits never depend on the thread count. */
static void CV(dw_lanes)(const CV(dw_ctx) *c, T *part, int64_t a, int64_t b) {
    const nnf_conv_geom_t *g = c->g;
    const int64_t C = g->C, W = g->W, F = g->F;
    const int64_t runs = g->DW == 1 ? g->KH : g->KH * g->KW, len = g->DW == 1 ? g->KW * C : C;
    for (int64_t p = a; p < b; p += NNF_CONVDW_BLOCK) {
        const int64_t np = b - p < NNF_CONVDW_BLOCK ? b - p : NNF_CONVDW_BLOCK;
        for (int64_t k = 0; k < runs; ++k) {   /* run k: taps k*len.., (kh, kw) = its first */
            const int64_t kh = g->DW == 1 ? k : k / g->KW, kw = g->DW == 1 ? 0 : k % g->KW;
            c->lanes(p, np, g->OH, g->OW, g->H * W * C, g->SH * W * C, g->SW * C,
                     c->x + (kh * g->DH * W + kw * g->DW) * C, len, c->G + p * F, F, p > a,
                     part + k * len * F);
        }
    }
}

static void CV(dw_part)(void *p, int64_t lo, int64_t hi, int w) {
    CV(dw_ctx) *c = (CV(dw_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t F = g->F, Kc = g->KH * g->KW * g->C;
    (void)w;
    for (int64_t s = lo; s < hi; ++s) {
        const int64_t a = s * c->NP / c->S, b = (s + 1) * c->NP / c->S;
        if (c->lanes) {
            CV(dw_lanes)(c, c->part + s * Kc * F, a, b);
            c->st[s] = NNF_OK;
            continue;
        }
        CV(rows_ctx) rx = {c->x, g, a};
        /* dW^T (F x Kc) = dz^T (F x pixels) . cols (pixels x Kc), stored as dW (Kc x F) */
        c->st[s] = CV(nnf_gemm_cb)(c->part + s * Kc * F, F, 1, c->G + a * F, F, 1,
                                   CV(pack_rows), &rx, F, Kc, b - a, (T)0, 1);
    }
}

static void CV(im2col)(T *cols, const T *x, const nnf_conv_geom_t *g, int64_t n0, int64_t nb,
                       int nthreads) {
    CV(conv_ctx) c = {cols, 0, x, g, n0};
    int64_t rows = nb * g->OH, work = rows * g->OW * g->KH * g->KW * g->C;
    nnf_parallel_for(CV(im2col_part), &c, rows, NNF_PARTS(nthreads),
                     work > PAR_WORK ? nthreads : 1);
}

static void CV(col2im)(T *dx, T *cols, const nnf_conv_geom_t *g, int64_t n0, int64_t nb,
                       int nthreads) {
    CV(conv_ctx) c = {cols, dx, 0, g, n0};
    int64_t rows = nb * g->H, work = nb * g->OH * g->OW * g->KH * g->KW * g->C;
    nnf_parallel_for(CV(col2im_part), &c, rows, NNF_PARTS(nthreads),
                     work > PAR_WORK ? nthreads : 1);
}

/* Single-channel direct path (conv.c conv_direct1): each output row of each image from the
 * ISA's row kernel (gemm/conv1_simd.h), vector lanes along the row, no packed copy of the taps
 * (the implicit GEMM's pack_taps was half of LeNet's conv1 forward). The input is read from a
 * zero-padded copy (the whole image when it is small, else the kernel rows of one output row),
 * so the kernel reads in bounds without edge cases; its planar result (filter-major) is
 * interleaved into y's channels-last row, and the row's epilogue (bias, z, activation: the
 * epilogue's own function) runs while the row is in L1. Same taps in the same order with the
 * same arithmetic as the microkernel, so the implicit GEMM's bits; rows are independent, so
 * any split over threads gives them too. */
#define CV_PAD_IMAGE (1 << 16)   /* padded-image elements up to which a whole image is copied */

/* The padded input the direct kernels read (one channel): pixel iw of an input row at
 * [iw + PL] of a row of wp, the rest zero (set once per task). Whole: image n's H rows, copied
 * when n differs from *cur; else the KH kernel rows of output row oh, into slots base.. of pad.
 * rows[kh] = the kernel row kh reads; in the vertical padding the zero row (wp zeros): its taps
 * are multiplied as the GEMM multiplies them, so a NaN or Inf weight (or gradient) still
 * gives NaN there, as 0 * NaN does in the implicit GEMM and the reference. */
static void CV(pad_rows)(const T **rows, T *pad, const T *zero, const T *x,
                         const nnf_conv_geom_t *g, int64_t n, int64_t oh, int whole, int64_t wp,
                         int64_t base, int64_t *cur) {
    const int64_t H = g->H, W = g->W, PLf = g->PL;
    const T *const img = x + n * H * W;
    if (whole && n != *cur) {
        for (int64_t ih = 0; ih < H; ++ih) {
            T *restrict d = pad + ih * wp + PLf;
            const T *restrict s = img + ih * W;
            for (int64_t i = 0; i < W; ++i) d[i] = s[i];
        }
        *cur = n;
    }
    for (int64_t kh = 0; kh < g->KH; ++kh) {
        const int64_t ih = oh * g->SH - g->PT + kh * g->DH;
        if (ih < 0 || ih >= H) {
            rows[kh] = zero;
        } else if (whole) {
            rows[kh] = pad + ih * wp;
        } else {
            T *restrict d = pad + (base + kh) * wp + PLf;
            const T *restrict s = img + ih * W;
            for (int64_t i = 0; i < W; ++i) d[i] = s[i];
            rows[kh] = pad + (base + kh) * wp;
        }
    }
}

/* The direct kernels' row length ldo (output row rounded up to whole chunks) and padded-row
 * length wp (every read of a chunk in bounds); whether a padded image fits CV_PAD_IMAGE. */
static int CV(pad_geometry)(const nnf_conv_geom_t *g, int64_t *ldo, int64_t *wp) {
    *ldo = (g->OW + NNF_CONV1_CHUNK - 1) / NNF_CONV1_CHUNK * NNF_CONV1_CHUNK;
    *wp = *ldo + g->KW - 1;
    if (*wp < g->PL + g->W) *wp = g->PL + g->W;   /* rows past the output's reach */
    return g->H * *wp <= CV_PAD_IMAGE;
}

typedef struct {
    T *y;
    const T *x, *Wt;
    const nnf_conv_geom_t *g;
    const nnf_epilogue_t *ep;   /* per output row, or NULL */
    T *ws;               /* per worker: padded rows (whole image or KH), then F x ldo sums */
    int64_t wp, ldo, slice, whole;
    void (*kern)(int64_t, int64_t, int64_t, int64_t, const T *const *, const T *, T *, int64_t);
} CV(direct1_ctx);

static void CV(direct1_part)(void *p, int64_t lo, int64_t hi, int w) {
    const CV(direct1_ctx) *c = (const CV(direct1_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t OH = g->OH, OW = g->OW, KH = g->KH, KW = g->KW, F = g->F;
    const int64_t wp = c->wp, ldo = c->ldo, len = OW * F, prows = c->whole ? g->H : KH;
    /* padded rows, the zero row, then the planar sums */
    T *const pad = c->ws + w * c->slice, *const zero = pad + prows * wp, *const out = zero + wp;
    const T *rows[CV_MAX_KH];
    for (int64_t i = 0; i < (prows + 1) * wp; ++i) pad[i] = 0;
    int64_t cur = -1;
    for (int64_t r = lo; r < hi; ++r) {
        CV(pad_rows)(rows, pad, zero, c->x, g, r / OH, r % OH, (int)c->whole, wp, 0, &cur);
        c->kern(OW, KH, KW, F, rows, c->Wt, out, ldo);
        /* the planar sums into the channels-last row: yr[ow*F + f] = out[f*ldo + ow] */
        CV_CAT(nnf_tcopy_, SFX)(c->y + r * len, F, out, ldo, F, OW);
        if (c->ep) CV(nnf_epilogue_tile)(c->ep, c->y, len, r, 0, 1, len);
    }
}

/* y (N, OH, OW, F) = act(conv + b) by the direct path, z (or NULL) the pre-activation, as
 * the implicit GEMM and row_epilogue give them (row-wise activations: the sums plus bias,
 * the caller applies them). NNF_ERR_NOMEM when the workspace cannot be had (y untouched),
 * -1 when the path does not apply. */
static int CV(direct1)(T *y, T *z, const T *x, const T *Wt, const T *b,
                       const nnf_conv_geom_t *g, int eact, T alpha, int nthreads) {
    CV(direct1_ctx) c;
    c.kern = CV(conv1_kernel)();
    if (!c.kern || !conv_direct1(g) || g->KH > CV_MAX_KH) return -1;
    const int64_t rows = g->N * g->OH, len = g->OW * g->F;
    const int64_t work = rows * len * g->KH * g->KW;
    int nt = work > 8 * PAR_WORK ? nthreads : 1;
    if (nt > NNF_MAX_THREADS) nt = NNF_MAX_THREADS;
    c.whole = CV(pad_geometry)(g, &c.ldo, &c.wp);
    c.slice = ((c.whole ? g->H : g->KH) * c.wp + c.wp + g->F * c.ldo + 15) & ~(int64_t)15;
    const int64_t blen = b ? (len + 15) & ~(int64_t)15 : 0;
    T *ws = (T *)nnf_scratch((size_t)(blen + nt * c.slice) * sizeof(T));
    if (!ws) return NNF_ERR_NOMEM;
    for (int64_t i = 0; b && i < len; ++i) ws[i] = b[i % g->F];   /* the bias tiled along a row */
    nnf_epilogue_t ep = {b ? ws : 0, z, len, eact, (double)alpha};
    c.ep = b || z || eact != NNF_ACT_IDENTITY ? &ep : 0;
    c.ws = ws + blen;
    c.y = y; c.x = x; c.Wt = Wt; c.g = g;
    nnf_parallel_for(CV(direct1_part), &c, rows, NNF_PARTS(nt), nt);
    return NNF_OK;
}

/* The bias tiled along an output row of len = OW*F values (the thread's kept scratch), for
 * the row epilogues; NULL when the scratch cannot be had. */
static T *CV(bias_row)(const T *b, int64_t len, int64_t F) {
    T *bt = (T *)nnf_scratch((size_t)len * sizeof(T));
    for (int64_t i = 0; bt && i < len; ++i) bt[i] = b[i % F];
    return bt;
}

/* Bias, z and activation over the whole output rows of y after a path that wrote the plain
 * sums (the implicit GEMM, the direct path): see ep_part. */
static int CV(row_epilogue)(T *y, T *z, const T *b, const nnf_conv_geom_t *g, int act,
                            T alpha, int nthreads) {
    const int rowwise = act == NNF_ACT_SOFTMAX || act == NNF_ACT_LOG_SOFTMAX;
    const int64_t F = g->F, P = g->OH * g->OW;
    const int eact = rowwise ? NNF_ACT_IDENTITY : act;
    const int64_t len = g->OW * F, rows = g->N * g->OH;
    T *bt = 0;
    if (b && !(bt = CV(bias_row)(b, len, g->F))) return NNF_ERR_NOMEM;
    if (b || z || eact != NNF_ACT_IDENTITY) {
        nnf_epilogue_t ep = {bt, z, len, eact, (double)alpha};
        CV(ep_ctx) ec = {y, &ep, len};
        nnf_parallel_for(CV(ep_part), &ec, rows, NNF_PARTS(nthreads),
                         rows * len > PAR_WORK ? nthreads : 1);
    }
    if (rowwise) CV(nnf_activation_fwd)(y, y, g->N * P, F, act, alpha, nthreads);
    return NNF_OK;
}

/* The forward by the lanes-along-F kernel (gemm/conv_lanes_simd.h), output rows split across
 * threads: NNF_CONVFW_PIXELS pixels of a row per call, each one FMA chain over the taps in
 * order from 0, then the row's epilogue (bias, z, activation: the epilogue's own function)
 * while the row is in L1. Taken for the implicit GEMM's narrow F when every window is inside
 * the image and the taps fit one of the GEMM's K blocks: then it is the GEMM's arithmetic on
 * the same taps and the same epilogue, so its bits. */
#define CV_FW_MAX_RUNS 256   /* runs of taps (at most Kc, which fits a K block) */
typedef struct {
    T *y; const T *x, *Wt; const nnf_conv_geom_t *g; CV(convfw_fn) kern;
    const nnf_epilogue_t *ep;
    int64_t nruns, len, roff[CV_FW_MAX_RUNS];
} CV(fw_ctx);

static void CV(fw_part)(void *p, int64_t lo, int64_t hi, int w) {
    const CV(fw_ctx) *c = (const CV(fw_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t OH = g->OH, OW = g->OW, C = g->C, W = g->W, F = g->F;
    (void)w;
    for (int64_t r = lo; r < hi; ++r) {
        const int64_t n = r / OH, oh = r % OH;
        const T *row = c->x + ((n * g->H + oh * g->SH) * W) * C;
        for (int64_t ow = 0; ow < OW; ow += NNF_CONVFW_PIXELS) {
            const int64_t R = OW - ow < NNF_CONVFW_PIXELS ? OW - ow : NNF_CONVFW_PIXELS;
            const T *xo[NNF_CONVFW_PIXELS];
            for (int64_t i = 0; i < R; ++i) xo[i] = row + (ow + i) * g->SW * C;
            c->kern(R, xo, c->roff, c->nruns, c->len, c->Wt, F, c->y + (r * OW + ow) * F, F);
        }
        if (c->ep) CV(nnf_epilogue_tile)(c->ep, c->y, OW * F, r, 0, 1, OW * F);
    }
}

/* -1: not taken (the caller goes on to the GEMM); else the status. */
static int CV(fw_lanes)(T *y, T *z, const T *x, const T *Wt, const T *b,
                        const nnf_conv_geom_t *g, int eact, T alpha, int nthreads) {
    CV(fw_ctx) c;
    c.kern = CV(convfw_kernel)();
    const int64_t Kc = g->KH * g->KW * g->C, len = g->OW * g->F;
    if (!c.kern || g->C == 1 || !CV(windows_inside)(g) || Kc > CV_FW_MAX_RUNS ||
        Kc > CV(gemm_kc)())
        return -1;
    T *bt = 0;
    if (b && !(bt = CV(bias_row)(b, len, g->F))) return NNF_ERR_NOMEM;
    nnf_epilogue_t ep = {bt, z, len, eact, (double)alpha};
    c.ep = b || z || eact != NNF_ACT_IDENTITY ? &ep : 0;
    c.y = y; c.x = x; c.Wt = Wt; c.g = g;
    c.nruns = g->DW == 1 ? g->KH : g->KH * g->KW;
    c.len = g->DW == 1 ? g->KW * g->C : g->C;
    for (int64_t k = 0; k < c.nruns; ++k) {   /* run k: its first tap's (kh, kw) */
        const int64_t kh = g->DW == 1 ? k : k / g->KW, kw = g->DW == 1 ? 0 : k % g->KW;
        c.roff[k] = (kh * g->DH * g->W + kw * g->DW) * g->C;
    }
    const int64_t rows = g->N * g->OH;
    nnf_parallel_for(CV(fw_part), &c, rows, NNF_PARTS(nthreads),
                     rows * g->OW * Kc * g->F > PAR_WORK ? nthreads : 1);
    return NNF_OK;
}

int CV(nnf_conv2d_fwd)(T *y, T *z, const T *x, const T *Wt, const T *b,
                       const nnf_conv_geom_t *g, int act, T alpha, int nthreads) {
    const int64_t P = g->OH * g->OW, F = g->F, Kc = g->KH * g->KW * g->C;
    if (g->N == 0 || P == 0 || F == 0) return NNF_OK;
    int rowwise = act == NNF_ACT_SOFTMAX || act == NNF_ACT_LOG_SOFTMAX;
    int direct = conv_is_pointwise(g);
    if (!direct) {
        int st = CV(direct1)(y, z, x, Wt, b, g, rowwise ? NNF_ACT_IDENTITY : act, alpha,
                             nthreads);
        if (st == NNF_OK && rowwise) CV(nnf_activation_fwd)(y, y, g->N * P, F, act, alpha, nthreads);
        if (st != -1) return st;
    }
    if (!direct && conv_implicit(F, (int)sizeof(T))) {
        const int sl = CV(fw_lanes)(y, z, x, Wt, b, g, rowwise ? NNF_ACT_IDENTITY : act, alpha,
                                    nthreads);
        if (sl == NNF_OK && rowwise) CV(nnf_activation_fwd)(y, y, g->N * P, F, act, alpha, nthreads);
        if (sl != -1) return sl;
        /* y^T (F x NP) = Wt^T (F x Kc) . cols^T, stored transposed, B packed from x */
        CV(taps_ctx) tx = {x, g};
        int st = CV(nnf_gemm_cb)(y, F, 1, Wt, F, 1, CV(pack_taps), &tx, F, g->N * P, Kc, (T)0,
                                 nthreads);
        if (st == NNF_ERR_NOMEM) return st;
        if (st == NNF_OK) return CV(row_epilogue)(y, z, b, g, act, alpha, nthreads);
    }
    int64_t nb = conv_block_images(g);
    T *cols = 0;
    if (!direct) {   /* the thread's kept scratch: no fresh pages to fault in per call */
        cols = (T *)nnf_scratch((size_t)(nb * P * Kc) * sizeof(T));
        if (!cols) return NNF_ERR_NOMEM;
    }
    int st = NNF_OK;
    for (int64_t n0 = 0; n0 < g->N && st == NNF_OK; n0 += nb) {
        int64_t m = (g->N - n0 < nb ? g->N - n0 : nb);
        const T *A = x + n0 * P * Kc;   /* pointwise: Kc == C and P == H*W */
        if (!direct) {
            CV(im2col)(cols, x, g, n0, m, nthreads);
            A = cols;
        }
        nnf_epilogue_t ep = {b, z ? (void *)(z + n0 * P * F) : 0, F,
                             rowwise ? NNF_ACT_IDENTITY : act, (double)alpha};
        st = CV(nnf_gemm_ep)(y + n0 * P * F, F, A, Kc, Wt, F, m * P, F, Kc, 0, 0, (T)1, (T)0,
                             &ep, nthreads);
    }
    if (st == NNF_OK && rowwise) CV(nnf_activation_fwd)(y, y, g->N * P, F, act, alpha, nthreads);
    return st;
}

/* The filter gradient by the single-channel direct path: S fixed segments of the output rows
 * (from the row count alone, never the thread count), one per task; in each, the ISA's row
 * kernel (gemm/conv1_simd.h) keeps lane-wise partial sums along the output rows, reduced in
 * lane order into the segment's partial dW at its end; the caller adds the partials in
 * segment order. The same bits for any number of threads. The input rows are zero-padded
 * copies as in the forward (direct1_part); the gradient rows are transposed to filter-major. */
#define CV_DW1_SEG_ROWS 64
#define CV_DW1_MAX_SEGS 64

static int64_t CV(dw1_segments)(int64_t rows) {
    int64_t s = (rows + CV_DW1_SEG_ROWS - 1) / CV_DW1_SEG_ROWS;
    return s < 1 ? 1 : (s > CV_DW1_MAX_SEGS ? CV_DW1_MAX_SEGS : s);
}

typedef struct {
    T *part;             /* S x (KH*KW*F) partial sums */
    const T *x, *G;
    const nnf_conv_geom_t *g;
    T *ws;               /* per worker: lane sums, padded rows, filter-major gradient row */
    int64_t wp, ldo, slice, whole, S, rows;
    void (*kern)(int64_t, int64_t, int64_t, int64_t, int64_t, const T *const *, const T *,
                 int64_t, T *);
} CV(dw1_ctx);

static void CV(dw1_part)(void *p, int64_t lo, int64_t hi, int w) {
    const CV(dw1_ctx) *c = (const CV(dw1_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t OH = g->OH, OW = g->OW, KH = g->KH, KW = g->KW, F = g->F;
    const int64_t R = NNF_CONV1_DW_R;
    const int64_t wp = c->wp, ldo = c->ldo, prows = c->whole ? g->H : R * KH, KF = KH * KW * F;
    /* lane sums, padded rows, the zero row, then R filter-major gradient rows */
    T *const acc = c->ws + w * c->slice, *const pad = acc + KF * NNF_CONV1_CHUNK;
    T *const zero = pad + prows * wp, *const dzT = zero + wp;
    const T *rows[NNF_CONV1_DW_R * CV_MAX_KH];
    for (int64_t i = 0; i < (prows + 1) * wp; ++i) pad[i] = 0;
    for (int64_t i = 0; i < R * F * ldo; ++i) dzT[i] = 0;
    for (int64_t s = lo; s < hi; ++s) {
        const int64_t r0 = s * c->rows / c->S, r1 = (s + 1) * c->rows / c->S;
        for (int64_t i = 0; i < KF * NNF_CONV1_CHUNK; ++i) acc[i] = 0;
        int64_t cur = -1;
        /* groups of up to R rows of one image, from the segment's start: shapes alone fix them */
        for (int64_t r = r0; r < r1;) {
            const int64_t n = r / OH, oh0 = r % OH;
            int64_t cnt = r1 - r < R ? r1 - r : R;
            if (cnt > OH - oh0) cnt = OH - oh0;
            for (int64_t rr = 0; rr < cnt; ++rr) {
                CV(pad_rows)(rows + rr * KH, pad, zero, c->x, g, n, oh0 + rr, (int)c->whole,
                             wp, rr * KH, &cur);
                /* the gradient row filter-major: dzT[f*ldo + ow] = G[row][ow*F + f] */
                CV_CAT(nnf_tcopy_, SFX)(dzT + rr * F * ldo, ldo, c->G + (r + rr) * OW * F, F,
                                        OW, F);
            }
            c->kern(cnt, OW, KH, KW, F, rows, dzT, ldo, acc);
            r += cnt;
        }
        T *restrict out = c->part + s * KF;
        for (int64_t i = 0; i < KF; ++i) {   /* the lanes in order */
            const T *restrict a = acc + i * NNF_CONV1_CHUNK;
            T v = a[0];
            for (int l = 1; l < NNF_CONV1_CHUNK; ++l) v += a[l];
            out[i] = v;
        }
    }
}

/* The direct filter gradient's geometry for g on up to nt workers; returns the workspace
 * elements it needs (c->ws is the caller's to set). */
static int64_t CV(dw1_plan)(CV(dw1_ctx) *c, const nnf_conv_geom_t *g, int64_t S, int nt) {
    c->rows = g->N * g->OH;
    c->S = S;
    c->whole = CV(pad_geometry)(g, &c->ldo, &c->wp);
    const int64_t KF = g->KH * g->KW * g->F;
    c->slice = (KF * NNF_CONV1_CHUNK + (c->whole ? g->H : NNF_CONV1_DW_R * g->KH) * c->wp +
                c->wp + NNF_CONV1_DW_R * g->F * c->ldo + 15) & ~(int64_t)15;
    c->g = g;
    return nt * c->slice;
}

/* The input gradient by the lanes-along-the-taps kernel (gemm/conv_lanes_simd.h convdx): one
 * input row per call, the im2col gradient's runs computed in registers and added in col2im's
 * order, so the bits of the GEMM and col2im it replaces (tests/test_conv_lanes.py). Unit width
 * stride and dilation, no horizontal padding, a kernel row's KW*C taps in at most
 * NNF_CONVDX_VECS vectors, F within one GEMM K block; any height stride, dilation, padding. */
typedef struct {
    T *dx; const T *G, *WT; const nnf_conv_geom_t *g; CV(convdx_fn) kern;
} CV(dx_ctx);

static int CV(dx_lanes_ok)(const nnf_conv_geom_t *g) {
    return CV(convdx_kernel)() && g->SW == 1 && g->DW == 1 && g->PL == 0 &&
           g->OW - 1 + g->KW - 1 < g->W && g->KH <= 64 && g->F <= CV(gemm_kc)() &&
           g->KW * g->C <= NNF_CONVDX_VECS * (int64_t)CV(lanes)();
}

static void CV(dx_part)(void *p, int64_t lo, int64_t hi, int w) {
    const CV(dx_ctx) *c = (const CV(dx_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    (void)w;
    c->kern(lo, hi, g->H, g->W, g->C, g->OH, g->OW, g->F, g->KH, g->KW, g->SH, g->PT, g->DH,
            c->G, c->WT, c->dx);
}

int CV(nnf_conv2d_bwd)(T *dx, T *dW, T *db, T *dz, const T *dy, const T *x, const T *Wt,
                       const T *z, const T *y, const nnf_conv_geom_t *g, int act, T alpha,
                       int accumulate, int nthreads) {
    const int64_t P = g->OH * g->OW, F = g->F, Kc = g->KH * g->KW * g->C;
    const int64_t HWC = g->H * g->W * g->C, NP = g->N * P;
    int direct = conv_is_pointwise(g);
    /* one input channel: dW by the direct path's segments (dw1_part); else narrow outputs: by
     * the segmented implicit GEMM (dw_part), no im2col for it */
    CV(dw1_ctx) d1c;
    d1c.kern = NP > 0 && Kc * F > 0 && conv_direct1(g) && g->KH <= CV_MAX_KH
                   ? CV(conv1_dw_kernel)() : 0;
    const int d1 = d1c.kern != 0;
    const int imp = !d1 && !direct && NP > 0 && Kc * F > 0 && conv_implicit(F, (int)sizeof(T));
    const int64_t S = d1 ? CV(dw1_segments)(g->N * g->OH) : imp ? CV(dw_segments)(NP) : 0;
    int d1nt = S < nthreads ? (int)S : nthreads;
    if (d1nt > NNF_MAX_THREADS) d1nt = NNF_MAX_THREADS;
    const int64_t d1ws = d1 ? CV(dw1_plan)(&d1c, g, S, d1nt) : 0;
    int64_t nb = conv_block_images(g);
    T *cols = 0, *dcols = 0, *wsum = dW, *part = 0, *WT = 0;
    int st = NNF_OK;
    /* one block of the thread's kept scratch (nnf_scratch): the columns (explicit path), their
     * gradient, and (accumulate) a private dW sum or (implicit) the segments' partial sums, so
     * an accumulated dW stays whole if a later GEMM fails */
    const size_t cb = ((size_t)(nb * P * Kc) * sizeof(T) + 63) & ~(size_t)63;
    const int dxl = dx && NP > 0 && !direct && CV(dx_lanes_ok)(g);
    const int has_cols = NP > 0 && !direct && !imp && !d1;
    const int has_dcols = NP > 0 && !direct && dx && !dxl;
    const int priv = accumulate && Kc * F > 0 && !imp && !d1;
    const size_t need = (has_cols + has_dcols) * cb + (priv ? (size_t)(Kc * F) * sizeof(T) : 0) +
                        (size_t)(S * Kc * F + d1ws + (dxl ? Kc * F : 0)) * sizeof(T);
    if (need) {
        char *sc = (char *)nnf_scratch(need);
        if (!sc) return NNF_ERR_NOMEM;
        if (has_cols) cols = (T *)sc;
        if (has_dcols) dcols = (T *)(sc + has_cols * cb);
        if (priv) wsum = (T *)(sc + (has_cols + has_dcols) * cb);
        if (imp || d1) part = (T *)(sc + (has_cols + has_dcols) * cb);
        if (d1) d1c.ws = part + S * Kc * F;
        /* dxl: W filter-major (F x Kc), at the end */
        if (dxl) WT = (T *)(sc + need - (size_t)(Kc * F) * sizeof(T));
    }
    const T *G = dy;
    if (dz) {
        CV(nnf_activation_bwd)(dz, dy, z, y, NP, F, act, alpha, nthreads);
        G = dz;
    }
    if (NP == 0) {
        if (dx) memset(dx, 0, (size_t)(g->N * HWC) * sizeof(T));
        for (int64_t i = 0; i < Kc * F; ++i) wsum[i] = 0;
    }
    if (d1) {
        d1c.part = part; d1c.x = x; d1c.G = G;
        nnf_parallel_for(CV(dw1_part), &d1c, S, S, d1nt);
    }
    if (imp) {
        CV(dw_ctx) dc;
        dc.part = part; dc.G = G; dc.x = x; dc.g = g; dc.S = S; dc.NP = NP;
        dc.lanes = CV(windows_inside)(g) ? CV(convdw_kernel)() : 0;
        nnf_parallel_for(CV(dw_part), &dc, S, S, nthreads);
        for (int64_t s = 0; s < S; ++s)
            if (dc.st[s] != NNF_OK) return NNF_ERR_NOMEM;   /* dW untouched */
    }
    for (int64_t n0 = 0; n0 < g->N && P > 0 && st == NNF_OK; n0 += nb) {
        int64_t m = (g->N - n0 < nb ? g->N - n0 : nb);
        const T *A = x + n0 * HWC, *Gb = G + n0 * P * F;
        if (!imp && !d1) {
            if (!direct) {
                CV(im2col)(cols, x, g, n0, m, nthreads);
                A = cols;
            }
            /* dW (Kc x F) (+)= cols^T (Kc x mP) . dz (mP x F); blocks in image order */
            st = CV(nnf_gemm)(wsum, F, A, Kc, Gb, F, Kc, F, m * P, 1, 0, (T)1,
                              n0 == 0 ? (T)0 : (T)1, nthreads);
        }
        if (st != NNF_OK || !dx || dxl) continue;
        /* dcols (mP x Kc) = dz (mP x F) . Wt^T (F x Kc); pointwise: straight into dx */
        st = CV(nnf_gemm)(direct ? dx + n0 * HWC : dcols, Kc, Gb, F, Wt, F, m * P, Kc, F, 0, 1,
                          (T)1, (T)0, nthreads);
        if (st == NNF_OK && !direct) CV(col2im)(dx, dcols, g, n0, m, nthreads);
    }
    if (st != NNF_OK) return st;   /* an accumulated dW is still whole */
    if (dxl) {
        CV_CAT(nnf_tcopy_, SFX)(WT, Kc, Wt, F, Kc, F);   /* WT[f*Kc + t] = Wt[t*F + f] */
        CV(dx_ctx) xc = {dx, G, WT, g, CV(convdx_kernel)()};
        const int64_t rows = g->N * g->H;
        nnf_parallel_for(CV(dx_part), &xc, rows, NNF_PARTS(nthreads),
                         NP * Kc * F > PAR_WORK ? nthreads : 1);
    }
    if (imp || d1) {   /* the segments' partial sums, in segment order */
        for (int64_t i = 0; i < Kc * F; ++i) {
            T acc = part[i];
            for (int64_t s = 1; s < S; ++s) acc += part[s * Kc * F + i];
            dW[i] = accumulate ? dW[i] + acc : acc;
        }
    } else if (wsum != dW) {
        for (int64_t i = 0; i < Kc * F; ++i) dW[i] += wsum[i];
    }
    if (db) CV(nnf_column_sums)(db, G, NP, F, accumulate, nthreads);
    return NNF_OK;
}

#undef CV
#undef CV_CAT
#undef CV_CAT_
