/* gemm_ukernel_avx2.c -- AVX2 + FMA micro-kernels: float 6x16 (+ 6x8 half-width),
 * double 6x8 (+ 6x4 half-width).
 *
 * Built with -mavx2 -mfma; only reached through the dispatch table after cpu.c confirmed
 * AVX2 + FMA + OS YMM state.
 *
 * What a kernel computes (see gemm_internal.h): one MR x NR tile
 *   C = alpha * Apanel(MR x kc) * Bpanel(kc x NR) + beta * C     (beta == 0: C not read)
 * B rows are ldb apart (packed panel or B read in place), so B loads are unaligned loads.
 * Register plan (16 ymm): each tile row is 2 ymm vectors -> 12 accumulators, 2 registers
 * for the B row, 1 for the broadcast A value. Per k step: 2 ymm loads of B, 6
 * broadcasts of A, 12 FMAs (two FMA pipes x 4-cycle latency need >= 8 independent chains).
 * Accumulators are named variables (not an array) so the compiler keeps them in registers;
 * the k loop is unrolled by 2. C rows are prefetched first. No memory besides the operands.
 */
#include "gemm_internal.h"

#if CYCNN_GEMM_X86
#include <immintrin.h>

/* ---------------------------------------------------------------- float 6x16 */

#define S_ROW_FMA(i)                                                                        \
    do {                                                                                    \
        const __m256 ai = _mm256_broadcast_ss(a + (i));                                     \
        c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);                                         \
        c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);                                         \
    } while (0)

#define S_STEP()                                                                            \
    do {                                                                                    \
        const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);                  \
        S_ROW_FMA(0); S_ROW_FMA(1); S_ROW_FMA(2);                                           \
        S_ROW_FMA(3); S_ROW_FMA(4); S_ROW_FMA(5);                                           \
        a += 6;                                                                             \
        b += ldb;                                                                           \
    } while (0)

/* c_row = alpha*acc (+ beta*c_row) for the two vectors of row i */
#define S_ROW_STORE(i)                                                                      \
    do {                                                                                    \
        float *cr = c + (i) * ldc;                                                          \
        __m256 r0 = _mm256_mul_ps(va, c##i##0), r1 = _mm256_mul_ps(va, c##i##1);            \
        if (beta != 0.0f) {                                                                 \
            r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), r0);                              \
            r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), r1);                          \
        }                                                                                   \
        _mm256_storeu_ps(cr, r0);                                                           \
        _mm256_storeu_ps(cr + 8, r1);                                                       \
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

#define D_ROW_FMA(i)                                                                        \
    do {                                                                                    \
        const __m256d ai = _mm256_broadcast_sd(a + (i));                                    \
        c##i##0 = _mm256_fmadd_pd(ai, b0, c##i##0);                                         \
        c##i##1 = _mm256_fmadd_pd(ai, b1, c##i##1);                                         \
    } while (0)

#define D_STEP()                                                                            \
    do {                                                                                    \
        const __m256d b0 = _mm256_loadu_pd(b), b1 = _mm256_loadu_pd(b + 4);                 \
        D_ROW_FMA(0); D_ROW_FMA(1); D_ROW_FMA(2);                                           \
        D_ROW_FMA(3); D_ROW_FMA(4); D_ROW_FMA(5);                                           \
        a += 6;                                                                             \
        b += ldb;                                                                           \
    } while (0)

#define D_ROW_STORE(i)                                                                      \
    do {                                                                                    \
        double *cr = c + (i) * ldc;                                                         \
        __m256d r0 = _mm256_mul_pd(va, c##i##0), r1 = _mm256_mul_pd(va, c##i##1);           \
        if (beta != 0.0) {                                                                  \
            r0 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr), r0);                              \
            r1 = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr + 4), r1);                          \
        }                                                                                   \
        _mm256_storeu_pd(cr, r0);                                                           \
        _mm256_storeu_pd(cr + 4, r1);                                                       \
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

/* ---------------------------------------------------------------- half-width tiles
 * 6x8 float / 6x4 double: first NR/2 columns of the B panel only (used by the driver for a
 * last column panel with n <= NR/2). */

#define S_HROW_FMA(i)                                                                       \
    c##i = _mm256_fmadd_ps(_mm256_broadcast_ss(a + (i)), b0, c##i)
#define S_HSTEP()                                                                           \
    do {                                                                                    \
        const __m256 b0 = _mm256_loadu_ps(b);                                               \
        S_HROW_FMA(0); S_HROW_FMA(1); S_HROW_FMA(2);                                        \
        S_HROW_FMA(3); S_HROW_FMA(4); S_HROW_FMA(5);                                        \
        a += 6;                                                                             \
        b += ldb;                                                                           \
    } while (0)
#define S_HROW_STORE(i)                                                                     \
    do {                                                                                    \
        float *cr = c + (i) * ldc;                                                          \
        __m256 r = _mm256_mul_ps(va, c##i);                                                 \
        if (beta != 0.0f)                                                                   \
            r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), r);                                \
        _mm256_storeu_ps(cr, r);                                                            \
    } while (0)

void cycnn_sgemm_ukernel_6x8_avx2(size_t kc, const float *restrict a,
                                  const float *restrict b, ptrdiff_t ldb,
                                  float *restrict c, ptrdiff_t ldc, float alpha, float beta)
{
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    size_t p;

    for (p = 0; p + 2 <= kc; p += 2) {
        S_HSTEP(); S_HSTEP();
    }
    if (p < kc)
        S_HSTEP();
    {
        const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
        S_HROW_STORE(0); S_HROW_STORE(1); S_HROW_STORE(2);
        S_HROW_STORE(3); S_HROW_STORE(4); S_HROW_STORE(5);
    }
}

#define D_HROW_FMA(i)                                                                       \
    c##i = _mm256_fmadd_pd(_mm256_broadcast_sd(a + (i)), b0, c##i)
#define D_HSTEP()                                                                           \
    do {                                                                                    \
        const __m256d b0 = _mm256_loadu_pd(b);                                              \
        D_HROW_FMA(0); D_HROW_FMA(1); D_HROW_FMA(2);                                        \
        D_HROW_FMA(3); D_HROW_FMA(4); D_HROW_FMA(5);                                        \
        a += 6;                                                                             \
        b += ldb;                                                                           \
    } while (0)
#define D_HROW_STORE(i)                                                                     \
    do {                                                                                    \
        double *cr = c + (i) * ldc;                                                         \
        __m256d r = _mm256_mul_pd(va, c##i);                                                \
        if (beta != 0.0)                                                                    \
            r = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr), r);                                \
        _mm256_storeu_pd(cr, r);                                                            \
    } while (0)

void cycnn_dgemm_ukernel_6x4_avx2(size_t kc, const double *restrict a,
                                  const double *restrict b, ptrdiff_t ldb,
                                  double *restrict c, ptrdiff_t ldc, double alpha, double beta)
{
    __m256d c0 = _mm256_setzero_pd(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
    size_t p;

    for (p = 0; p + 2 <= kc; p += 2) {
        D_HSTEP(); D_HSTEP();
    }
    if (p < kc)
        D_HSTEP();
    {
        const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
        D_HROW_STORE(0); D_HROW_STORE(1); D_HROW_STORE(2);
        D_HROW_STORE(3); D_HROW_STORE(4); D_HROW_STORE(5);
    }
}

/* ---------------------------------------------------------------- float m x 16 row edge
 * The first m < 6 rows of a 6x16 tile (same packed a panel, stride 6 per k): a batch of one
 * image through a dense layer would otherwise pay for six rows. One function per m so the
 * accumulators (2*m ymm) stay in registers; k unrolled by 2 with two accumulator sets for
 * m <= 2 (S_ROWS_BODY), where the FMA latency, not the loads, would bound a single set. */
#if defined(__GNUC__) && !defined(__clang__)
#define ROWS_UNROLL _Pragma("GCC unroll 8")
#else
#define ROWS_UNROLL
#endif

#define S_ROWS_BODY(M)                                                                      \
    do {                                                                                    \
        __m256 acc0[M][2], acc1[M][2];                                                      \
        size_t p;                                                                           \
        int i;                                                                              \
        ROWS_UNROLL                                                                 \
        for (i = 0; i < M; i++)                                                             \
            acc0[i][0] = acc0[i][1] = acc1[i][0] = acc1[i][1] = _mm256_setzero_ps();        \
        for (p = 0; p + 2 <= kc; p += 2) {                                                  \
            const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);              \
            const __m256 b2 = _mm256_loadu_ps(b + ldb), b3 = _mm256_loadu_ps(b + ldb + 8);  \
            ROWS_UNROLL                                                             \
            for (i = 0; i < M; i++) {                                                       \
                const __m256 ai = _mm256_broadcast_ss(a + i);                               \
                const __m256 aj = _mm256_broadcast_ss(a + 6 + i);                           \
                acc0[i][0] = _mm256_fmadd_ps(ai, b0, acc0[i][0]);                           \
                acc0[i][1] = _mm256_fmadd_ps(ai, b1, acc0[i][1]);                           \
                acc1[i][0] = _mm256_fmadd_ps(aj, b2, acc1[i][0]);                           \
                acc1[i][1] = _mm256_fmadd_ps(aj, b3, acc1[i][1]);                           \
            }                                                                               \
            a += 12;                                                                        \
            b += 2 * ldb;                                                                   \
        }                                                                                   \
        if (p < kc) {                                                                       \
            const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);              \
            ROWS_UNROLL                                                             \
            for (i = 0; i < M; i++) {                                                       \
                const __m256 ai = _mm256_broadcast_ss(a + i);                               \
                acc0[i][0] = _mm256_fmadd_ps(ai, b0, acc0[i][0]);                           \
                acc0[i][1] = _mm256_fmadd_ps(ai, b1, acc0[i][1]);                           \
            }                                                                               \
        }                                                                                   \
        {                                                                                   \
            const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);             \
            ROWS_UNROLL                                                             \
            for (i = 0; i < M; i++) {                                                       \
                float *cr = c + i * ldc;                                                    \
                __m256 r0 = _mm256_mul_ps(va, _mm256_add_ps(acc0[i][0], acc1[i][0]));       \
                __m256 r1 = _mm256_mul_ps(va, _mm256_add_ps(acc0[i][1], acc1[i][1]));       \
                if (beta != 0.0f) {                                                         \
                    r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), r0);                      \
                    r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), r1);                  \
                }                                                                           \
                _mm256_storeu_ps(cr, r0);                                                   \
                _mm256_storeu_ps(cr + 8, r1);                                               \
            }                                                                               \
        }                                                                                   \
    } while (0)


#define S_ROWS_BODY1(M)                                                                     \
    do {                                                                                    \
        __m256 acc0[M][2];                                                                  \
        size_t p;                                                                           \
        int i;                                                                              \
        ROWS_UNROLL                                                                 \
        for (i = 0; i < M; i++)                                                             \
            acc0[i][0] = acc0[i][1] = _mm256_setzero_ps();                                  \
        for (p = 0; p < kc; p++) {                                                          \
            const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);              \
            ROWS_UNROLL                                                             \
            for (i = 0; i < M; i++) {                                                       \
                const __m256 ai = _mm256_broadcast_ss(a + i);                               \
                acc0[i][0] = _mm256_fmadd_ps(ai, b0, acc0[i][0]);                           \
                acc0[i][1] = _mm256_fmadd_ps(ai, b1, acc0[i][1]);                           \
            }                                                                               \
            a += 6;                                                                         \
            b += ldb;                                                                       \
        }                                                                                   \
        {                                                                                   \
            const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);             \
            ROWS_UNROLL                                                             \
            for (i = 0; i < M; i++) {                                                       \
                float *cr = c + i * ldc;                                                    \
                __m256 r0 = _mm256_mul_ps(va, acc0[i][0]);                                  \
                __m256 r1 = _mm256_mul_ps(va, acc0[i][1]);                                  \
                if (beta != 0.0f) {                                                         \
                    r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), r0);                      \
                    r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), r1);                  \
                }                                                                           \
                _mm256_storeu_ps(cr, r0);                                                   \
                _mm256_storeu_ps(cr + 8, r1);                                               \
            }                                                                               \
        }                                                                                   \
    } while (0)

#define S_ROWS_FN(M, BODY)                                                                        \
    static void s_rows_##M(size_t kc, const float *restrict a, const float *restrict b,    \
                           ptrdiff_t ldb, float *restrict c, ptrdiff_t ldc, float alpha,    \
                           float beta)                                                      \
    {                                                                                       \
        BODY(M);                                                                            \
    }

S_ROWS_FN(1, S_ROWS_BODY)
S_ROWS_FN(2, S_ROWS_BODY)
S_ROWS_FN(3, S_ROWS_BODY1)
S_ROWS_FN(4, S_ROWS_BODY1)
S_ROWS_FN(5, S_ROWS_BODY1)

void cycnn_sgemm_ukernel_rows16_avx2(int m, size_t kc, const float *a, const float *b,
                                     ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                                     float alpha, float beta)
{
    switch (m) {
    case 1: s_rows_1(kc, a, b, ldb, c, ldc, alpha, beta); break;
    case 2: s_rows_2(kc, a, b, ldb, c, ldc, alpha, beta); break;
    case 3: s_rows_3(kc, a, b, ldb, c, ldc, alpha, beta); break;
    case 4: s_rows_4(kc, a, b, ldb, c, ldc, alpha, beta); break;
    default: s_rows_5(kc, a, b, ldb, c, ldc, alpha, beta); break;
    }
}

#else
typedef int cycnn_gemm_ukernel_avx2_unused; /* ISO C: no empty translation units */
#endif
