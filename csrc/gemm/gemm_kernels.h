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
/* FMA throughput loop: `iters` rounds of independent FMA chains; returns flops done. */
typedef double (*nnf_peak_fn)(int64_t iters, float *sink);

/* A kernel path for one dtype: register tile and cache blocks (arithmetic in dispatch.c). */
typedef struct {
    int mr, nr;
    int64_t mc, kc, nc;
    nnf_ukr_f32 ukr;
    nnf_ukr_edge_f32 ukr_edge;
    nnf_rows_f32 rows;
} nnf_kernel_f32_t;
typedef struct {
    int mr, nr;
    int64_t mc, kc, nc;
    nnf_ukr_f64 ukr;
    nnf_ukr_edge_f64 ukr_edge;
    nnf_rows_f64 rows;
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
double nnf_peak_avx2_f32(int64_t iters, float *sink);
double nnf_peak_avx2_f64(int64_t iters, float *sink);
double nnf_peak_avx512_f32(int64_t iters, float *sink);
double nnf_peak_avx512_f64(int64_t iters, float *sink);
#endif

#endif /* NNF_GEMM_KERNELS_H */
