/* The transposing copy of packing, written once per dtype (T, SFX) and included by
 * gemm_tmpl.h (panels of A and B) and csrc/nn/conv_tmpl.h (implicit GEMM panels). Needs
 * <emmintrin.h> included first where __SSE2__ is defined. */
#define TCOPY_CAT_(a, b) a##b
#define TCOPY_CAT(a, b) TCOPY_CAT_(a, b)

/* dst[p*ldd + j] = src[j*lds + p] for j < nj, p < np: the transposing copy of packing (rows
 * of the source become columns of a panel). Scalar code does one strided store per element;
 * 4x4 (f32) / 2x2 (f64) register transposes with baseline SSE2 move whole vectors. */
static inline void TCOPY_CAT(nnf_tcopy_, SFX)(T *restrict dst, int64_t ldd,
                                             const T *restrict src, int64_t lds, int64_t nj,
                                             int64_t np) {
    int64_t j = 0;
#if defined(__SSE2__)
    if (sizeof(T) == 4) {
        float *d = (float *)dst;
        const float *s = (const float *)src;
        for (; j + 4 <= nj; j += 4) {
            const float *s0 = s + j * lds, *s1 = s0 + lds, *s2 = s1 + lds, *s3 = s2 + lds;
            int64_t p = 0;
            for (; p + 4 <= np; p += 4) {
                __m128 r0 = _mm_loadu_ps(s0 + p), r1 = _mm_loadu_ps(s1 + p);
                __m128 r2 = _mm_loadu_ps(s2 + p), r3 = _mm_loadu_ps(s3 + p);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                _mm_storeu_ps(d + p * ldd + j, r0);
                _mm_storeu_ps(d + (p + 1) * ldd + j, r1);
                _mm_storeu_ps(d + (p + 2) * ldd + j, r2);
                _mm_storeu_ps(d + (p + 3) * ldd + j, r3);
            }
            for (; p < np; ++p) {
                d[p * ldd + j] = s0[p]; d[p * ldd + j + 1] = s1[p];
                d[p * ldd + j + 2] = s2[p]; d[p * ldd + j + 3] = s3[p];
            }
        }
        for (; j + 2 <= nj; j += 2) {
            const float *s0 = s + j * lds, *s1 = s0 + lds;
            int64_t p = 0;
            for (; p + 4 <= np; p += 4) {
                __m128 r0 = _mm_loadu_ps(s0 + p), r1 = _mm_loadu_ps(s1 + p);
                __m128 lo = _mm_unpacklo_ps(r0, r1), hi = _mm_unpackhi_ps(r0, r1);
                _mm_storel_pi((__m64 *)(d + p * ldd + j), lo);
                _mm_storeh_pi((__m64 *)(d + (p + 1) * ldd + j), lo);
                _mm_storel_pi((__m64 *)(d + (p + 2) * ldd + j), hi);
                _mm_storeh_pi((__m64 *)(d + (p + 3) * ldd + j), hi);
            }
            for (; p < np; ++p) { d[p * ldd + j] = s0[p]; d[p * ldd + j + 1] = s1[p]; }
        }
    } else {
        double *d = (double *)dst;
        const double *s = (const double *)src;
        for (; j + 2 <= nj; j += 2) {
            const double *s0 = s + j * lds, *s1 = s0 + lds;
            int64_t p = 0;
            for (; p + 2 <= np; p += 2) {
                __m128d r0 = _mm_loadu_pd(s0 + p), r1 = _mm_loadu_pd(s1 + p);
                _mm_storeu_pd(d + p * ldd + j, _mm_unpacklo_pd(r0, r1));
                _mm_storeu_pd(d + (p + 1) * ldd + j, _mm_unpackhi_pd(r0, r1));
            }
            for (; p < np; ++p) { d[p * ldd + j] = s0[p]; d[p * ldd + j + 1] = s1[p]; }
        }
    }
#endif
    for (; j < nj; ++j) {
        const T *restrict s = src + j * lds;
        for (int64_t p = 0; p < np; ++p) dst[p * ldd + j] = s[p];
    }
}

#undef TCOPY_CAT
#undef TCOPY_CAT_
