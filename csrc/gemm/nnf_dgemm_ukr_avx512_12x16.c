/* nnf_dgemm_ukr_avx512_12x16: 12x16 double register tile, 512-bit vectors (avx512f).
 * The kernel text is ukr_simd.h (shared by every SIMD ISA); this file only fixes the ISA. */
#if defined(__x86_64__)
#define UKR_T double
#define UKR_V __m512d
#define UKR_VL 8
#define UKR_MR 12
#define UKR_NV 2
#define UKR_NAME nnf_dgemm_ukr_avx512_12x16
#define UKR_EDGE_NAME nnf_dgemm_ukr_avx512_12x16_edge
#define UKR_ATTR __attribute__((target("avx512f,avx2,fma")))
#define V_ZERO() _mm512_setzero_pd()
#define V_SET1(x) _mm512_set1_pd(x)
#define V_LOADU(p) _mm512_loadu_pd(p)
#define V_STOREU(p, v) _mm512_storeu_pd((p), (v))
#define V_BCAST(p) _mm512_set1_pd(*(p))
#define V_FMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define V_MUL(a, b) _mm512_mul_pd((a), (b))
#define V_ADD(a, b) _mm512_add_pd((a), (b))
#define V_MASK(r) ((__mmask8)((1u << (r)) - 1u))
#define V_LOADU_N(p, r) _mm512_maskz_loadu_pd(V_MASK(r), (p))
#define V_STOREU_N(p, r, v) _mm512_mask_storeu_pd((p), V_MASK(r), (v))
#define V_MASK_T __mmask8
#define V_MASK_ALL ((__mmask8)-1)
#define V_MASKZ_LOADU(m, p) _mm512_maskz_loadu_pd((m), (p))
#define V_MASK_STOREU(p, m, v) _mm512_mask_storeu_pd((p), (m), (v))
#define UKR_ROWS_NAME nnf_dgemm_rows_avx512
#include "gemm_kernels.h"
#include "ukr_simd.h"
#define UKR_CONV1_NAME nnf_dconv1_avx512
#define UKR_CONV1_DW_NAME nnf_dconv1_dw_avx512
#include "conv1_simd.h"
#define CONVDX_REGROW
#define RG_IDX __m512i
#define RG_MASK __mmask8
#define RG_LANE int64_t
#define RG_PERM2(a, i, b) _mm512_permutex2var_pd((a), (i), (b))
#define RG_MADD(acc, k, v) _mm512_mask_add_pd((acc), (k), (acc), (v))
#define UKR_CONVDX_NAME nnf_dconvdx_avx512
#define UKR_CONVFW_NAME nnf_dconvfw_avx512
#define UKR_CONVDW_NAME nnf_dconvdw_avx512
#define UKR_CONVDW_RB 24   /* 24 chains + dz of 32 registers */
#include "conv_lanes_simd.h"
#define UKR_MAXPOOL_NAME nnf_dmaxpool_avx512
#define POOL_AVX512_F64
#include "maxpool_simd.h"
#endif
