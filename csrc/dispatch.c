/* CPU feature detection and the one table of which kernel path runs where.
 * (Foundation version: only the generic path exists; the ISA microkernels plug in here.) */
#include <string.h>
#include "nnfast.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
static unsigned long long nnf_xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
static unsigned detect(void) {
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (d & (1u << 26)) f |= NNF_CPU_SSE2;
    if (c & (1u << 20)) f |= NNF_CPU_SSE42;
    int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    unsigned long long xcr0 = osxsave ? nnf_xgetbv0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6, zmm_ok = (xcr0 & 0xe6) == 0xe6;
    if (avx && ymm_ok) f |= NNF_CPU_AVX;
    if (fma && ymm_ok) f |= NNF_CPU_FMA;
    if (__get_cpuid_max(0, 0) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if ((b & (1u << 5)) && ymm_ok) f |= NNF_CPU_AVX2;
        if (zmm_ok) {
            if (b & (1u << 16)) f |= NNF_CPU_AVX512F;
            if (b & (1u << 17)) f |= NNF_CPU_AVX512DQ;
            if (b & (1u << 30)) f |= NNF_CPU_AVX512BW;
            if (b & (1u << 31)) f |= NNF_CPU_AVX512VL;
        }
    }
    return f;
}
#elif defined(__aarch64__)
static unsigned detect(void) { return NNF_CPU_NEON; }
#else
static unsigned detect(void) { return 0; }
#endif

static int g_features = -1;
static int g_isa = NNF_ISA_GENERIC;

unsigned nnf_cpu_features(void) {
    if (g_features < 0) g_features = (int)detect();
    return (unsigned)g_features;
}

const char *nnf_isa_name(int isa) {
    switch (isa) {
    case NNF_ISA_AVX2: return "avx2";
    case NNF_ISA_AVX512: return "avx512";
    default: return "generic";
    }
}

int nnf_isa_select(const char *name) {
    if (name == NULL || name[0] == '\0' || strcmp(name, "generic") == 0) {
        g_isa = NNF_ISA_GENERIC;
        return 0;
    }
    if (strcmp(name, "avx2") == 0 || strcmp(name, "avx512") == 0) return -2;
    return -1;
}

int nnf_isa_active(void) { return g_isa; }

void nnf_gemm_blocking(int dtype_size, int64_t out[5]) {
    (void)dtype_size;
    out[0] = 4; out[1] = 4; out[2] = 64; out[3] = 256; out[4] = 1024;
}

double nnf_fma_peak(int dtype_size, int nthreads, double seconds) {
    (void)dtype_size; (void)nthreads; (void)seconds;
    return 0.0;
}
