/* nnfast's thread pool behind nnf_parallel_for (par.h), and the OpenMP alternative.
 *
 * Pool: persistent worker pthreads; the calling thread always takes part. A call ("job")
 * publishes its chunks and opens a generation (odd = open); a worker *joins* the open job
 * (active += 1, then re-reads the generation: if the job closed meanwhile it leaves), claims
 * chunks from an atomic counter and leaves when none are left. The caller claims chunks too;
 * when none are left it closes the generation and waits only for the workers that joined,
 * which are running chunks they claimed. A worker that wakes late finds the job closed and
 * never touches it, so a call never waits for a thread that has not started: when the other
 * cores are busy (NumPy's BLAS spinning, another process) the caller does the work itself.
 * (pthreadpool's current pthreads.c rests on the same idea of joining while a job is open.)
 *
 * After its last chunk a worker spins for nnf_spin_ns (default 1 ms), then sleeps on a
 * condition variable until the next job. Waking a sleeping worker took about 200 us here (a
 * KVM guest), as long as a whole 64x784x256 product, so a call that follows a gap longer than
 * the spin ran on the caller alone (0.6x); 1 ms covers the gaps of a training loop and of a
 * NumPy call between two of ours. The spin yields the core after 5 us (sched_yield), so a
 * thread that wants this core (NumPy's BLAS, another process) gets it; see docs/threading.md.
 *
 * One caller at a time owns the pool; a call from another Python thread that finds it busy
 * runs on its own thread (serially). fork(): the child starts with no pool and builds one on
 * first use (pthread_atfork); the parent's pool carries on. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NNF_PAUSE() _mm_pause()
#else
#define NNF_PAUSE() ((void)0)
#endif
#ifdef NNF_HAVE_OPENMP
#include <omp.h>
#endif
#include "nnfast.h"
#include "par.h"

#define NNF_POOL_MAX (NNF_MAX_THREADS - 1) /* workers: the caller is the other thread */
#define NNF_SPIN_HOT_NS 5000 /* spin without yielding this long after the last chunk */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint_fast64_t gen;  /* odd: a job is open */
    atomic_int_fast64_t next;  /* next chunk to claim */
    atomic_int active;         /* workers inside the current job */
    atomic_int sleepers;
    atomic_int busy;           /* a caller owns the pool */
    atomic_int stop;
    /* the job: written by the owner while closed, read by workers that joined it */
    nnf_range_fn fn;
    void *ctx;
    int64_t count, parts;
    int nthreads;
    int nworkers;              /* started so far (owner only) */
} nnf_pool_t;

static nnf_pool_t *nnf_pool = NULL; /* created on first use; abandoned in a fork child */
static pthread_mutex_t nnf_pool_init_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t nnf_spin_ns = 1000000;
static atomic_int nnf_test_mode = 0; /* 1: workers join late; 2: workers never join */
static int nnf_threading = NNF_THREADING_POOL;

static int64_t nnf_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Chunk i of [0, count) cut into `parts` (par.h), run by `worker`; an empty chunk is skipped. */
static inline void nnf_run_chunk(nnf_range_fn fn, void *ctx, int64_t count, int64_t parts,
                                 int64_t i, int worker) {
    const int64_t lo = count * i / parts, hi = count * (i + 1) / parts;
    if (lo < hi) fn(ctx, lo, hi, worker);
}

static void nnf_run_chunks(nnf_pool_t *p, int worker) {
    for (;;) {
        const int64_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->parts) return;
        nnf_run_chunk(p->fn, p->ctx, p->count, p->parts, i, worker);
    }
}

static int nnf_job_open(uint64_t g, uint64_t seen) { return (g & 1) && g != seen; }

/* Waits for an open job other than `seen`: spins for nnf_spin_ns, then sleeps. After the
 * first microseconds the spin yields the core on every round (sched_yield), so a thread of
 * NumPy's BLAS or of another process that wants this core gets it at once instead of waiting
 * for the spin to end; on an idle core sched_yield returns straight away. */
static uint64_t nnf_wait_job(nnf_pool_t *p, uint64_t seen) {
    const int64_t t0 = nnf_now_ns();
    for (int64_t i = 0;; ++i) {
        uint64_t g = atomic_load(&p->gen);
        if (nnf_job_open(g, seen) || atomic_load(&p->stop)) return g;
        if ((i & 63) == 63) {
            const int64_t dt = nnf_now_ns() - t0;
            if (dt > nnf_spin_ns) break;
            if (dt > NNF_SPIN_HOT_NS) sched_yield();
        }
        NNF_PAUSE();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    uint64_t g;
    while (!nnf_job_open(g = atomic_load(&p->gen), seen) && !atomic_load(&p->stop))
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

typedef struct {
    nnf_pool_t *pool;
    int id; /* worker id: 1.. (the caller is 0) */
} nnf_worker_arg_t;

static void *nnf_worker_main(void *argp) {
    nnf_worker_arg_t a = *(nnf_worker_arg_t *)argp;
    free(argp);
    nnf_pool_t *p = a.pool;
    uint64_t seen = 0;
    for (;;) {
        const uint64_t g = nnf_wait_job(p, seen);
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        const int mode = atomic_load(&nnf_test_mode);
        if (mode == 2) continue;
        if (mode == 1) { /* start late: well after the caller began */
            const int64_t t0 = nnf_now_ns();
            while (nnf_now_ns() - t0 < 200000) NNF_PAUSE();
        }
        atomic_fetch_add(&p->active, 1);
        if (atomic_load(&p->gen) != g) { /* closed before we joined: not ours to touch */
            atomic_fetch_sub(&p->active, 1);
            continue;
        }
        if (a.id < p->nthreads) nnf_run_chunks(p, a.id);
        atomic_fetch_sub(&p->active, 1);
    }
}

static void nnf_pool_atfork_child(void) {
    /* the workers do not exist in the child: forget the pool (its memory is leaked once) */
    nnf_pool = NULL;
    pthread_mutex_init(&nnf_pool_init_mu, NULL);
}

static nnf_pool_t *nnf_pool_get(void) {
    nnf_pool_t *p = __atomic_load_n(&nnf_pool, __ATOMIC_ACQUIRE);
    if (p) return p;
    pthread_mutex_lock(&nnf_pool_init_mu);
    static int atfork_done = 0;
    if (!atfork_done) atfork_done = pthread_atfork(NULL, NULL, nnf_pool_atfork_child) == 0;
    p = nnf_pool;
    if (!p) {
        p = (nnf_pool_t *)calloc(1, sizeof *p);
        if (p) {
            pthread_mutex_init(&p->mu, NULL);
            pthread_cond_init(&p->cv, NULL);
            atomic_init(&p->gen, 0);
            atomic_init(&p->next, 0);
            atomic_init(&p->active, 0);
            atomic_init(&p->sleepers, 0);
            atomic_init(&p->busy, 0);
            atomic_init(&p->stop, 0);
            __atomic_store_n(&nnf_pool, p, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&nnf_pool_init_mu);
    return p;
}

/* Owner only: start workers until there are `want` (fewer if the system refuses). Workers
 * block every signal, so Python's handlers keep running on the main thread. */
static void nnf_pool_grow(nnf_pool_t *p, int want) {
    if (want > NNF_POOL_MAX) want = NNF_POOL_MAX;
    if (p->nworkers >= want) return;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    while (p->nworkers < want) {
        nnf_worker_arg_t *a = (nnf_worker_arg_t *)malloc(sizeof *a);
        if (!a) break;
        a->pool = p;
        a->id = p->nworkers + 1;
        pthread_t t;
        if (pthread_create(&t, &attr, nnf_worker_main, a) != 0) {
            free(a);
            break;
        }
        p->nworkers++;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void nnf_run_serial(nnf_range_fn fn, void *ctx, int64_t count, int64_t parts) {
    for (int64_t i = 0; i < parts; ++i) nnf_run_chunk(fn, ctx, count, parts, i, 0);
}

static void nnf_pool_run(nnf_range_fn fn, void *ctx, int64_t count, int64_t parts,
                         int nthreads) {
    nnf_pool_t *p = nnf_pool_get();
    int free_ = 0;
    if (!p || !atomic_compare_exchange_strong(&p->busy, &free_, 1)) {
        nnf_run_serial(fn, ctx, count, parts); /* another caller owns the pool */
        return;
    }
    nnf_pool_grow(p, nthreads - 1);
    p->fn = fn;
    p->ctx = ctx;
    p->count = count;
    p->parts = parts;
    p->nthreads = nthreads;
    atomic_store(&p->next, 0);
    atomic_fetch_add(&p->gen, 1); /* open */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    nnf_run_chunks(p, 0);
    atomic_fetch_add(&p->gen, 1); /* closed: no one joins any more */
    while (atomic_load(&p->active) > 0) NNF_PAUSE(); /* only those running claimed chunks */
    atomic_store(&p->busy, 0);
}

#ifdef NNF_HAVE_OPENMP
static void nnf_omp_run(nnf_range_fn fn, void *ctx, int64_t count, int64_t parts, int nthreads) {
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t i = 0; i < parts; ++i)
        nnf_run_chunk(fn, ctx, count, parts, i, omp_get_thread_num());
}
#endif

void nnf_parallel_for(nnf_range_fn fn, void *ctx, int64_t count, int64_t parts, int nthreads) {
    if (count <= 0) return;
    if (parts > count) parts = count;
    if (nthreads > NNF_MAX_THREADS) nthreads = NNF_MAX_THREADS;
    if (nthreads <= 1 || parts <= 1) {
        nnf_run_serial(fn, ctx, count, parts < 1 ? 1 : parts);
        return;
    }
#ifdef NNF_HAVE_OPENMP
    if (nnf_threading == NNF_THREADING_OPENMP) {
        nnf_omp_run(fn, ctx, count, parts, nthreads);
        return;
    }
#endif
    nnf_pool_run(fn, ctx, count, parts, nthreads);
}

int nnf_set_threading(int which) {
    if (which == NNF_THREADING_POOL) { nnf_threading = which; return 0; }
#ifdef NNF_HAVE_OPENMP
    if (which == NNF_THREADING_OPENMP) { nnf_threading = which; return 0; }
#endif
    return -1;
}

int nnf_get_threading(void) { return nnf_threading; }

void nnf_pool_set_spin_us(int64_t us) { nnf_spin_ns = us < 0 ? 0 : us * 1000; }

int64_t nnf_pool_get_spin_us(void) { return nnf_spin_ns / 1000; }

int nnf_pool_workers(void) {
    nnf_pool_t *p = __atomic_load_n(&nnf_pool, __ATOMIC_ACQUIRE);
    return p ? p->nworkers : 0;
}

void nnf_pool_set_test_mode(int mode) { atomic_store(&nnf_test_mode, mode); }
