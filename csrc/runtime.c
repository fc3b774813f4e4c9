/* Process-level facts the Python layer reports: usable CPUs and OpenMP availability. */
#define _GNU_SOURCE
#include "nnfast.h"

#if defined(__linux__)
#include <sched.h>
#endif
#include <unistd.h>

int nnf_available_cpus(void) {
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int nnf_have_openmp(void) {
#ifdef NNF_HAVE_OPENMP
    return 1;
#else
    return 0;
#endif
}
