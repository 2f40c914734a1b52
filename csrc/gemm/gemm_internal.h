/* gemm_internal.h -- private declarations shared by the GEMM driver, packing routines and
 * micro-kernels. Not part of the public API (see gemm.h).
 *
 * Micro-kernel contract (one MR x NR tile of C):
 *   c[i*ldc + j] = alpha * sum_{p<kc} a[p*MR + i] * b[p*ldb + j] + beta * c[i*ldc + j]
 *   for 0 <= i < MR, 0 <= j < NR, where
 *     a: packed A micro-panel: kc columns of MR contiguous values (k-major);
 *     b: B micro-panel: kc rows of NR contiguous values, rows ldb apart (ldb == NR for a
 *        packed panel; ldb == rsb when the driver reads B in place, see gemm_driver.h);
 *     kc >= 1; beta == 0 means c is write-only (never read).
 *   Kernels always process a full tile; the driver zero-pads packed panels and routes edge
 *   tiles through a temporary MR x NR buffer. A family may add a half-width kernel
 *   (MR x NR/2, same a/b layout, first NR/2 columns of the panel) for narrow column edges.
 *
 * Each kernel family ("path") carries its own tile shape and cache blocking, so packing
 * takes MR / NR as arguments.
 */
#ifndef CYCNN_GEMM_INTERNAL_H
#define CYCNN_GEMM_INTERNAL_H

#include <stddef.h>

/* x86 builds get the avx2/avx512 paths; elsewhere (or with -DCYCNN_GEMM_NO_X86, which
 * tests use to check a generic-only build) only the generic path exists. */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(CYCNN_GEMM_NO_X86)
#define CYCNN_GEMM_X86 1
#else
#define CYCNN_GEMM_X86 0
#endif

/* ---- function types ---- */

typedef void (*cycnn_sgemm_ukernel_fn)(size_t kc, const float *a, const float *b,
                                       ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                                       float alpha, float beta);
typedef void (*cycnn_dgemm_ukernel_fn)(size_t kc, const double *a, const double *b,
                                       ptrdiff_t ldb, double *c, ptrdiff_t ldc,
                                       double alpha, double beta);

/* Row-edge kernel: the first m (1 <= m < MR) rows of an MR x NR tile, same a/b layout as the
 * micro-kernel (a is still the MR-strided packed panel), c written only for those m rows. */
typedef void (*cycnn_sgemm_rows_fn)(int m, size_t kc, const float *a, const float *b,
                                    ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                                    float alpha, float beta);
typedef void (*cycnn_dgemm_rows_fn)(int m, size_t kc, const double *a, const double *b,
                                    ptrdiff_t ldb, double *c, ptrdiff_t ldc,
                                    double alpha, double beta);

/* pack_a: A block of mc x kc (element (i,p) at A[i*rsa + p*csa]) -> ceil(mc/mr) micro-panels
 *         of mr*kc values, panel r at Ap + r*mr*kc; rows past mc are zero.
 * pack_b: B block of kc x nc (element (p,j) at B[p*rsb + j*csb]) -> ceil(nc/nr) micro-panels
 *         of kc*nr values, panel s at Bp + s*nr*kc; columns past nc are zero. */
typedef void (*cycnn_spack_a_fn)(int mr, int mc, int kc, const float *A, ptrdiff_t rsa,
                                 ptrdiff_t csa, float *Ap);
typedef void (*cycnn_spack_b_fn)(int nr, int kc, int nc, const float *B, ptrdiff_t rsb,
                                 ptrdiff_t csb, float *Bp);
typedef void (*cycnn_dpack_a_fn)(int mr, int mc, int kc, const double *A, ptrdiff_t rsa,
                                 ptrdiff_t csa, double *Ap);
typedef void (*cycnn_dpack_b_fn)(int nr, int kc, int nc, const double *B, ptrdiff_t rsb,
                                 ptrdiff_t csb, double *Bp);

/* One kernel family for one type: tile mr x nr; blocking (mc rows of A, a multiple of mr,
 * by kc depth per packed A block, meant for L2; kc x nc per packed B block, nc a multiple
 * of nr); kernels; packers. */
typedef struct {
    int mr, nr, mc, kc, nc;
    cycnn_sgemm_ukernel_fn ukernel;
    cycnn_sgemm_ukernel_fn ukernel_half;   /* mr x nr/2 tile, or NULL */
    cycnn_spack_a_fn pack_a;
    cycnn_spack_b_fn pack_b;
    int direct_b_any_stride;   /* read B in place even when its row stride is a multiple of
                                * 4 KiB (L1 set conflicts; measured harmless for avx512) */
    cycnn_sgemm_rows_fn ukernel_rows;   /* m < MR rows x NR tile, or NULL (full tile used) */
} cycnn_sgemm_config;

typedef struct {
    int mr, nr, mc, kc, nc;
    cycnn_dgemm_ukernel_fn ukernel;
    cycnn_dgemm_ukernel_fn ukernel_half;
    cycnn_dpack_a_fn pack_a;
    cycnn_dpack_b_fn pack_b;
    int direct_b_any_stride;
    cycnn_dgemm_rows_fn ukernel_rows;
} cycnn_dgemm_config;

/* The float config of the named path ("auto": the one in use), or NULL when the name is
 * unknown or this CPU cannot run it (gemm.c; used by the pre-packed entry points). */
const cycnn_sgemm_config *cycnn_sgemm_path_config(const char *name);

/* ---- portable packing (pack.c) ---- */
void cycnn_spack_a(int mr, int mc, int kc, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                   float *Ap);
void cycnn_spack_b(int nr, int kc, int nc, const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                   float *Bp);
void cycnn_dpack_a(int mr, int mc, int kc, const double *A, ptrdiff_t rsa, ptrdiff_t csa,
                   double *Ap);
void cycnn_dpack_b(int nr, int kc, int nc, const double *B, ptrdiff_t rsb, ptrdiff_t csb,
                   double *Bp);

/* ---- generic micro-kernels (gemm_ref.c): portable C, auto-vectorised at baseline flags */
#define CYCNN_SGEMM_GENERIC_MR 4
#define CYCNN_SGEMM_GENERIC_NR 8
#define CYCNN_DGEMM_GENERIC_MR 4
#define CYCNN_DGEMM_GENERIC_NR 4
void cycnn_sgemm_ukernel_4x8_generic(size_t kc, const float *a, const float *b, ptrdiff_t ldb,
                                     float *c, ptrdiff_t ldc, float alpha, float beta);
void cycnn_dgemm_ukernel_4x4_generic(size_t kc, const double *a, const double *b,
                                     ptrdiff_t ldb, double *c, ptrdiff_t ldc,
                                     double alpha, double beta);

#if CYCNN_GEMM_X86
/* ---- AVX2 packers (gemm_pack_avx2.c): in-register transposes; same contract as pack.c.
 * Used by the avx2 and avx512 paths (both require AVX2). */
void cycnn_spack_a_avx2(int mr, int mc, int kc, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                        float *Ap);
void cycnn_spack_b_avx2(int nr, int kc, int nc, const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                        float *Bp);
void cycnn_dpack_a_avx2(int mr, int mc, int kc, const double *A, ptrdiff_t rsa,
                        ptrdiff_t csa, double *Ap);
void cycnn_dpack_b_avx2(int nr, int kc, int nc, const double *B, ptrdiff_t rsb,
                        ptrdiff_t csb, double *Bp);

/* ---- avx2 micro-kernels (gemm_ukernel_avx2.c, -mavx2 -mfma): 16 ymm registers */
#define CYCNN_SGEMM_AVX2_MR 6
#define CYCNN_SGEMM_AVX2_NR 16
#define CYCNN_DGEMM_AVX2_MR 6
#define CYCNN_DGEMM_AVX2_NR 8
void cycnn_sgemm_ukernel_6x16_avx2(size_t kc, const float *a, const float *b, ptrdiff_t ldb,
                                   float *c, ptrdiff_t ldc, float alpha, float beta);
void cycnn_sgemm_ukernel_6x8_avx2(size_t kc, const float *a, const float *b, ptrdiff_t ldb,
                                  float *c, ptrdiff_t ldc, float alpha, float beta);
void cycnn_sgemm_ukernel_rows16_avx2(int m, size_t kc, const float *a, const float *b,
                                     ptrdiff_t ldb, float *c, ptrdiff_t ldc,
                                     float alpha, float beta);
void cycnn_dgemm_ukernel_6x8_avx2(size_t kc, const double *a, const double *b, ptrdiff_t ldb,
                                  double *c, ptrdiff_t ldc, double alpha, double beta);
void cycnn_dgemm_ukernel_6x4_avx2(size_t kc, const double *a, const double *b, ptrdiff_t ldb,
                                  double *c, ptrdiff_t ldc, double alpha, double beta);

/* ---- avx512 micro-kernels (gemm_ukernel_avx512.c, -mavx512f -mavx512dq -mavx512vl
 * -mfma -mavx2): 32 zmm registers */
#define CYCNN_SGEMM_AVX512_MR 8
#define CYCNN_SGEMM_AVX512_NR 32
#define CYCNN_DGEMM_AVX512_MR 8
#define CYCNN_DGEMM_AVX512_NR 16
void cycnn_sgemm_ukernel_8x32_avx512(size_t kc, const float *a, const float *b, ptrdiff_t ldb,
                                     float *c, ptrdiff_t ldc, float alpha, float beta);
void cycnn_sgemm_ukernel_8x16_avx512(size_t kc, const float *a, const float *b, ptrdiff_t ldb,
                                     float *c, ptrdiff_t ldc, float alpha, float beta);
void cycnn_dgemm_ukernel_8x16_avx512(size_t kc, const double *a, const double *b,
                                     ptrdiff_t ldb, double *c, ptrdiff_t ldc,
                                     double alpha, double beta);
void cycnn_dgemm_ukernel_8x8_avx512(size_t kc, const double *a, const double *b,
                                    ptrdiff_t ldb, double *c, ptrdiff_t ldc,
                                    double alpha, double beta);
#endif

#endif /* CYCNN_GEMM_INTERNAL_H */
