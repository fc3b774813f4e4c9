/* Whole-network inference (see nnfast.h, "inference plan"): a list of dense / activation ops
 * run over row blocks of x in one call, ping-ponging between two caller-supplied workspaces.
 * Each op is the same kernel the layer-by-layer path calls (nnf_dense_fwd_*,
 * nnf_activation_fwd_*), whose results for a row do not depend on how many rows share the
 * call (the GEMM's K partition depends on k alone), so a block gives the bits of a whole
 * batch. */
#include "nnfast.h"

/* Rows per block: the block's activations (its x rows and the two ping-pong buffers) fit in
 * about 2 MiB, the L2 of two cores on the machines measured (1 MiB each on Zen 5 and recent
 * Intel), so each layer reads its input from cache rather than memory. At least 256 rows,
 * because every GEMM call packs its W again: at 256 rows the packing is a small share of the
 * block's multiply-adds. At most 4096 rows, to bound the workspace. Multiples of 64 keep the
 * blocks on whole GEMM row panels (MR divides 64 on every path but 12 and 6, where one ragged
 * panel per block is the cost). */
#define PLAN_L2_BYTES ((int64_t)2 << 20)
#define PLAN_MIN_ROWS 256
#define PLAN_MAX_ROWS 4096

int64_t nnf_mlp_block_rows(const nnf_mlp_op_t *ops, int64_t nops, int64_t K, int dtype_size) {
    int64_t width = 0;
    for (int64_t i = 0; i < nops; ++i)
        if (ops[i].M > width) width = ops[i].M;
    int64_t per_row = (K + 2 * width) * dtype_size;
    int64_t rows = per_row > 0 ? PLAN_L2_BYTES / per_row : PLAN_MAX_ROWS;
    rows -= rows % 64;
    if (rows < PLAN_MIN_ROWS) rows = PLAN_MIN_ROWS;
    if (rows > PLAN_MAX_ROWS) rows = PLAN_MAX_ROWS;
    return rows;
}

#define NNF_DEFINE_MLP(T, SFX)                                                               \
int nnf_mlp_fwd_##SFX(T *y, const T *x, int64_t ldx, int trans_x, const nnf_mlp_op_t *ops,  \
                      int64_t nops, T *ws0, T *ws1, int64_t N, int64_t K, int64_t rows,     \
                      int nthreads) {                                                       \
    for (int64_t r0 = 0; r0 < N; r0 += rows) {                                              \
        const int64_t n = N - r0 < rows ? N - r0 : rows;                                    \
        /* the block's input: rows r0.. of x (trans_x: columns r0.. of its K x N transpose) */ \
        const T *src = trans_x ? x + r0 : x + r0 * ldx;                                     \
        int64_t ld = ldx, k = K;                                                            \
        int tx = trans_x;                                                                   \
        T *yb = y + r0 * (nops ? ops[nops - 1].M : K);                                      \
        if (nops == 0) { /* nothing but no-ops: y is the input (the wrapper made x rows) */  \
            for (int64_t i = 0; i < n * K; ++i) yb[i] = src[i];                             \
            continue;                                                                       \
        }                                                                                   \
        for (int64_t i = 0; i < nops; ++i) {                                                \
            const nnf_mlp_op_t *op = &ops[i];                                               \
            /* the last op writes into y; a dense op into the buffer its input is not in;  \
             * an activation in place, except on x (read-only) */                          \
            T *dst = i == nops - 1 ? yb : (src == ws0 ? ws1 : ws0);                         \
            if (op->kind == NNF_MLP_DENSE) {                                                \
                int st = nnf_dense_fwd_##SFX(dst, NULL, src, ld, tx, (const T *)op->W,      \
                                             op->M, 0, (const T *)op->b, n, k, op->M,       \
                                             op->act, (T)op->alpha, nthreads);              \
                if (st != NNF_OK) return st;                                                \
            } else {                                                                        \
                if (i > 0 && i < nops - 1) dst = (T *)src; /* in place in the workspace */  \
                nnf_activation_fwd_##SFX(dst, src, n, op->M, op->act, (T)op->alpha,         \
                                         nthreads);                                         \
            }                                                                               \
            src = dst;                                                                      \
            ld = k = op->M;                                                                 \
            tx = 0;                                                                         \
        }                                                                                   \
    }                                                                                       \
    return NNF_OK;                                                                          \
}

NNF_DEFINE_MLP(float, f32)
NNF_DEFINE_MLP(double, f64)
