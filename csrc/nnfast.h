/* nnfast C API: every kernel prototype, grouped by op.
 *
 * Conventions (see ../shared/STYLE.md):
 *   - names nnf_<op>_<fwd|bwd>_<f32|f64>; arguments: outputs, inputs, saved values, sizes, threads
 *   - all arrays row-major and contiguous unless a leading dimension (ld*) is given, aligned
 *     for their type and in native byte order (the wrappers copy other inputs, reject outputs)
 *   - sizes are int64_t; kernels check nothing (the Cython layer did) and return nothing,
 *     except those that need working memory (GEMM, dense): they return enum nnf_status, and
 *     on NNF_ERR_NOMEM have written no output that accumulates (see each one)
 *   - outputs are overwritten unless the comment says "accumulated"
 *   - letters: N batch rows, K in-features, M out-features, C classes
 *   - results do not depend on nthreads unless a comment says otherwise
 */
#ifndef NNFAST_H
#define NNFAST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ runtime ---- */
/* Status of a kernel that allocates; it belongs to that call alone (never process state). */
enum nnf_status { NNF_OK = 0, NNF_ERR_NOMEM = 1 };

/* 1 when built with OpenMP. */
int nnf_have_openmp(void);
/* Which implementation runs nnf_parallel_for (csrc/runtime/par.h): nnfast's own pool (default) or
 * OpenMP (only when built with it). nnf_set_threading returns 0, or -1 when not available. */
enum nnf_threading { NNF_THREADING_POOL = 0, NNF_THREADING_OPENMP = 1 };
int nnf_set_threading(int which);
int nnf_get_threading(void);
/* Pool workers spin (yielding) this long after their last chunk before they sleep (default
 * 1000 us). */
void nnf_pool_set_spin_us(int64_t us);
int64_t nnf_pool_get_spin_us(void);
/* Worker threads the pool has started (the caller is not counted; 0 before first use). */
int nnf_pool_workers(void);
/* Test hook: 0 normal; 1 workers join each job 200 us late; 2 workers never join. */
void nnf_pool_set_test_mode(int mode);

/* --------------------------------------------------------------- dispatch ---- */
enum nnf_cpu_feature {
    NNF_CPU_SSE2 = 1 << 0, NNF_CPU_SSE42 = 1 << 1, NNF_CPU_AVX = 1 << 2,
    NNF_CPU_AVX2 = 1 << 3, NNF_CPU_FMA = 1 << 4, NNF_CPU_AVX512F = 1 << 5,
    NNF_CPU_AVX512DQ = 1 << 6, NNF_CPU_AVX512BW = 1 << 7, NNF_CPU_AVX512VL = 1 << 8,
    NNF_CPU_NEON = 1 << 9
};
enum nnf_isa { NNF_ISA_GENERIC = 0, NNF_ISA_AVX2 = 1, NNF_ISA_AVX512 = 2 };

/* Bitmask of nnf_cpu_feature seen by CPUID (and usable: OS saves the registers). */
unsigned nnf_cpu_features(void);
/* Choose the kernel path. name NULL or "" = best the CPU supports; otherwise
 * "generic" | "avx2" | "avx512". Returns 0 ok, -1 unknown name, -2 CPU lacks the ISA. */
int nnf_isa_select(const char *name);
/* Active path (enum nnf_isa) and its name. */
int nnf_isa_active(void);
const char *nnf_isa_name(int isa);
/* Block sizes of the active path for dtype_size 4 (f32) or 8 (f64): out[0..4] = MR NR MC KC NC. */
void nnf_gemm_blocking(int dtype_size, int64_t out[5]);

/* ------------------------------------------------------------------- GEMM ---- */
/* C[m,n] = alpha * op(A)[m,k] @ op(B)[k,n] + beta * C
 *   trans_a = 0: A is m x k with row stride lda >= k;  1: A is k x m, lda >= m (uses A^T)
 *   trans_b = 0: B is k x n with row stride ldb >= n;  1: B is n x k, ldb >= k (uses B^T)
 *   C is m x n with row stride ldc >= n. beta == 0 overwrites C (NaN/Inf in C are ignored).
 *   k == 0 gives C = beta * C. Parallel over blocks of C; K is never split across
 *   threads, so results do not depend on nthreads.
 *   Returns NNF_ERR_NOMEM, with C untouched, when its packing workspace (a few MB, taken by
 *   the calling thread before any work starts and kept for its next call; freed when the
 *   thread exits) cannot be had. */
int nnf_gemm_f32(float *C, int64_t ldc, const float *A, int64_t lda, const float *B, int64_t ldb,
                 int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                 float alpha, float beta, int nthreads);
int nnf_gemm_f64(double *C, int64_t ldc, const double *A, int64_t lda, const double *B,
                 int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                 double alpha, double beta, int nthreads);

/* Test hook: workspace requests of more than `bytes` fail as if memory ran out (-1: none). */
void nnf_gemm_set_alloc_limit(int64_t bytes);
/* `bytes` of 64-byte-aligned scratch owned by the calling thread, kept between its calls and
 * freed at thread exit (gemm.c), separate from the GEMM's own workspace; NULL when it cannot be
 * had (or over the test hook's limit above). Valid until the thread's next call. */
void *nnf_scratch(size_t bytes);
/* Bytes held in the GEMM workspaces of all live threads (diagnostics and tests). */
int64_t nnf_gemm_workspace_bytes(void);

/* Epilogue applied to each finished tile of C (after alpha/beta) while it is hot in cache:
 *   z = C + bias[col]  (stored to z[row*ldz+col] when z != NULL)
 *   C = act(z)         (elementwise; act is enum nnf_act, act_alpha its parameter)
 * Row-wise activations (softmax, log_softmax) are not allowed here: apply them after the GEMM. */
enum nnf_act {
    NNF_ACT_IDENTITY = 0, NNF_ACT_RELU, NNF_ACT_LEAKY_RELU, NNF_ACT_ELU, NNF_ACT_SIGMOID,
    NNF_ACT_TANH, NNF_ACT_GELU, NNF_ACT_GELU_TANH, NNF_ACT_SILU, NNF_ACT_SOFTPLUS,
    NNF_ACT_SOFTMAX, NNF_ACT_LOG_SOFTMAX
};
typedef struct {
    const void *bias;   /* length n (float or double as the GEMM), or NULL */
    void *z;            /* pre-activation output, or NULL */
    int64_t ldz;
    int act;            /* enum nnf_act, elementwise only */
    double act_alpha;
} nnf_epilogue_t;

int nnf_gemm_ep_f32(float *C, int64_t ldc, const float *A, int64_t lda, const float *B,
                    int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                    float alpha, float beta, const nnf_epilogue_t *ep, int nthreads);
int nnf_gemm_ep_f64(double *C, int64_t ldc, const double *A, int64_t lda, const double *B,
                    int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                    double alpha, double beta, const nnf_epilogue_t *ep, int nthreads);
/* Applies ep to the rows x cols tile of C starting at (row0, col0). Serial. */
void nnf_epilogue_tile_f32(const nnf_epilogue_t *ep, float *C, int64_t ldc,
                           int64_t row0, int64_t col0, int64_t rows, int64_t cols);
void nnf_epilogue_tile_f64(const nnf_epilogue_t *ep, double *C, int64_t ldc,
                           int64_t row0, int64_t col0, int64_t rows, int64_t cols);

/* FMA throughput probe: runs independent FMA chains of the active ISA for about `seconds`
 * on nthreads threads; returns GFLOP/s (2 flops per lane per FMA). dtype_size 4 or 8. */
double nnf_fma_peak(int dtype_size, int nthreads, double seconds);

/* ------------------------------------------------------------ activations ---- */
/* (issue 4)  x, y, dy, dz, z: N x M row-major contiguous; act is enum nnf_act, alpha its
 * parameter (leaky_relu slope, elu alpha). Elementwise math is act_scalar.h (shared with the
 * GEMM epilogue, so both give identical bits). NaN in -> NaN out. Finite wherever the true
 * value is, and equal to the limits at +-inf (gelu, gelu_tanh, silu -> z and -0, derivatives ->
 * 1 and 0), also where z^2 or z^3 overflow: see act_scalar.h.
 *   forward   y = act(x); softmax/log_softmax row-wise and max-subtracted (exact for |x| ~ 1e4;
 *             a NaN in a row makes the whole row NaN). y may equal x (in place).
 *   backward  dz = dy * act'(z, y); z or y may be NULL where act' does not read it (see
 *             docs/ops_api.md). softmax: dz = y (dy - sum_row(dy y)); log_softmax:
 *             dz = dy - exp(y) sum_row(dy). Row sums are accumulated in double, in column order.
 */
void nnf_activation_fwd_f32(float *y, const float *x, int64_t N, int64_t M, int act, float alpha,
                            int nthreads);
void nnf_activation_fwd_f64(double *y, const double *x, int64_t N, int64_t M, int act,
                            double alpha, int nthreads);
void nnf_activation_bwd_f32(float *dz, const float *dy, const float *z, const float *y,
                            int64_t N, int64_t M, int act, float alpha, int nthreads);
void nnf_activation_bwd_f64(double *dz, const double *dy, const double *z, const double *y,
                            int64_t N, int64_t M, int act, double alpha, int nthreads);

/* ------------------------------------------------------------------ dense ---- */
/* (issue 4)  x (N, K) and W (K, M) are read in place: trans_x = 0 means x is row-major with row
 * stride ldx; trans_x = 1 means x is the transpose of a row-major K x N array with row stride
 * ldx (likewise W: trans_w = 1 reads a row-major M x K array). b (M,) may be NULL.
 *   forward   z = x W + b (stored when z != NULL, row stride M); y (N, M) = act(z). Bias and
 *             elementwise activations run in the GEMM epilogue; softmax/log_softmax run row-wise
 *             on y afterwards.
 *   backward  dz (N, M) = dy * act'(z, y) (overwritten; dz may be NULL only for identity, which
 *             then reads dy directly); dW (K, M) = x^T dz; db (M,) = column sums of dz (double
 *             accumulator, row order); dx (N, K) = dz W^T, skipped when dx == NULL.
 *             accumulate = 1: dW += ..., db += (T)sum (dW and db accumulated, dx overwritten).
 * Both return the GEMM's status; on NNF_ERR_NOMEM the backward leaves dW and db as they were
 * (dx is computed first, then dW, then db, and a GEMM that fails writes nothing). */
int nnf_dense_fwd_f32(float *y, float *z, const float *x, int64_t ldx, int trans_x,
                      const float *W, int64_t ldw, int trans_w, const float *b,
                      int64_t N, int64_t K, int64_t M, int act, float alpha, int nthreads);
int nnf_dense_fwd_f64(double *y, double *z, const double *x, int64_t ldx, int trans_x,
                      const double *W, int64_t ldw, int trans_w, const double *b,
                      int64_t N, int64_t K, int64_t M, int act, double alpha, int nthreads);
int nnf_dense_bwd_f32(float *dx, float *dW, float *db, float *dz, const float *dy,
                      const float *x, int64_t ldx, int trans_x, const float *W, int64_t ldw,
                      int trans_w, const float *z, const float *y, int64_t N, int64_t K,
                      int64_t M, int act, float alpha, int accumulate, int nthreads);
int nnf_dense_bwd_f64(double *dx, double *dW, double *db, double *dz, const double *dy,
                      const double *x, int64_t ldx, int trans_x, const double *W, int64_t ldw,
                      int trans_w, const double *z, const double *y, int64_t N, int64_t K,
                      int64_t M, int act, double alpha, int accumulate, int nthreads);

/* ------------------------------------------------------------ inference plan ---- */
/* (issue 13)  y = op_{n-1}( ... op_0(x)) over N rows in one call: the forward pass of a
 * network of dense and activation layers (no-op layers such as Flatten or inference-time
 * Dropout have no op). An op:
 *   NNF_MLP_DENSE  y = act(x W + b): W (K x M) row-major contiguous, b (M,) or NULL, as
 *                  nnf_dense_fwd_* (softmax/log_softmax row-wise after the GEMM)
 *   NNF_MLP_ACT    y = act(x), elementwise or row-wise, as nnf_activation_fwd_* (M = K)
 * x (N, K): trans_x and ldx as nnf_dense_fwd_*; when the first op is NNF_MLP_ACT, or there is
 * no op (y = x), x must be row-major contiguous (trans_x = 0, ldx = K).
 * Rows run through all ops in blocks of `rows` (nnf_mlp_block_rows), ping-ponging between ws0
 * and ws1, each of min(N, rows) x (widest M) elements; the last op writes into y (N, last M)
 * directly. Every op is the kernel the layer-by-layer path calls, and a row's result does
 * not depend on the rows sharing its call, so y is bit-identical to running the layers one by
 * one over the whole batch, for any `rows` and nthreads.
 * Returns the GEMM's status; on NNF_ERR_NOMEM y holds the blocks finished before. */
enum nnf_mlp_kind { NNF_MLP_DENSE = 0, NNF_MLP_ACT = 1 };
typedef struct {
    int kind;           /* enum nnf_mlp_kind */
    const void *W;      /* dense: K x M, float or double as the call; else NULL */
    const void *b;      /* dense: M, or NULL */
    int64_t M;          /* out-features (an activation: its width, equal to its in-features) */
    int act;            /* enum nnf_act */
    double alpha;       /* its parameter */
} nnf_mlp_op_t;
/* Rows per block for these ops, on K in-features and dtype_size 4 or 8 (the reasons: plan.c). */
int64_t nnf_mlp_block_rows(const nnf_mlp_op_t *ops, int64_t nops, int64_t K, int dtype_size);
int nnf_mlp_fwd_f32(float *y, const float *x, int64_t ldx, int trans_x, const nnf_mlp_op_t *ops,
                    int64_t nops, float *ws0, float *ws1, int64_t N, int64_t K, int64_t rows,
                    int nthreads);
int nnf_mlp_fwd_f64(double *y, const double *x, int64_t ldx, int trans_x,
                    const nnf_mlp_op_t *ops, int64_t nops, double *ws0, double *ws1, int64_t N,
                    int64_t K, int64_t rows, int nthreads);

/* ----------------------------------------------------------------- losses ---- */
/* (issue 4) Each loss is one fused pass: the gradient and the per-row weighted losses.
 *   OUT grad     (N x C or N x M), overwritten: d(scale · Σ_i row_loss[i]) / d(input)
 *   OUT row_loss (N) double: w_i · l_i;   OUT *total = Σ_i row_loss[i] summed in row order
 *   IN  sample_weight (N) or NULL (w_i = 1); scale = 1/N for "mean", 1 for "sum"/"none"
 * Rows are split across threads above a size threshold; results do not depend on nthreads.
 * Precision: every term, row sum, the total and the gradient are computed in double for both
 * dtypes (the gradient rounded to T once), so float32 inputs near 1e38 give a finite row_loss and
 * total wherever the value fits a double (torch computes float32 losses in float32: inf there).
 * Special values (the same in src/nnfast/backends/_ref_loss.py):
 *   - a weight of exactly 0 removes its term from loss and gradient even where the term is
 *     +-inf (0·inf is taken as 0, not NaN); NaN still propagates. The weights are w_i (sample
 *     weight times class weight) and, inside a row, the target t'_ic of a cross-entropy term and
 *     t, 1-t of a BCE element. torch differs: F.cross_entropy with probability targets and
 *     F.binary_cross_entropy_with_logits give NaN there, class weight 0 on a -inf target logit
 *     gives loss NaN (gradient 0).
 *   - a -inf logit has probability 0: cross-entropy term 0 and gradient 0 when its target is
 *     0; loss +inf and gradient -scale·w_i·t'_ic when its target is > 0 (also with label
 *     smoothing, where every t' > 0), as torch.nn.functional.cross_entropy with class labels.
 *   - a +inf or NaN logit, or a row of -inf logits, makes the row's loss and gradient NaN
 *     (as torch). BCE at z = +-inf takes its limits: ℓ(-inf, t) = t·inf, ℓ(+inf, t) = (1-t)·inf
 *     (0 for t = 0 and t = 1), ℓ' = sigmoid(z) - t. MSE/Huber: a residual of +-inf gives loss
 *     +inf, gradient +-inf (MSE) or +-delta (Huber); inf - inf is NaN (as torch).
 *
 * Softmax cross-entropy from logits z (N x C). Targets: labels (N) of int32 (label_bytes 4)
 * or int64 (8) in [0, C), or, when labels is NULL, probabilities probs (N x C).
 *   t' = (1-eps)·t + eps/C;  m_i = max_c z_ic;  s_i = Σ_c exp(z_ic - m_i);  S_i = Σ_c t'_ic
 *   l_i = S_i·log s_i + Σ_{c: t'_ic != 0} t'_ic·(m_i - z_ic)   (no overflow for any finite z)
 *   w_i = sample_weight_i · (class_weight[label_i], or Σ_c t_ic·class_weight_c), class_weight (C) or NULL
 *   grad_ic = scale·w_i·(S_i·exp(z_ic - m_i)/s_i - t'_ic) */
void nnf_softmax_xent_f32(float *grad, double *row_loss, double *total, const float *logits,
                          const void *labels, int label_bytes, const float *probs,
                          const float *sample_weight, const float *class_weight, double eps,
                          double scale, int64_t n, int64_t c, int nthreads);
void nnf_softmax_xent_f64(double *grad, double *row_loss, double *total, const double *logits,
                          const void *labels, int label_bytes, const double *probs,
                          const double *sample_weight, const double *class_weight, double eps,
                          double scale, int64_t n, int64_t c, int nthreads);

/* Elementwise losses on pred (N x M) and target (N x M), l_i = mean_j ℓ(p_ij, t_ij),
 * grad_ij = scale·w_i·ℓ'(p_ij, t_ij)/M:
 *   NNF_LOSS_BCE_LOGITS  ℓ = (z > 0 ? (1-t)·z : -t·z) + log1p(exp(-|z|)), ℓ' = sigmoid(z) - t
 *   NNF_LOSS_MSE         ℓ = (p-t)²,                             ℓ' = 2(p-t)
 *   NNF_LOSS_HUBER       r = p-t: ℓ = ½r² (|r| <= delta) else delta·(|r| - ½delta),
 *                        ℓ' = clip(r, -delta, delta)  (delta used by Huber only) */
enum nnf_loss { NNF_LOSS_BCE_LOGITS = 0, NNF_LOSS_MSE = 1, NNF_LOSS_HUBER = 2 };
void nnf_elem_loss_f32(int kind, float *grad, double *row_loss, double *total, const float *pred,
                       const float *target, const float *sample_weight, double delta,
                       double scale, int64_t n, int64_t m, int nthreads);
void nnf_elem_loss_f64(int kind, double *grad, double *row_loss, double *total,
                       const double *pred, const double *target, const double *sample_weight,
                       double delta, double scale, int64_t n, int64_t m, int nthreads);

/* ------------------------------------------------------------- optimizers ---- */
/* (issue 4) In place over flat buffers of P elements (params, state: IN/OUT, overwritten;
 * grads: IN). g = grads + weight_decay·params when weight_decay != 0 (not for decoupled Adam).
 * Arithmetic in the buffers' type, hyperparameters cast to it (the wrappers reject an eps,
 * momentum, beta or rho that the float cast takes out of range). Elementwise: split into fixed
 * blocks across threads above a size threshold; results do not depend on nthreads.
 * Decaying states (momentum velocity, Adam's m and v, RMSprop's sq and velocity) are stored as
 * +0 where their magnitude falls below the smallest normal number (subnormal arithmetic costs
 * ~100 cycles per operation on x86; optim.c).
 *
 * SGD: v = momentum·v + g (v = g when momentum == 0; velocity may be NULL then);
 *      params -= lr·(nesterov ? g + momentum·v : v). */
void nnf_sgd_update_f32(float *params, float *velocity, const float *grads, double lr,
                        double momentum, int nesterov, double weight_decay, int64_t p,
                        int nthreads);
void nnf_sgd_update_f64(double *params, double *velocity, const double *grads, double lr,
                        double momentum, int nesterov, double weight_decay, int64_t p,
                        int nthreads);
/* Adam / AdamW (decoupled): m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g²;
 *   params -= lr/(1-b1^step) · m / (√v/√(1-b2^step) + eps)  [ + lr·wd·params if decoupled ]
 * Bias corrections are computed once per call in double. step >= 1. */
void nnf_adam_update_f32(float *params, float *m, float *v, const float *grads, double lr,
                         double beta1, double beta2, double eps, double weight_decay,
                         int decoupled, int64_t step, int64_t p, int nthreads);
void nnf_adam_update_f64(double *params, double *m, double *v, const double *grads, double lr,
                         double beta1, double beta2, double eps, double weight_decay,
                         int decoupled, int64_t step, int64_t p, int nthreads);
/* RMSprop: sq = rho·sq + (1-rho)·g²; u = g/(√sq + eps); with velocity (may be NULL when
 * momentum == 0): v = momentum·v + u, u = v; params -= lr·u. */
void nnf_rmsprop_update_f32(float *params, float *sq, float *velocity, const float *grads,
                            double lr, double rho, double eps, double momentum,
                            double weight_decay, int64_t p, int nthreads);
void nnf_rmsprop_update_f64(double *params, double *sq, double *velocity, const double *grads,
                            double lr, double rho, double eps, double momentum,
                            double weight_decay, int64_t p, int nthreads);
/* Adagrad: acc += g²; params -= lr·g/(√acc + eps). */
void nnf_adagrad_update_f32(float *params, float *acc, const float *grads, double lr,
                            double eps, double weight_decay, int64_t p, int nthreads);
void nnf_adagrad_update_f64(double *params, double *acc, const double *grads, double lr,
                            double eps, double weight_decay, int64_t p, int nthreads);
/* Global L2 norm of grads (P) into *norm (double; Σg² over fixed blocks, the block partials
 * summed in order, so bit-identical for any nthreads; rescaled by max|g| if the plain sum
 * under- or overflows). If *norm > max_norm: grads *= (T)(max_norm / *norm) in place. */
void nnf_clip_grad_norm_f32(double *norm, float *grads, double max_norm, int64_t p,
                            int nthreads);
void nnf_clip_grad_norm_f64(double *norm, double *grads, double max_norm, int64_t p,
                            int nthreads);

/* ---------------------------------------------------------------- dropout ---- */
/* (issue 4)  y[i] = x[i] * (keep_i ? scale : 0) over n contiguous values, scale = (T)(1/(1-rate)),
 * rate in [0, 1). keep_i is a pure function of (seed, step, i), on uint64 modulo 2^64:
 *   mix64(z) = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
 *              return z ^ (z >> 31)                           (SplitMix64 finaliser)
 *   key      = mix64(mix64(seed) ^ step)
 *   bits_i   = mix64(key + (i + 1) * 0x9E3779B97F4A7C15)     (SplitMix64 output i from key)
 *   keep_i   = (double)(bits_i >> 11) * 2^-53 >= rate
 * so masks do not depend on nthreads (src/nnfast/backends/_ref_dropout.py computes the same bits).
 * NaN in x stays NaN where dropped (x * 0). backward is the same map applied to dy. y may equal x.
 */
void nnf_dropout_fwd_f32(float *y, const float *x, int64_t n, double rate, uint64_t seed,
                         uint64_t step, int nthreads);
void nnf_dropout_fwd_f64(double *y, const double *x, int64_t n, double rate, uint64_t seed,
                         uint64_t step, int nthreads);
void nnf_dropout_bwd_f32(float *dx, const float *dy, int64_t n, double rate, uint64_t seed,
                         uint64_t step, int nthreads);
void nnf_dropout_bwd_f64(double *dx, const double *dy, int64_t n, double rate, uint64_t seed,
                         uint64_t step, int nthreads);

/* ------------------------------------------------------------- reductions ---- */
/* (issue 4)  x (N, M) row-major contiguous.
 *   argmax_rows   out[i] = first j with x[i, j] maximal (the first NaN wins, as np.argmax); M >= 1
 *   accuracy      returns #{i : argmax_rows(x)[i] == labels[i]} (labels int64, N of them)
 *   column_sums   out[j] (+)= (T) sum_i x[i, j], the sum in double, rows in order (parallel over
 *                 column blocks, so every thread count gives the same bits); accumulate = 1 adds.
 *                 float32 sums cannot overflow the double (3e38 + 3e38 - 3e38 = 3e38); the
 *                 rounding to float32 gives +-inf only when the sum itself exceeds FLT_MAX.
 */
void nnf_argmax_rows_f32(int64_t *out, const float *x, int64_t N, int64_t M, int nthreads);
void nnf_argmax_rows_f64(int64_t *out, const double *x, int64_t N, int64_t M, int nthreads);
int64_t nnf_accuracy_f32(const float *x, const int64_t *labels, int64_t N, int64_t M,
                         int nthreads);
int64_t nnf_accuracy_f64(const double *x, const int64_t *labels, int64_t N, int64_t M,
                         int nthreads);
void nnf_column_sums_f32(float *out, const float *x, int64_t N, int64_t M, int accumulate,
                         int nthreads);
void nnf_column_sums_f64(double *out, const double *x, int64_t N, int64_t M, int accumulate,
                         int nthreads);
/* all_finite   returns 1 when no value of x[0:n] (any layout: n values from x) is NaN or +-Inf,
 *              else 0; an integer test of the exponent bits, so every input (subnormals, -0.0,
 *              signalling NaNs) gives the same answer as np.isfinite(x).all() (finite.c). */
int nnf_all_finite_f32(const float *x, int64_t n);
int nnf_all_finite_f64(const double *x, int64_t n);

/* ---------------------------------------------------------- training step ---- */
/* (issue 13) One training step of a Sequential MLP in one call: the per-layer path of
 * src/nnfast/engine/training.py (compute_gradients + apply_gradients) with the same kernels in
 * the same order, so the same bits. The caller (src/nnfast/_native/_step.pxi) checked and built
 * everything; workspace arrays hold `capacity` rows, row stride = the layer's width.
 *   layer kinds: DENSE y = act(in W + b) (z stored when act reads it; dz, dx workspace);
 *                ACT y = act(in) (NNF_ACT_IDENTITY: passes its input on, as a fused head);
 *                DROPOUT (rate 0: passes its input on); FLATTEN, RESHAPE (the same rows);
 *                (issue 18, channels last, fields in img: struct nnf_step_img below)
 *                CONV2D y = act(conv(in, W) + b) as nnf_conv2d_fwd/bwd_* (z, dz, dx as DENSE;
 *                img->g without N: the step sets N = n per call); MAXPOOL2D (img->argmax:
 *                capacity x m int64 workspace), AVGPOOL2D (img->g), GLOBAL_AVG_POOL (k = P·m);
 *                BATCHNORM over m / img->channels rows per sample: training forward with batch
 *                statistics (img->xhat workspace, img->inv_std (C)), moving statistics updated in
 *                place (img->moving_mean, moving_var) as nnf_batchnorm_train_fwd_* does; W, dW:
 *                gamma (NULL: scale off), b, db: beta (NULL: center off).
 *   in/out: set by the step (the layer's input and output rows of this batch).
 *   k, m: values per row in and out. Layers with parameters own params[woff, woff + wsize)
 *   (W: dense k·m, conv KH·KW·C·F, batch norm C) and params[boff, boff + bsize) (b) of the flat
 *   buffer (grads alike); woff/boff < 0: none (a dense layer without bias: b NULL, db a scratch
 *   vector of M for the discarded column sums); l1, l2: the kernel regularizer's gradient
 *   dW += (T)(W·(T)(2·l2)), dW += (T)(sign(W)·(T)l1) (dense, conv; its loss is added by the
 *   caller, from the weights before the step).
 *   loss: NNF_STEP_LOSS_XENT (softmax cross-entropy: int32/int64 labels when label_bytes is 4 or
 *   8, else probabilities) or an enum nnf_loss; "mean" reduction; dout (capacity x C) and
 *   row_loss (capacity, double) are workspace. OUT *loss = Σ_i w_i·l_i / N.
 *   optimizer: each layer's W and b are updated right after its backward (elementwise
 *   kernels: the same bits as one call over the buffer); W with weight_decay, b with it when
 *   bias_decay != 0 (Keras' optimizers) and without it otherwise (scikit-learn's L2 term);
 *   clipnorm > 0: clip the whole gradient first, then update, after the backward pass
 *   (Optimizer.step's order). lr and the step count t (Adam's bias correction) come from the
 *   caller, per call.
 *   batch rows: idx != NULL gathers rows idx[row0 .. row0+n) of x, y, sample_weight into xb, yb,
 *   wb (np.take); else rows row0 .. row0+n are read in place. k0: values per row of x;
 *   y_row_bytes: bytes per row of y. dstep: the dropout step (model._step).
 * Returns NNF_OK, or NNF_ERR_NOMEM from a GEMM (the forward's first GEMM takes the thread's
 * packing workspace, so later ones do not fail; then no weight has changed), a convolution's
 * im2col block or batch normalization's partial sums (a batch-norm forward before it may
 * then have moved its moving statistics, as the per-layer path would have). A convolution's
 * backward asks for a larger block than its forward; should that fail, the layers after it
 * have been updated already (the per-layer path would have updated none). */
enum nnf_step_kind { NNF_STEP_DENSE = 0, NNF_STEP_ACT = 1, NNF_STEP_DROPOUT = 2,
                     NNF_STEP_FLATTEN = 3, NNF_STEP_CONV2D = 4, NNF_STEP_MAXPOOL2D = 5,
                     NNF_STEP_AVGPOOL2D = 6, NNF_STEP_GLOBAL_AVG_POOL = 7,
                     NNF_STEP_BATCHNORM = 8, NNF_STEP_RESHAPE = 9 };
struct nnf_step_img;   /* the image layers' fields, defined after the convolution section */
enum nnf_opt_kind { NNF_OPT_SGD = 0, NNF_OPT_ADAM = 1, NNF_OPT_RMSPROP = 2, NNF_OPT_ADAGRAD = 3 };
#define NNF_STEP_LOSS_XENT 3
typedef struct {
    int kind, act;
    double alpha;
    int64_t k, m;                  /* values per row in and out */
    void *W, *b, *dW, *db;         /* views of the flat buffers; b, db NULL: no bias */
    int64_t woff, boff, wsize, bsize;
    double l1, l2;
    double rate;                   /* DROPOUT */
    uint64_t seed;
    void *y, *z, *dz, *dx;         /* workspace; NULL where the layer needs none */
    const void *in, *out;          /* set by the step */
    struct nnf_step_img *img;      /* CONV2D, pools, BATCHNORM; NULL for the others */
} nnf_step_layer_t;
typedef struct {
    int kind, label_bytes;
    double label_smoothing, delta;
    void *dout, *row_loss;
} nnf_step_loss_t;
typedef struct {
    int kind, nesterov, decoupled, bias_decay;
    double momentum, beta1, beta2, eps, rho, weight_decay, clipnorm;
    void *params, *grads, *s0, *s1;   /* s0, s1: SGD velocity; Adam m, v; RMSprop sq, velocity;
                                         Adagrad acc (NULL where the optimizer keeps none) */
    int64_t p;
} nnf_step_opt_t;
int nnf_mlp_train_step_f32(double *loss, nnf_step_layer_t *layers, int64_t nlayers,
                           int64_t first, const nnf_step_loss_t *ls, const nnf_step_opt_t *o,
                           const float *x, const void *y, int64_t y_row_bytes, const float *sw,
                           const int64_t *idx, int64_t row0, int64_t n, int64_t k0, float *xb,
                           void *yb, float *wb, double lr, int64_t t, uint64_t dstep, int nt);
int nnf_mlp_train_step_f64(double *loss, nnf_step_layer_t *layers, int64_t nlayers,
                           int64_t first, const nnf_step_loss_t *ls, const nnf_step_opt_t *o,
                           const double *x, const void *y, int64_t y_row_bytes, const double *sw,
                           const int64_t *idx, int64_t row0, int64_t n, int64_t k0, double *xb,
                           void *yb, double *wb, double lr, int64_t t, uint64_t dstep, int nt);
/* ------------------------------------------------------ convolution (conv.c) ---- */
/* (issue 18) Channels-last images. Letters: N images, H x W input pixels, C input channels,
 * KH x KW kernel, F filters, OH x OW output pixels, P = OH*OW, Kc = KH*KW*C.
 * Geometry (the wrappers derive it from Keras' padding rules, docs/conv.md):
 *   input pixel of output (oh, ow) and tap (kh, kw): ih = oh*SH - PT + kh*DH,
 *   iw = ow*SW - PL + kw*DW; taps outside the image read 0 (conv, avg pool: excluded from the
 *   count; max pool: skipped). Every window holds at least one pixel of the image. */
typedef struct {
    int64_t N, H, W, C, KH, KW, F, SH, SW, DH, DW, PT, PL, OH, OW;
} nnf_conv_geom_t;

/* x (N, H, W, C), Wt (KH, KW, C, F) (Keras' kernel layout: a Kc x F matrix), b (F) or NULL,
 * y, z, dy, dz (N, OH, OW, F).
 *   forward   z = conv(x, Wt) + b (stored when z != NULL); y = act(z). Three methods, chosen
 *             by the shapes (docs/conv.md): a direct kernel for one input channel with unit
 *             width stride and dilation; an implicit GEMM packing straight from x for narrow F;
 *             else im2col of whole-image blocks (COL_BLOCK, conv.c) and one GEMM per block
 *             with the bias/activation epilogue. softmax/log_softmax run over F after.
 *             A 1x1 kernel with stride 1 reads x in place (no workspace).
 *   backward  dz = dy * act'(z, y) (dz may be NULL only for identity); dW (Kc x F) = cols^T dz,
 *             over fixed blocks/segments summed in order (the same bits for any thread count);
 *             db (F) = column sums of dz (double, row order) or
 *             skipped when NULL; dx = col2im(dz Wt^T), skipped when dx == NULL: every input
 *             pixel gathers its taps in (kh, kw) order. accumulate = 1: dW += ..., db += ...
 * Return NNF_ERR_NOMEM when the im2col workspace or a GEMM's cannot be had; then an
 * accumulated dW/db is left as it was (accumulation goes through a private sum first). */
int nnf_conv2d_fwd_f32(float *y, float *z, const float *x, const float *Wt, const float *b,
                       const nnf_conv_geom_t *g, int act, float alpha, int nthreads);
int nnf_conv2d_fwd_f64(double *y, double *z, const double *x, const double *Wt,
                       const double *b, const nnf_conv_geom_t *g, int act, double alpha,
                       int nthreads);
int nnf_conv2d_bwd_f32(float *dx, float *dW, float *db, float *dz, const float *dy,
                       const float *x, const float *Wt, const float *z, const float *y,
                       const nnf_conv_geom_t *g, int act, float alpha, int accumulate,
                       int nthreads);
int nnf_conv2d_bwd_f64(double *dx, double *dW, double *db, double *dz, const double *dy,
                       const double *x, const double *Wt, const double *z, const double *y,
                       const nnf_conv_geom_t *g, int act, double alpha, int accumulate,
                       int nthreads);

/* ---------------------------------------------------------- pooling (pool.c) ---- */
/* (issue 18) x (N, H, W, C), y / dy (N, OH, OW, C); the window is KH x KW (F, DH, DW unused,
 * DH = DW = 1). Parallel over output rows (forward, average backward) or images (max backward).
 *   max forward   y = window max; argmax (N, OH, OW, C) int64 = (ih*W + iw)*C + c of the first
 *                 maximum in (kh, kw) order (the first NaN wins: NaN propagates)
 *   max backward  dx (overwritten) = 0, then dx[n][argmax] += dy, outputs in order
 *   avg forward   y = window sum (in T, (kh, kw) order) / count of its pixels inside the image
 *                 (Keras "same" excludes the padding: torch's count_include_pad=False)
 *   avg backward  dx[pixel] = sum over the windows holding it of dy / count, in (oh, ow) order
 *   global avg    y (N, C) = mean over H*W (double sum, pixel order); backward dx = dy / (H*W) */
void nnf_maxpool2d_fwd_f32(float *y, int64_t *argmax, const float *x, const nnf_conv_geom_t *g,
                           int nthreads);
void nnf_maxpool2d_fwd_f64(double *y, int64_t *argmax, const double *x,
                           const nnf_conv_geom_t *g, int nthreads);
void nnf_maxpool2d_bwd_f32(float *dx, const float *dy, const int64_t *argmax,
                           const nnf_conv_geom_t *g, int nthreads);
void nnf_maxpool2d_bwd_f64(double *dx, const double *dy, const int64_t *argmax,
                           const nnf_conv_geom_t *g, int nthreads);
void nnf_avgpool2d_fwd_f32(float *y, const float *x, const nnf_conv_geom_t *g, int nthreads);
void nnf_avgpool2d_fwd_f64(double *y, const double *x, const nnf_conv_geom_t *g, int nthreads);
void nnf_avgpool2d_bwd_f32(float *dx, const float *dy, const nnf_conv_geom_t *g, int nthreads);
void nnf_avgpool2d_bwd_f64(double *dx, const double *dy, const nnf_conv_geom_t *g,
                           int nthreads);
void nnf_gavgpool2d_fwd_f32(float *y, const float *x, int64_t N, int64_t P, int64_t C,
                            int nthreads);
void nnf_gavgpool2d_fwd_f64(double *y, const double *x, int64_t N, int64_t P, int64_t C,
                            int nthreads);
void nnf_gavgpool2d_bwd_f32(float *dx, const float *dy, int64_t N, int64_t P, int64_t C,
                            int nthreads);
void nnf_gavgpool2d_bwd_f64(double *dx, const double *dy, int64_t N, int64_t P, int64_t C,
                            int nthreads);

/* ------------------------------------------------ batch normalization (batchnorm.c) ---- */
/* (issue 18) x, y, xhat, dy, dx (R, C): R = every position (N*H*W...), C channels (last axis).
 * gamma, beta (C) or NULL (1 and 0). Per-channel sums run over fixed chunks of rows, each
 * chunk's partial in double, the partials added in chunk order: bits do not depend on nthreads.
 *   train forward  mean = sum x / R; var = sum (x - mean)^2 / R (biased, as Keras 3; two
 *                  passes); inv_std = 1/sqrt(var + eps); xhat = (x - mean)*inv_std;
 *                  y = gamma*xhat + beta; moving_mean = moving_mean*momentum + mean*(1-momentum),
 *                  moving_var likewise with var (both in place, in double then rounded). R >= 1.
 *   infer forward  y = (x - moving_mean) * (gamma/sqrt(moving_var + eps)) + beta
 *   backward       dbeta = sum dy; dgamma = sum dy*xhat; dx = gamma*inv_std*(dy - dbeta/R -
 *                  xhat*dgamma/R) (skipped when dx == NULL); accumulate = 1 adds to dgamma,
 *                  dbeta. dgamma/dbeta may be NULL (not computed).
 * Return NNF_ERR_NOMEM (nothing written) when the partial sums cannot be had. */
int nnf_batchnorm_train_fwd_f32(float *y, float *xhat, float *inv_std, float *moving_mean,
                                float *moving_var, const float *x, const float *gamma,
                                const float *beta, double momentum, double eps, int64_t R,
                                int64_t C, int nthreads);
int nnf_batchnorm_train_fwd_f64(double *y, double *xhat, double *inv_std, double *moving_mean,
                                double *moving_var, const double *x, const double *gamma,
                                const double *beta, double momentum, double eps, int64_t R,
                                int64_t C, int nthreads);
int nnf_batchnorm_infer_fwd_f32(float *y, const float *x, const float *gamma, const float *beta,
                                const float *moving_mean, const float *moving_var, double eps,
                                int64_t R, int64_t C, int nthreads);
int nnf_batchnorm_infer_fwd_f64(double *y, const double *x, const double *gamma,
                                const double *beta, const double *moving_mean,
                                const double *moving_var, double eps, int64_t R, int64_t C,
                                int nthreads);
int nnf_batchnorm_bwd_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                          const float *xhat, const float *gamma, const float *inv_std,
                          int64_t R, int64_t C, int accumulate, int nthreads);
int nnf_batchnorm_bwd_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                          const double *xhat, const double *gamma, const double *inv_std,
                          int64_t R, int64_t C, int accumulate, int nthreads);

/* ------------------------------------------ inference plan of a network (netplan.c) ---- */
/* (issues 13, 18) y = op_{n-1}( ... op_0(x)) over N images (or rows) in one call: the forward
 * pass, predict mode, of a network with convolution, pooling, batch-norm, dense and activation
 * layers. A sibling of nnf_mlp_fwd_* rather than more kinds in its op list: these ops carry a
 * window geometry and per-channel arrays, and the MLP plan's batch-1 path (row blocks, a
 * transposed x read in place) stays as it is. Reshape, Flatten and inference-time Dropout have
 * no op: an image is one contiguous row of n_in elements (channels last) in every layout.
 * Each op reads n_in and writes n_out elements per image:
 *   NNF_NET_DENSE      y = act(x W + b), W (n_in x n_out), b (n_out) or NULL: nnf_dense_fwd_*
 *   NNF_NET_ACT        y = act(x) over rows of n_out elements: nnf_activation_fwd_* (in place
 *                      in the workspace)
 *   NNF_NET_CONV2D     y = act(conv(x, W) + b), W (KH, KW, C, F), geometry g (g.N is ignored:
 *                      set per block): nnf_conv2d_fwd_* with z = NULL
 *   NNF_NET_MAXPOOL2D  nnf_maxpool2d_fwd_* (its argmax goes to the caller's `arg` workspace)
 *   NNF_NET_AVGPOOL2D  nnf_avgpool2d_fwd_*
 *   NNF_NET_GAVGPOOL2D y (C) = mean over the n_in / C pixels: nnf_gavgpool2d_fwd_*, C = g.C
 *   NNF_NET_BATCHNORM  y = (x - mean) * gamma / sqrt(var + eps) + beta over channels g.C:
 *                      nnf_batchnorm_infer_fwd_* (gamma, beta NULL: 1 and 0)
 * nops >= 1. x (N, n_in of op 0) row-major contiguous; y (N, n_out of the last op). Images
 * run through all ops in blocks of `images` (nnf_net_block_images), ping-ponging between ws0
 * and ws1, each of min(N, images) x (widest n_out of the ops but the last) elements; arg holds
 * min(N, images) x (largest max-pool n_out) int64 (NULL without max pooling). Every op is the
 * kernel the layer-by-layer path calls, and an image's result does not depend on the images
 * sharing the call (tests/test_plan_conv.py checks it per kernel), so y is bit-identical to
 * running the layers one by one over the whole batch, for any `images` and nthreads.
 * Returns the first failing kernel's status (NNF_ERR_NOMEM); y then holds the blocks finished
 * before. */
enum nnf_net_kind {
    NNF_NET_DENSE = 0, NNF_NET_ACT = 1, NNF_NET_CONV2D = 2, NNF_NET_MAXPOOL2D = 3,
    NNF_NET_AVGPOOL2D = 4, NNF_NET_GAVGPOOL2D = 5, NNF_NET_BATCHNORM = 6
};
typedef struct {
    int kind;                 /* enum nnf_net_kind */
    const void *W, *b;        /* dense, conv: the kernel and bias (or NULL); float or double */
    const void *gamma, *beta; /* batch norm: (C) or NULL */
    const void *mean, *var;   /* batch norm: the moving statistics (C) */
    nnf_conv_geom_t g;        /* conv, pools: the window of one image; gap, batch norm: g.C */
    int64_t n_in, n_out;      /* elements per image read and written */
    int act;                  /* dense, act, conv: enum nnf_act */
    double alpha;             /* its parameter */
    double eps;               /* batch norm */
} nnf_net_op_t;
/* Images per block: the block's widest activation in about 2 MiB (the reasons: netplan.c). */
int64_t nnf_net_block_images(const nnf_net_op_t *ops, int64_t nops, int64_t K, int dtype_size);
int nnf_net_fwd_f32(float *y, const float *x, const nnf_net_op_t *ops, int64_t nops, float *ws0,
                    float *ws1, int64_t *arg, int64_t N, int64_t images, int nthreads);
int nnf_net_fwd_f64(double *y, const double *x, const nnf_net_op_t *ops, int64_t nops,
                    double *ws0, double *ws1, int64_t *arg, int64_t N, int64_t images,
                    int nthreads);

/* ------------------------------------- training step: the image layers' fields (issue 18) ---- */
/* What nnf_step_layer_t.img points to (see the training step above). */
typedef struct nnf_step_img {
    nnf_conv_geom_t g;             /* CONV2D, MAXPOOL2D, AVGPOOL2D: per image (N set per call) */
    int64_t *argmax;               /* MAXPOOL2D: capacity x m workspace */
    int64_t channels;              /* BATCHNORM: C; GLOBAL_AVG_POOL: C (P = k / C) */
    double momentum, eps;          /* BATCHNORM */
    void *xhat, *inv_std, *moving_mean, *moving_var;
} nnf_step_img_t;

#ifdef __cplusplus
}
#endif
#endif /* NNFAST_H */
