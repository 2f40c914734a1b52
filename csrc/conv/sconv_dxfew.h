/* sconv_dxfew.h -- the input gradient (dx) of one image of a float stride-1 convolution with
 * few input channels and width-preserving padding (first layers), as a GEMM over dy with the
 * col2im scatter fused into the register tile's store (see sconv_dxfew.c for the design).
 *
 * Geometry: cycnn_conv_geom of sconv_igemm.h, the FORWARD pass's (C = x's channels, K = dy's),
 * with cycnn_sconv_dxfew_applies(g): sh == sw == dh == dw == 1, Wo == W (pl + pr == S - 1,
 * 0 <= pl <= S - 1), any pt (rows that fall outside the image are dropped), Ho >= 1.
 *
 * Use, per call:
 *   1. cycnn_sconv_dxfew_pack_weights(): the K x C x R x S filters (contiguous) into
 *      cycnn_sconv_dxfew_packed_floats(K, C, R, S) floats, once; read-only afterwards, shared by
 *      all threads.
 *   2. per image, cycnn_sconv_dxfew(): dx (OUT, C x H x W contiguous, every element written)
 *        dx[c, ih, iw] = sum_{k, r, s} w[k, c, r, s] * dy[k, ih + pt - r, iw + pl - s]
 *      over the taps whose dy pixel lies inside Ho x Wo; dy (IN) K x Ho x Wo contiguous.
 *      cold: nonzero when dy is not in cache (not just read by the weight gradient): a hint
 *      (prefetch ahead), the results do not depend on it.
 * Workspace: cycnn_sconv_dxfew_workspace_bytes(g) bytes per thread, 64-byte aligned.
 * Nothing allocates; index arithmetic is 64-bit. Deterministic: the order of every sum depends
 * only on the geometry and the path (generic or AVX2), not on the caller's threads.
 */
#ifndef CYCNN_SCONV_DXFEW_H
#define CYCNN_SCONV_DXFEW_H

#include <stddef.h>

#include "sconv_igemm.h"

#ifdef __cplusplus
extern "C" {
#endif

int cycnn_sconv_dxfew_applies(const cycnn_conv_geom *g);
size_t cycnn_sconv_dxfew_packed_floats(int K, int C, int R, int S);
void cycnn_sconv_dxfew_pack_weights(int K, int C, int R, int S, const float *w, float *wp);
size_t cycnn_sconv_dxfew_workspace_bytes(const cycnn_conv_geom *g);
void cycnn_sconv_dxfew(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                       const float *dy, int cold, float *dx, void *ws);

/* ---- internal: the tile loop the driver calls (portable in sconv_dxfew.c, AVX2 in
 * sconv_dxfew_avx2.c). Tiles of nv*8 pixels p (flattened output plane, p = oh*W + ow) from p0
 * to p1 (p1 - p0 a multiple of nv*8); for each tile, channel c, column tap s and group of taps
 * r in [r0, r0 + T) (T <= 6, nv*T <= 12; groups of tg taps, the last one shorter):
 *   Z_r[j] = sum_k wg[k*T + r - r0] * dy[k*ldy + p - p0 + j]  (wg: the packed block of (c, s, r0))
 *   buf[c*cs + p + j + r*W + s - pl] += col[p + j] + s - pl in [0, W) ? Z_r[j] : 0
 * col (IN): p's column p % W, or a large negative number for the pixels past the plane (their
 * lanes add an exact 0). buf (IN/OUT): row b = oh + r of the padded dx plane at buf + b*W;
 * readable and writable from buf - pl to buf + cs (each channel's margin included). */
void cycnn_sconv_dxfew_tiles_generic(int K, int C, int R, int S, int tg, int nv,
                                     const float *dy, ptrdiff_t ldy, ptrdiff_t p0, ptrdiff_t p1,
                                     const int *col, const float *wp, ptrdiff_t W, int pl,
                                     float *buf, ptrdiff_t cs, float *pk, int cold);
void cycnn_sconv_dxfew_tiles_avx2(int K, int C, int R, int S, int tg, int nv,
                                  const float *dy, ptrdiff_t ldy, ptrdiff_t p0, ptrdiff_t p1,
                                  const int *col, const float *wp, ptrdiff_t W, int pl,
                                  float *buf, ptrdiff_t cs, float *pk, int cold);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_SCONV_DXFEW_H */
