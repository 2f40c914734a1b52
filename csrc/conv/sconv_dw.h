/* sconv_dw.h -- float weight gradient of a convolution, one image at a time, without the im2col
 * matrix (see sconv_dw.c for the design).
 *
 * Geometry: cycnn_conv_geom of sconv_igemm.h (the forward convolution's: image C x H x W,
 * filters K x C x R x S, strides, top/left padding (may be negative), dilations, output
 * Ho x Wo). Taps t = (c*R + r)*S + s, 0 <= t < CRS = C*R*S; pixels l = oh*Wo + ow, L = Ho*Wo.
 *
 * Use, per call:
 *   1. cfg = cycnn_sconv_config() (sconv_igemm.h): the selected GEMM path decides the kernel
 *      (AVX2 when the path is avx2 or avx512, the portable C kernel for generic).
 *   2. per image: cycnn_sconv_pad_image(cfg, g, x, xp) (sconv_igemm.h) into a buffer of
 *      cycnn_sconv_padded_floats(cfg, g) floats, then cycnn_sconv_dw() for a range [t0, t1) of
 *      taps:
 *        acc[t*ldacc + k] += sum_{l < L} x(tap t at pixel l) * dy[k*L + l]
 *                                                          t0 <= t < t1, 0 <= k < K
 *        db[k]            += sum_{l < L} dy[k*L + l]       (when db != NULL)
 *      where x(tap (c,r,s) at pixel (oh,ow)) = x[c, oh*sh - pt + r*dh, ow*sw - pl + s*dw], zero
 *      outside the image. acc (IN/OUT, CRS x K with rows ldacc >= K apart: the transposed weight
 *      gradient) is read and written only in rows [t0, t1), columns [0, K); db (IN/OUT) only in
 *      [0, K). dy (IN) is one image's K x L output gradient, contiguous.
 * Buffers: the workspace (cycnn_sconv_dw_workspace_bytes(g) bytes, 64-byte aligned) is per
 * thread. Threads may work on disjoint tap ranges of one acc, or on their own acc. Nothing
 * allocates. Deterministic: the summation order depends only on the geometry, the tap range and
 * the path. All index arithmetic is 64-bit (ptrdiff_t).
 */
#ifndef CYCNN_SCONV_DW_H
#define CYCNN_SCONV_DW_H

#include <stddef.h>

#include "sconv_igemm.h"

#ifdef __cplusplus
extern "C" {
#endif

size_t cycnn_sconv_dw_workspace_bytes(const cycnn_conv_geom *g);

void cycnn_sconv_dw(const void *cfg, const cycnn_conv_geom *g, const float *xp, const float *dy,
                    ptrdiff_t t0, ptrdiff_t t1, float *acc, ptrdiff_t ldacc, float *db,
                    void *ws);

/* The same, prefetching the next image's operands while computing (prefetch.h): x_next
 * (x_next_floats floats: its unpadded image, or the image the next call reads) and dy_next
 * (K x L). Either may be NULL. The results do not depend on them. */
void cycnn_sconv_dw_next(const void *cfg, const cycnn_conv_geom *g, const float *xp,
                         const float *dy, ptrdiff_t t0, ptrdiff_t t1, float *acc,
                         ptrdiff_t ldacc, float *db, void *ws, const float *x_next,
                         ptrdiff_t x_next_floats, const float *dy_next);

/* ---- internal: the kernels the driver calls (portable in sconv_dw.c, AVX2 in
 * sconv_dw_avx2.c). A "panel" holds kw (8 or 16) filters k0 .. k0+kw-1 of np pixels,
 * pixel-major: b[j*kw + v] = dy[(k0+v)*L + l0 + j], zero for v >= kv (filters past K).
 *
 * pack:  b (OUT) <- the panel of filters [k0, k0+kv) (dyk = dy + k0*L), pixels [l0, l0+np);
 *        db[v] += sum_j dyk[v*L + l0 + j] for v < kv when db != NULL.
 * tile:  c[j*ldc + v] += sum over the panel's pixels of xp[taps[j] + pixel offset] * b[.. + v]
 *        for j < m (1 <= m <= 6 taps), v < kv; the pixels are nseg runs inside output rows,
 *        run q starting at xp offset seg_off[q] and holding seg_len[q] pixels sw apart, in
 *        panel order. */
void cycnn_sconv_dw_pack_avx2(int kw, int kv, const float *dyk, ptrdiff_t L, ptrdiff_t l0,
                              ptrdiff_t np, float *b, float *db);
void cycnn_sconv_dw_tile_avx2(int m, int kw, int kv, const ptrdiff_t *taps, const float *xp,
                              int nseg, const ptrdiff_t *seg_off, const int *seg_len,
                              ptrdiff_t sw, const float *b, float *c, ptrdiff_t ldc);

/* The pack and tile kernels of the path cfg (cycnn_sconv_config() or a cycnn_sgemm_path()):
 * the AVX2 pair when the path is avx2 or avx512, the portable twins otherwise. Shared with the
 * broadcast GEMM (csrc/gemm/sgemm_bcast.c), which runs the same tile with A = a weight matrix
 * read in place. */
typedef void (*cycnn_sconv_dw_pack_fn)(int kw, int kv, const float *dyk, ptrdiff_t L,
                                       ptrdiff_t l0, ptrdiff_t np, float *b, float *db);
typedef void (*cycnn_sconv_dw_tile_fn)(int m, int kw, int kv, const ptrdiff_t *taps,
                                       const float *xp, int nseg, const ptrdiff_t *seg_off,
                                       const int *seg_len, ptrdiff_t sw, const float *b,
                                       float *c, ptrdiff_t ldc);
void cycnn_sconv_dw_kernels(const void *cfg, cycnn_sconv_dw_pack_fn *pack,
                            cycnn_sconv_dw_tile_fn *tile);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_SCONV_DW_H */
