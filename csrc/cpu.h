/* cpu.h -- runtime CPU feature detection for cycnn.
 *
 * Each function answers one question: "can this CPU *and* this OS run code that uses
 * feature X?" (for AVX/AVX-512 that also means the OS saves the wider register state,
 * checked through XGETBV). The answers are computed with CPUID on first use and cached;
 * the functions are cheap and thread-safe (racing first calls compute the same value).
 * On non-x86 builds every function returns 0.
 */
#ifndef CYCNN_CPU_H
#define CYCNN_CPU_H

#ifdef __cplusplus
extern "C" {
#endif

int cycnn_cpu_has_avx(void);       /* AVX, with YMM state enabled by the OS          */
int cycnn_cpu_has_fma(void);       /* FMA3 (needs AVX)                                */
int cycnn_cpu_has_avx2(void);      /* AVX2 (needs AVX)                                */
int cycnn_cpu_has_avx512f(void);   /* AVX-512 Foundation, with ZMM/opmask state on    */
int cycnn_cpu_has_avx512dq(void);  /* AVX-512 DQ (needs AVX-512F)                     */
int cycnn_cpu_has_avx512bw(void);  /* AVX-512 BW (needs AVX-512F)                     */
int cycnn_cpu_has_avx512vl(void);  /* AVX-512 VL (needs AVX-512F)                     */

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_CPU_H */
