/* One SIMD microkernel, written once and compiled per ISA (AVX2+FMA, AVX-512F) by the
 * nnf_<s|d>gemm_ukr_<isa>_<MR>x<NR>.c files. Only the vector width and MR change between ISAs;
 * the loop, the accumulator layout and the alpha/beta arithmetic are the same text.
 *
 * The including file defines:
 *   UKR_T          float | double          UKR_V      vector type (__m256, __m512d, ...)
 *   UKR_VL         lanes per vector        UKR_MR     rows of the register tile
 *   UKR_NV         vectors per tile row (NR = UKR_NV * UKR_VL)
 *   UKR_NAME       exported symbol         UKR_ATTR   __attribute__((target(...)))
 *   UKR_EDGE_NAME  exported bottom-edge (mr < MR rows) variant
 *   V_ZERO() V_SET1(x) V_LOADU(p) V_STOREU(p, v) V_BCAST(p) V_FMA(a, b, c) = a*b + c  V_MUL(a, b)
 *   V_LOADU_N(p, r) V_STOREU_N(p, r, v)   first r (0 < r < VL) lanes only, the rest untouched
 *   UKR_ROWS_NAME  exported few-row kernel (B read in place, any width)
 *   optional (AVX-512): V_MASK_T V_MASK_ALL V_MASKZ_LOADU(m, p) V_MASK_STOREU(p, m, v), lane
 *   masks of any pattern: the one-row kernel then reads B at aligned addresses (rows1_aligned)
 *
 * Registers: MR*NV accumulators + NV B vectors + 1 broadcast A value
 * (AVX2 6x16 f32: 12 + 2 + 1 = 15 of 16 ymm; AVX-512 12x32 f32: 24 + 2 + 1 = 27 of 32 zmm).
 * Per p: NV loads of B, MR broadcasts of A, MR*NV independent FMAs (>= 2 pipes x 4 cycles
 * latency = 8 chains needed to keep both FMA pipes busy). Contract: see gemm_kernels.h.
 */
#include <immintrin.h>
#include <stdint.h>

#define UKR_NR (UKR_NV * UKR_VL)

/* always_inline so the callers below stamp out copies with constant strides (packed operands),
 * runtime strides (unpacked operands) and fewer rows (MR < UKR_MR: bottom edge tiles); every
 * copy does the same arithmetic per element, so all round identically.
 * ROWS4 (constant; A read in place, csa == 1): row i is addressed as base[i / 4] + (i % 4) *
 * rsa, the three offsets in scaled-index form off one moving base per 4 rows. With a pointer
 * per row, the 12 row addresses of the AVX-512 tile and the loop's own registers outgrew the
 * 16 general registers: GCC kept some on the stack and reloaded them every p, and the tile
 * ran at 86-88% of the FMA peak from L1 against 92-95% this way (same arithmetic, same bits). */
static inline __attribute__((always_inline)) UKR_ATTR void
ukr_body(const int MR, const int ROWS4, int64_t k, UKR_T alpha, const UKR_T *restrict a,
         int64_t rsa, int64_t csa, const UKR_T *restrict b, int64_t ldb, UKR_T beta,
         UKR_T *restrict c, int64_t ldc) {
    UKR_V acc[UKR_MR][UKR_NV];
    const UKR_T *ap[UKR_MR];  /* rows MR..UKR_MR-1 unused in edge variants */
    _Pragma("GCC unroll 16")
    for (int i = 0; i < MR; ++i) {
        ap[i] = a + i * rsa;
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + UKR_NR - 1), _MM_HINT_T0);
        _Pragma("GCC unroll 4")
        for (int j = 0; j < UKR_NV; ++j) acc[i][j] = V_ZERO();
    }
    int64_t ao = 0;
    _Pragma("GCC unroll 4")
    for (int64_t p = 0; p < k; ++p) {
        UKR_V bv[UKR_NV];
        _Pragma("GCC unroll 4")
        for (int j = 0; j < UKR_NV; ++j) bv[j] = V_LOADU(b + j * UKR_VL);
        _Pragma("GCC unroll 16")
        for (int i = 0; i < MR; ++i) {
            const UKR_V av = ROWS4 ? V_BCAST(a + (i / 4) * 4 * rsa + ao + (i % 4) * rsa)
                                   : V_BCAST(ap[i] + ao);
            _Pragma("GCC unroll 4")
            for (int j = 0; j < UKR_NV; ++j) acc[i][j] = V_FMA(av, bv[j], acc[i][j]);
        }
        ao += csa;
        b += ldb;
    }
    const UKR_V va = V_SET1(alpha);
    if (beta == (UKR_T)0) {
        _Pragma("GCC unroll 16")
        for (int i = 0; i < MR; ++i) {
            _Pragma("GCC unroll 4")
            for (int j = 0; j < UKR_NV; ++j)
                V_STOREU(c + i * ldc + j * UKR_VL, V_MUL(va, acc[i][j]));
        }
    } else {
        const UKR_V vb = V_SET1(beta);
        _Pragma("GCC unroll 16")
        for (int i = 0; i < MR; ++i) {
            _Pragma("GCC unroll 4")
            for (int j = 0; j < UKR_NV; ++j) {
                UKR_T *cp = c + i * ldc + j * UKR_VL;
                V_STOREU(cp, V_FMA(vb, V_LOADU(cp), V_MUL(va, acc[i][j])));
            }
        }
    }
}

UKR_ATTR void UKR_NAME(int64_t k, UKR_T alpha, const UKR_T *a, int64_t rsa, int64_t csa,
                       const UKR_T *b, int64_t ldb, UKR_T beta, UKR_T *c, int64_t ldc) {
    if (rsa == 1 && csa == UKR_MR && ldb == UKR_NR)   /* packed A and B */
        ukr_body(UKR_MR, 0, k, alpha, a, 1, UKR_MR, b, UKR_NR, beta, c, ldc);
    else if (csa == 1 && ldb == UKR_NR)               /* row-major A read in place, packed B */
        ukr_body(UKR_MR, 1, k, alpha, a, rsa, 1, b, UKR_NR, beta, c, ldc);
    else if (csa == 1)                                /* both read in place */
        ukr_body(UKR_MR, 1, k, alpha, a, rsa, 1, b, ldb, beta, c, ldc);
    else if (rsa == 1 && ldb == UKR_NR)               /* A^T read in place (the swapped x^T dz) */
        ukr_body(UKR_MR, 0, k, alpha, a, 1, csa, b, UKR_NR, beta, c, ldc);
    else
        ukr_body(UKR_MR, 0, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc);
}

/* Bottom-edge variant: only rows 0..mr-1 (1 <= mr < MR) of the tile are read and written. */
#define UKR_EDGE_CASE(R)                                                                    \
    case R:                                                                                 \
        if (csa == 1) ukr_body(R, 1, k, alpha, a, rsa, 1, b, ldb, beta, c, ldc);            \
        else if (rsa == 1) ukr_body(R, 0, k, alpha, a, 1, csa, b, ldb, beta, c, ldc);       \
        else ukr_body(R, 0, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc);                   \
        break;
UKR_ATTR void UKR_EDGE_NAME(int mr, int64_t k, UKR_T alpha, const UKR_T *a, int64_t rsa,
                            int64_t csa, const UKR_T *b, int64_t ldb, UKR_T beta, UKR_T *c,
                            int64_t ldc) {
    switch (mr) {
    UKR_EDGE_CASE(1) UKR_EDGE_CASE(2) UKR_EDGE_CASE(3)
#if UKR_MR > 4
    UKR_EDGE_CASE(4) UKR_EDGE_CASE(5)
#endif
#if UKR_MR > 6
    UKR_EDGE_CASE(6) UKR_EDGE_CASE(7) UKR_EDGE_CASE(8) UKR_EDGE_CASE(9) UKR_EDGE_CASE(10)
    UKR_EDGE_CASE(11)
#endif
#if UKR_MR > 12
#error "add edge cases for MR > 12"
#endif
    default: break;
    }
}

/* ---- few rows (m <= NNF_ROWS_MAX), B read in place --------------------------------------
 * c[i*ldc + j] for i < mr, j < n, from row-major B (b[p*ldb + j]) without packing it: with so
 * few rows each element of B is used at most mr times, so a packed copy costs more than it
 * saves. CW vectors per row are in flight (mr*CW >= 4 independent chains; the loads stream B
 * from L2/L3). Per element the arithmetic is the microkernel's: one FMA chain over p from 0,
 * then alpha*acc (beta == 0) or beta*c + alpha*acc fused, so results match the tiled nests. */
static inline __attribute__((always_inline)) UKR_ATTR int64_t
rows_strips(const int MR, const int CW, int64_t j0, int64_t k, UKR_T alpha,
            const UKR_T *restrict a, int64_t rsa, int64_t csa, const UKR_T *restrict b,
            int64_t ldb, UKR_T beta, UKR_T *restrict c, int64_t ldc, int64_t n) {
    const UKR_V va = V_SET1(alpha), vb = V_SET1(beta);
    for (; j0 + CW * UKR_VL <= n; j0 += CW * UKR_VL) {
        UKR_V acc[4][16];
        _Pragma("GCC unroll 4")
        for (int i = 0; i < MR; ++i) {
            _Pragma("GCC unroll 16")
            for (int v = 0; v < CW; ++v) acc[i][v] = V_ZERO();
        }
        const UKR_T *bp = b + j0;
        for (int64_t p = 0; p < k; ++p, bp += ldb) {
            UKR_V bv[16];
            _Pragma("GCC unroll 16")
            for (int v = 0; v < CW; ++v) bv[v] = V_LOADU(bp + v * UKR_VL);
            _Pragma("GCC unroll 4")
            for (int i = 0; i < MR; ++i) {
                const UKR_V av = V_BCAST(a + i * rsa + p * csa);
                _Pragma("GCC unroll 16")
                for (int v = 0; v < CW; ++v) acc[i][v] = V_FMA(av, bv[v], acc[i][v]);
            }
        }
        _Pragma("GCC unroll 4")
        for (int i = 0; i < MR; ++i) {
            _Pragma("GCC unroll 16")
            for (int v = 0; v < CW; ++v) {
                UKR_T *cp = c + i * ldc + j0 + v * UKR_VL;
                V_STOREU(cp, beta == (UKR_T)0 ? V_MUL(va, acc[i][v])
                                              : V_FMA(vb, V_LOADU(cp), V_MUL(va, acc[i][v])));
            }
        }
    }
    return j0;
}

/* Columns [j0, n): one (possibly partial) vector at a time. */
static inline __attribute__((always_inline)) UKR_ATTR void
rows_tail(const int MR, int64_t j0, int64_t k, UKR_T alpha, const UKR_T *restrict a,
          int64_t rsa, int64_t csa, const UKR_T *restrict b, int64_t ldb, UKR_T beta,
          UKR_T *restrict c, int64_t ldc, int64_t n) {
    const UKR_V va = V_SET1(alpha), vb = V_SET1(beta);
    for (; j0 < n; j0 += UKR_VL) {
        const int r = n - j0 < UKR_VL ? (int)(n - j0) : UKR_VL;
        UKR_V acc[4];
        _Pragma("GCC unroll 4")
        for (int i = 0; i < MR; ++i) acc[i] = V_ZERO();
        const UKR_T *bp = b + j0;
        for (int64_t p = 0; p < k; ++p, bp += ldb) {
            const UKR_V bv = r == UKR_VL ? V_LOADU(bp) : V_LOADU_N(bp, r);
            _Pragma("GCC unroll 4")
            for (int i = 0; i < MR; ++i) acc[i] = V_FMA(V_BCAST(a + i * rsa + p * csa), bv, acc[i]);
        }
        _Pragma("GCC unroll 4")
        for (int i = 0; i < MR; ++i) {
            UKR_T *cp = c + i * ldc + j0;
            UKR_V old = beta == (UKR_T)0 ? V_ZERO() : (r == UKR_VL ? V_LOADU(cp) : V_LOADU_N(cp, r));
            UKR_V res = beta == (UKR_T)0 ? V_MUL(va, acc[i]) : V_FMA(vb, old, V_MUL(va, acc[i]));
            if (r == UKR_VL) V_STOREU(cp, res);
            else V_STOREU_N(cp, r, res);
        }
    }
}

/* Strips of CW vectors, then of 4 (when CW is wider), then single vectors: every column
 * range a caller hands over keeps several independent FMA chains in flight. */
static inline __attribute__((always_inline)) UKR_ATTR void
rows_body(const int MR, const int CW, int64_t k, UKR_T alpha, const UKR_T *restrict a,
          int64_t rsa, int64_t csa, const UKR_T *restrict b, int64_t ldb, UKR_T beta,
          UKR_T *restrict c, int64_t ldc, int64_t n) {
    int64_t j0 = rows_strips(MR, CW, 0, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n);
    if (CW > 4) j0 = rows_strips(MR, 4, j0, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n);
    rows_tail(MR, j0, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n);
}

#ifdef V_MASKZ_LOADU
/* ---- one row on AVX-512: B read at aligned addresses, in equal strips ------------------
 * NumPy aligns arrays to 16 bytes, so a 64-byte vector load at b + 16j straddles two cache
 * lines: every load of a row of B does when b is not 64-byte aligned, and 1x784x256 f32 took
 * 14.5 us instead of 7 (B in L2; 29 against 27 us from L3). Here the vectors start at the
 * aligned address at or below b (lane `lead` of vector 0 is column 0): the first vector of a
 * strip may have leading lanes outside [0, n) and the last trailing ones; both are loaded
 * with a zeroing mask (masked-out lanes are not read, so nothing before b or past column n is
 * touched) and stored with the same mask. The columns are cut into S = ceil(vectors / 16)
 * strips of equal width (at most 16 vectors, 16 independent chains): 17 vectors run as 9 + 8
 * rather than 16 + 1, whose last pass would be one chain waiting on FMA latency.
 * Per element the arithmetic is the rows kernel's (one FMA chain over p from 0, then
 * alpha*acc or beta*c + alpha*acc), so the bits are the same. */
#define UKR_ROWS1_MAXW 16

static inline __attribute__((always_inline)) UKR_ATTR void
rows1_strip(const int W, int64_t k, UKR_T alpha, const UKR_T *restrict a, int64_t csa,
            const UKR_T *restrict b, int64_t ldb, UKR_T beta, UKR_T *restrict c,
            V_MASK_T first, V_MASK_T last) {
    UKR_V acc[UKR_ROWS1_MAXW];
    _Pragma("GCC unroll 16")
    for (int v = 0; v < W; ++v) acc[v] = V_ZERO();
    const V_MASK_T only = first & last;
    const UKR_T *bp = b;
    for (int64_t p = 0; p < k; ++p, bp += ldb) {
        const UKR_V av = V_BCAST(a + p * csa);
        _Pragma("GCC unroll 16")
        for (int v = 0; v < W; ++v) {
            const UKR_V bv = W == 1 ? V_MASKZ_LOADU(only, bp)
                           : v == 0 ? V_MASKZ_LOADU(first, bp)
                           : v == W - 1 ? V_MASKZ_LOADU(last, bp + v * UKR_VL)
                           : V_LOADU(bp + v * UKR_VL);
            acc[v] = V_FMA(av, bv, acc[v]);
        }
    }
    const UKR_V va = V_SET1(alpha), vb = V_SET1(beta);
    _Pragma("GCC unroll 16")
    for (int v = 0; v < W; ++v) {
        const V_MASK_T mk = W == 1 ? only : v == 0 ? first : v == W - 1 ? last : V_MASK_ALL;
        UKR_T *cp = c + v * UKR_VL;
        const UKR_V res = beta == (UKR_T)0 ? V_MUL(va, acc[v])
                        : V_FMA(vb, V_MASKZ_LOADU(mk, cp), V_MUL(va, acc[v]));
        V_MASK_STOREU(cp, mk, res);
    }
}

/* Lanes [lo, hi) of one vector (0 <= lo < hi <= VL). */
static inline UKR_ATTR V_MASK_T rows1_lanes(int64_t lo, int64_t hi) {
    return (V_MASK_T)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

#define UKR_ROWS1_CASE(W)                                                                   \
    case W: rows1_strip(W, k, alpha, a, csa, b0 + v0 * UKR_VL, ldb, beta, c0 + v0 * UKR_VL, \
                        first, last); break;

static inline __attribute__((always_inline)) UKR_ATTR void
rows1_aligned(int64_t k, UKR_T alpha, const UKR_T *a, int64_t csa, const UKR_T *b,
              int64_t ldb, UKR_T beta, UKR_T *c, int64_t n) {
    /* every row of B starts at the same offset in its cache line only when ldb is a whole
     * number of vectors; otherwise lead 0 (unaligned loads, the same strips) */
    const uintptr_t addr = (uintptr_t)b;
    const int64_t lead = ldb % UKR_VL == 0 && addr % sizeof(UKR_T) == 0
                             ? (int64_t)((addr / sizeof(UKR_T)) % UKR_VL) : 0;
    /* b0, c0: where vector 0 starts (lead columns before b and c; only masked lanes there) */
    const UKR_T *b0 = (const UKR_T *)(addr - (uintptr_t)lead * sizeof(UKR_T));
    UKR_T *c0 = (UKR_T *)((uintptr_t)c - (uintptr_t)lead * sizeof(UKR_T));
    const int64_t nv = (lead + n + UKR_VL - 1) / UKR_VL;
    const int64_t S = (nv + UKR_ROWS1_MAXW - 1) / UKR_ROWS1_MAXW;
    for (int64_t s = 0; s < S; ++s) {
        const int64_t v0 = s * nv / S, v1 = (s + 1) * nv / S;
        /* the strip's columns, counted from lane 0 of its vector 0 */
        const int64_t lo = lead - v0 * UKR_VL, hi = lead + n - v0 * UKR_VL;
        const int64_t lastv = (v1 - v0 - 1) * UKR_VL;
        const V_MASK_T first = rows1_lanes(lo > 0 ? lo : 0, hi < UKR_VL ? hi : UKR_VL);
        const V_MASK_T last = rows1_lanes(lo > lastv ? lo - lastv : 0,
                                          hi - lastv < UKR_VL ? hi - lastv : UKR_VL);
        switch (v1 - v0) {
        UKR_ROWS1_CASE(1) UKR_ROWS1_CASE(2) UKR_ROWS1_CASE(3) UKR_ROWS1_CASE(4)
        UKR_ROWS1_CASE(5) UKR_ROWS1_CASE(6) UKR_ROWS1_CASE(7) UKR_ROWS1_CASE(8)
        UKR_ROWS1_CASE(9) UKR_ROWS1_CASE(10) UKR_ROWS1_CASE(11) UKR_ROWS1_CASE(12)
        UKR_ROWS1_CASE(13) UKR_ROWS1_CASE(14) UKR_ROWS1_CASE(15) UKR_ROWS1_CASE(16)
        default: break;
        }
    }
}
#endif

/* One row (batch-1 inference, GEMV), AVX2: 8 vectors per pass, 8 independent chains. 1x784x256 f32
 * on AVX-512, 1 thread: 16-20 us with 8, no better with 16; 1x256x128: 2.2 us with 8, 3.3 with
 * 16 (its 8 vectors are too few for a 16-wide pass, so they ran as two 4-wide ones). */
#define UKR_ROWS1_CW 8

UKR_ATTR void UKR_ROWS_NAME(int mr, int64_t k, UKR_T alpha, const UKR_T *a, int64_t rsa,
                            int64_t csa, const UKR_T *b, int64_t ldb, UKR_T beta, UKR_T *c,
                            int64_t ldc, int64_t n) {
    switch (mr) {
    case 1:
#ifdef V_MASKZ_LOADU
        (void)rsa; (void)ldc;
        rows1_aligned(k, alpha, a, csa, b, ldb, beta, c, n);
#else
        rows_body(1, UKR_ROWS1_CW, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n);
#endif
        break;
    case 2: rows_body(2, 4, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n); break;
    case 3: rows_body(3, 2, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n); break;
    case 4: rows_body(4, 2, k, alpha, a, rsa, csa, b, ldb, beta, c, ldc, n); break;
    default: break;
    }
}
