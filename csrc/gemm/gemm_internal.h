/* gemm_internal.h -- private declarations shared by the GEMM driver, packing routines and
 * micro-kernels. Not part of the public API (see gemm.h).
 *
 * Micro-kernel contract (one MR x NR tile of C):
 *   c[i*ldc + j] = alpha * sum_{p<kc} a[p*MR + i] * b[p*NR + j] + beta * c[i*ldc + j]
 *   for 0 <= i < MR, 0 <= j < NR, where
 *     a: packed A micro-panel, kc columns of MR contiguous values (k-major),
 *     b: packed B micro-panel, kc rows of NR contiguous values (k-major), 64-byte aligned,
 *     kc >= 1; beta == 0 means c is write-only (never read).
 *   Micro-kernels always process a full tile; the driver zero-pads panels and routes edge
 *   tiles through a temporary MR x NR buffer.
 *
 * Each kernel family ("path") carries its own tile shape and cache-blocking parameters, so
 * packing takes MR / NR as arguments.
 */
#ifndef CYCNN_GEMM_INTERNAL_H
#define CYCNN_GEMM_INTERNAL_H

#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#define CYCNN_GEMM_X86 1
#else
#define CYCNN_GEMM_X86 0
#endif

typedef void (*cycnn_sgemm_ukernel_fn)(size_t kc, const float *a, const float *b, ptrdiff_t ldb,
                                       float *c, ptrdiff_t ldc, float alpha, float beta);
typedef void (*cycnn_dgemm_ukernel_fn)(size_t kc, const double *a, const double *b, ptrdiff_t ldb,
                                       double *c, ptrdiff_t ldc, double alpha, double beta);

/* Packing routines: see pack.c for the layout. */
typedef void (*cycnn_spack_a_fn)(int mr, int mc, int kc, const float *A, ptrdiff_t rsa,
                                 ptrdiff_t csa, float *Ap);
typedef void (*cycnn_spack_b_fn)(int nr, int kc, int nc, const float *B, ptrdiff_t rsb,
                                 ptrdiff_t csb, float *Bp);
typedef void (*cycnn_dpack_a_fn)(int mr, int mc, int kc, const double *A, ptrdiff_t rsa,
                                 ptrdiff_t csa, double *Ap);
typedef void (*cycnn_dpack_b_fn)(int nr, int kc, int nc, const double *B, ptrdiff_t rsb,
                                 ptrdiff_t csb, double *Bp);

/* One kernel family for one type: tile MR x NR, blocking (MC rows of A, a multiple of MR,
 * by KC depth packed per block, meant for L2; KC x NC of B, NC a multiple of NR), the
 * micro-kernel and the packing routines it wants. */
typedef struct {
    int mr, nr, mc, kc, nc;
    cycnn_sgemm_ukernel_fn ukernel;
    cycnn_spack_a_fn pack_a;
    cycnn_spack_b_fn pack_b;
} cycnn_sgemm_config;

typedef struct {
    int mr, nr, mc, kc, nc;
    cycnn_dgemm_ukernel_fn ukernel;
    cycnn_dpack_a_fn pack_a;
    cycnn_dpack_b_fn pack_b;
} cycnn_dgemm_config;

/* ---- packing (pack.c, portable C) ----
 * pack_a: A block of mc x kc (element (i,p) at A[i*rsa + p*csa]) -> ceil(mc/mr) micro-panels
 *         of mr*kc values; rows past mc are zero.
 * pack_b: B block of kc x nc (element (p,j) at B[p*rsb + j*csb]) -> ceil(nc/nr) micro-panels
 *         of kc*nr values; columns past nc are zero. */
void cycnn_spack_a(int mr, int mc, int kc, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                   float *Ap);
void cycnn_spack_b(int nr, int kc, int nc, const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                   float *Bp);
void cycnn_dpack_a(int mr, int mc, int kc, const double *A, ptrdiff_t rsa, ptrdiff_t csa,
                   double *Ap);
void cycnn_dpack_b(int nr, int kc, int nc, const double *B, ptrdiff_t rsb, ptrdiff_t csb,
                   double *Bp);

/* ---- micro-kernels: tile sizes and blocking of each family ---- */

/* generic (gemm_ref.c): portable C, auto-vectorised by the compiler at baseline flags. */
#define CYCNN_SGEMM_GENERIC_MR 4
#define CYCNN_SGEMM_GENERIC_NR 8
#define CYCNN_DGEMM_GENERIC_MR 4
#define CYCNN_DGEMM_GENERIC_NR 4
void cycnn_sgemm_ukernel_4x8_generic(size_t kc, const float *a, const float *b, ptrdiff_t ldb, float *c,
                                     ptrdiff_t ldc, float alpha, float beta);
void cycnn_dgemm_ukernel_4x4_generic(size_t kc, const double *a, const double *b, ptrdiff_t ldb, double *c,
                                     ptrdiff_t ldc, double alpha, double beta);

#if CYCNN_GEMM_X86
/* gemm_pack_avx2.c: packers with in-register transposes (same contract as pack.c); used by
 * the avx2 and avx512 paths. */
void cycnn_spack_a_avx2(int mr, int mc, int kc, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                        float *Ap);
void cycnn_spack_b_avx2(int nr, int kc, int nc, const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                        float *Bp);
void cycnn_dpack_a_avx2(int mr, int mc, int kc, const double *A, ptrdiff_t rsa,
                        ptrdiff_t csa, double *Ap);
void cycnn_dpack_b_avx2(int nr, int kc, int nc, const double *B, ptrdiff_t rsb,
                        ptrdiff_t csb, double *Bp);

/* avx2 (*_avx2.c, compiled with -mavx2 -mfma): 16 ymm registers. */
#define CYCNN_SGEMM_AVX2_MR 6
#define CYCNN_SGEMM_AVX2_NR 16
#define CYCNN_DGEMM_AVX2_MR 6
#define CYCNN_DGEMM_AVX2_NR 8
void cycnn_sgemm_ukernel_6x16_avx2(size_t kc, const float *a, const float *b, ptrdiff_t ldb, float *c,
                                   ptrdiff_t ldc, float alpha, float beta);
void cycnn_dgemm_ukernel_6x8_avx2(size_t kc, const double *a, const double *b, ptrdiff_t ldb, double *c,
                                  ptrdiff_t ldc, double alpha, double beta);

/* avx512 (*_avx512.c, compiled with -mavx512f -mavx512dq -mavx512vl -mfma -mavx2):
 * 32 zmm registers. */
#define CYCNN_SGEMM_AVX512_MR 8
#define CYCNN_SGEMM_AVX512_NR 32
#define CYCNN_DGEMM_AVX512_MR 8
#define CYCNN_DGEMM_AVX512_NR 16
void cycnn_sgemm_ukernel_8x32_avx512(size_t kc, const float *a, const float *b, ptrdiff_t ldb, float *c,
                                     ptrdiff_t ldc, float alpha, float beta);
void cycnn_dgemm_ukernel_8x16_avx512(size_t kc, const double *a, const double *b, ptrdiff_t ldb, double *c,
                                     ptrdiff_t ldc, double alpha, double beta);
#endif

#endif /* CYCNN_GEMM_INTERNAL_H */
