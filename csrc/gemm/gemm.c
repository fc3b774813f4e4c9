/* GEMM framework: blocking, packing and threading around the dispatched microkernel.
 * The loops are written once in gemm_tmpl.h and instantiated here for float and double;
 * microkernels live in nnf_<s|d>gemm_ukr_<isa>_<MR>x<NR>.c and are chosen in ../dispatch.c. */
#include <stdint.h>
#include <stdlib.h>
#include "gemm_kernels.h"
#include "nnfast.h"
#include "runtime/par.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Use other threads only above this many flops (~3 us of one core's work). Measured with
 * the team's threads spinning between back-to-back calls, as in training: 2 threads already
 * win at 64x64x32 (0.26 MFLOP, 2.6 vs 3.2 us) and 128x128x10 (3.8 vs 5.8 us); after 3 ms
 * idle (threads asleep) they still break even at 128x128x10 and win from 64x64x64 up. */
#define NNF_GEMM_MT_FLOPS 2.5e5

/* The rows nest (m <= 4: batch-1 inference) streams B once and is bound by how fast one core
 * reads it; it uses other threads only when B is at least this big. Below, a second thread
 * cannot gain more than its wake-up costs: 1x784x256 f32 (0.8 MB of B, 0.4 MFLOP) measured
 * 8.1 us on 1 thread against 9.1 on 2 with the workers spinning, 54-58 against 62-71 us after
 * 2 ms idle; and in a batch-1 predict it was the only parallel op, so 2 threads made the
 * call slower than 1 (56 against 42 us in benchmarks/latency.py). */
#define NNF_ROWS_MT_BYTES ((double)(4 << 20))

/* Small nest: largest whole-K packed B panel (gemm_tmpl.h small_kspan); a quarter of L2. */
#define NNF_SMALL_PANEL_BYTES (128 * 1024)
/* ... and with A transposed, while a tile's K lines of A (one per K step) fit beside the panel
 * in a 48 KiB L1 (gemm_tmpl.h small_kspan; dW = x^T dz swapped: 200 x (64 + 128) bytes). */
#define NNF_SMALL_TA_BYTES (40 * 1024)

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

/* Test hook: workspace requests of more than this many bytes fail (-1: no limit). */
static int64_t nnf_gemm_alloc_limit = -1;
void nnf_gemm_set_alloc_limit(int64_t bytes) { nnf_gemm_alloc_limit = bytes; }

/* The calling thread's workspace: one 64-byte-aligned block kept between its calls (grown on
 * demand) and cut per call into the shared packed B block and one slice per team member, so
 * team members never allocate and a call that cannot get its memory fails before it writes C.
 * Freed when the thread exits (a pthread key destructor); short-lived Python threads would
 * otherwise leave their block behind (100 threads, one GEMM each: +234 MiB RSS). */
#define NNF_WS_SLOTS 2 /* 0: the GEMM's packing; 1: a kernel's own scratch (nnf_scratch) */
typedef struct {
    void *raw[NNF_WS_SLOTS];
    size_t cap[NNF_WS_SLOTS];
} nnf_ws_t;

/* Bytes held in all threads' workspaces (a test hook reads it to see thread exits free them). */
static int64_t nnf_ws_held = 0;
int64_t nnf_gemm_workspace_bytes(void) { return __atomic_load_n(&nnf_ws_held, __ATOMIC_RELAXED); }
static void nnf_ws_release_slot(nnf_ws_t *ws, int slot) {
    if (ws->raw[slot]) __atomic_fetch_sub(&nnf_ws_held, (int64_t)ws->cap[slot], __ATOMIC_RELAXED);
    free(ws->raw[slot]);
    ws->raw[slot] = NULL;
    ws->cap[slot] = 0;
}
static void nnf_ws_release(nnf_ws_t *ws) {
    for (int slot = 0; slot < NNF_WS_SLOTS; ++slot) nnf_ws_release_slot(ws, slot);
}

#if defined(_WIN32)
static _Thread_local nnf_ws_t nnf_ws_tls; /* Windows: never freed at thread exit */
static nnf_ws_t *nnf_ws_get(void) { return &nnf_ws_tls; }
#else
#include <pthread.h>
static pthread_key_t nnf_ws_key;
static pthread_once_t nnf_ws_once = PTHREAD_ONCE_INIT;
static int nnf_ws_key_ok = 0;

static void nnf_ws_free(void *p) {
    nnf_ws_release((nnf_ws_t *)p);
    free(p);
}
static void nnf_ws_key_init(void) { nnf_ws_key_ok = pthread_key_create(&nnf_ws_key, nnf_ws_free) == 0; }

static nnf_ws_t *nnf_ws_get(void) {
    pthread_once(&nnf_ws_once, nnf_ws_key_init);
    if (!nnf_ws_key_ok) return NULL;
    nnf_ws_t *ws = (nnf_ws_t *)pthread_getspecific(nnf_ws_key);
    if (ws) return ws;
    ws = (nnf_ws_t *)calloc(1, sizeof *ws);
    if (ws && pthread_setspecific(nnf_ws_key, ws) != 0) {
        free(ws);
        ws = NULL;
    }
    return ws;
}
#endif

/* `bytes` of 64-byte-aligned workspace for this call, or NULL when it cannot be had. */
static void *nnf_ws_slot(int slot, size_t bytes) {
    if (nnf_gemm_alloc_limit >= 0 && bytes > (size_t)nnf_gemm_alloc_limit) return NULL;
    nnf_ws_t *ws = nnf_ws_get();
    if (!ws) return NULL;
    if (bytes > ws->cap[slot]) {
        nnf_ws_release_slot(ws, slot);
        size_t want = bytes + bytes / 4 + 4096;
        if (want < bytes || want + 64 < want) return NULL; /* size_t overflow */
        ws->raw[slot] = malloc(want + 64);
        if (!ws->raw[slot]) return NULL;
        ws->cap[slot] = want;
        __atomic_fetch_add(&nnf_ws_held, (int64_t)want, __ATOMIC_RELAXED);
    }
    return (void *)(((uintptr_t)ws->raw[slot] + 63) & ~(uintptr_t)63);
}

static void *nnf_workspace(size_t bytes) { return nnf_ws_slot(0, bytes); }

/* A kernel's own scratch (conv's im2col columns): the second block of the calling thread's
 * workspace, kept between calls like the GEMM's, so a call does not map and fault in fresh
 * pages (a 3.7 MB malloc per LeNet conv call cost ~1 ms of page faults). Valid until the
 * thread's next nnf_scratch call; the GEMM (slot 0) never touches it. */
void *nnf_scratch(size_t bytes) { return nnf_ws_slot(1, bytes); }

/* Bytes of `elems` elements of `size` bytes, rounded up to a 64-byte multiple. */
static size_t nnf_ws_bytes(int64_t elems, size_t size) {
    return ((size_t)elems * size + 63) & ~(size_t)63;
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

int nnf_gemm_nr(int dtype_size) {
    return dtype_size == 4 ? nnf_active_kernel_f32()->nr : nnf_active_kernel_f64()->nr;
}
