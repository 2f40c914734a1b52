/* sgemm_bcast.h -- float GEMM for a large matrix times a few columns, the large matrix read
 * in place as the broadcast operand (never packed); see sgemm_bcast.c for the design.
 *
 *   C[i*ldc + j] = sum_{p<K} A[i*rsa + p*csa] * B(p, j)      i0 <= i < i1, 0 <= j < N
 *
 * A (IN): M x K, any strides (a weight matrix or its transpose, read where it lies).
 * B (IN): K x N with unit row stride, element (p, j) at B[p + j*csb] (e.g. x^T for a batch x of
 *   N rows), packed once per call by cycnn_sgemm_bcast_pack() into Bp (OUT) of
 *   cycnn_sgemm_bcast_packed_floats(K, N) floats, 64-byte aligned: ceil(N/16) panels of K rows
 *   of 16 (the last one 8 wide when N % 16 is 1..8), zero past N; panel s at Bp + 16*s*K.
 * C (OUT): rows [i0, i1) overwritten, row stride ldc >= N; nothing else is touched.
 * cfg: the GEMM path (cycnn_sconv_config() or cycnn_sgemm_path()); it picks the AVX2 or the
 *   portable kernels of csrc/conv/sconv_dw.c. Single-threaded, no allocation, no workspace;
 *   threads run disjoint row ranges on one shared Bp. Deterministic: the summation order
 *   depends only on K, the row range and the path. K == 0 gives zeros.
 */
#ifndef CYCNN_SGEMM_BCAST_H
#define CYCNN_SGEMM_BCAST_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

size_t cycnn_sgemm_bcast_packed_floats(int K, int N);
void cycnn_sgemm_bcast_pack(const void *cfg, int K, int N, const float *B, ptrdiff_t csb,
                            float *Bp);
void cycnn_sgemm_bcast(const void *cfg, int i0, int i1, int N, int K, const float *A,
                       ptrdiff_t rsa, ptrdiff_t csa, const float *Bp, float *C, ptrdiff_t ldc);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_SGEMM_BCAST_H */
