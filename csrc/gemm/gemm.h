/* gemm.h -- cycnn's packed, cache-blocked GEMM (float and double).
 *
 * Contract
 *   C[i, j] = alpha * sum_p A[i, p] * B[p, j] + beta * C[i, j]
 *   for 0 <= i < M, 0 <= j < N, 0 <= p < K.
 *
 *   A (IN)  is addressed A[i*rsa + p*csa]   (any strides: a transpose is a stride swap)
 *   B (IN)  is addressed B[p*rsb + j*csb]   (any strides)
 *   C (OUT) is addressed C[i*ldc + j]       (row-major, unit column stride)
 *   A, B and C must not overlap (restrict).
 *   beta == 0: C is overwritten and never read (NaN/garbage in C does not propagate).
 *   K == 0: C = beta * C (or zeros when beta == 0). M == 0 or N == 0: nothing happens.
 *   NaN/Inf in A or B propagate as IEEE arithmetic says.
 *
 *   ws (scratch): caller-owned, at least cycnn_gemm_workspace_size() bytes, 64-byte aligned.
 *   The GEMM itself is single-threaded and never allocates; calls with distinct workspaces are
 *   thread-safe, so callers parallelise over independent GEMMs (e.g. one per image).
 *
 * Dispatch
 *   cycnn_gemm_init() picks the best micro-kernel the CPU supports (avx512 > avx2 > generic), or
 *   the one named by the environment variable CYCNN_SIMD when set and supported. Call it once,
 *   before any GEMM (the Python extension does so at import). cycnn_gemm_select() forces a path
 *   (tests use it to compare every supported path against "generic"). Both may run while GEMMs
 *   run in other threads: the path is one atomic pointer to an immutable table entry, read once
 *   per GEMM call, so every call runs wholly on one path.
 */
#ifndef CYCNN_GEMM_H
#define CYCNN_GEMM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

size_t cycnn_gemm_workspace_size(void);

void cycnn_sgemm(int M, int N, int K, float alpha,
                 const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                 const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                 float beta, float *C, ptrdiff_t ldc, void *ws);

void cycnn_dgemm(int M, int N, int K, double alpha,
                 const double *A, ptrdiff_t rsa, ptrdiff_t csa,
                 const double *B, ptrdiff_t rsb, ptrdiff_t csb,
                 double beta, double *C, ptrdiff_t ldc, void *ws);

/* Returns 0 on success; -1 when CYCNN_SIMD names an unknown or unsupported path
 * (the best supported path is used then). */
int cycnn_gemm_init(void);

/* name: "auto", "generic", "avx2" or "avx512".
 * Returns 0 on success, -1 for an unknown name, -2 when this CPU cannot run that path
 * (the selection is unchanged on error). */
int cycnn_gemm_select(const char *name);

/* 1 when this CPU (and OS) can run the named path, else 0. */
int cycnn_gemm_supported(const char *name);

/* The path in use: "generic", "avx2" or "avx512". */
const char *cycnn_gemm_kernel_name(void);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_GEMM_H */
