/* 2-D convolution, channels last (see nnfast.h, "convolution"; docs/conv.md for the method).
 * im2col of whole images into a workspace the GEMM reads as a row-major (rows x Kc) matrix,
 * then nnfast's GEMM with the bias/activation epilogue. Thread-count independence: blocks are
 * whole images chosen from the shapes alone, the GEMM never splits K, im2col and col2im write
 * disjoint rows, and dW's blocks are added in image order. Written once in conv_tmpl.h. */
#include <stdlib.h>
#include <string.h>

#include "gemm/gemm_kernels.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "nnfast.h"
#include "runtime/par.h"

#define PAR_WORK 32768          /* elements copied below which im2col/col2im stay serial */
/* Workspace elements per block (512 KB f32): the columns im2col writes stay in L2 for the GEMM
 * that reads them next. LeNet at batch 64, 1 thread: conv1 3.2 -> 2.5 ms, conv2 1.0 -> 0.63 ms
 * against 4 MB blocks (which spilled to L3). */
#define COL_BLOCK (1 << 17)

/* Images per block: as many as fit COL_BLOCK, at least one. Depends on shapes only. */
static int64_t conv_block_images(const nnf_conv_geom_t *g) {
    int64_t per = g->OH * g->OW * g->KH * g->KW * g->C;
    int64_t b = per > 0 ? COL_BLOCK / per : g->N;
    if (b < 1) b = 1;
    if (b > g->N) b = g->N;
    return b;
}

/* Narrow outputs (F filters) run as the implicit GEMM y^T = Wt^T cols^T, vector lanes along
 * the pixels, B packed straight from x (conv_tmpl.h pack_taps): where the explicit path's GEMM
 * would swap to C^T = B^T A^T anyway (gemm_tmpl.h, narrow n, for very many rows) and its
 * im2col matrix was written only to be copied again into the panels. */
static int conv_implicit(int64_t F, int dtype_size) {
    const int64_t NR = nnf_gemm_nr(dtype_size);
    return F < 2 * NR && 4 * F <= 3 * NR * ((F + NR - 1) / NR);
}

/* Output columns [*lo, *hi) whose tap at column offset off (iw = o*S + off) lies inside a row
 * of L pixels: im2col's interior, pack_taps' per-tap bounds. *hi may exceed the output width. */
static inline void conv_tap_cols(int64_t off, int64_t S, int64_t L, int64_t *lo, int64_t *hi) {
    *lo = off >= 0 ? 0 : (-off + S - 1) / S;
    *hi = L - 1 - off < 0 ? 0 : (L - 1 - off) / S + 1;
}

/* The output rows oh whose tap kh reads input row ih (oh*S - Pd + kh*D == ih), or -1:
 * col2im's gather. */
static inline int64_t conv_tap_row(int64_t ih, int64_t kh, int64_t S, int64_t Pd, int64_t D,
                                   int64_t OH) {
    const int64_t t = ih + Pd - kh * D;
    if (t < 0 || (S > 1 && t % S)) return -1;
    const int64_t o = S > 1 ? t / S : t;   /* no division at stride 1 */
    return o < OH ? o : -1;
}

/* A 1x1 kernel, stride 1, no padding: the im2col matrix is x itself. */
static int conv_is_pointwise(const nnf_conv_geom_t *g) {
    return g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && g->PT == 0 && g->PL == 0 &&
           g->OH == g->H && g->OW == g->W;
}

/* The direct and lanes kernels of the active path (conv_tmpl.h direct1_*, dw1_*, fw_lanes,
 * dw_lanes, dx_part), or none while the test hook has them off: <field>_kernel_f32/_f64. */
static int conv_direct_enabled = 1;
void nnf_conv_set_direct(int on) { conv_direct_enabled = on; }
#define CONV_KERNEL(FIELD)                                                                  \
    static nnf_##FIELD##_f32 FIELD##_kernel_f32(void) {                                     \
        return conv_direct_enabled ? nnf_active_kernel_f32()->FIELD : 0;                    \
    }                                                                                       \
    static nnf_##FIELD##_f64 FIELD##_kernel_f64(void) {                                     \
        return conv_direct_enabled ? nnf_active_kernel_f64()->FIELD : 0;                    \
    }                                                                                       \
    typedef nnf_##FIELD##_f32 FIELD##_fn_f32;                                               \
    typedef nnf_##FIELD##_f64 FIELD##_fn_f64;
CONV_KERNEL(conv1)
CONV_KERNEL(conv1_dw)
CONV_KERNEL(convfw)
CONV_KERNEL(convdw)
CONV_KERNEL(convdx)
#undef CONV_KERNEL
/* The active path's K block: taps up to it are one FMA chain in the implicit GEMM. */
static int64_t gemm_kc_f32(void) { return nnf_active_kernel_f32()->kc; }
static int64_t gemm_kc_f64(void) { return nnf_active_kernel_f64()->kc; }
static int lanes_f32(void) { return nnf_active_kernel_f32()->vl; }
static int lanes_f64(void) { return nnf_active_kernel_f64()->vl; }

/* The single-channel direct path applies: one input channel, unit width stride and dilation
 * (the taps of a kernel row are then adjacent pixels of one input row, and an output row's
 * pixels read them at consecutive offsets: vector lanes along the row). Any F, kernel height,
 * height stride/dilation and padding. */
static int conv_direct1(const nnf_conv_geom_t *g) {
    return g->C == 1 && g->SW == 1 && g->DW == 1 && !conv_is_pointwise(g);
}

#define T float
#define SFX f32
#include "conv_tmpl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "conv_tmpl.h"
#undef T
#undef SFX
