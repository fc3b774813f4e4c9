/* CPU feature detection and the one table of which kernel path runs where: read nnf_paths[]
 * below to see every microkernel, its register tile, its cache blocks and the CPU it needs. */
#include <string.h>
#include "gemm/gemm_kernels.h"
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

/* ---------------------------------------------------------------- the table ----
 * Cache blocks (BLIS/GotoBLAS rules): the KC x NR micro-panel of B is reused from L1 by every
 * MR-row micro-panel of A, so KC*NR*size ~ half of L1d; the MC x KC block of A is reused from
 * L2 by every B micro-panel, so MC*KC*size ~ 1/3 of L2 (room left for B and C streams); the
 * KC x NC block of B lives in L3 (a few MiB, shared). MC is a multiple of MR, NC of NR.
 *
 * generic (any CPU, 128-bit baseline vectors), sized for a 32 KiB L1d / 512 KiB L2:
 *   f32 4x8:  KC 256 -> B 256*8*4 = 8 KiB;  MC 128 -> A 128*256*4 = 128 KiB;  NC 4096
 *   f64 4x4:  KC 256 -> B 256*4*8 = 8 KiB;  MC 128 -> A 128*256*8 = 256 KiB;  NC 2048
 * avx2 (dev box: AMD Zen 3, L1d 32 KiB, L2 512 KiB/core, L3 32 MiB):
 *   f32 6x16: KC 256 -> B 256*16*4 = 16 KiB (1/2 L1);  MC 168 -> A 168*256*4 = 168 KiB
 *             (1/3 L2);  NC 4080 -> B block 256*4080*4 = 4 MiB (L3)
 *   f64 6x8:  KC 256 -> B 256*8*8  = 16 KiB;  MC 96 -> A 96*256*8 = 192 KiB;  NC 2040 -> 4 MiB
 * avx512 (target: AMD Zen 5, L1d 48 KiB, L2 1 MiB/core, L3 32 MiB; also Ice Lake-SP, L1d
 * 48 KiB, L2 1.25 MiB):
 *   f32 12x32: KC 320 -> B 320*32*4 = 40 KiB;  MC 228 -> A 228*320*4 = 285 KiB (~1/3 L2, the
 *              same bytes as the former 384 x 192, so the small/packed boundary stays put);
 *              NC 4096 -> B block 320*4096*4 = 5 MiB. KC is larger than the half-L1 rule
 *              gives (192) because the kernel streams a packed B panel in order from L2 as
 *              fast as from L1 (12x32 tile in L1: 92% of the FMA peak at any KC), while every
 *              extra K block costs one more pass over the C tile and one more call per tile:
 *              784 splits into 3 blocks of 264 instead of 5 of 160, 256 into 1 instead of 2.
 *              Same-run A/B on Ice Lake-SP, 1 thread (docs/gemm.md): 256x784x256 +3-7%,
 *              128x256x128 +4-6%, 128x784x256 +0-6%, the k = 128 products unchanged.
 *   f64 12x16: KC 192 -> B 192*16*8 = 24 KiB;  MC 240 -> A 240*192*8 = 360 KiB;  NC 2048 -> 3 MiB
 */
typedef struct {
    int isa;
    unsigned needs; /* nnf_cpu_feature bits the path requires */
    nnf_kernel_f32_t s;
    nnf_kernel_f64_t d;
    nnf_peak_fn peak_s, peak_d;
} nnf_path_t;

static const nnf_path_t nnf_paths[] = {
    {NNF_ISA_GENERIC, 0,
     {4, 8, 128, 256, 4096, nnf_sgemm_ukr_generic_4x8, nnf_sgemm_ukr_generic_4x8_edge,
      nnf_sgemm_rows_generic, nnf_sconv1_generic, nnf_sconv1_dw_generic, NULL,
      nnf_sconvdw_generic, nnf_sconvfw_generic,
      NULL, 8},
     {4, 4, 128, 256, 2048, nnf_dgemm_ukr_generic_4x4, nnf_dgemm_ukr_generic_4x4_edge,
      nnf_dgemm_rows_generic, nnf_dconv1_generic, nnf_dconv1_dw_generic, NULL,
      nnf_dconvdw_generic, nnf_dconvfw_generic,
      NULL, 4},
     nnf_peak_generic_f32, nnf_peak_generic_f64},
#if defined(__x86_64__)
    {NNF_ISA_AVX2, NNF_CPU_AVX | NNF_CPU_AVX2 | NNF_CPU_FMA,
     {6, 16, 168, 256, 4080, nnf_sgemm_ukr_avx2_6x16, nnf_sgemm_ukr_avx2_6x16_edge,
      nnf_sgemm_rows_avx2, nnf_sconv1_avx2, nnf_sconv1_dw_avx2,
      nnf_smaxpool_avx2, nnf_sconvdw_avx2, nnf_sconvfw_avx2,
      nnf_sconvdx_avx2, 8},
     {6, 8, 96, 256, 2040, nnf_dgemm_ukr_avx2_6x8, nnf_dgemm_ukr_avx2_6x8_edge,
      nnf_dgemm_rows_avx2, nnf_dconv1_avx2, nnf_dconv1_dw_avx2,
      nnf_dmaxpool_avx2, nnf_dconvdw_avx2, nnf_dconvfw_avx2,
      nnf_dconvdx_avx2, 4},
     nnf_peak_avx2_f32, nnf_peak_avx2_f64},
    {NNF_ISA_AVX512, NNF_CPU_AVX | NNF_CPU_AVX2 | NNF_CPU_FMA | NNF_CPU_AVX512F,
     {12, 32, 228, 320, 4096, nnf_sgemm_ukr_avx512_12x32, nnf_sgemm_ukr_avx512_12x32_edge,
      nnf_sgemm_rows_avx512, nnf_sconv1_avx512, nnf_sconv1_dw_avx512,
      nnf_smaxpool_avx512, nnf_sconvdw_avx512, nnf_sconvfw_avx512,
      nnf_sconvdx_avx512, 16},
     {12, 16, 240, 192, 2048, nnf_dgemm_ukr_avx512_12x16, nnf_dgemm_ukr_avx512_12x16_edge,
      nnf_dgemm_rows_avx512, nnf_dconv1_avx512, nnf_dconv1_dw_avx512,
      nnf_dmaxpool_avx512, nnf_dconvdw_avx512, nnf_dconvfw_avx512,
      nnf_dconvdx_avx512, 8},
     nnf_peak_avx512_f32, nnf_peak_avx512_f64},
#endif
};
#define NNF_NPATHS ((int)(sizeof(nnf_paths) / sizeof(nnf_paths[0])))

static int g_features = -1;
static const nnf_path_t *g_path = NULL; /* NULL until first use: then the best the CPU runs */

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

static int supported(const nnf_path_t *p) {
    return (nnf_cpu_features() & p->needs) == p->needs;
}

static const nnf_path_t *best_path(void) {
    const nnf_path_t *best = &nnf_paths[0];
    for (int i = 1; i < NNF_NPATHS; ++i)
        if (supported(&nnf_paths[i]) && nnf_paths[i].isa > best->isa) best = &nnf_paths[i];
    return best;
}

static const nnf_path_t *path(void) {
    if (g_path == NULL) g_path = best_path();
    return g_path;
}

int nnf_isa_select(const char *name) {
    if (name == NULL || name[0] == '\0') {
        g_path = best_path();
        return 0;
    }
    int want;
    if (strcmp(name, "generic") == 0) want = NNF_ISA_GENERIC;
    else if (strcmp(name, "avx2") == 0) want = NNF_ISA_AVX2;
    else if (strcmp(name, "avx512") == 0) want = NNF_ISA_AVX512;
    else return -1;
    for (int i = 0; i < NNF_NPATHS; ++i) {
        if (nnf_paths[i].isa == want) {
            if (!supported(&nnf_paths[i])) return -2;
            g_path = &nnf_paths[i];
            return 0;
        }
    }
    return -2; /* known name, not compiled for this architecture */
}

int nnf_isa_active(void) { return path()->isa; }

const nnf_kernel_f32_t *nnf_active_kernel_f32(void) { return &path()->s; }
const nnf_kernel_f64_t *nnf_active_kernel_f64(void) { return &path()->d; }
nnf_peak_fn nnf_active_peak(int dtype_size) {
    return dtype_size == 8 ? path()->peak_d : path()->peak_s;
}

void nnf_gemm_blocking(int dtype_size, int64_t out[5]) {
    const nnf_path_t *p = path();
    if (dtype_size == 8) {
        out[0] = p->d.mr; out[1] = p->d.nr; out[2] = p->d.mc; out[3] = p->d.kc; out[4] = p->d.nc;
    } else {
        out[0] = p->s.mr; out[1] = p->s.nr; out[2] = p->s.mc; out[3] = p->s.kc; out[4] = p->s.nc;
    }
}
