/* GEMM framework: blocking, packing and threading around the dispatched microkernel.
 * The loops are written once in gemm_tmpl.h and instantiated here for float and double;
 * microkernels live in nnf_<s|d>gemm_ukr_<isa>_<MR>x<NR>.c and are chosen in ../dispatch.c. */
#include <stdint.h>
#include <stdlib.h>
#include "gemm_kernels.h"
#include "nnfast.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#ifdef NNF_HAVE_OPENMP
#include <omp.h>
#endif

/* Start an OpenMP team only above this many flops (~3 us of one core's work). Measured with
 * the team's threads spinning between back-to-back calls, as in training: 2 threads already
 * win at 64x64x32 (0.26 MFLOP, 2.6 vs 3.2 us) and 128x128x10 (3.8 vs 5.8 us); after 3 ms
 * idle (threads asleep) they still break even at 128x128x10 and win from 64x64x64 up. */
#define NNF_GEMM_MT_FLOPS 2.5e5

/* Small nest: largest whole-K packed B panel (gemm_tmpl.h small_body); a quarter of L2. */
#define NNF_SMALL_PANEL_BYTES (128 * 1024)

/* Test hook (gemm_kernels.h): 0 = choose by size, 1 = always small path, 2 = always packed,
 * 3 / 4 = packed with B shared by the team / a column range per thread. */
int nnf_gemm_path_override = 0;
void nnf_gemm_set_path(int path) { nnf_gemm_path_override = path; }

/* Test hook: 0 turns off the narrow-n swap (C^T = B^T A^T), to compare it with the plain nest. */
int nnf_gemm_swap_enabled = 1;
void nnf_gemm_set_swap(int on) { nnf_gemm_swap_enabled = on; }

/* K is cut into equal blocks of at most KC (rounded up to 8 for aligned panels), the same for
 * every path and thread count: each element's sum is always split at the same points. */
static int64_t nnf_k_block(int64_t k, int64_t kc) {
    int64_t nb = (k + kc - 1) / kc;
    int64_t b = (k + nb - 1) / nb;
    b = (b + 7) & ~(int64_t)7;
    return b < k ? b : k;
}

/* n cut into equal blocks of at most `max`, each rounded up to a multiple of `mult`. */
static int64_t nnf_even_block(int64_t n, int64_t max, int64_t mult) {
    int64_t nb = (n + max - 1) / max;
    int64_t b = (n + nb - 1) / nb;
    return (b + mult - 1) / mult * mult;
}

static inline int nnf_team_size(void) {
#ifdef NNF_HAVE_OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

static inline int nnf_thread_num(void) {
#ifdef NNF_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Out of memory: a thread that cannot get its packing buffer sets this flag and skips its
 * share of the work (it still takes part in every barrier); the Cython layer reads the flag
 * with nnf_gemm_take_oom() after the call and raises MemoryError. */
static volatile int nnf_gemm_oom_flag = 0;
static int nnf_gemm_fail_alloc = 0; /* test hook: every buffer request fails */

int nnf_gemm_take_oom(void) {
    int r = nnf_gemm_oom_flag;
    nnf_gemm_oom_flag = 0;
    return r;
}

void nnf_gemm_simulate_oom(int on) { nnf_gemm_fail_alloc = on; }

/* Per-thread packing buffers, kept between calls (64-byte aligned, grown on demand):
 * slot 0 shared B block (owned by the calling thread), 1 small-path B panel, 2 packed A.
 * Returns NULL (and sets the flag) when the memory cannot be had. */
static void *nnf_tls_buffer(int slot, size_t bytes) {
    static _Thread_local void *raw[3];
    static _Thread_local size_t cap[3];
    if (nnf_gemm_fail_alloc) {
        nnf_gemm_oom_flag = 1;
        return NULL;
    }
    if (bytes > cap[slot]) {
        free(raw[slot]);
        cap[slot] = 0;
        size_t want = bytes + bytes / 4 + 4096;
        raw[slot] = malloc(want + 64);
        if (raw[slot] == NULL) {
            nnf_gemm_oom_flag = 1;
            return NULL;
        }
        cap[slot] = want;
    }
    return (void *)(((uintptr_t)raw[slot] + 63) & ~(uintptr_t)63);
}

#define T float
#define SFX f32
#define KERN nnf_kernel_f32_t
#define ACTIVE_KERNEL nnf_active_kernel_f32
#include "gemm_tmpl.h"
#undef T
#undef SFX
#undef KERN
#undef ACTIVE_KERNEL

#define T double
#define SFX f64
#define KERN nnf_kernel_f64_t
#define ACTIVE_KERNEL nnf_active_kernel_f64
#include "gemm_tmpl.h"
#undef T
#undef SFX
#undef KERN
#undef ACTIVE_KERNEL
