/* Max pooling over whole windows, vector lanes along the channels (pool_tmpl.h, "whole
 * windows"): for output pixels px < npx of one output row, window origin src + px*sx, taps at
 * src + px*sx + toff[t] (t < ntaps, in the (kh, kw) order of the scalar loop):
 *   y[px*C + k]   = the first NaN among the taps, else the first tap of the largest value;
 *   arg[px*C + k] = base + px*sx + k + toff[that tap].
 * The select is the scalar loop's (take v when !(v <= m) and m is not NaN), lane by lane, so
 * the same bits and the same argmax. Channels run in chunks of one vector, the last one masked
 * (LeNet's 6 channels are one masked chunk). Included by each SIMD kernel file after it sets
 * UKR_ATTR, UKR_MAXPOOL_NAME and one of POOL_AVX2_F32 / _F64, POOL_AVX512_F32 / _F64. */
#include <immintrin.h>

#if defined(POOL_AVX512_F32)
UKR_ATTR void UKR_MAXPOOL_NAME(int64_t npx, int64_t C, int64_t sx, const int64_t *toff,
                               int64_t ntaps, const float *src, int64_t base, float *y,
                               int64_t *arg) {
    const __m512i iota_lo = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i iota_hi = _mm512_set_epi64(15, 14, 13, 12, 11, 10, 9, 8);
    for (int64_t px = 0; px < npx; ++px) {
        const float *o = src + px * sx;
        for (int64_t k = 0; k < C; k += 16) {
            const int r = C - k < 16 ? (int)(C - k) : 16;
            const __mmask16 mk = (__mmask16)((1u << r) - 1u);
            __m512 m = _mm512_maskz_loadu_ps(mk, o + toff[0] + k);
            __m512i lo = _mm512_set1_epi64(toff[0]), hi = lo;
            for (int64_t t = 1; t < ntaps; ++t) {
                const __m512 v = _mm512_maskz_loadu_ps(mk, o + toff[t] + k);
                const __mmask16 take = _mm512_cmp_ps_mask(v, m, _CMP_NLE_UQ) &
                                       _mm512_cmp_ps_mask(m, m, _CMP_ORD_Q);
                const __m512i off = _mm512_set1_epi64(toff[t]);
                m = _mm512_mask_blend_ps(take, m, v);
                lo = _mm512_mask_blend_epi64((__mmask8)take, lo, off);
                hi = _mm512_mask_blend_epi64((__mmask8)(take >> 8), hi, off);
            }
            const __m512i at = _mm512_set1_epi64(base + px * sx + k);
            int64_t *a = arg + px * C + k;
            _mm512_mask_storeu_ps(y + px * C + k, mk, m);
            _mm512_mask_storeu_epi64(a, (__mmask8)mk, _mm512_add_epi64(_mm512_add_epi64(lo, at), iota_lo));
            _mm512_mask_storeu_epi64(a + 8, (__mmask8)(mk >> 8),
                                     _mm512_add_epi64(_mm512_add_epi64(hi, at), iota_hi));
        }
    }
}
#elif defined(POOL_AVX512_F64)
UKR_ATTR void UKR_MAXPOOL_NAME(int64_t npx, int64_t C, int64_t sx, const int64_t *toff,
                               int64_t ntaps, const double *src, int64_t base, double *y,
                               int64_t *arg) {
    const __m512i iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    for (int64_t px = 0; px < npx; ++px) {
        const double *o = src + px * sx;
        for (int64_t k = 0; k < C; k += 8) {
            const int r = C - k < 8 ? (int)(C - k) : 8;
            const __mmask8 mk = (__mmask8)((1u << r) - 1u);
            __m512d m = _mm512_maskz_loadu_pd(mk, o + toff[0] + k);
            __m512i of = _mm512_set1_epi64(toff[0]);
            for (int64_t t = 1; t < ntaps; ++t) {
                const __m512d v = _mm512_maskz_loadu_pd(mk, o + toff[t] + k);
                const __mmask8 take = _mm512_cmp_pd_mask(v, m, _CMP_NLE_UQ) &
                                      _mm512_cmp_pd_mask(m, m, _CMP_ORD_Q);
                m = _mm512_mask_blend_pd(take, m, v);
                of = _mm512_mask_blend_epi64(take, of, _mm512_set1_epi64(toff[t]));
            }
            const __m512i at = _mm512_set1_epi64(base + px * sx + k);
            _mm512_mask_storeu_pd(y + px * C + k, mk, m);
            _mm512_mask_storeu_epi64(arg + px * C + k, mk,
                                     _mm512_add_epi64(_mm512_add_epi64(of, at), iota));
        }
    }
}
#elif defined(POOL_AVX2_F32)
UKR_ATTR void UKR_MAXPOOL_NAME(int64_t npx, int64_t C, int64_t sx, const int64_t *toff,
                               int64_t ntaps, const float *src, int64_t base, float *y,
                               int64_t *arg) {
    const __m256i iota32 = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    const __m256i iota_lo = _mm256_set_epi64x(3, 2, 1, 0), iota_hi = _mm256_set_epi64x(7, 6, 5, 4);
    for (int64_t px = 0; px < npx; ++px) {
        const float *o = src + px * sx;
        for (int64_t k = 0; k < C; k += 8) {
            const int r = C - k < 8 ? (int)(C - k) : 8;
            const __m256i mk = _mm256_cmpgt_epi32(_mm256_set1_epi32(r), iota32);
            const __m256i mk_lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(mk));
            const __m256i mk_hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(mk, 1));
            __m256 m = _mm256_maskload_ps(o + toff[0] + k, mk);
            __m256i lo = _mm256_set1_epi64x(toff[0]), hi = lo;
            for (int64_t t = 1; t < ntaps; ++t) {
                const __m256 v = _mm256_maskload_ps(o + toff[t] + k, mk);
                const __m256 take = _mm256_and_ps(_mm256_cmp_ps(v, m, _CMP_NLE_UQ),
                                                  _mm256_cmp_ps(m, m, _CMP_ORD_Q));
                const __m256i ti = _mm256_castps_si256(take);
                const __m256d off = _mm256_castsi256_pd(_mm256_set1_epi64x(toff[t]));
                m = _mm256_blendv_ps(m, v, take);
                lo = _mm256_castpd_si256(_mm256_blendv_pd(
                    _mm256_castsi256_pd(lo), off,
                    _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(ti)))));
                hi = _mm256_castpd_si256(_mm256_blendv_pd(
                    _mm256_castsi256_pd(hi), off,
                    _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(ti, 1)))));
            }
            const __m256i at = _mm256_set1_epi64x(base + px * sx + k);
            long long *a = (long long *)(arg + px * C + k);
            _mm256_maskstore_ps(y + px * C + k, mk, m);
            _mm256_maskstore_epi64(a, mk_lo, _mm256_add_epi64(_mm256_add_epi64(lo, at), iota_lo));
            _mm256_maskstore_epi64(a + 4, mk_hi, _mm256_add_epi64(_mm256_add_epi64(hi, at), iota_hi));
        }
    }
}
#elif defined(POOL_AVX2_F64)
UKR_ATTR void UKR_MAXPOOL_NAME(int64_t npx, int64_t C, int64_t sx, const int64_t *toff,
                               int64_t ntaps, const double *src, int64_t base, double *y,
                               int64_t *arg) {
    const __m256i iota = _mm256_set_epi64x(3, 2, 1, 0);
    for (int64_t px = 0; px < npx; ++px) {
        const double *o = src + px * sx;
        for (int64_t k = 0; k < C; k += 4) {
            const int r = C - k < 4 ? (int)(C - k) : 4;
            const __m256i mk = _mm256_cmpgt_epi64(_mm256_set1_epi64x(r), iota);
            __m256d m = _mm256_maskload_pd(o + toff[0] + k, mk);
            __m256d of = _mm256_castsi256_pd(_mm256_set1_epi64x(toff[0]));
            for (int64_t t = 1; t < ntaps; ++t) {
                const __m256d v = _mm256_maskload_pd(o + toff[t] + k, mk);
                const __m256d take = _mm256_and_pd(_mm256_cmp_pd(v, m, _CMP_NLE_UQ),
                                                   _mm256_cmp_pd(m, m, _CMP_ORD_Q));
                m = _mm256_blendv_pd(m, v, take);
                of = _mm256_blendv_pd(of, _mm256_castsi256_pd(_mm256_set1_epi64x(toff[t])), take);
            }
            const __m256i at = _mm256_set1_epi64x(base + px * sx + k);
            _mm256_maskstore_pd(y + px * C + k, mk, m);
            _mm256_maskstore_epi64((long long *)(arg + px * C + k), mk,
                                   _mm256_add_epi64(_mm256_add_epi64(_mm256_castpd_si256(of), at), iota));
        }
    }
}
#endif
