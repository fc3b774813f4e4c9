/* The one parallel interface every kernel uses: a parallel-for over contiguous chunks.
 *
 * nnf_parallel_for(fn, ctx, count, parts, nthreads) cuts [0, count) into `parts` chunks,
 * chunk i = [count*i/parts, count*(i+1)/parts), and runs fn(ctx, lo, hi, worker) once for
 * each non-empty chunk, on up to nthreads threads with the caller among them; it returns when
 * every chunk has run. `worker` (0 = the caller, < nthreads) names the thread running the
 * chunk, for per-thread scratch only: a chunk's result must never depend on it, so results
 * are the same whichever thread ran which chunk and for any thread count.
 * nthreads <= 1 or parts <= 1 runs the chunks in order on the caller, with no other thread
 * touched (small ops stay serial: callers pass 1 below their work threshold).
 *
 * Two implementations (runtime/pool.c): nnfast's own pool (default; a call never waits for a
 * thread that has not started: the caller claims chunks too, and waits only for chunks that
 * other threads already claimed) and OpenMP (NNFAST_THREADING=openmp, builds with OpenMP). */
#ifndef NNF_PAR_H
#define NNF_PAR_H

#include <stdint.h>

typedef void (*nnf_range_fn)(void *ctx, int64_t lo, int64_t hi, int worker);

/* Most threads one call uses (more are taken as this many; nnfast._threads.MAX_THREADS). */
#define NNF_MAX_THREADS 256

void nnf_parallel_for(nnf_range_fn fn, void *ctx, int64_t count, int64_t parts, int nthreads);

/* Chunks for loops whose items cost alike (elementwise, rows): a few per thread, so a thread
 * that starts late or is preempted holds back little while the others take the rest. */
#define NNF_PARTS(nthreads) (4 * (int64_t)(nthreads))

#endif /* NNF_PAR_H */
