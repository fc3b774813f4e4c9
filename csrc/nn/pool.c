/* Max, average and global-average pooling, channels last (see nnfast.h, "pooling").
 * Forward and average backward split output (input) rows across threads; max backward splits
 * images (its scatter-add stays inside one image). Every element's arithmetic and order is
 * fixed by the shapes, so bits do not depend on nthreads. Written once in pool_tmpl.h. */
#include <string.h>

#include "gemm/gemm_kernels.h"
#include "nnfast.h"
#include "runtime/par.h"

#define PAR_WORK 32768  /* elements below which a pooling call stays serial */
#define POOL_SIMD_TAPS 64 /* windows up to this many taps take the ISA's max-pool kernel */
#define CBLK 256        /* channels per block of double accumulators (global average) */

/* [lo, hi): the kernel taps k with 0 <= o*S - Pd + k < L (the window's part inside the image). */
static inline void pool_taps(int64_t o, int64_t S, int64_t Pd, int64_t K, int64_t L,
                             int64_t *lo, int64_t *hi) {
    int64_t start = o * S - Pd;
    *lo = start < 0 ? -start : 0;
    *hi = start + K > L ? L - start : K;
}

static int pool_threads(int64_t work, int nthreads) { return work > PAR_WORK ? nthreads : 1; }

#define T float
#define SFX f32
#define TBITS uint32_t
#define ACTIVE_MAXPOOL() nnf_active_kernel_f32()->maxpool
typedef nnf_maxpool_f32 maxpool_fn_f32;
#include "pool_tmpl.h"
#undef T
#undef SFX
#undef TBITS
#undef ACTIVE_MAXPOOL

#define T double
#define SFX f64
#define TBITS uint64_t
#define ACTIVE_MAXPOOL() nnf_active_kernel_f64()->maxpool
typedef nnf_maxpool_f64 maxpool_fn_f64;
#include "pool_tmpl.h"
#undef T
#undef SFX
#undef TBITS
#undef ACTIVE_MAXPOOL
