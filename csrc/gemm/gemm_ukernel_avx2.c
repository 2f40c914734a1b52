/* gemm_ukernel_avx2.c -- AVX2 + FMA micro-kernels (float 6x16, double 6x8).
 *
 * Built with -mavx2 -mfma; only reached through the dispatch table after cpu.c confirmed
 * AVX2 + FMA + OS YMM state.
 *
 * What a kernel computes (see gemm_internal.h): one MR x NR tile
 *   C = alpha * Apanel(MR x kc) * Bpanel(kc x NR) + beta * C     (beta == 0: C not read)
 * Register plan (16 ymm): each tile row is 2 ymm vectors -> 12 accumulators, 2 registers
 * for the B row, 1 for the broadcast A value. Per k step: 2 aligned ymm loads of B, 6
 * broadcasts of A, 12 FMAs (two FMA pipes x 4-cycle latency need >= 8 independent chains).
 * Accumulators are named variables (not an array) so the compiler keeps them in registers;
 * the k loop is unrolled by 2. C rows are prefetched first. No memory besides the operands.
 */
#include "gemm_internal.h"

#if CYCNN_GEMM_X86
#include <immintrin.h>

/* ---------------------------------------------------------------- float 6x16 */

#define S_ROW_FMA(i)                                                        \
    do {                                                                    \
        const __m256 ai = _mm256_broadcast_ss(a + (i));                     \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                         \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                         \
    } while (0)

#define S_STEP()                                                            \
    do {                                                                    \
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);    \
        S_ROW_FMA(0); S_ROW_FMA(1); S_ROW_FMA(2);                           \
        S_ROW_FMA(3); S_ROW_FMA(4); S_ROW_FMA(5);                           \
        a += 6;                                                             \
        b += ldb;                                                           \
    } while (0)

/* c_row = alpha*acc (+ beta*c_row) for the two vectors of row i */
#define S_ROW_STORE(i)                                                      \
    do {                                                                    \
        float *cr = c + (i) * ldc;                                          \
        __m256 r0 = _mm256_mul_ps(va, c##i##0), r1 = _mm256_mul_ps(va, c##i##1); \
        if (beta != 0.0f) {                                                 \
            r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), r0);              \
            r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), r1);          \
        }                                                                   \
        _mm256_storeu_ps(cr, r0);                                           \
        _mm256_storeu_ps(cr + 8, r1);                                       \
    } while (0)

void cycnn_sgemm_ukernel_6x16_avx2(size_t kc, const float *restrict a,
                                   const float *restrict b, ptrdiff_t ldb, float *restrict c,
                                   ptrdiff_t ldc, float alpha, float beta)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    size_t p;
    int i;

    for (i = 0; i < 6; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);
    }
    for (p = 0; p + 2 <= kc; p += 2) {
        S_STEP();
        S_STEP();
    }
    if (p < kc)
        S_STEP();

    {
        const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
        S_ROW_STORE(0); S_ROW_STORE(1); S_ROW_STORE(2);
        S_ROW_STORE(3); S_ROW_STORE(4); S_ROW_STORE(5);
    }
}

/* ---------------------------------------------------------------- double 6x8 */

#define D_ROW_FMA(i)                                                        \
    do {                                                                    \
        const __m256d ai = _mm256_broadcast_sd(a + (i));                    \
        c##i##0 = _mm256_fmadd_pd(ai, b0, c##i##0);                         \
        c##i##1 = _mm256_fmadd_pd(ai, b1, c##i##1);                         \
    } while (0)

#define D_STEP()                                                            \
    do {                                                                    \
        const __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);   \
        D_ROW_FMA(0); D_ROW_FMA(1); D_ROW_FMA(2);                           \
        D_ROW_FMA(3); D_ROW_FMA(4); D_ROW_FMA(5);                           \
        a += 6;                                                             \
        b += ldb;                                                           \
    } while (0)

#define D_ROW_STORE(i)                                                      \
    do {                                                                    \
        double *cr = c + (i) * ldc;                                         \
        __m256d r0 = _mm256_mul_pd(va, c##i##0), r1 = _mm256_mul_pd(va, c##i##1); \
        if (beta != 0.0) {                                                  \
            r0 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr), r0);              \
            r1 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr + 4), r1);          \
        }                                                                   \
        _mm256_storeu_pd(cr, r0);                                           \
        _mm256_storeu_pd(cr + 4, r1);                                       \
    } while (0)

void cycnn_dgemm_ukernel_6x8_avx2(size_t kc, const double *restrict a,
                                  const double *restrict b, ptrdiff_t ldb, double *restrict c,
                                  ptrdiff_t ldc, double alpha, double beta)
{
    __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    size_t p;
    int i;

    for (i = 0; i < 6; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 7), _MM_HINT_T0);
    }
    for (p = 0; p + 2 <= kc; p += 2) {
        D_STEP();
        D_STEP();
    }
    if (p < kc)
        D_STEP();

    {
        const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
        D_ROW_STORE(0); D_ROW_STORE(1); D_ROW_STORE(2);
        D_ROW_STORE(3); D_ROW_STORE(4); D_ROW_STORE(5);
    }
}

#else
typedef int cycnn_gemm_ukernel_avx2_unused; /* ISO C: no empty translation units */
#endif
