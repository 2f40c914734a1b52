/* sconv_direct.h -- float convolution of one image with the image values broadcast straight
 * from the padded image: no B panels, no im2col matrix (see sconv_direct.c for the design).
 *
 * Geometry: cycnn_conv_geom of sconv_igemm.h (any stride, padding, dilation).
 *
 * Use, per call:
 *   1. cfg = cycnn_sconv_config() (sconv_igemm.h): the selected GEMM path decides the kernel
 *      (AVX2 for the avx2 and avx512 paths, portable C for generic).
 *   2. cycnn_sconv_direct_pack_weights(): the K x CRS filter matrix (rows CRS apart) into
 *      16-filter panels, once per call (cycnn_sconv_direct_packed_floats(K, CRS) floats);
 *      read-only afterwards, shared by all threads.
 *   3. per image: cycnn_sconv_pad_image() (sconv_igemm.h), then cycnn_sconv_direct() for a
 *      range [l0, l1) of output pixels l = oh*Wo + ow:
 *        y[k*ldy + l] = bias[k] + sum_{c,r,s} w[k, c, r, s] * x[c, oh*sh - pt + r*dh,
 *                                                              ow*sw - pl + s*dw]
 *      (zero outside the image; then max(0, .) when relu, NaN kept), 0 <= k < K. bias (IN) may
 *      be NULL. Threads may work on disjoint pixel ranges of one image, each with its own
 *      workspace (cycnn_sconv_direct_workspace_bytes(g), 64-byte aligned).
 * Nothing allocates; all index arithmetic is 64-bit. Deterministic: the summation order
 * depends only on the geometry and the path (not on l0, l1).
 */
#ifndef CYCNN_SCONV_DIRECT_H
#define CYCNN_SCONV_DIRECT_H

#include <stddef.h>

#include "sconv_igemm.h"

#ifdef __cplusplus
extern "C" {
#endif

size_t cycnn_sconv_direct_packed_floats(int K, ptrdiff_t CRS);
void cycnn_sconv_direct_pack_weights(int K, ptrdiff_t CRS, const float *w, float *wp);
size_t cycnn_sconv_direct_workspace_bytes(const cycnn_conv_geom *g);
void cycnn_sconv_direct(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                        const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                        int relu, float *y, ptrdiff_t ldy, void *ws);

/* ---- internal: the kernels the driver calls (portable *_generic in sconv_direct.c, AVX2 in
 * sconv_direct_avx2.c; the Winograd convolution, swino.c, runs its GEMMs and stores on them).
 * tile:  pixels j < m (1 <= m <= 6) at xp + poff[j], 16 filters of one panel (w: kc taps x 16,
 *        tap-major), taps t < kc at offsets taps[t]:
 *          acc[j*16 + v] (+)= sum_t xp[poff[j] + taps[t]] * w[t*16 + v]   (= when first)
 * store: y[v*ldy + j] = epilogue(acc[j*16 + v] + bias[v]) for v < kv, j < np (bias NULL: 0). */
void cycnn_sconv_direct_tile_generic(int m, const ptrdiff_t *poff, const float *xp,
                                     const ptrdiff_t *taps, ptrdiff_t kc, const float *w,
                                     float *acc, int first);
void cycnn_sconv_direct_store_generic(const float *acc, ptrdiff_t np, int kv, const float *bias,
                                      int relu, float *y, ptrdiff_t ldy);
void cycnn_sconv_direct_tile_avx2(int m, const ptrdiff_t *poff, const float *xp,
                                  const ptrdiff_t *taps, ptrdiff_t kc, const float *w,
                                  float *acc, int first);
void cycnn_sconv_direct_store_avx2(const float *acc, ptrdiff_t np, int kv, const float *bias,
                                   int relu, float *y, ptrdiff_t ldy);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_SCONV_DIRECT_H */
