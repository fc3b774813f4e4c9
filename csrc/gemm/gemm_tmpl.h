/* The GEMM framework, written once and included by gemm.c per dtype with
 *   T (float | double), SFX (f32 | f64), KERN (nnf_kernel_f32_t | ...), ACTIVE_KERNEL().
 *
 * C[m,n] = alpha * op(A)[m,k] @ op(B)[k,n] + beta * C, then the epilogue (if any).
 * Two loop nests share one microkernel call (tile()), one K partition (k_block()) and one
 * alpha/beta rule, so every element is computed by the same arithmetic whichever nest, tile
 * or thread handles it (results are bit-identical for any nthreads):
 *
 *  small  (m x KC no bigger than MC x KC, the L2 block; network shapes): A is read in
 *         place (a transposed A over several tiles: packed per K block, small_packa_part);
 *         a chunk owns whole NR-column panels of B (or a share of the
 *         rows when there are fewer panels than threads), packs one KC x NR panel into its
 *         thread's L1-sized slice and runs every MR-row tile of A against it.
 *  packed (GotoBLAS/BLIS): for each NC x KC block of B, one job packs it into a shared
 *         buffer (L3), then a second runs the (MC block, column range) tasks, each packing
 *         its MC x KC block of A (L2) and running the NR/MR loops with the microkernel; or
 *         (column split) one job whose chunks each own a panel range for the whole product.
 *  rows   (m <= NNF_ROWS_MAX, B row-major: batch-1 inference, GEMV): nothing is packed; the
 *         ISA's rows kernel streams B in place, each chunk over its own column range.
 * Narrow n (under two NR panels, the last partly empty) is first turned into C^T = op(B)^T
 * op(A)^T with a transposed store, so the lanes run along m (output layers: n = 10).
 * Below NNF_GEMM_MT_FLOPS everything runs on the calling thread. Chunks go through
 * nnf_parallel_for (par.h): no step waits for a fixed thread, only for chunks already taken.
 *
 * Edges: packed B panels are zero-padded to NR columns; a bottom-edge tile (mr < MR rows)
 * runs the kernel's mr-row variant (same arithmetic, fewer rows, nothing read past row m);
 * a right-edge tile (nr < NR) is computed into a local MR x NR buffer and only its valid
 * part is copied back (beta != 0: the valid part of C is copied in first). Operands are
 * never read or written outside their m/k/n extents.
 */
#define NNF_CAT_(a, b) a##b
#define NNF_CAT(a, b) NNF_CAT_(a, b)
#define FN(name) NNF_CAT(name##_, SFX)

/* ---- packing (one switch on MR/NR so the copy loops have constant trip counts) ---------- */
#include "tcopy_tmpl.h"

/* Row tile t of m rows: MR rows each, except that a remainder under MR/2 rows (too few FMA
 * chains to fill the pipes) is merged with the last full tile and the pair split in halves:
 * 32 rows at MR 6 run as 6,6,6,6,4,4 instead of 6,6,6,6,6,2. Tile t starts inside MR-row
 * panel t, so packed panels keep their place (panel t at t*MR*kc). */
static inline __attribute__((always_inline)) void
FN(row_tile)(int64_t t, int64_t m, int MR, int64_t *i0, int64_t *mr) {
    const int64_t ntile = (m + MR - 1) / MR, rem = m % MR;
    if (rem == 0 || 2 * rem >= MR || ntile < 2 || t < ntile - 2) {
        *i0 = t * MR;
        *mr = m - *i0 < MR ? m - *i0 : MR;
        return;
    }
    const int64_t first = (MR + rem + 1) / 2;  /* rows of tile ntile-2; the last gets the rest */
    *i0 = (ntile - 2) * MR + (t == ntile - 1 ? first : 0);
    *mr = t == ntile - 1 ? MR + rem - first : first;
}

static inline __attribute__((always_inline)) void
FN(pack_a_mr)(T *restrict dst, const T *restrict A, int64_t lda, int ta, int64_t i0, int64_t mc,
              int64_t p0, int64_t kc, const int MR) {
    for (int64_t t = 0; t * MR < mc; ++t) {
        int64_t ir, mr;
        FN(row_tile)(t, mc, MR, &ir, &mr);
        T *restrict d = dst + t * MR * kc;
        if (!ta) {
            NNF_CAT(nnf_tcopy_, SFX)(d, MR, A + (i0 + ir) * lda + p0, lda, mr, kc);
        } else if (mr == MR) {
            for (int64_t p = 0; p < kc; ++p) {
                const T *restrict s = A + (p0 + p) * lda + i0 + ir;
                for (int i = 0; i < MR; ++i) d[p * MR + i] = s[i];
            }
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                const T *restrict s = A + (p0 + p) * lda + i0 + ir;
                for (int64_t i = 0; i < mr; ++i) d[p * MR + i] = s[i];
            }
        }
        for (int64_t i = mr; i < MR; ++i)
            for (int64_t p = 0; p < kc; ++p) d[p * MR + i] = 0;
    }
}

/* dst = one MR-row panel per row tile (row_tile) of op(A)[i0:i0+mc, p0:p0+kc], panel t at
 * dst + t*MR*kc, element (i, p) of a panel at p*MR + i; rows past the tile's are zero. */
static void FN(pack_a)(T *restrict dst, const T *restrict A, int64_t lda, int ta, int64_t i0,
                       int64_t mc, int64_t p0, int64_t kc, int MR) {
    switch (MR) {
    case 4: FN(pack_a_mr)(dst, A, lda, ta, i0, mc, p0, kc, 4); break;
    case 6: FN(pack_a_mr)(dst, A, lda, ta, i0, mc, p0, kc, 6); break;
    case 12: FN(pack_a_mr)(dst, A, lda, ta, i0, mc, p0, kc, 12); break;
    default: FN(pack_a_mr)(dst, A, lda, ta, i0, mc, p0, kc, MR);
    }
}

static inline __attribute__((always_inline)) void
FN(pack_b_nr)(T *restrict dst, const T *restrict B, int64_t ldb, int tb, int64_t p0, int64_t kc,
              int64_t j0, int64_t nc, const int NR) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int64_t nr = nc - jr < NR ? nc - jr : NR;
        T *restrict d = dst + jr * kc;
        if (tb) {
            NNF_CAT(nnf_tcopy_, SFX)(d, NR, B + (j0 + jr) * ldb + p0, ldb, nr, kc);
            for (int64_t j = nr; j < NR; ++j)
                for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = 0;
        } else if (nr == NR) {
            for (int64_t p = 0; p < kc; ++p) {
                const T *restrict s = B + (p0 + p) * ldb + j0 + jr;
                for (int j = 0; j < NR; ++j) d[p * NR + j] = s[j];
            }
        } else {
            for (int64_t p = 0; p < kc; ++p) {
                const T *restrict s = B + (p0 + p) * ldb + j0 + jr;
                for (int64_t j = 0; j < nr; ++j) d[p * NR + j] = s[j];
                for (int64_t j = nr; j < NR; ++j) d[p * NR + j] = 0;
            }
        }
    }
}

/* dst = NR-column panels of op(B)[p0:p0+kc, j0:j0+nc], panel r at dst + r*NR*kc, element
 * (p, j) of a panel at p*NR + j; columns past nc are zero. */
static void FN(pack_b)(T *restrict dst, const T *restrict B, int64_t ldb, int tb, int64_t p0,
                       int64_t kc, int64_t j0, int64_t nc, int NR) {
    switch (NR) {
    case 4: FN(pack_b_nr)(dst, B, ldb, tb, p0, kc, j0, nc, 4); break;
    case 8: FN(pack_b_nr)(dst, B, ldb, tb, p0, kc, j0, nc, 8); break;
    case 16: FN(pack_b_nr)(dst, B, ldb, tb, p0, kc, j0, nc, 16); break;
    case 32: FN(pack_b_nr)(dst, B, ldb, tb, p0, kc, j0, nc, 32); break;
    default: FN(pack_b_nr)(dst, B, ldb, tb, p0, kc, j0, nc, NR);
    }
}

/* ---- one MR x NR tile of C: C[i0:i0+mr, j0:j0+nr] (mr <= MR, nr <= NR) ------------------
 * A right-edge tile (nr < NR) or a transposed store (tc: tile element (i, j) at
 * C[(j0+j)*ldc + i0+i]) goes through a local MR x NR buffer ct: tile_ct_in loads C's valid
 * part into it (only when the first K block reads C: beta != 0), the kernel accumulates into
 * ct with C's alpha/beta rule, tile_ct_out copies the valid part back. ct holds exactly the
 * values C would hold, so the bits are those of the kernel writing C directly. */
static inline void FN(tile_ct_in)(T *ct, int NR, const T *c, int64_t ldc, int64_t mr,
                                  int64_t nr, int tc) {
    if (tc) {   /* a transposing copy in register blocks (tcopy_tmpl.h) */
        for (int64_t i = 0; i < mr; ++i)
            for (int j = (int)nr; j < NR; ++j) ct[i * NR + j] = 0;
        NNF_CAT(nnf_tcopy_, SFX)(ct, NR, c, ldc, nr, mr);
    } else {
        for (int64_t i = 0; i < mr; ++i)
            for (int j = 0; j < NR; ++j) ct[i * NR + j] = j < nr ? c[i * ldc + j] : (T)0;
    }
}

static inline void FN(tile_ct_out)(T *c, int64_t ldc, const T *ct, int NR, int64_t mr,
                                   int64_t nr, int tc) {
    if (tc)   /* C[(j0+j)*ldc + i0+i] = ct[i*NR + j]: transposed in register blocks */
        NNF_CAT(nnf_tcopy_, SFX)(c, ldc, ct, NR, mr, nr);
    else
        for (int64_t i = 0; i < mr; ++i)
            for (int64_t j = 0; j < nr; ++j) c[i * ldc + j] = ct[i * NR + j];
}

static inline void FN(tile)(const KERN *kd, int64_t kc, T alpha, const T *a, int64_t rsa,
                            int64_t csa, const T *b, int64_t ldb, T beta, T *C, int64_t ldc,
                            int64_t i0, int64_t j0, int64_t mr, int64_t nr, int last,
                            const nnf_epilogue_t *ep, int tc) {
    const int MR = kd->mr, NR = kd->nr;
    if (!tc && nr == NR) { /* full width: straight into C (bottom edge: the mr-row variant) */
        if (mr == MR) kd->ukr(kc, alpha, a, rsa, csa, b, ldb, beta, C + i0 * ldc + j0, ldc);
        else kd->ukr_edge((int)mr, kc, alpha, a, rsa, csa, b, ldb, beta, C + i0 * ldc + j0, ldc);
    } else {
        T *c = tc ? C + j0 * ldc + i0 : C + i0 * ldc + j0;
        T ct[NNF_MAX_MR * NNF_MAX_NR] __attribute__((aligned(64)));
        if (beta != (T)0) FN(tile_ct_in)(ct, NR, c, ldc, mr, nr, tc);
        if (mr == MR) kd->ukr(kc, alpha, a, rsa, csa, b, ldb, beta, ct, NR);
        else kd->ukr_edge((int)mr, kc, alpha, a, rsa, csa, b, ldb, beta, ct, NR);
        FN(tile_ct_out)(c, ldc, ct, NR, mr, nr, tc);
    }
    if (last && ep) {
        if (tc) NNF_CAT(nnf_epilogue_tile_, SFX)(ep, C, ldc, j0, i0, nr, mr);
        else NNF_CAT(nnf_epilogue_tile_, SFX)(ep, C, ldc, i0, j0, mr, nr);
    }
}

/* The K blocks [p0, p0 + ks) of one tile back to back (the small nest's whole-K panels). A
 * tile through ct keeps its running sums in ct across the blocks: one load of C and one store
 * instead of one each per K block (the transposed store of the narrow swap, the right-edge
 * panel); the same kernel calls on the same values, so the same bits. b points at the panel's
 * row p0, a at A's column (row, when ta) p0 of the tile. */
static inline void FN(tile_span)(const KERN *kd, int64_t p0, int64_t ks, int64_t k, int64_t kcb,
                                 T alpha, const T *a, int64_t rsa, int64_t csa, int64_t astep,
                                 const T *b, int64_t ldb, T beta, T *C, int64_t ldc, int64_t i0,
                                 int64_t j0, int64_t mr, int64_t nr, const nnf_epilogue_t *ep,
                                 int tc) {
    const int MR = kd->mr, NR = kd->nr;
    if (!tc && nr == NR) {
        for (int64_t pc = p0; pc < p0 + ks; pc += kcb) {
            const int64_t kc = k - pc < kcb ? k - pc : kcb;
            FN(tile)(kd, kc, alpha, a + (pc - p0) * astep, rsa, csa, b + (pc - p0) * ldb, ldb,
                     pc == 0 ? beta : (T)1, C, ldc, i0, j0, mr, nr, pc + kc >= k, ep, tc);
        }
        return;
    }
    T *c = tc ? C + j0 * ldc + i0 : C + i0 * ldc + j0;
    T ct[NNF_MAX_MR * NNF_MAX_NR] __attribute__((aligned(64)));
    if ((p0 == 0 ? beta : (T)1) != (T)0) FN(tile_ct_in)(ct, NR, c, ldc, mr, nr, tc);
    for (int64_t pc = p0; pc < p0 + ks; pc += kcb) {
        const int64_t kc = k - pc < kcb ? k - pc : kcb;
        const T bet = pc == 0 ? beta : (T)1;
        const T *ap = a + (pc - p0) * astep, *bp = b + (pc - p0) * ldb;
        if (mr == MR) kd->ukr(kc, alpha, ap, rsa, csa, bp, ldb, bet, ct, NR);
        else kd->ukr_edge((int)mr, kc, alpha, ap, rsa, csa, bp, ldb, bet, ct, NR);
    }
    FN(tile_ct_out)(c, ldc, ct, NR, mr, nr, tc);
    if (p0 + ks >= k && ep) {
        if (tc) NNF_CAT(nnf_epilogue_tile_, SFX)(ep, C, ldc, j0, i0, nr, mr);
        else NNF_CAT(nnf_epilogue_tile_, SFX)(ep, C, ldc, i0, j0, mr, nr);
    }
}

/* Arguments of one call, shared by the loop nests. Each nest hands its work to
 * nnf_parallel_for (par.h) as chunks that any thread may run: a chunk writes only its own C
 * tiles (and B panel slots), and per-thread scratch is picked by the `worker` index, so the
 * result never depends on which thread ran which chunk, nor on how many took part. */
typedef struct {
    const KERN *kd;
    T *C;
    const T *A, *B;
    int64_t ldc, lda, ldb, m, n, k, kcb;
    int ta, tb;
    int tc; /* C is stored transposed (the narrow-n swap in nnf_gemm_ep) */
    T alpha, beta;
    const nnf_epilogue_t *ep;
    T *bpack; /* packed nest: the KC x NC block of B */
    T *apack; /* small nest with A transposed: the K span's A, one MR-row panel per tile */
    int cols; /* packed nest: each thread owns a column range (packed_split) */
    T *slices; /* team member t's workspace at slices + t * slice (small: a B panel; packed: A) */
    int64_t slice;
    int64_t kspan; /* small nest: K extent of one packed B panel */
    int nthr;      /* threads the call may use (chunks are planned for this many) */
    /* implicit B (nnf_gemm_cb_*): its panels come from packb(packb_ctx, ...), B is NULL */
    void (*packb)(void *ctx, T *dst, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int NR);
    void *packb_ctx;
} FN(gemm_args);

/* One job of a nest: the call's arguments and the block the job covers. */
typedef struct {
    const FN(gemm_args) *g;
    int64_t p0, ks;      /* small: the K span */
    int64_t msplit;      /* small: row ranges per column panel */
    int64_t jc, nc, pc, kc, npan, nsplit; /* packed (shared split): the B block */
} FN(gemm_job);

/* ---- small: A in place, per-thread B panels, no barriers --------------------------------- */
/* Few row tiles (each B element reused by at most 8 of them) against a row-major B with
 * rows of at most 2 KiB: the tiles read B in place from L2 instead of a packed copy. 8x784x256
 * f32: 44 vs 55 us; 32 rows: 144 vs 159 us; no gain from 64 rows. Longer rows (a 4 or 6 KiB
 * stride) put a panel's rows in too few cache sets, and there the copy wins. */
static inline int FN(small_bdirect)(const FN(gemm_args) *g) {
    const int64_t mpan = (g->m + g->kd->mr - 1) / g->kd->mr;
    return !g->packb && !g->tb && mpan <= 8 && g->ldb * (int64_t)sizeof(T) <= 2048;
}

/* Whole-K panels: a packed panel holds every K block (up to NNF_SMALL_PANEL_BYTES, in L2)
 * and each row tile runs its K blocks back to back, its C tile staying in L1 in between
 * instead of one pass over C per K block. Same blocks in the same order per element, so
 * the same bits. In-process A/B, 1 thread f32, 128x784x256: 3% faster (B as stored or
 * transposed). Not with A transposed: a tile's A then spans K cache lines that the next
 * tile reuses from L1 only when they are one K block long (8% slower whole). */
static inline int64_t FN(small_kspan)(const FN(gemm_args) *g) {
    /* an implicit B is packed once per panel either way; its A (a conv's filters) is small */
    const int64_t panel = g->k * g->kd->nr * (int64_t)sizeof(T);
    /* with A transposed: while a tile's k lines of A fit in L1 beside the panel */
    const int ta_fits = g->k * 64 + panel <= NNF_SMALL_TA_BYTES;
    const int whole = !FN(small_bdirect)(g) && (!g->ta || g->packb || ta_fits) &&
                      panel <= NNF_SMALL_PANEL_BYTES;
    return whole ? g->k : g->kcb;
}

/* Tasks [t0, t1) of one K span: task t = column panel t / msplit, row range t % msplit. */
static void FN(small_part)(void *ctx, int64_t t0, int64_t t1, int worker) {
    const FN(gemm_job) *jb = (const FN(gemm_job) *)ctx;
    const FN(gemm_args) *g = jb->g;
    const KERN *kd = g->kd;
    const int MR = kd->mr, NR = kd->nr;
    const int64_t m = g->m, n = g->n, k = g->k, kcb = g->kcb, lda = g->lda;
    const int64_t mpan = (m + MR - 1) / MR, msplit = jb->msplit, p0 = jb->p0, ks = jb->ks;
    const int64_t rsa = g->ta ? 1 : lda, csa = g->ta ? lda : 1;
    const int bdirect = FN(small_bdirect)(g);
    T *bbuf = g->slices + worker * g->slice;
    for (int64_t t = t0; t < t1; ++t) {
        const int64_t jp = t / msplit, ms = t % msplit;
        const int64_t j0 = jp * NR, nr = n - j0 < NR ? n - j0 : NR;
        const int64_t r0 = ms * mpan / msplit, r1 = (ms + 1) * mpan / msplit;
        const int direct = bdirect && nr == NR;
        const int64_t ldbp = direct ? g->ldb : NR;
        const T *bp = direct ? g->B + p0 * g->ldb + j0 : bbuf;
        if (g->packb) g->packb(g->packb_ctx, bbuf, p0, ks, j0, nr, NR);
        else if (!direct) FN(pack_b)(bbuf, g->B, g->ldb, g->tb, p0, ks, j0, nr, NR);
        for (int64_t r = r0; r < r1; ++r) {
            int64_t i0, mr;
            FN(row_tile)(r, m, MR, &i0, &mr);
            /* g->apack: this K span's A, packed (one K block: ks == kcb) */
            const T *a = g->apack ? g->apack + r * MR * ks
                                  : g->A + (g->ta ? p0 * lda + i0 : i0 * lda + p0);
            const int64_t ra = g->apack ? 1 : rsa, ca = g->apack ? MR : csa;
            FN(tile_span)(kd, p0, ks, k, kcb, g->alpha, a, ra, ca, ca, bp, ldbp, g->beta, g->C,
                          g->ldc, i0, j0, mr, nr, g->ep, g->tc);
        }
    }
}

static inline __attribute__((always_inline)) void
FN(packa_rows)(T *restrict dst, const T *restrict A, int64_t lda, int64_t p0, int64_t ks,
               int64_t t0, int64_t t1, const int MR) {
    for (int64_t p = 0; p < ks; ++p) {
        const T *restrict s = A + (p0 + p) * lda;
        for (int64_t t = t0; t < t1; ++t)
            for (int i = 0; i < MR; ++i) dst[t * MR * ks + p * MR + i] = s[t * MR + i];
    }
}

/* Row tiles [t0, t1) of this K span's A into g->apack: the small nest with A transposed
 * (the weight gradients X^T dZ). Read in place, a tile's 12 rows are 12 adjacent elements of
 * every stored row, so each k step touches a new cache line that the next tile needs again,
 * and rows lda apart share a few L1 sets, so it is gone by then: the kernel waited on L2.
 * Packed (one MR-row panel per tile, as in the packed nest; the same FMAs, so the same
 * bits), 256x128 x 128x256 ran 1.12x, 384x128 x 128x256 1.14-1.15x, 128x128 x 128x256
 * 1.07-1.09x as fast (same-run A/B, 1 thread). With one row tile or one panel there is no
 * second reader of a line, and the copy only costs (128x128 x 128x10 swapped: 0.92x). */
static void FN(small_packa_part)(void *ctx, int64_t t0, int64_t t1, int worker) {
    const FN(gemm_job) *jb = (const FN(gemm_job) *)ctx;
    const FN(gemm_args) *g = jb->g;
    const int MR = g->kd->mr;
    (void)worker;
    /* full tiles first, one stored row of A at a time (a sequential read) */
    int64_t tf = t0, i0, mr;
    for (; tf < t1; ++tf) {
        FN(row_tile)(tf, g->m, MR, &i0, &mr);
        if (mr != MR || i0 != tf * MR) break;
    }
    if (tf > t0) {
        const int64_t ks = jb->ks;
        switch (MR) {
        case 6: FN(packa_rows)(g->apack, g->A, g->lda, jb->p0, ks, t0, tf, 6); break;
        case 12: FN(packa_rows)(g->apack, g->A, g->lda, jb->p0, ks, t0, tf, 12); break;
        default: FN(packa_rows)(g->apack, g->A, g->lda, jb->p0, ks, t0, tf, MR);
        }
    }
    for (int64_t t = tf; t < t1; ++t) {
        FN(row_tile)(t, g->m, MR, &i0, &mr);
        T *restrict d = g->apack + t * MR * jb->ks;
        for (int64_t p = 0; p < jb->ks; ++p) {
            const T *restrict s = g->A + (jb->p0 + p) * g->lda + i0;
            for (int64_t i = 0; i < mr; ++i) d[p * MR + i] = s[i];
            for (int64_t i = mr; i < MR; ++i) d[p * MR + i] = 0;
        }
    }
}

/* One job per K span (usually one: whole-K panels), its tasks in g->nthr chunks. */
static void FN(small_run)(const FN(gemm_args) *g) {
    const int64_t npan = (g->n + g->kd->nr - 1) / g->kd->nr, team = g->nthr;
    FN(gemm_job) jb = {0};
    jb.g = g;
    /* msplit > 1 only when panels are fewer than threads */
    jb.msplit = npan >= team ? 1 : (team + npan - 1) / npan;
    for (jb.p0 = 0; jb.p0 < g->k; jb.p0 += g->kspan) {
        jb.ks = g->k - jb.p0 < g->kspan ? g->k - jb.p0 : g->kspan;
        if (g->apack)
            nnf_parallel_for(FN(small_packa_part), &jb, (g->m + g->kd->mr - 1) / g->kd->mr,
                             g->nthr, g->nthr);
        /* a few tasks per thread: one that starts late or is preempted holds back little */
        nnf_parallel_for(FN(small_part), &jb, npan * jb.msplit, NNF_PARTS(team), g->nthr);
    }
}

/* ---- packed: GotoBLAS loops jc (NC) > pc (KC) > [ic (MC) x column range] > jr > ir -------
 * Two ways to share the work (g->cols, chosen by packed_split):
 *  shared:  one job packs each KC x NC block of B once, a second runs the (MC block, column
 *           range) tasks; each job's join stands where a team barrier used to.
 *  columns: one job; each chunk owns a contiguous range of whole NR panels, packs only those
 *           and every MC block of A (A is packed once per chunk), and never waits. */
static inline void FN(static_range)(int64_t n, int team, int me, int64_t *lo, int64_t *hi) {
    *lo = n * me / team;
    *hi = n * (me + 1) / team;
}

/* Shared split: column ranges per MC block, 1 when the MC blocks alone divide among threads
 * (packed_run runs it, packed_split estimates it). */
static inline int64_t FN(shared_nsplit)(int64_t mblk, int team) {
    return mblk % team == 0 ? 1 : team;
}

/* MR-row tiles of an mc-row block, a short tile weighing at least half a full one (with
 * half the FMA chains it runs latency-bound), in MR-row units times 2. */
static inline int64_t FN(tile_weight)(int64_t mc, int MR) {
    int64_t w = 0;
    for (int64_t t = 0; t * MR < mc; ++t) {
        int64_t i0, mr;
        FN(row_tile)(t, mc, MR, &i0, &mr);
        w += 2 * mr < MR ? 1 : (2 * mr + MR - 1) / MR;
    }
    return w;
}

/* Cycles of the busiest thread per K block under each split, roughly: a tile step costs
 * MR*NR*sizeof(T)/64 cycles (two 32-byte FMA pipes), a packed element about 1/2 cycle (1 from
 * a transposed A, read MR elements per cache line), each of the shared split's two joins
 * about 1500 cycles. Returns 1 when the column split is the cheaper, e.g. 256x784x512 and
 * 1024^3 on 2 threads, where the shared split's MC blocks do not divide evenly into tiles
 * (in-process A/B over four runs, 2 threads: 1.00-1.19x and 0.98-1.06x the shared split). */
static int FN(packed_split)(const KERN *kd, int64_t m, int64_t n, int64_t kc, int ta, int team) {
    const int MR = kd->mr, NR = kd->nr;
    if (team < 2) return 0;
    const int64_t MC = nnf_even_block(m, kd->mc, MR), ncb = nnf_even_block(n, kd->nc, NR);
    const int64_t mblk = (m + MC - 1) / MC, npan = (ncb + NR - 1) / NR;
    const double step = (double)MR * NR * sizeof(T) / 64.0 * kc / 2.0; /* per weight unit */
    const double pk = kc / 2.0;           /* per packed row of B or row-major A */
    const double pka = ta ? kc : pk;      /* A^T: MR elements per cache line touched */
    double cols = 0, shared = 0;
    int64_t wall = 0; /* every MC block: what each thread runs in the column split */
    for (int64_t ic = 0; ic < m; ic += MC) wall += FN(tile_weight)(m - ic < MC ? m - ic : MC, MR);
    const int64_t nsplit = FN(shared_nsplit)(mblk, team);
    for (int me = 0; me < team; ++me) {
        int64_t p0, p1, t0, t1;
        FN(static_range)(npan, team, me, &p0, &p1);
        const double c = wall * (p1 - p0) * step + (double)m * pka + (p1 - p0) * NR * pk;
        cols = c > cols ? c : cols;
        FN(static_range)(mblk * nsplit, team, me, &t0, &t1);
        double s = (p1 - p0) * NR * pk + 3000.0;
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t ib = t / nsplit, js = t % nsplit;
            const int64_t mc = m - ib * MC < MC ? m - ib * MC : MC;
            if (t == t0 || js == 0) s += mc * pka; /* a new A block to pack */
            s += FN(tile_weight)(mc, MR) * ((js + 1) * npan / nsplit - js * npan / nsplit) * step;
        }
        shared = s > shared ? s : shared;
    }
    return cols < shared;
}

/* The tiles of one packed MC block of A against B panels [p0, p1) of the packed block. */
static inline void FN(packed_block)(const FN(gemm_args) *g, const T *apack, int64_t ic,
                                    int64_t mc, const T *bpack, int64_t kc, int64_t jc,
                                    int64_t nc, int64_t p0, int64_t p1, T bet, int last) {
    const KERN *kd = g->kd;
    const int MR = kd->mr, NR = kd->nr;
    for (int64_t jp = p0; jp < p1; ++jp) {
        const int64_t j0 = jp * NR, nr = nc - j0 < NR ? nc - j0 : NR;
        const T *bp = bpack + j0 * g->kcb;
        for (int64_t t = 0; t * MR < mc; ++t) {
            int64_t ir, mr;
            FN(row_tile)(t, mc, MR, &ir, &mr);
            FN(tile)(kd, kc, g->alpha, apack + t * MR * kc, 1, MR, bp, NR, bet, g->C, g->ldc,
                     ic + ir, jc + j0, mr, nr, last, g->ep, g->tc);
        }
    }
}

/* Column split: chunk [p0, p1) of the panels of a full NC block, the same panel slots in
 * every NC block (cut at a shorter last block's end): a chunk packs only its own panels and,
 * into its thread's slice, every MC block of A; it shares nothing and never waits. (Splitting
 * each block's own panel count instead would hand a slot to another chunk in a shorter last
 * block while this one still reads it.) Panels sit kcb apart, so a chunk already on a shorter
 * last K block never writes where another is still reading. */
static void FN(cols_part)(void *ctx, int64_t p0, int64_t p1, int worker) {
    const FN(gemm_args) *g = ((const FN(gemm_job) *)ctx)->g;
    const KERN *kd = g->kd;
    const int MR = kd->mr, NR = kd->nr;
    const int64_t m = g->m, n = g->n, k = g->k, kcb = g->kcb;
    const int64_t MC = nnf_even_block(m, kd->mc, MR), ncb = nnf_even_block(n, kd->nc, NR);
    T *apack = g->slices + worker * g->slice;
    for (int64_t jc = 0; jc < n; jc += ncb) {
        const int64_t nc = n - jc < ncb ? n - jc : ncb;
        const int64_t npan = (nc + NR - 1) / NR, q1 = p1 < npan ? p1 : npan;
        if (p0 >= q1) continue;
        for (int64_t pc = 0; pc < k; pc += kcb) {
            const int64_t kc = k - pc < kcb ? k - pc : kcb;
            const T bet = pc == 0 ? g->beta : (T)1;
            for (int64_t jp = p0; jp < q1; ++jp) {
                const int64_t j0 = jp * NR, nr = nc - j0 < NR ? nc - j0 : NR;
                FN(pack_b)(g->bpack + j0 * kcb, g->B, g->ldb, g->tb, pc, kc, jc + j0, nr, NR);
            }
            for (int64_t ic = 0; ic < m; ic += MC) {
                const int64_t mc = m - ic < MC ? m - ic : MC;
                FN(pack_a)(apack, g->A, g->lda, g->ta, ic, mc, pc, kc, MR);
                FN(packed_block)(g, apack, ic, mc, g->bpack, kc, jc, nc, p0, q1, bet,
                                 pc + kc >= k);
            }
        }
    }
}

/* Shared split, step 1: panels [lo, hi) of the current KC x NC block of B into the buffer. */
static void FN(packb_part)(void *ctx, int64_t lo, int64_t hi, int worker) {
    const FN(gemm_job) *jb = (const FN(gemm_job) *)ctx;
    const FN(gemm_args) *g = jb->g;
    const int NR = g->kd->nr;
    (void)worker;
    for (int64_t jp = lo; jp < hi; ++jp) {
        const int64_t j0 = jp * NR, nr = jb->nc - j0 < NR ? jb->nc - j0 : NR;
        FN(pack_b)(g->bpack + j0 * g->kcb, g->B, g->ldb, g->tb, jb->pc, jb->kc, jb->jc + j0,
                   nr, NR);
    }
}

/* Shared split, step 2: tasks [t0, t1), task t = (MC block t / nsplit, column range
 * t % nsplit) against the packed block; A is packed once per MC block a chunk meets. */
static void FN(shared_part)(void *ctx, int64_t t0, int64_t t1, int worker) {
    const FN(gemm_job) *jb = (const FN(gemm_job) *)ctx;
    const FN(gemm_args) *g = jb->g;
    const int MR = g->kd->mr;
    const int64_t m = g->m, MC = nnf_even_block(m, g->kd->mc, MR), nsplit = jb->nsplit;
    T *apack = g->slices + worker * g->slice;
    int64_t packed = -1;
    for (int64_t t = t0; t < t1; ++t) {
        const int64_t ib = t / nsplit, js = t % nsplit;
        const int64_t ic = ib * MC, mc = m - ic < MC ? m - ic : MC;
        if (ib != packed) {
            FN(pack_a)(apack, g->A, g->lda, g->ta, ic, mc, jb->pc, jb->kc, MR);
            packed = ib;
        }
        FN(packed_block)(g, apack, ic, mc, g->bpack, jb->kc, jb->jc, jb->nc,
                         js * jb->npan / nsplit, (js + 1) * jb->npan / nsplit,
                         jb->pc == 0 ? g->beta : (T)1, jb->pc + jb->kc >= g->k);
    }
}

static void FN(packed_run)(const FN(gemm_args) *g) {
    const KERN *kd = g->kd;
    const int NR = kd->nr;
    const int64_t m = g->m, n = g->n, k = g->k, kcb = g->kcb;
    /* equal blocks of at most MC / NC, rounded up to MR / NR (no sliver blocks) */
    const int64_t MC = nnf_even_block(m, kd->mc, kd->mr), ncb = nnf_even_block(n, kd->nc, NR);
    FN(gemm_job) jb = {0};
    jb.g = g;
    if (g->cols) {
        nnf_parallel_for(FN(cols_part), &jb, ncb / NR, g->nthr, g->nthr);
        return;
    }
    const int64_t mblk = (m + MC - 1) / MC;
    jb.nsplit = FN(shared_nsplit)(mblk, g->nthr);
    for (jb.jc = 0; jb.jc < n; jb.jc += ncb) {
        jb.nc = n - jb.jc < ncb ? n - jb.jc : ncb;
        jb.npan = (jb.nc + NR - 1) / NR;
        for (jb.pc = 0; jb.pc < k; jb.pc += kcb) {
            jb.kc = k - jb.pc < kcb ? k - jb.pc : kcb;
            /* each job returns only when all its chunks are done: the block is packed before
             * any tile reads it, and read by all before the next block overwrites it */
            nnf_parallel_for(FN(packb_part), &jb, jb.npan, g->nthr, g->nthr);
            nnf_parallel_for(FN(shared_part), &jb, mblk * jb.nsplit, g->nthr, g->nthr);
        }
    }
}

/* ---- few rows: m <= NNF_ROWS_MAX, B row-major read in place (kd->rows), no packing -------
 * Chunk [p0, p1) of the NR panels: its columns over every K block, then their epilogue. */
static void FN(rows_part)(void *ctx, int64_t p0, int64_t p1, int worker) {
    const FN(gemm_args) *g = ((const FN(gemm_job) *)ctx)->g;
    const KERN *kd = g->kd;
    const int NR = kd->nr;
    const int64_t m = g->m, n = g->n, k = g->k, kcb = g->kcb, lda = g->lda;
    const int64_t j0 = p0 * NR, j1 = p1 * NR < n ? p1 * NR : n;
    const int64_t rsa = g->ta ? 1 : lda, csa = g->ta ? lda : 1;
    (void)worker;
    if (j0 >= j1) return;
    for (int64_t pc = 0; pc < k; pc += kcb) {
        const int64_t kc = k - pc < kcb ? k - pc : kcb;
        kd->rows((int)m, kc, g->alpha, g->A + pc * csa, rsa, csa, g->B + pc * g->ldb + j0,
                 g->ldb, pc == 0 ? g->beta : (T)1, g->C + j0, g->ldc, j1 - j0);
    }
    if (g->ep) NNF_CAT(nnf_epilogue_tile_, SFX)(g->ep, g->C, g->ldc, 0, j0, m, j1 - j0);
}

static void FN(rows_run)(const FN(gemm_args) *g) {
    FN(gemm_job) jb = {0};
    jb.g = g;
    /* Whole panel ranges per thread (one range on one thread): the rows kernel keeps up to 16
     * vectors of a row in flight, and a narrower range (NNF_PARTS' 4 per thread cut 256
     * columns into 32- or 64-column ranges) falls back to a few chains that wait on FMA
     * latency: 1x784x256 f32 took 19 us in 4 ranges on one thread, against NumPy's 11 us. */
    nnf_parallel_for(FN(rows_part), &jb, (g->n + g->kd->nr - 1) / g->kd->nr, g->nthr, g->nthr);
}

/* ---- degenerate: alpha == 0 or k == 0 -> C = beta * C (A and B are not read) ------------ */
static void FN(gemm_scale)(T *C, int64_t ldc, int64_t m, int64_t n, T beta,
                           const nnf_epilogue_t *ep) {
    for (int64_t i = 0; i < m; ++i) {
        T *restrict c = C + i * ldc;
        if (beta == (T)0)
            for (int64_t j = 0; j < n; ++j) c[j] = 0;
        else if (beta != (T)1)
            for (int64_t j = 0; j < n; ++j) c[j] *= beta;
    }
    if (ep) NNF_CAT(nnf_epilogue_tile_, SFX)(ep, C, ldc, 0, 0, m, n);
}

/* Narrow n: compute C^T = op(B)^T op(A)^T instead, so the vector lanes run along m. Taken
 * when it saves enough of the lane work (n * ceil(m/NR) against m * ceil(n/NR)) to pay for
 * the transposed store: a quarter under two NR panels (an output layer, n = 10); a sixth
 * up to four panels when A is transposed and the swapped m fits the small nest: a weight
 * gradient dW = x^T dz, whose swapped B is x as stored (row-major panels), e.g. 784 x 100
 * from a batch of 200: 25 full panels along 784 instead of 4 with 100 of 128 lanes. (Not
 * x W: its swapped B would be x^T, a transposing pack that a batch of 32 avoids.)
 * Every element is still one FMA chain over p, so results are bit-identical to the plain
 * nest. */
static int FN(take_swap)(const KERN *kd, int64_t m, int64_t n, int64_t k, int trans_a) {
    const int64_t NR0 = kd->nr;
    const int64_t lanes = m * ((n + NR0 - 1) / NR0), swapped = n * ((m + NR0 - 1) / NR0);
    return nnf_gemm_swap_enabled &&
           ((n < 2 * NR0 && 4 * swapped <= 3 * lanes) ||
            (trans_a && n <= 4 * NR0 && 6 * swapped <= 5 * lanes &&
             n * nnf_k_block(k, kd->kc) <= kd->mc * kd->kc));
}

/* Right-edge split: when n is over one panel and the last is partly empty (and not swapped
 * whole), the full panels run as they are and the last panel's r columns as a narrow product
 * of their own (swapped, lanes along m). x W with 100 outputs from a batch of 200: a 4-column
 * panel costs a full 32-lane one per row tile; swapped it is 7 panels of 4 rows (in-process
 * A/B, 1 thread AVX-512: 200x784x100 0.88x). Each element keeps its FMA chain and its
 * epilogue (bias and z offset to the columns), so the bits are those of the unsplit product. */
static int FN(take_split)(const KERN *kd, int64_t m, int64_t n, int64_t k, int trans_a) {
    const int64_t NR0 = kd->nr, r = n % NR0;
    return nnf_gemm_swap_enabled && n > NR0 && r != 0 && m >= NR0 &&
           4 * r * ((m + NR0 - 1) / NR0) <= 3 * m && !FN(take_swap)(kd, m, n, k, trans_a);
}

/* One product, not split (C, A, B, sizes and flags as nnf_gemm_ep; m, n, k > 0, alpha != 0).
 * With `need` given it only stores the workspace bytes the product takes and returns. */
static int FN(gemm_one)(T *C, int64_t ldc, const T *A, int64_t lda, const T *B, int64_t ldb,
                        int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, T alpha,
                        T beta, const nnf_epilogue_t *ep, int nthreads, size_t *need) {
    FN(gemm_args) g;
    g.kd = ACTIVE_KERNEL();
    g.C = C; g.A = A; g.B = B; g.ldc = ldc; g.lda = lda; g.ldb = ldb;
    g.m = m; g.n = n; g.k = k; g.ta = trans_a; g.tb = trans_b;
    g.alpha = alpha; g.beta = beta; g.ep = ep; g.bpack = (T *)0; g.tc = 0; g.cols = 0;
    g.slices = (T *)0; g.slice = 0; g.kspan = 0; g.nthr = 1; g.apack = (T *)0;
    g.packb = 0; g.packb_ctx = 0;
    if (FN(take_swap)(g.kd, m, n, k, trans_a)) {
        g.tc = 1;
        g.A = B; g.lda = ldb; g.ta = !trans_b;
        g.B = A; g.ldb = lda; g.tb = !trans_a;
        g.m = n; g.n = m;
        m = g.m; n = g.n;
    }
    g.kcb = nnf_k_block(k, g.kd->kc);
    /* below NNF_GEMM_MT_FLOPS waking a team costs more than it saves */
    const double flops = 2.0 * (double)m * (double)n * (double)k;
    int nthr = (nthreads > 1 && flops >= NNF_GEMM_MT_FLOPS) ? nthreads : 1;
    if (nthr > NNF_MAX_THREADS) nthr = NNF_MAX_THREADS; /* per-thread slices are sized by it */
    /* small nest while the m x KC slice of A it sweeps per B panel is no bigger than the
     * MC x KC block the packed nest keeps in L2 */
    int small = m * g.kcb <= g.kd->mc * g.kd->kc;
    if (nnf_gemm_path_override == 1) small = 1;
    else if (nnf_gemm_path_override >= 2) small = 0;
    /* a few rows against row-major B: each B element is used at most m times, so B is
     * streamed in place instead of packed (batch-1 inference, GEMV) */
    const int rows = !g.tc && !g.tb && m <= NNF_ROWS_MAX && nnf_gemm_path_override == 0;
    if (rows && (double)k * (double)n * (double)sizeof(T) < NNF_ROWS_MT_BYTES) nthr = 1;
    /* The whole workspace is taken here, before any thread starts: out of memory returns
     * with C untouched (so accumulating callers lose nothing), and the status belongs to
     * this call alone. Slices for nthr members; a smaller team uses the first ones. */
    size_t shared = 0;
    if (rows) {
        /* nothing packed */
    } else if (small) {
        g.kspan = FN(small_kspan)(&g);
        g.slice = (int64_t)(nnf_ws_bytes(g.kspan * g.kd->nr, sizeof(T)) / sizeof(T));
        /* A transposed, several row tiles and panels: packed once per K span (see
         * small_packa_part) */
        if (g.ta && m > g.kd->mr && n > g.kd->nr)
            shared = nnf_ws_bytes((m + g.kd->mr - 1) / g.kd->mr * g.kd->mr * g.kspan, sizeof(T));
    } else {
        const int64_t ncb = nnf_even_block(n, g.kd->nc, g.kd->nr);
        const int64_t MC = nnf_even_block(m, g.kd->mc, g.kd->mr);
        shared = nnf_ws_bytes(g.kcb * ncb, sizeof(T));
        g.slice = (int64_t)(nnf_ws_bytes(MC * g.kcb, sizeof(T)) / sizeof(T));
        g.cols = nnf_gemm_path_override >= 3 ? nnf_gemm_path_override == 4
                                             : FN(packed_split)(g.kd, m, n, g.kcb, g.ta, nthr);
    }
    const size_t bytes = shared + (size_t)nthr * (size_t)g.slice * sizeof(T);
    if (need) {
        *need = bytes;
        return NNF_OK;
    }
    if (bytes) {
        char *ws = (char *)nnf_workspace(bytes);
        if (!ws) return NNF_ERR_NOMEM;
        g.bpack = (T *)ws;
        g.slices = (T *)(ws + shared);
        if (small && shared) g.apack = (T *)ws;
    }
    g.nthr = nthr;
    if (rows) FN(rows_run)(&g);
    else if (small) FN(small_run)(&g);
    else FN(packed_run)(&g);
    return NNF_OK;
}


int NNF_CAT(nnf_gemm_ep_, SFX)(T *C, int64_t ldc, const T *A, int64_t lda, const T *B,
                               int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a,
                               int trans_b, T alpha, T beta, const nnf_epilogue_t *ep,
                               int nthreads) {
    if (m <= 0 || n <= 0) return NNF_OK;
    if (alpha == (T)0 || k <= 0) {
        FN(gemm_scale)(C, ldc, m, n, beta, ep);
        return NNF_OK;
    }
    const KERN *kd = ACTIVE_KERNEL();
    if (!FN(take_split)(kd, m, n, k, trans_a))
        return FN(gemm_one)(C, ldc, A, lda, B, ldb, m, n, k, trans_a, trans_b, alpha, beta, ep,
                            nthreads, (size_t *)0);
    const int64_t n0 = n - n % kd->nr;
    const T *Bt = trans_b ? B + n0 * ldb : B + n0;
    nnf_epilogue_t et;
    if (ep) {
        et = *ep;
        if (et.bias) et.bias = (const T *)et.bias + n0;
        if (et.z) et.z = (T *)et.z + n0;
    }
    const nnf_epilogue_t *ept = ep ? &et : ep;
    /* both parts' workspace taken before either runs (it is kept per thread and reused), so
     * out of memory still returns with C untouched */
    size_t need0 = 0, need1 = 0;
    FN(gemm_one)(C, ldc, A, lda, B, ldb, m, n0, k, trans_a, trans_b, alpha, beta, ep, nthreads,
                 &need0);
    FN(gemm_one)(C + n0, ldc, A, lda, Bt, ldb, m, n - n0, k, trans_a, trans_b, alpha, beta, ept,
                 nthreads, &need1);
    if ((need0 || need1) && !nnf_workspace(need0 > need1 ? need0 : need1))
        return NNF_ERR_NOMEM;
    const int st = FN(gemm_one)(C, ldc, A, lda, B, ldb, m, n0, k, trans_a, trans_b, alpha, beta,
                                ep, nthreads, (size_t *)0);
    if (st != NNF_OK) return st;
    return FN(gemm_one)(C + n0, ldc, A, lda, Bt, ldb, m, n - n0, k, trans_a, trans_b, alpha,
                        beta, ept, nthreads, (size_t *)0);
}

int NNF_CAT(nnf_gemm_, SFX)(T *C, int64_t ldc, const T *A, int64_t lda, const T *B, int64_t ldb,
                            int64_t m, int64_t n, int64_t k, int trans_a, int trans_b, T alpha,
                            T beta, int nthreads) {
    return NNF_CAT(nnf_gemm_ep_, SFX)(C, ldc, A, lda, B, ldb, m, n, k, trans_a, trans_b, alpha,
                                      beta, (const nnf_epilogue_t *)0, nthreads);
}

int NNF_CAT(nnf_gemm_cb_, SFX)(T *C, int64_t ldc, int tc, const T *A, int64_t lda, int trans_a,
                               void (*packb)(void *, T *, int64_t, int64_t, int64_t, int64_t,
                                             int),
                               void *ctx, int64_t m, int64_t n, int64_t k, T beta,
                               int nthreads) {
    FN(gemm_args) g = {0};
    g.kd = ACTIVE_KERNEL();
    g.kcb = nnf_k_block(k, g.kd->kc);
    if (m * g.kcb > g.kd->mc * g.kd->kc) return -1;
    if (m <= 0 || n <= 0) return NNF_OK;
    if (k <= 0) {   /* C = beta * C with beta 0 or 1 */
        if (beta == (T)0)
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) C[tc ? j * ldc + i : i * ldc + j] = 0;
        return NNF_OK;
    }
    g.C = C; g.ldc = ldc; g.tc = tc; g.A = A; g.lda = lda; g.ta = trans_a;
    g.m = m; g.n = n; g.k = k; g.alpha = (T)1; g.beta = beta;
    g.packb = packb; g.packb_ctx = ctx;
    const double flops = 2.0 * (double)m * (double)n * (double)k;
    int nthr = (nthreads > 1 && flops >= NNF_GEMM_MT_FLOPS) ? nthreads : 1;
    if (nthr > NNF_MAX_THREADS) nthr = NNF_MAX_THREADS;
    g.kspan = FN(small_kspan)(&g);
    g.slice = (int64_t)(nnf_ws_bytes(g.kspan * g.kd->nr, sizeof(T)) / sizeof(T));
    char *ws = (char *)nnf_workspace((size_t)nthr * (size_t)g.slice * sizeof(T));
    if (!ws) return NNF_ERR_NOMEM;
    g.slices = (T *)ws;
    g.nthr = nthr;
    FN(small_run)(&g);
    return NNF_OK;
}

#undef FN
#undef NNF_CAT
#undef NNF_CAT_
