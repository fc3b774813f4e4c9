/* batchnorm.c's body, included once per dtype with T (float | double) and SFX (f32 | f64). */
#define BN_CAT_(a, b) a##b
#define BN_CAT(a, b) BN_CAT_(a, b)
#define BN(name) BN_CAT(name##_, SFX)

typedef struct {
    T *y; T *xhat; const T *x; const T *dy; const T *xh;
    double *part, *part2;      /* nch x C partials (part2: second sum of the backward) */
    const double *mean;        /* C; forward: the mean; backward: (dbeta/R) */
    const double *scale;       /* C; forward: inv_std; backward: gamma*inv_std */
    const double *shift;       /* C; backward: dgamma/R */
    const T *gamma, *beta;
    int64_t R, C;
} BN(bn_ctx);

/* chunk partials of sum x (mean == NULL) or sum (x - mean)^2 */
static void BN(bn_sum_part)(void *p, int64_t lo, int64_t hi, int w) {
    const BN(bn_ctx) *c = (const BN(bn_ctx) *)p;
    const int64_t C = c->C;
    (void)w;
    for (int64_t ch = lo; ch < hi; ++ch) {
        double *restrict acc = c->part + ch * C;
        int64_t r1 = (ch + 1) * RCH < c->R ? (ch + 1) * RCH : c->R;
        for (int64_t k = 0; k < C; ++k) acc[k] = 0;
        for (int64_t r = ch * RCH; r < r1; ++r) {
            const T *restrict s = c->x + r * C;
            if (c->mean)
                for (int64_t k = 0; k < C; ++k) {
                    double d = (double)s[k] - c->mean[k];
                    acc[k] += d * d;
                }
            else
                for (int64_t k = 0; k < C; ++k) acc[k] += (double)s[k];
        }
    }
}

/* xhat = (x - mean) * inv_std; y = gamma * xhat + beta (xhat == NULL: not stored) */
static void BN(bn_norm_part)(void *p, int64_t lo, int64_t hi, int w) {
    const BN(bn_ctx) *c = (const BN(bn_ctx) *)p;
    const int64_t C = c->C;
    (void)w;
    for (int64_t r = lo; r < hi; ++r) {
        const T *restrict s = c->x + r * C;
        T *restrict yo = c->y + r * C;
        for (int64_t k = 0; k < C; ++k) {
            T xh = (T)(((double)s[k] - c->mean[k]) * c->scale[k]);
            if (c->xhat) c->xhat[r * C + k] = xh;
            yo[k] = (c->gamma ? c->gamma[k] : (T)1) * xh + (c->beta ? c->beta[k] : (T)0);
        }
    }
}

int BN(nnf_batchnorm_train_fwd)(T *y, T *xhat, T *inv_std, T *moving_mean, T *moving_var,
                                const T *x, const T *gamma, const T *beta, double momentum,
                                double eps, int64_t R, int64_t C, int nthreads) {
    int64_t nch = (R + RCH - 1) / RCH;
    double *part = (double *)malloc((size_t)(nch * C + 3 * C + 1) * sizeof(double));
    if (!part) return NNF_ERR_NOMEM;
    double *mean = part + nch * C, *var = mean + C, *inv = var + C;
    int nt = bn_threads(R * C, nthreads);
    BN(bn_ctx) c = {y, xhat, x, 0, 0, part, 0, 0, 0, 0, gamma, beta, R, C};
    nnf_parallel_for(BN(bn_sum_part), &c, nch, nch, nt);
    bn_combine(mean, part, nch, C);
    for (int64_t k = 0; k < C; ++k) mean[k] /= (double)R;
    c.mean = mean;
    nnf_parallel_for(BN(bn_sum_part), &c, nch, nch, nt);
    bn_combine(var, part, nch, C);
    for (int64_t k = 0; k < C; ++k) {
        var[k] /= (double)R;
        inv[k] = 1.0 / sqrt(var[k] + eps);
        inv_std[k] = (T)inv[k];
        moving_mean[k] = (T)((double)moving_mean[k] * momentum + mean[k] * (1.0 - momentum));
        moving_var[k] = (T)((double)moving_var[k] * momentum + var[k] * (1.0 - momentum));
    }
    c.scale = inv;
    nnf_parallel_for(BN(bn_norm_part), &c, R, NNF_PARTS(nthreads), nt);
    free(part);
    return NNF_OK;
}

int BN(nnf_batchnorm_infer_fwd)(T *y, const T *x, const T *gamma, const T *beta,
                                const T *moving_mean, const T *moving_var, double eps,
                                int64_t R, int64_t C, int nthreads) {
    double *buf = (double *)malloc((size_t)(2 * C + 1) * sizeof(double));
    if (!buf) return NNF_ERR_NOMEM;
    double *mean = buf, *scale = buf + C;
    for (int64_t k = 0; k < C; ++k) {
        mean[k] = (double)moving_mean[k];
        scale[k] = 1.0 / sqrt((double)moving_var[k] + eps);
    }
    /* y = gamma * ((x - mean) * scale) + beta: the training formula with the moving stats */
    BN(bn_ctx) c = {y, 0, x, 0, 0, 0, 0, mean, scale, 0, gamma, beta, R, C};
    nnf_parallel_for(BN(bn_norm_part), &c, R, NNF_PARTS(nthreads), bn_threads(R * C, nthreads));
    free(buf);
    return NNF_OK;
}

/* chunk partials of sum dy (part) and sum dy * xhat (part2) */
static void BN(bn_bwd_sum_part)(void *p, int64_t lo, int64_t hi, int w) {
    const BN(bn_ctx) *c = (const BN(bn_ctx) *)p;
    const int64_t C = c->C;
    (void)w;
    for (int64_t ch = lo; ch < hi; ++ch) {
        double *restrict a = c->part + ch * C, *restrict b = c->part2 + ch * C;
        int64_t r1 = (ch + 1) * RCH < c->R ? (ch + 1) * RCH : c->R;
        for (int64_t k = 0; k < C; ++k) a[k] = b[k] = 0;
        for (int64_t r = ch * RCH; r < r1; ++r) {
            const T *restrict g = c->dy + r * C, *restrict h = c->xh + r * C;
            for (int64_t k = 0; k < C; ++k) {
                a[k] += (double)g[k];
                b[k] += (double)g[k] * (double)h[k];
            }
        }
    }
}

/* dx = scale * (dy - mean - xhat * shift), per channel coefficients in double */
static void BN(bn_dx_part)(void *p, int64_t lo, int64_t hi, int w) {
    const BN(bn_ctx) *c = (const BN(bn_ctx) *)p;
    const int64_t C = c->C;
    (void)w;
    for (int64_t r = lo; r < hi; ++r) {
        const T *restrict g = c->dy + r * C, *restrict h = c->xh + r * C;
        T *restrict d = c->y + r * C;
        for (int64_t k = 0; k < C; ++k)
            d[k] = (T)(c->scale[k] * ((double)g[k] - c->mean[k] - (double)h[k] * c->shift[k]));
    }
}

int BN(nnf_batchnorm_bwd)(T *dx, T *dgamma, T *dbeta, const T *dy, const T *xhat,
                          const T *gamma, const T *inv_std, int64_t R, int64_t C,
                          int accumulate, int nthreads) {
    int64_t nch = (R + RCH - 1) / RCH;
    double *part = (double *)malloc((size_t)(2 * nch * C + 5 * C + 1) * sizeof(double));
    if (!part) return NNF_ERR_NOMEM;
    double *part2 = part + nch * C, *sb = part2 + nch * C, *sg = sb + C;
    double *mb = sg + C, *scale = mb + C, *mg = scale + C;
    int nt = bn_threads(R * C, nthreads);
    BN(bn_ctx) c = {dx, 0, 0, dy, xhat, part, part2, mb, scale, mg, gamma, 0, R, C};
    nnf_parallel_for(BN(bn_bwd_sum_part), &c, nch, nch, nt);
    bn_combine(sb, part, nch, C);
    bn_combine(sg, part2, nch, C);
    for (int64_t k = 0; k < C; ++k) {
        if (dbeta) dbeta[k] = accumulate ? dbeta[k] + (T)sb[k] : (T)sb[k];
        if (dgamma) dgamma[k] = accumulate ? dgamma[k] + (T)sg[k] : (T)sg[k];
        mb[k] = R ? sb[k] / (double)R : 0;
        mg[k] = R ? sg[k] / (double)R : 0;
        scale[k] = (gamma ? (double)gamma[k] : 1.0) * (double)inv_std[k];
    }
    if (dx) nnf_parallel_for(BN(bn_dx_part), &c, R, NNF_PARTS(nthreads), nt);
    free(part);
    return NNF_OK;
}

#undef BN
#undef BN_CAT
#undef BN_CAT_
