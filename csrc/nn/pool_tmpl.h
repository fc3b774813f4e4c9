/* pool.c's body, included once per dtype with T (float | double), SFX (f32 | f64) and TBITS
 * (uint32_t | uint64_t: T's bits). */
#define PL_CAT_(a, b) a##b
#define PL_CAT(a, b) PL_CAT_(a, b)
#define PL(name) PL_CAT(name##_, SFX)

typedef struct {
    T *y; int64_t *arg; T *dx; const T *x; const T *dy; const int64_t *carg;
    const nnf_conv_geom_t *g;
    PL(maxpool_fn) simd;          /* the ISA's whole-window kernel, or NULL (scalar loop) */
    int64_t toff[POOL_SIMD_TAPS]; /* its tap offsets (kh*W + kw)*C, (kh, kw) in order */
} PL(pool_ctx);

/* take ? v : m without a branch, on the values' bits. */
static inline T PL(pool_select)(int take, T v, T m) {
    TBITS bv, bm;
    memcpy(&bv, &v, sizeof v);
    memcpy(&bm, &m, sizeof m);
    const TBITS mask = (TBITS)0 - (TBITS)take;
    bm = (bv & mask) | (bm & ~mask);
    memcpy(&m, &bm, sizeof m);
    return m;
}

/* Output rows r = n*OH + oh in [lo, hi). The geometry is read into locals: the build has
 * -fno-strict-aliasing, so every store through yo/ao would otherwise reload it. The max is a
 * select, not a branch: on real activations "v > m" is a coin toss, and a mispredicted branch
 * per element made this 4x slower than the select. */
static void PL(maxpool_part)(void *p, int64_t lo, int64_t hi, int w) {
    const PL(pool_ctx) *c = (const PL(pool_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t C = g->C, H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const int64_t SH = g->SH, SW = g->SW, PT = g->PT, PLp = g->PL, KH = g->KH, KW = g->KW;
    T *const y = c->y;
    int64_t *const arg = c->arg;
    const T *const x = c->x;
    (void)w;
    /* the output pixels whose windows lie wholly inside the image rows: [owa, owb) */
    int64_t owa = (PLp + SW - 1) / SW, owb = W + PLp >= KW ? (W + PLp - KW) / SW + 1 : 0;
    if (owb > OW) owb = OW;
    for (int64_t r = lo; r < hi; ++r) {
        int64_t n = r / OH, oh = r % OH, h0, h1, w0, w1;
        const T *img = x + n * H * W * C;
        pool_taps(oh, SH, PT, KH, H, &h0, &h1);
        for (int64_t ow = 0; ow < OW; ++ow) {
            T *restrict yo = y + (r * OW + ow) * C;
            int64_t *restrict ao = arg + (r * OW + ow) * C;
            if (c->simd && ow == owa && owb > owa && h1 - h0 == KH) {
                /* whole windows: the ISA's kernel, lanes along the channels */
                const int64_t b0 = ((oh * SH - PT) * W + ow * SW - PLp) * C;
                c->simd(owb - owa, C, SW * C, c->toff, KH * KW, img + b0, b0, yo, ao);
                ow = owb - 1;
                continue;
            }
            pool_taps(ow, SW, PLp, KW, W, &w0, &w1);
            if (h1 - h0 == 2 && w1 - w0 == 2) {
                /* a whole 2x2 window (the common pool): its four taps per channel in
                 * registers, selected in the (kh, kw) order of the loop below */
                const int64_t b0 = ((oh * SH - PT + h0) * W + ow * SW - PLp + w0) * C;
                const int64_t o1 = C, o2 = W * C, o3 = W * C + C;
                const int64_t off[4] = {0, o1, o2, o3};
                const T *restrict s0 = img + b0, *restrict s1 = s0 + o1;
                const T *restrict s2 = s0 + o2, *restrict s3 = s0 + o3;
                for (int64_t k = 0; k < C; ++k) {
                    const T v0 = s0[k], v1 = s1[k], v2 = s2[k], v3 = s3[k];
                    if ((v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3)) {
                        /* a NaN: the first one is the result (rare; its own path) */
                        const int64_t t = v0 != v0 ? 0 : v1 != v1 ? o1 : v2 != v2 ? o2 : o3;
                        yo[k] = s0[k + t];
                        ao[k] = b0 + k + t;
                        continue;
                    }
                    /* no NaN: the first tap of the largest value, as the loop below picks it
                     * (a later equal value, -0.0 after 0.0 included, never replaces it) */
                    const T m01 = v1 > v0 ? v1 : v0, m23 = v3 > v2 ? v3 : v2;
                    const T m = m23 > m01 ? m23 : m01;
                    /* the first tap equal to m, as the lowest set bit (which tap wins is a
                     * coin toss on real data: a chain of branches mispredicted most calls) */
                    const unsigned eq = (unsigned)(v0 == m) | (unsigned)(v1 == m) << 1 |
                                        (unsigned)(v2 == m) << 2 | 8u;
                    yo[k] = m;
                    ao[k] = b0 + k + off[__builtin_ctz(eq)];
                }
                continue;
            }
            /* taps outer, channels inner: C independent select chains (channels inner keeps
             * each chain's select latency off the critical path) */
            const int64_t b0 = ((oh * SH - PT + h0) * W + ow * SW - PLp + w0) * C;
            for (int64_t k = 0; k < C; ++k) { yo[k] = img[b0 + k]; ao[k] = b0 + k; }
            for (int64_t kh = h0; kh < h1; ++kh) {
                const int64_t row = ((oh * SH - PT + kh) * W + ow * SW - PLp) * C;
                for (int64_t kw = kh == h0 ? w0 + 1 : w0; kw < w1; ++kw) {
                    const int64_t base = row + kw * C;
                    const T *restrict s = img + base;
                    for (int64_t k = 0; k < C; ++k) {
                        const T v = s[k], m = yo[k];
                        /* take v when larger, or when the first NaN (not after one: m == m) */
                        const int take = !(v <= m) & (m == m);
                        /* as masks: gcc turns "take ? v : m" back into a branch */
                        const int64_t keep = (int64_t)take - 1;   /* 0: take v; -1: keep m */
                        yo[k] = PL(pool_select)(take, v, m);
                        ao[k] = (ao[k] & keep) | ((base + k) & ~keep);
                    }
                }
            }
        }
    }
}

/* Images [lo, hi): zero the image's dx, then add each output's dy at its argmax, in order. */
static void PL(maxpool_bwd_part)(void *p, int64_t lo, int64_t hi, int w) {
    const PL(pool_ctx) *c = (const PL(pool_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t HWC = g->H * g->W * g->C, Q = g->OH * g->OW * g->C;
    (void)w;
    for (int64_t n = lo; n < hi; ++n) {
        T *restrict d = c->dx + n * HWC;
        const T *restrict gy = c->dy + n * Q;
        const int64_t *restrict a = c->carg + n * Q;
        memset(d, 0, (size_t)HWC * sizeof(T));
        for (int64_t i = 0; i < Q; ++i) d[a[i]] += gy[i];
    }
}

static void PL(avgpool_part)(void *p, int64_t lo, int64_t hi, int w) {
    const PL(pool_ctx) *c = (const PL(pool_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t C = g->C;
    (void)w;
    for (int64_t r = lo; r < hi; ++r) {
        int64_t n = r / g->OH, oh = r % g->OH, h0, h1, w0, w1;
        const T *img = c->x + n * g->H * g->W * C;
        pool_taps(oh, g->SH, g->PT, g->KH, g->H, &h0, &h1);
        for (int64_t ow = 0; ow < g->OW; ++ow) {
            T *restrict yo = c->y + (r * g->OW + ow) * C;
            pool_taps(ow, g->SW, g->PL, g->KW, g->W, &w0, &w1);
            T cnt = (T)((h1 - h0) * (w1 - w0));
            for (int64_t k = 0; k < C; ++k) yo[k] = 0;
            for (int64_t kh = h0; kh < h1; ++kh) {
                int64_t ih = oh * g->SH - g->PT + kh;
                for (int64_t kw = w0; kw < w1; ++kw) {
                    const T *restrict s = img + (ih * g->W + ow * g->SW - g->PL + kw) * C;
                    for (int64_t k = 0; k < C; ++k) yo[k] += s[k];
                }
            }
            for (int64_t k = 0; k < C; ++k) yo[k] /= cnt;
        }
    }
}

/* Input rows r = n*H + ih in [lo, hi): gather dy / count from every window holding the pixel. */
static void PL(avgpool_bwd_part)(void *p, int64_t lo, int64_t hi, int w) {
    const PL(pool_ctx) *c = (const PL(pool_ctx) *)p;
    const nnf_conv_geom_t *g = c->g;
    const int64_t C = g->C;
    (void)w;
    for (int64_t r = lo; r < hi; ++r) {
        int64_t n = r / g->H, ih = r % g->H;
        /* windows oh with oh*SH - PT <= ih < oh*SH - PT + KH */
        int64_t t = ih + g->PT - g->KH + 1;
        int64_t oh0 = t <= 0 ? 0 : (t + g->SH - 1) / g->SH, oh1 = (ih + g->PT) / g->SH + 1;
        if (oh1 > g->OH) oh1 = g->OH;
        for (int64_t iw = 0; iw < g->W; ++iw) {
            T *restrict d = c->dx + (r * g->W + iw) * C;
            int64_t u = iw + g->PL - g->KW + 1;
            int64_t ow0 = u <= 0 ? 0 : (u + g->SW - 1) / g->SW, ow1 = (iw + g->PL) / g->SW + 1;
            if (ow1 > g->OW) ow1 = g->OW;
            for (int64_t k = 0; k < C; ++k) d[k] = 0;
            for (int64_t oh = oh0; oh < oh1; ++oh) {
                int64_t h0, h1, w0, w1;
                pool_taps(oh, g->SH, g->PT, g->KH, g->H, &h0, &h1);
                for (int64_t ow = ow0; ow < ow1; ++ow) {
                    pool_taps(ow, g->SW, g->PL, g->KW, g->W, &w0, &w1);
                    T cnt = (T)((h1 - h0) * (w1 - w0));
                    const T *restrict s = c->dy + ((n * g->OH + oh) * g->OW + ow) * C;
                    for (int64_t k = 0; k < C; ++k) d[k] += s[k] / cnt;
                }
            }
        }
    }
}

void PL(nnf_maxpool2d_fwd)(T *y, int64_t *argmax, const T *x, const nnf_conv_geom_t *g,
                           int nthreads) {
    PL(pool_ctx) c = {y, argmax, 0, x, 0, 0, g, ACTIVE_MAXPOOL(), {0}};
    if (g->KH * g->KW > POOL_SIMD_TAPS) c.simd = 0;
    for (int64_t kh = 0; c.simd && kh < g->KH; ++kh)
        for (int64_t kw = 0; kw < g->KW; ++kw) c.toff[kh * g->KW + kw] = (kh * g->W + kw) * g->C;
    int64_t rows = g->N * g->OH;
    nnf_parallel_for(PL(maxpool_part), &c, rows, NNF_PARTS(nthreads),
                     pool_threads(rows * g->OW * g->KH * g->KW * g->C, nthreads));
}

void PL(nnf_maxpool2d_bwd)(T *dx, const T *dy, const int64_t *argmax, const nnf_conv_geom_t *g,
                           int nthreads) {
    PL(pool_ctx) c = {0, 0, dx, 0, dy, argmax, g, 0, {0}};
    nnf_parallel_for(PL(maxpool_bwd_part), &c, g->N, NNF_PARTS(nthreads),
                     pool_threads(g->N * g->H * g->W * g->C, nthreads));
}

void PL(nnf_avgpool2d_fwd)(T *y, const T *x, const nnf_conv_geom_t *g, int nthreads) {
    PL(pool_ctx) c = {y, 0, 0, x, 0, 0, g, 0, {0}};
    int64_t rows = g->N * g->OH;
    nnf_parallel_for(PL(avgpool_part), &c, rows, NNF_PARTS(nthreads),
                     pool_threads(rows * g->OW * g->KH * g->KW * g->C, nthreads));
}

void PL(nnf_avgpool2d_bwd)(T *dx, const T *dy, const nnf_conv_geom_t *g, int nthreads) {
    PL(pool_ctx) c = {0, 0, dx, 0, dy, 0, g, 0, {0}};
    int64_t rows = g->N * g->H;
    nnf_parallel_for(PL(avgpool_bwd_part), &c, rows, NNF_PARTS(nthreads),
                     pool_threads(rows * g->W * g->C * g->KH * g->KW, nthreads));
}

typedef struct { T *out; const T *in; int64_t P, C; } PL(gap_ctx);

static void PL(gap_part)(void *p, int64_t lo, int64_t hi, int w) {
    const PL(gap_ctx) *c = (const PL(gap_ctx) *)p;
    double acc[CBLK];
    (void)w;
    for (int64_t n = lo; n < hi; ++n) {
        for (int64_t k0 = 0; k0 < c->C; k0 += CBLK) {
            int64_t wd = c->C - k0 < CBLK ? c->C - k0 : CBLK;
            for (int64_t k = 0; k < wd; ++k) acc[k] = 0;
            for (int64_t q = 0; q < c->P; ++q) {
                const T *restrict s = c->in + (n * c->P + q) * c->C + k0;
                for (int64_t k = 0; k < wd; ++k) acc[k] += (double)s[k];
            }
            for (int64_t k = 0; k < wd; ++k) c->out[n * c->C + k0 + k] = (T)(acc[k] / (double)c->P);
        }
    }
}

static void PL(gap_bwd_part)(void *p, int64_t lo, int64_t hi, int w) {
    const PL(gap_ctx) *c = (const PL(gap_ctx) *)p;
    const T cnt = (T)c->P;
    (void)w;
    for (int64_t n = lo; n < hi; ++n)
        for (int64_t q = 0; q < c->P; ++q) {
            T *restrict d = c->out + (n * c->P + q) * c->C;
            const T *restrict s = c->in + n * c->C;
            for (int64_t k = 0; k < c->C; ++k) d[k] = s[k] / cnt;
        }
}

void PL(nnf_gavgpool2d_fwd)(T *y, const T *x, int64_t N, int64_t P, int64_t C, int nthreads) {
    PL(gap_ctx) c = {y, x, P, C};
    nnf_parallel_for(PL(gap_part), &c, N, NNF_PARTS(nthreads), pool_threads(N * P * C, nthreads));
}

void PL(nnf_gavgpool2d_bwd)(T *dx, const T *dy, int64_t N, int64_t P, int64_t C, int nthreads) {
    PL(gap_ctx) c = {dx, dy, P, C};
    nnf_parallel_for(PL(gap_bwd_part), &c, N, NNF_PARTS(nthreads),
                     pool_threads(N * P * C, nthreads));
}

#undef PL
#undef PL_CAT
#undef PL_CAT_
