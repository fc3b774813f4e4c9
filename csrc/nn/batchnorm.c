/* Batch normalization over the last axis (see nnfast.h, "batch normalization"). Per-channel
 * sums: rows are cut into fixed chunks of RCH (from R alone, never from nthreads); each chunk
 * writes its own row of double partials and the partials are added in chunk order, so the bits
 * do not depend on nthreads. Written once in batchnorm_tmpl.h. */
#include <math.h>
#include <stdlib.h>

#include "nnfast.h"
#include "runtime/par.h"

#define PAR_WORK 32768  /* elements below which a call stays serial */
#define RCH 256         /* rows per chunk of partial sums */

static int bn_threads(int64_t work, int nthreads) { return work > PAR_WORK ? nthreads : 1; }

/* out[c] = sum over chunks, in chunk order, of part[chunk*C + c] (stride C per chunk). */
static void bn_combine(double *out, const double *part, int64_t nch, int64_t C) {
    for (int64_t c = 0; c < C; ++c) out[c] = 0;
    for (int64_t i = 0; i < nch; ++i)
        for (int64_t c = 0; c < C; ++c) out[c] += part[i * C + c];
}

#define T float
#define SFX f32
#include "batchnorm_tmpl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "batchnorm_tmpl.h"
#undef T
#undef SFX
