/* cpu.c -- runtime CPU feature detection (see cpu.h).
 *
 * Method: CPUID leaf 1 (ECX: FMA, OSXSAVE, AVX) and leaf 7 sub-leaf 0 (EBX: AVX2,
 * AVX512F/DQ/BW/VL) say what the processor implements; XGETBV(XCR0) says which register
 * state the OS saves on context switch: bits 1-2 (XMM, YMM) for AVX, plus bits 5-7
 * (opmask, ZMM_Hi256, Hi16_ZMM) for AVX-512. A feature is reported only when both agree.
 *
 * Compiled with baseline flags only: XGETBV is issued through inline asm (the _xgetbv
 * intrinsic would need -mxsave). All bits are gathered once into a small cached mask.
 */
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

enum {
    F_AVX = 1 << 0, F_FMA = 1 << 1, F_AVX2 = 1 << 2, F_AVX512F = 1 << 3,
    F_AVX512DQ = 1 << 4, F_AVX512BW = 1 << 5, F_AVX512VL = 1 << 6,
    F_DETECTED = 1 << 30
};

static unsigned long long read_xcr0(void)
{
    unsigned int eax, edx;
    __asm__ __volatile__("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int detect(void)
{
    unsigned int eax, ebx, ecx, edx, max_leaf;
    int f = F_DETECTED;
    int os_ymm = 0, os_zmm = 0;

    max_leaf = __get_cpuid_max(0, 0);
    if (max_leaf < 1)
        return f;
    __cpuid(1, eax, ebx, ecx, edx);
    if (ecx & (1u << 27)) {                       /* OSXSAVE: XGETBV usable */
        unsigned long long xcr0 = read_xcr0();
        os_ymm = (xcr0 & 0x6) == 0x6;             /* XMM | YMM              */
        os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0; /* opmask | ZMM hi256 | hi16 ZMM */
    }
    if (!os_ymm || !(ecx & (1u << 28)))           /* AVX */
        return f;
    f |= F_AVX;
    if (ecx & (1u << 12))
        f |= F_FMA;
    if (max_leaf < 7)
        return f;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    if (ebx & (1u << 5))
        f |= F_AVX2;
    if (os_zmm && (ebx & (1u << 16))) {
        f |= F_AVX512F;
        if (ebx & (1u << 17)) f |= F_AVX512DQ;
        if (ebx & (1u << 30)) f |= F_AVX512BW;
        if (ebx & (1u << 31)) f |= F_AVX512VL;
    }
    return f;
}

static int features(void)
{
    static int cached = 0;   /* racing first calls all compute and store the same value */
    int f = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (!f) {
        f = detect();
        __atomic_store_n(&cached, f, __ATOMIC_RELAXED);
    }
    return f;
}

int cycnn_cpu_has_avx(void)      { return (features() & F_AVX) != 0; }
int cycnn_cpu_has_fma(void)      { return (features() & F_FMA) != 0; }
int cycnn_cpu_has_avx2(void)     { return (features() & F_AVX2) != 0; }
int cycnn_cpu_has_avx512f(void)  { return (features() & F_AVX512F) != 0; }
int cycnn_cpu_has_avx512dq(void) { return (features() & F_AVX512DQ) != 0; }
int cycnn_cpu_has_avx512bw(void) { return (features() & F_AVX512BW) != 0; }
int cycnn_cpu_has_avx512vl(void) { return (features() & F_AVX512VL) != 0; }

#else /* not x86 */

int cycnn_cpu_has_avx(void)      { return 0; }
int cycnn_cpu_has_fma(void)      { return 0; }
int cycnn_cpu_has_avx2(void)     { return 0; }
int cycnn_cpu_has_avx512f(void)  { return 0; }
int cycnn_cpu_has_avx512dq(void) { return 0; }
int cycnn_cpu_has_avx512bw(void) { return 0; }
int cycnn_cpu_has_avx512vl(void) { return 0; }

#endif
