/* Internal interface between the GEMM framework (gemm.c), the microkernels (one file each)
 * and the dispatch table (../dispatch.c). Not part of the public API in nnfast.h.
 *
 * Microkernel contract, for i < MR, j < NR (MR x NR is the kernel's register tile):
 *   c[i*ldc + j] = alpha * sum_{p<k} a[i*rsa + p*csa] * b[p*ldb + j] + beta * c[i*ldc + j]
 *   beta == 0: c is written without being read (NaN/Inf in C are ignored).
 * Packed operands: A micro-panel rsa = 1, csa = MR; B micro-panel ldb = NR (64-byte aligned).
 * The framework may also pass unpacked A (any rsa/csa) and unpacked row-major B (ldb), full
 * tiles only. Every kernel accumulates each element as one chain over p = 0..k-1 (FMA where the
 * ISA has it), then applies alpha and beta in the same way for every tile, so the result of an
 * element does not depend on which path, tile or thread computed it.
 */
#ifndef NNF_GEMM_KERNELS_H
#define NNF_GEMM_KERNELS_H

#include <stdint.h>

typedef void (*nnf_ukr_f32)(int64_t k, float alpha, const float *a, int64_t rsa, int64_t csa,
                            const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
typedef void (*nnf_ukr_f64)(int64_t k, double alpha, const double *a, int64_t rsa, int64_t csa,
                            const double *b, int64_t ldb, double beta, double *c, int64_t ldc);
/* Bottom-edge variants: the same kernel for the first mr rows only (1 <= mr < MR). */
typedef void (*nnf_ukr_edge_f32)(int mr, int64_t k, float alpha, const float *a,
                                 int64_t rsa, int64_t csa, const float *b, int64_t ldb,
                                 float beta, float *c, int64_t ldc);
typedef void (*nnf_ukr_edge_f64)(int mr, int64_t k, double alpha, const double *a,
                                 int64_t rsa, int64_t csa, const double *b, int64_t ldb,
                                 double beta, double *c, int64_t ldc);
/* Few-row kernels: C[0:mr, 0:n] (1 <= mr <= NNF_ROWS_MAX, any n) for one K block, B row-major
 * and read in place (not packed), same per-element arithmetic as the microkernels. */
#define NNF_ROWS_MAX 4
typedef void (*nnf_rows_f32)(int mr, int64_t k, float alpha, const float *a, int64_t rsa,
                             int64_t csa, const float *b, int64_t ldb, float beta, float *c,
                             int64_t ldc, int64_t n);
typedef void (*nnf_rows_f64)(int mr, int64_t k, double alpha, const double *a, int64_t rsa,
                             int64_t csa, const double *b, int64_t ldb, double beta, double *c,
                             int64_t ldc, int64_t n);
/* Single-channel direct convolution, one output row (conv1_simd.h): out[f*ldo + ow] for
 * ow < roundup(OW, NNF_CONV1_CHUNK), f < F, from rows[kh] (NULL: all zero) read at
 * [ow + kw]. ldo and the rows' readable length are multiples of / padded to the chunk. */
#define NNF_CONV1_CHUNK 32
typedef void (*nnf_conv1_f32)(int64_t OW, int64_t KH, int64_t KW, int64_t F,
                              const float *const *rows, const float *W, float *out,
                              int64_t ldo);
typedef void (*nnf_conv1_f64)(int64_t OW, int64_t KH, int64_t KW, int64_t F,
                              const double *const *rows, const double *W, double *out,
                              int64_t ldo);
/* Its filter gradient (conv1_simd.h) over R <= NNF_CONV1_DW_R output rows rr in order:
 * acc[(tap*F + f)*NNF_CONV1_CHUNK + ow % CHUNK] += rows[rr*KH + kh][ow + kw] *
 * dzT[(rr*F + f)*ldo + ow] for ow < OW; dzT zero from OW to ldo. Any R: a kernel takes
 * as many rows at once as its registers hold (AVX-512 4, AVX2 2), callers NNF_CONV1_DW_R. */
#define NNF_CONV1_DW_R 4
typedef void (*nnf_conv1_dw_f32)(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
                                 const float *const *rows, const float *dzT, int64_t ldo,
                                 float *acc);
typedef void (*nnf_conv1_dw_f64)(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
                                 const double *const *rows, const double *dzT, int64_t ldo,
                                 double *acc);
/* A convolution's filter gradient, lanes along the filters (conv_lanes_simd.h): out (ntap x F)
 * (+)= the sums for a run of ntap adjacent taps over np output pixels from p0, one FMA chain
 * per element. Callers cut the pixels into blocks of NNF_CONVDW_BLOCK (dz's block stays in L1
 * across the runs; shorter chains round less). */
#define NNF_CONVDW_BLOCK 256
#define NNF_CONVDW_PROTO(T, NAME)                                                           \
    void NAME(int64_t p0, int64_t np, int64_t OH, int64_t OW, int64_t si, int64_t sr,       \
              int64_t sx, const T *x, int64_t ntap, const T *dz, int64_t F, int accumulate, \
              T *out)
/* A convolution's forward sums, lanes along the filters (conv_lanes_simd.h): R <= 8 output
 * pixels (window origins xo[r]) x every filter, the taps as nruns runs of len adjacent x. */
#define NNF_CONVFW_PIXELS 8
#define NNF_CONVFW_PROTO(T, NAME)                                                           \
    void NAME(int64_t R, const T *const *xo, const int64_t *roff, int64_t nruns,            \
              int64_t len, const T *W, int64_t F, T *out, int64_t ldo)
/* A convolution's input gradient, input rows [r0, r1), unit width stride and dilation, no
 * width padding, lanes along a kernel row's KW*C taps (conv_lanes_simd.h): the GEMM's im2col
 * gradient and col2im fused, the same bits. KW*C at most NNF_CONVDX_VECS vectors, KH <= 64. */
#define NNF_CONVDX_VECS 4
#define NNF_CONVDX_PROTO(T, NAME)                                                           \
    void NAME(int64_t r0, int64_t r1, int64_t H, int64_t W, int64_t C, int64_t OH,          \
              int64_t OW, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t PT,        \
              int64_t DH, const T *G, const T *WT, T *dx)
typedef NNF_CONVDX_PROTO(float, (*nnf_convdx_f32));
typedef NNF_CONVDX_PROTO(double, (*nnf_convdx_f64));
typedef NNF_CONVFW_PROTO(float, (*nnf_convfw_f32));
typedef NNF_CONVFW_PROTO(double, (*nnf_convfw_f64));
typedef NNF_CONVDW_PROTO(float, (*nnf_convdw_f32));
typedef NNF_CONVDW_PROTO(double, (*nnf_convdw_f64));
/* Max pooling over whole windows of one output row, lanes along the channels
 * (maxpool_simd.h): y and the argmax of npx output pixels; NULL on the generic path, which
 * runs pool_tmpl.h's scalar loop. */
typedef void (*nnf_maxpool_f32)(int64_t npx, int64_t C, int64_t sx, const int64_t *toff,
                                int64_t ntaps, const float *src, int64_t base, float *y,
                                int64_t *arg);
typedef void (*nnf_maxpool_f64)(int64_t npx, int64_t C, int64_t sx, const int64_t *toff,
                                int64_t ntaps, const double *src, int64_t base, double *y,
                                int64_t *arg);
/* FMA throughput loop: `iters` rounds of independent FMA chains; returns flops done. */
typedef double (*nnf_peak_fn)(int64_t iters, float *sink);

/* A kernel path for one dtype: register tile and cache blocks (arithmetic in dispatch.c). */
typedef struct {
    int mr, nr;
    int64_t mc, kc, nc;
    nnf_ukr_f32 ukr;
    nnf_ukr_edge_f32 ukr_edge;
    nnf_rows_f32 rows;
    nnf_conv1_f32 conv1;
    nnf_conv1_dw_f32 conv1_dw;
    nnf_maxpool_f32 maxpool;
    nnf_convdw_f32 convdw;
    nnf_convfw_f32 convfw;
    nnf_convdx_f32 convdx;
    int vl;   /* lanes per vector (the lanes kernels' chunk) */
} nnf_kernel_f32_t;
typedef struct {
    int mr, nr;
    int64_t mc, kc, nc;
    nnf_ukr_f64 ukr;
    nnf_ukr_edge_f64 ukr_edge;
    nnf_rows_f64 rows;
    nnf_conv1_f64 conv1;
    nnf_conv1_dw_f64 conv1_dw;
    nnf_maxpool_f64 maxpool;
    nnf_convdw_f64 convdw;
    nnf_convfw_f64 convfw;
    nnf_convdx_f64 convdx;
    int vl;
} nnf_kernel_f64_t;

/* Largest register tile of any kernel (sizes the framework's edge-tile buffer). */
#define NNF_MAX_MR 16
#define NNF_MAX_NR 32

/* The active path's kernels (dispatch.c). */
const nnf_kernel_f32_t *nnf_active_kernel_f32(void);
const nnf_kernel_f64_t *nnf_active_kernel_f64(void);
nnf_peak_fn nnf_active_peak(int dtype_size);

/* Test hook (gemm.c): 0 = choose the loop nest by size, 1 = always the small (A in place)
 * nest, 2 = always the packed nest, 3 / 4 = the packed nest with B shared by the team / a
 * column range per thread. Lets the tests run every shape through each. */
extern int nnf_gemm_path_override;
void nnf_gemm_set_path(int path);
/* Test hook: 0 = never take the narrow-n swap (compute C^T = op(B)^T op(A)^T), 1 = by shape. */
extern int nnf_gemm_swap_enabled;
void nnf_gemm_set_swap(int on);
/* Test hook (conv.c): 0 turns off the single-channel direct convolution, to compare it with
 * the implicit GEMM it stands in for. */
void nnf_conv_set_direct(int on);

/* GEMM with an implicit B (gemm.c; used by the convolutions in csrc/nn/conv_tmpl.h):
 * C = op(A)[m,k] @ B[k,n] (beta 0 or 1 on C), where B exists only as packb, which writes the
 * NR-column panel of B[p0:p0+kc, j0:j0+nc] at dst (element (p, j) at p*NR + j; columns past nc
 * zero). tc: C is stored transposed (element (i, j) at C[j*ldc + i]). Runs the small nest (A in
 * place, a packed panel per task), so each element is the same FMA chain over p as in
 * nnf_gemm_* of an explicit B. Returns NNF_OK; NNF_ERR_NOMEM (C untouched); or -1 when m is
 * too large for the small nest (C untouched: the caller takes its explicit path). NR of the
 * active path: nnf_gemm_nr(dtype_size). */
typedef void (*nnf_packb_f32)(void *ctx, float *dst, int64_t p0, int64_t kc, int64_t j0,
                              int64_t nc, int NR);
typedef void (*nnf_packb_f64)(void *ctx, double *dst, int64_t p0, int64_t kc, int64_t j0,
                              int64_t nc, int NR);
int nnf_gemm_cb_f32(float *C, int64_t ldc, int tc, const float *A, int64_t lda, int trans_a,
                    nnf_packb_f32 packb, void *ctx, int64_t m, int64_t n, int64_t k, float beta,
                    int nthreads);
int nnf_gemm_cb_f64(double *C, int64_t ldc, int tc, const double *A, int64_t lda, int trans_a,
                    nnf_packb_f64 packb, void *ctx, int64_t m, int64_t n, int64_t k, double beta,
                    int nthreads);
int nnf_gemm_nr(int dtype_size);

/* Microkernels: nnf_<s|d>gemm_ukr_<isa>_<MR>x<NR>. */
void nnf_sgemm_ukr_generic_4x8(int64_t k, float alpha, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void nnf_sgemm_ukr_generic_4x8_edge(int mr, int64_t k, float alpha, const float *a,
        int64_t rsa, int64_t csa, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void nnf_dgemm_ukr_generic_4x4(int64_t k, double alpha, const double *a, int64_t rsa,
                               int64_t csa, const double *b, int64_t ldb, double beta,
                               double *c, int64_t ldc);
void nnf_dgemm_ukr_generic_4x4_edge(int mr, int64_t k, double alpha, const double *a,
        int64_t rsa, int64_t csa,
        const double *b, int64_t ldb, double beta, double *c, int64_t ldc);
void nnf_sgemm_rows_generic(int mr, int64_t k, float alpha, const float *a, int64_t rsa,
        int64_t csa, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, int64_t n);
void nnf_dgemm_rows_generic(int mr, int64_t k, double alpha, const double *a, int64_t rsa,
        int64_t csa, const double *b, int64_t ldb, double beta, double *c, int64_t ldc, int64_t n);
NNF_CONVFW_PROTO(float, nnf_sconvfw_generic);
NNF_CONVFW_PROTO(double, nnf_dconvfw_generic);
NNF_CONVDW_PROTO(float, nnf_sconvdw_generic);
NNF_CONVDW_PROTO(double, nnf_dconvdw_generic);
void nnf_sconv1_generic(int64_t OW, int64_t KH, int64_t KW, int64_t F, const float *const *rows,
                        const float *W, float *out, int64_t ldo);
void nnf_dconv1_generic(int64_t OW, int64_t KH, int64_t KW, int64_t F,
                        const double *const *rows, const double *W, double *out, int64_t ldo);
void nnf_sconv1_dw_generic(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
        const float *const *rows, const float *dzT, int64_t ldo, float *acc);
void nnf_dconv1_dw_generic(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
        const double *const *rows, const double *dzT, int64_t ldo, double *acc);
double nnf_peak_generic_f32(int64_t iters, float *sink);
double nnf_peak_generic_f64(int64_t iters, float *sink);

#if defined(__x86_64__)
void nnf_sgemm_ukr_avx2_6x16(int64_t k, float alpha, const float *a, int64_t rsa, int64_t csa,
                             const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void nnf_sgemm_ukr_avx2_6x16_edge(int mr, int64_t k, float alpha, const float *a,
        int64_t rsa, int64_t csa, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void nnf_dgemm_ukr_avx2_6x8(int64_t k, double alpha, const double *a, int64_t rsa, int64_t csa,
                            const double *b, int64_t ldb, double beta, double *c, int64_t ldc);
void nnf_dgemm_ukr_avx2_6x8_edge(int mr, int64_t k, double alpha, const double *a,
        int64_t rsa, int64_t csa,
        const double *b, int64_t ldb, double beta, double *c, int64_t ldc);
void nnf_sgemm_ukr_avx512_12x32(int64_t k, float alpha, const float *a, int64_t rsa,
                                int64_t csa, const float *b, int64_t ldb, float beta, float *c,
                                int64_t ldc);
void nnf_sgemm_ukr_avx512_12x32_edge(int mr, int64_t k, float alpha, const float *a,
        int64_t rsa, int64_t csa, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
void nnf_dgemm_ukr_avx512_12x16(int64_t k, double alpha, const double *a, int64_t rsa,
                                int64_t csa, const double *b, int64_t ldb, double beta,
                                double *c, int64_t ldc);
void nnf_dgemm_ukr_avx512_12x16_edge(int mr, int64_t k, double alpha, const double *a,
        int64_t rsa, int64_t csa,
        const double *b, int64_t ldb, double beta, double *c, int64_t ldc);
void nnf_sgemm_rows_avx2(int mr, int64_t k, float alpha, const float *a, int64_t rsa,
        int64_t csa, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, int64_t n);
void nnf_dgemm_rows_avx2(int mr, int64_t k, double alpha, const double *a, int64_t rsa,
        int64_t csa, const double *b, int64_t ldb, double beta, double *c, int64_t ldc, int64_t n);
void nnf_sgemm_rows_avx512(int mr, int64_t k, float alpha, const float *a, int64_t rsa,
        int64_t csa, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, int64_t n);
void nnf_dgemm_rows_avx512(int mr, int64_t k, double alpha, const double *a, int64_t rsa,
        int64_t csa, const double *b, int64_t ldb, double beta, double *c, int64_t ldc, int64_t n);
void nnf_sconv1_avx2(int64_t OW, int64_t KH, int64_t KW, int64_t F, const float *const *rows,
                     const float *W, float *out, int64_t ldo);
void nnf_dconv1_avx2(int64_t OW, int64_t KH, int64_t KW, int64_t F, const double *const *rows,
                     const double *W, double *out, int64_t ldo);
void nnf_sconv1_avx512(int64_t OW, int64_t KH, int64_t KW, int64_t F,
                       const float *const *rows, const float *W, float *out, int64_t ldo);
void nnf_dconv1_avx512(int64_t OW, int64_t KH, int64_t KW, int64_t F,
                       const double *const *rows, const double *W, double *out, int64_t ldo);
void nnf_sconv1_dw_avx2(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
        const float *const *rows, const float *dzT, int64_t ldo, float *acc);
void nnf_dconv1_dw_avx2(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
        const double *const *rows, const double *dzT, int64_t ldo, double *acc);
void nnf_sconv1_dw_avx512(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
        const float *const *rows, const float *dzT, int64_t ldo, float *acc);
void nnf_dconv1_dw_avx512(int64_t R, int64_t OW, int64_t KH, int64_t KW, int64_t F,
        const double *const *rows, const double *dzT, int64_t ldo, double *acc);
#define NNF_MAXPOOL_PROTO(T, NAME)                                                          \
    void NAME(int64_t npx, int64_t C, int64_t sx, const int64_t *toff, int64_t ntaps,       \
              const T *src, int64_t base, T *y, int64_t *arg);
NNF_CONVDX_PROTO(float, nnf_sconvdx_avx2);
NNF_CONVDX_PROTO(double, nnf_dconvdx_avx2);
NNF_CONVDX_PROTO(float, nnf_sconvdx_avx512);
NNF_CONVDX_PROTO(double, nnf_dconvdx_avx512);
NNF_CONVFW_PROTO(float, nnf_sconvfw_avx2);
NNF_CONVFW_PROTO(double, nnf_dconvfw_avx2);
NNF_CONVFW_PROTO(float, nnf_sconvfw_avx512);
NNF_CONVFW_PROTO(double, nnf_dconvfw_avx512);
NNF_CONVDW_PROTO(float, nnf_sconvdw_avx2);
NNF_CONVDW_PROTO(double, nnf_dconvdw_avx2);
NNF_CONVDW_PROTO(float, nnf_sconvdw_avx512);
NNF_CONVDW_PROTO(double, nnf_dconvdw_avx512);
NNF_MAXPOOL_PROTO(float, nnf_smaxpool_avx2)
NNF_MAXPOOL_PROTO(double, nnf_dmaxpool_avx2)
NNF_MAXPOOL_PROTO(float, nnf_smaxpool_avx512)
NNF_MAXPOOL_PROTO(double, nnf_dmaxpool_avx512)
double nnf_peak_avx2_f32(int64_t iters, float *sink);
double nnf_peak_avx2_f64(int64_t iters, float *sink);
double nnf_peak_avx512_f32(int64_t iters, float *sink);
double nnf_peak_avx512_f64(int64_t iters, float *sink);
#endif

#endif /* NNF_GEMM_KERNELS_H */
