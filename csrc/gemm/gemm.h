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

/* ---- Pre-packed operands and fused epilogue (float; the inference plan uses them) ----
 *
 * A weight matrix that multiplies many inputs is packed once into the micro-kernel's panel
 * layout of one path and reused:
 *   path = cycnn_sgemm_path(name)   "generic" / "avx2" / "avx512", or "auto" (the path in use);
 *                                   NULL when unknown or unsupported on this CPU. A packing is
 *                                   only valid with the path that made it (tile sizes differ).
 *   A (M x K) -> Ap: cycnn_sgemm_packed_a_size(path, M, K) floats, cycnn_sgemm_pack_a();
 *                    rows past M are zero; the MR-row panel r sits at Ap + r*MR*K, so a caller
 *                    may run a range of panels (rows r*MR ..) by offsetting Ap (and the bias).
 *   B (K x N) -> Bp: cycnn_sgemm_packed_b_size(path, K, N) floats, cycnn_sgemm_pack_b();
 *                    NR-column panel s at Bp + s*NR*K (column ranges by offsetting Bp).
 * Then
 *   cycnn_sgemm_apacked:  C = epi(Ap . B)   (B any strides, e.g. an im2col matrix)
 *   cycnn_sgemm_bpacked:  C = epi(A . Bp)   (A any strides, e.g. a batch of feature rows)
 * with C (M x N, row stride ldc) overwritten and epi (ep may be NULL: none) applied to each
 * element: bias[i] (CYCNN_BIAS_ROWS) or bias[j] (CYCNN_BIAS_COLS) added, then the activation
 * (CYCNN_ACT_RELU: x < 0 ? 0 : x, NaN kept; CYCNN_ACT_LEAKY_RELU: x < 0 ? slope*x : x).
 * The epilogue runs on each tile right after its last depth block, while it is in L1.
 * ws as for cycnn_sgemm; single-threaded; calls with distinct ws/C are thread-safe.
 */
enum { CYCNN_BIAS_NONE = 0, CYCNN_BIAS_ROWS = 1, CYCNN_BIAS_COLS = 2 };
enum { CYCNN_ACT_NONE = 0, CYCNN_ACT_RELU = 1, CYCNN_ACT_LEAKY_RELU = 2 };

typedef struct cycnn_epilogue {
    const float *bias;   /* NULL: no bias */
    int bias_mode;       /* CYCNN_BIAS_ROWS or CYCNN_BIAS_COLS */
    int act;             /* CYCNN_ACT_* */
    float slope;         /* leaky ReLU slope */
} cycnn_epilogue;

const void *cycnn_sgemm_path(const char *name);
int cycnn_sgemm_path_mr(const void *path);
int cycnn_sgemm_path_nr(const void *path);
size_t cycnn_sgemm_packed_a_size(const void *path, int M, int K);
size_t cycnn_sgemm_packed_b_size(const void *path, int K, int N);
void cycnn_sgemm_pack_a(const void *path, int M, int K, const float *A, ptrdiff_t rsa,
                        ptrdiff_t csa, float *Ap);
void cycnn_sgemm_pack_b(const void *path, int K, int N, const float *B, ptrdiff_t rsb,
                        ptrdiff_t csb, float *Bp);
void cycnn_sgemm_apacked(const void *path, int M, int N, int K, const float *Ap,
                         const float *B, ptrdiff_t rsb, ptrdiff_t csb, float *C, ptrdiff_t ldc,
                         const cycnn_epilogue *ep, void *ws);
void cycnn_sgemm_bpacked(const void *path, int M, int N, int K, const float *A, ptrdiff_t rsa,
                         ptrdiff_t csa, const float *Bp, float *C, ptrdiff_t ldc,
                         const cycnn_epilogue *ep, void *ws);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_GEMM_H */
