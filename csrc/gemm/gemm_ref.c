/* gemm_ref.c -- portable C micro-kernels (float 4x8, double 4x4): the "generic" path.
 *
 * Used on CPUs without AVX2/AVX-512, on non-x86 builds, and by the tests as the reference
 * path for the full driver (packing, blocking, edges). Same contract as every micro-kernel
 * (gemm_internal.h): c[i*ldc+j] = alpha * sum_p a[p*MR+i] * b[p*ldb+j] + beta * c[i*ldc+j],
 * with C never read when beta == 0. The accumulator tile lives in a local array that the
 * compiler keeps in (baseline SSE2 / NEON) vector registers; the inner j loop vectorises.
 */
#include "gemm_internal.h"

#define DEFINE_GENERIC_UKERNEL(NAME, T, MR, NR)                                             \
    void NAME(size_t kc, const T *restrict a, const T *restrict b, ptrdiff_t ldb,           \
              T *restrict c, ptrdiff_t ldc, T alpha, T beta)                                \
    {                                                                                       \
        T acc[MR][NR];                                                                      \
        size_t p;                                                                           \
        int i, j;                                                                           \
        for (i = 0; i < MR; i++)                                                            \
            for (j = 0; j < NR; j++)                                                        \
                acc[i][j] = (T)0;                                                           \
        for (p = 0; p < kc; p++) {                                                          \
            for (i = 0; i < MR; i++) {                                                      \
                const T ai = a[i];                                                          \
                for (j = 0; j < NR; j++)                                                    \
                    acc[i][j] += ai * b[j];                                                 \
            }                                                                               \
            a += MR;                                                                        \
            b += ldb;                                                                       \
        }                                                                                   \
        if (beta == (T)0) {                                                                 \
            for (i = 0; i < MR; i++)                                                        \
                for (j = 0; j < NR; j++)                                                    \
                    c[i * ldc + j] = alpha * acc[i][j];                                     \
        } else {                                                                            \
            for (i = 0; i < MR; i++)                                                        \
                for (j = 0; j < NR; j++)                                                    \
                    c[i * ldc + j] = alpha * acc[i][j] + beta * c[i * ldc + j];             \
        }                                                                                   \
    }

DEFINE_GENERIC_UKERNEL(cycnn_sgemm_ukernel_4x8_generic, float,
                       CYCNN_SGEMM_GENERIC_MR, CYCNN_SGEMM_GENERIC_NR)
DEFINE_GENERIC_UKERNEL(cycnn_dgemm_ukernel_4x4_generic, double,
                       CYCNN_DGEMM_GENERIC_MR, CYCNN_DGEMM_GENERIC_NR)
