/* Build facts the Python layer reports (usable CPUs are counted in src/nnfast/_threads.py). */
#include "nnfast.h"

int nnf_have_openmp(void) {
#ifdef NNF_HAVE_OPENMP
    return 1;
#else
    return 0;
#endif
}
