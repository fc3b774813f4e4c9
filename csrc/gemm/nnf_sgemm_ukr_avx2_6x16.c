/* nnf_sgemm_ukr_avx2_6x16: 6x16 float register tile, 256-bit vectors (avx2,fma).
 * The kernel text is ukr_simd.h (shared by every SIMD ISA); this file only fixes the ISA. */
#if defined(__x86_64__)
#define UKR_T float
#define UKR_V __m256
#define UKR_VL 8
#define UKR_MR 6
#define UKR_NV 2
#define UKR_NAME nnf_sgemm_ukr_avx2_6x16
#define UKR_EDGE_NAME nnf_sgemm_ukr_avx2_6x16_edge
#define UKR_ATTR __attribute__((target("avx2,fma")))
#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(x) _mm256_set1_ps(x)
#define V_LOADU(p) _mm256_loadu_ps(p)
#define V_STOREU(p, v) _mm256_storeu_ps((p), (v))
#define V_BCAST(p) _mm256_set1_ps(*(p))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define V_MUL(a, b) _mm256_mul_ps((a), (b))
#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_MASK(r) _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_LOADU_N(p, r) _mm256_maskload_ps((p), V_MASK(r))
#define V_STOREU_N(p, r, v) _mm256_maskstore_ps((p), V_MASK(r), (v))
#define UKR_ROWS_NAME nnf_sgemm_rows_avx2
#include "gemm_kernels.h"
#include "ukr_simd.h"
#define UKR_CONV1_NAME nnf_sconv1_avx2
#define CV1_DW_R 2   /* 16 registers: 2 rows x 6 filters of gradient, 2 of x, 1 sum */
#define UKR_CONV1_DW_NAME nnf_sconv1_dw_avx2
#include "conv1_simd.h"
#define UKR_CONVDX_NAME nnf_sconvdx_avx2
#define CONVDX_P 2   /* 2 pixels x 4 vectors + 4 of W: 12 of 16 registers */
#define UKR_CONVFW_NAME nnf_sconvfw_avx2
#define UKR_CONVDW_NAME nnf_sconvdw_avx2
#include "conv_lanes_simd.h"
#define UKR_MAXPOOL_NAME nnf_smaxpool_avx2
#define POOL_AVX2_F32
#include "maxpool_simd.h"
#endif
