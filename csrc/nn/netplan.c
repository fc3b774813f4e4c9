/* Whole-network inference with image layers (see nnfast.h, "inference plan of a network"):
 * conv / pool / batch-norm / dense / activation ops run over blocks of images in one call,
 * ping-ponging between two caller-supplied workspaces. Each op is the kernel the
 * layer-by-layer path calls, with the same arguments but N = the block's images; an image's
 * bits never depend on its neighbours (conv: im2col rows are per image, the GEMM never splits
 * K and computes every element by one FMA chain whatever m; pools, batch norm: elementwise
 * per pixel; global average: per image), so a block gives the bits of a whole batch. */
#include "nnfast.h"

/* Images per block: the block's widest activation (input or output of any op) fits in about
 * 2 MiB, the L2 of the two cores on the machines measured, so each op reads what the one
 * before wrote from cache; the convolution's own im2col block (conv.c, 512 KB) comes on top.
 * At least one image; at most 4096, to bound the workspace (a flat 10-feature net). Unlike
 * the MLP plan there is no 256-row floor: one 28x28x32 activation is already 100 KB f32. */
#define NET_L2_BYTES ((int64_t)2 << 20)
#define NET_MAX_IMAGES 4096

int64_t nnf_net_block_images(const nnf_net_op_t *ops, int64_t nops, int64_t K, int dtype_size) {
    int64_t widest = K;
    for (int64_t i = 0; i < nops; ++i)
        if (ops[i].n_out > widest) widest = ops[i].n_out;
    int64_t per = widest * dtype_size;
    int64_t n = per > 0 ? NET_L2_BYTES / per : NET_MAX_IMAGES;
    if (n < 1) n = 1;
    if (n > NET_MAX_IMAGES) n = NET_MAX_IMAGES;
    return n;
}

#define NNF_DEFINE_NET(T, SFX)                                                                \
int nnf_net_fwd_##SFX(T *y, const T *x, const nnf_net_op_t *ops, int64_t nops, T *ws0,       \
                      T *ws1, int64_t *arg, int64_t N, int64_t images, int nthreads) {       \
    const int64_t K = ops[0].n_in, M = ops[nops - 1].n_out;                                      \
    for (int64_t r0 = 0; r0 < N; r0 += images) {                                             \
        const int64_t n = N - r0 < images ? N - r0 : images;                                 \
        const T *src = x + r0 * K;                                                           \
        for (int64_t i = 0; i < nops; ++i) {                                                 \
            const nnf_net_op_t *op = &ops[i];                                                \
            /* the last op writes into y; every other into the buffer its input is not in */ \
            T *dst = i == nops - 1 ? y + r0 * M : (src == ws0 ? ws1 : ws0);                  \
            nnf_conv_geom_t g = op->g;                                                       \
            g.N = n;                                                                         \
            int st = NNF_OK;                                                                 \
            switch (op->kind) {                                                              \
            case NNF_NET_DENSE:                                                              \
                st = nnf_dense_fwd_##SFX(dst, NULL, src, op->n_in, 0, (const T *)op->W,        \
                                         op->n_out, 0, (const T *)op->b, n, op->n_in, op->n_out,   \
                                         op->act, (T)op->alpha, nthreads);                   \
                break;                                                                       \
            case NNF_NET_ACT:                                                                \
                /* in place in the workspace (x is read-only; y is where the last goes) */   \
                if (i > 0 && i < nops - 1) dst = (T *)src;                                   \
                nnf_activation_fwd_##SFX(dst, src, n, op->n_out, op->act, (T)op->alpha,        \
                                         nthreads);                                          \
                break;                                                                       \
            case NNF_NET_CONV2D:                                                             \
                st = nnf_conv2d_fwd_##SFX(dst, NULL, src, (const T *)op->W, (const T *)op->b, \
                                          &g, op->act, (T)op->alpha, nthreads);              \
                break;                                                                       \
            case NNF_NET_MAXPOOL2D:                                                          \
                nnf_maxpool2d_fwd_##SFX(dst, arg, src, &g, nthreads);                        \
                break;                                                                       \
            case NNF_NET_AVGPOOL2D:                                                          \
                nnf_avgpool2d_fwd_##SFX(dst, src, &g, nthreads);                             \
                break;                                                                       \
            case NNF_NET_GAVGPOOL2D:                                                         \
                nnf_gavgpool2d_fwd_##SFX(dst, src, n, op->n_in / g.C, g.C, nthreads);          \
                break;                                                                       \
            default: /* NNF_NET_BATCHNORM: rows of C channels, n * n_in / C of them */         \
                st = nnf_batchnorm_infer_fwd_##SFX(dst, src, (const T *)op->gamma,           \
                                                   (const T *)op->beta, (const T *)op->mean, \
                                                   (const T *)op->var, op->eps,              \
                                                   n * (op->n_in / g.C), g.C, nthreads);       \
            }                                                                                \
            if (st != NNF_OK) return st;                                                     \
            src = dst;                                                                       \
        }                                                                                    \
    }                                                                                        \
    return NNF_OK;                                                                           \
}

NNF_DEFINE_NET(float, f32)
NNF_DEFINE_NET(double, f64)
