/* Loops that go parallel only above a work threshold. An OpenMP `if(false)` clause still
 * enters a parallel region with a one-thread team (about 0.5 us a call, as much as the whole
 * kernel on a tiny array); below the threshold these run the plain loop instead.
 * Uses the caller's `nthreads`. */
#ifndef NNF_PAR_H
#define NNF_PAR_H

/* for (int64_t IDX = 0; IDX < COUNT; ++IDX) { body }, split statically when COND holds. */
#define NNF_PAR_FOR(COND, IDX, COUNT, ...)                                                   \
    do {                                                                                    \
        if (nthreads > 1 && (COND)) {                                                       \
            _Pragma("omp parallel for schedule(static) num_threads(nthreads)")              \
            for (int64_t IDX = 0; IDX < (COUNT); ++IDX) { __VA_ARGS__; }                    \
        } else {                                                                            \
            for (int64_t IDX = 0; IDX < (COUNT); ++IDX) { __VA_ARGS__; }                    \
        }                                                                                   \
    } while (0)

#endif /* NNF_PAR_H */
