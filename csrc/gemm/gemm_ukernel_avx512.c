/* gemm_ukernel_avx512.c -- AVX-512F micro-kernels: float 8x32 (+ 8x16 half-width),
 * double 8x16 (+ 8x8 half-width).
 *
 * Built with -mavx512f -mavx512dq -mavx512vl -mfma -mavx2; only reached through the dispatch
 * table after cpu.c confirmed AVX-512F/DQ/VL + OS ZMM state.
 *
 * What a kernel computes (see gemm_internal.h): one MR x NR tile
 *   C = alpha * Apanel(MR x kc) * Bpanel(kc x NR) + beta * C     (beta == 0: C not read)
 * B rows are ldb apart (packed panel or B read in place), so B loads are unaligned loads.
 * Register plan: each tile row is 2 zmm vectors -> 16 zmm accumulators (named variables so
 * the compiler keeps them in registers). Per k step: 2 zmm loads of the B row, 8
 * broadcasts of A, 16 FMAs. Zen 4 sustains one 512-bit FMA per cycle with 4-cycle latency,
 * so 16 independent chains keep it busy (measured ~97% of peak with L1-resident panels;
 * 12x32 was no faster and fits the common M = 32/64/128 worse). The k loop is unrolled by 4.
 * C rows are prefetched before the k loop. No memory besides the operands.
 */
#include "gemm_internal.h"

#if CYCNN_GEMM_X86
#include <immintrin.h>

/* ---------------------------------------------------------------- float 8x32 */

#define S_ROW_FMA(i)                                                                        \
    do {                                                                                    \
        const __m512 ai = _mm512_set1_ps(a[i]);                                             \
        c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);                                         \
        c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);                                         \
    } while (0)

#define S_STEP()                                                                            \
    do {                                                                                    \
        const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);                 \
        S_ROW_FMA(0); S_ROW_FMA(1); S_ROW_FMA(2); S_ROW_FMA(3);                             \
        S_ROW_FMA(4); S_ROW_FMA(5); S_ROW_FMA(6); S_ROW_FMA(7);                             \
        a += 8;                                                                             \
        b += ldb;                                                                           \
    } while (0)

/* row i of C = alpha*acc (+ beta*C) */
#define S_ROW_STORE(i)                                                                      \
    do {                                                                                    \
        float *cr = c + (i) * ldc;                                                          \
        __m512 r0 = _mm512_mul_ps(va, c##i##0), r1 = _mm512_mul_ps(va, c##i##1);            \
        if (beta != 0.0f) {                                                                 \
            r0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr), r0);                              \
            r1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr + 16), r1);                         \
        }                                                                                   \
        _mm512_storeu_ps(cr, r0);                                                           \
        _mm512_storeu_ps(cr + 16, r1);                                                      \
    } while (0)

void cycnn_sgemm_ukernel_8x32_avx512(size_t kc, const float *restrict a,
                                     const float *restrict b, ptrdiff_t ldb, float *restrict c,
                                     ptrdiff_t ldc, float alpha, float beta)
{
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00;
    __m512 c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512 c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512 c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    size_t p;
    int i;

    for (i = 0; i < 8; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 31), _MM_HINT_T0);
    }
    for (p = 0; p + 4 <= kc; p += 4) {
        S_STEP(); S_STEP(); S_STEP(); S_STEP();
    }
    for (; p < kc; p++)
        S_STEP();

    {
        const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
        S_ROW_STORE(0); S_ROW_STORE(1); S_ROW_STORE(2); S_ROW_STORE(3);
        S_ROW_STORE(4); S_ROW_STORE(5); S_ROW_STORE(6); S_ROW_STORE(7);
    }
}

/* ---------------------------------------------------------------- double 8x16 */

#define D_ROW_FMA(i)                                                                        \
    do {                                                                                    \
        const __m512d ai = _mm512_set1_pd(a[i]);                                            \
        c##i##0 = _mm512_fmadd_pd(ai, b0, c##i##0);                                         \
        c##i##1 = _mm512_fmadd_pd(ai, b1, c##i##1);                                         \
    } while (0)

#define D_STEP()                                                                            \
    do {                                                                                    \
        const __m512d b0 = _mm512_loadu_pd(b), b1 = _mm512_loadu_pd(b + 8);                 \
        D_ROW_FMA(0); D_ROW_FMA(1); D_ROW_FMA(2); D_ROW_FMA(3);                             \
        D_ROW_FMA(4); D_ROW_FMA(5); D_ROW_FMA(6); D_ROW_FMA(7);                             \
        a += 8;                                                                             \
        b += ldb;                                                                           \
    } while (0)

#define D_ROW_STORE(i)                                                                      \
    do {                                                                                    \
        double *cr = c + (i) * ldc;                                                         \
        __m512d r0 = _mm512_mul_pd(va, c##i##0), r1 = _mm512_mul_pd(va, c##i##1);           \
        if (beta != 0.0) {                                                                  \
            r0 = _mm512_fmadd_pd(vb, _mm512_loadu_pd(cr), r0);                              \
            r1 = _mm512_fmadd_pd(vb, _mm512_loadu_pd(cr + 8), r1);                          \
        }                                                                                   \
        _mm512_storeu_pd(cr, r0);                                                           \
        _mm512_storeu_pd(cr + 8, r1);                                                       \
    } while (0)

void cycnn_dgemm_ukernel_8x16_avx512(size_t kc, const double *restrict a,
                                     const double *restrict b, ptrdiff_t ldb, double *restrict c,
                                     ptrdiff_t ldc, double alpha, double beta)
{
    __m512d c00 = _mm512_setzero_pd(), c01 = c00, c10 = c00, c11 = c00;
    __m512d c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m512d c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m512d c60 = c00, c61 = c00, c70 = c00, c71 = c00;
    size_t p;
    int i;

    for (i = 0; i < 8; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);
    }
    for (p = 0; p + 4 <= kc; p += 4) {
        D_STEP(); D_STEP(); D_STEP(); D_STEP();
    }
    for (; p < kc; p++)
        D_STEP();

    {
        const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
        D_ROW_STORE(0); D_ROW_STORE(1); D_ROW_STORE(2); D_ROW_STORE(3);
        D_ROW_STORE(4); D_ROW_STORE(5); D_ROW_STORE(6); D_ROW_STORE(7);
    }
}

/* ---------------------------------------------------------------- half-width tiles
 * 8x16 float / 8x8 double: same A panel, only the first NR/2 columns of the B panel (the
 * driver uses them for a last column panel with n <= NR/2, halving the padded work).
 * 8 accumulators are still >= latency x throughput (4 x 1) independent FMA chains. */

#define S_HROW_FMA(i)                                                                       \
    c##i = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, c##i)
#define S_HSTEP()                                                                           \
    do {                                                                                    \
        const __m512 b0 = _mm512_loadu_ps(b);                                               \
        S_HROW_FMA(0); S_HROW_FMA(1); S_HROW_FMA(2); S_HROW_FMA(3);                         \
        S_HROW_FMA(4); S_HROW_FMA(5); S_HROW_FMA(6); S_HROW_FMA(7);                         \
        a += 8;                                                                             \
        b += ldb;                                                                           \
    } while (0)
#define S_HROW_STORE(i)                                                                     \
    do {                                                                                    \
        float *cr = c + (i) * ldc;                                                          \
        __m512 r = _mm512_mul_ps(va, c##i);                                                 \
        if (beta != 0.0f)                                                                   \
            r = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr), r);                                \
        _mm512_storeu_ps(cr, r);                                                            \
    } while (0)

void cycnn_sgemm_ukernel_8x16_avx512(size_t kc, const float *restrict a,
                                     const float *restrict b, ptrdiff_t ldb,
                                     float *restrict c, ptrdiff_t ldc, float alpha, float beta)
{
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    __m512 c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    size_t p;

    for (p = 0; p + 4 <= kc; p += 4) {
        S_HSTEP(); S_HSTEP(); S_HSTEP(); S_HSTEP();
    }
    for (; p < kc; p++)
        S_HSTEP();
    {
        const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
        S_HROW_STORE(0); S_HROW_STORE(1); S_HROW_STORE(2); S_HROW_STORE(3);
        S_HROW_STORE(4); S_HROW_STORE(5); S_HROW_STORE(6); S_HROW_STORE(7);
    }
}

#define D_HROW_FMA(i)                                                                       \
    c##i = _mm512_fmadd_pd(_mm512_set1_pd(a[i]), b0, c##i)
#define D_HSTEP()                                                                           \
    do {                                                                                    \
        const __m512d b0 = _mm512_loadu_pd(b);                                              \
        D_HROW_FMA(0); D_HROW_FMA(1); D_HROW_FMA(2); D_HROW_FMA(3);                         \
        D_HROW_FMA(4); D_HROW_FMA(5); D_HROW_FMA(6); D_HROW_FMA(7);                         \
        a += 8;                                                                             \
        b += ldb;                                                                           \
    } while (0)
#define D_HROW_STORE(i)                                                                     \
    do {                                                                                    \
        double *cr = c + (i) * ldc;                                                         \
        __m512d r = _mm512_mul_pd(va, c##i);                                                \
        if (beta != 0.0)                                                                    \
            r = _mm512_fmadd_pd(vb, _mm512_loadu_pd(cr), r);                                \
        _mm512_storeu_pd(cr, r);                                                            \
    } while (0)

void cycnn_dgemm_ukernel_8x8_avx512(size_t kc, const double *restrict a,
                                    const double *restrict b, ptrdiff_t ldb,
                                    double *restrict c, ptrdiff_t ldc, double alpha, double beta)
{
    __m512d c0 = _mm512_setzero_pd(), c1 = c0, c2 = c0, c3 = c0;
    __m512d c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    size_t p;

    for (p = 0; p + 4 <= kc; p += 4) {
        D_HSTEP(); D_HSTEP(); D_HSTEP(); D_HSTEP();
    }
    for (; p < kc; p++)
        D_HSTEP();
    {
        const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
        D_HROW_STORE(0); D_HROW_STORE(1); D_HROW_STORE(2); D_HROW_STORE(3);
        D_HROW_STORE(4); D_HROW_STORE(5); D_HROW_STORE(6); D_HROW_STORE(7);
    }
}

#else
typedef int cycnn_gemm_ukernel_avx512_unused; /* ISO C: no empty translation units */
#endif
