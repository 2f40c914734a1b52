/* sconv_fewc.h -- float convolution of one image with few input channels or few filters
 * (first layers; the input gradient of a first layer), vectorised along the flattened output
 * plane, or for few filters over many channels along the channels (see sconv_fewc.c for the
 * design).
 *
 * Geometry: cycnn_conv_geom of sconv_igemm.h with sh == sw == dh == dw == 1 (any padding,
 * negative = cropped; Ho = H + pt + pb - R + 1, Wo alike). Output pixel l = oh*Wo + ow, tap
 * (c, r, s) reads x[c, oh - pt + r, ow - pl + s], zero outside the image.
 *
 * Forward (also dx, as the forward pass of dy with the flipped, transposed filters):
 *   1. cycnn_sconv_fewc_pack_weights(): the K x C x R x S filters (contiguous) into blocks of
 *      <= 4 filters, tap-major, then again channels-last in blocks of 8 channels
 *      (cycnn_sconv_fewc_packed_floats(K, C, R*S) floats), once per call; read-only
 *      afterwards, shared by all threads.
 *   2. per image: cycnn_sconv_fewc() for a range [l0, l1) of output pixels (l0 a multiple of
 *      8) of the UNPADDED image x (C x H x W contiguous):
 *        y[k*ldy + l] = bias[k] + sum_{c,r,s} w[k, c, r, s] * x[c, oh - pt + r, ow - pl + s]
 *      then max(0, .) when relu (NaN kept), 0 <= k < K. bias (IN) may be NULL. Threads may
 *      work on disjoint ranges of one image, each with its own workspace.
 * Weight gradient, per image, filters [k0, k1) (k0 even; threads may own disjoint ranges):
 *   cycnn_sconv_fewc_dw() adds sum_l dy[k, l] * x[c, oh - pt + r, ow - pl + s] to the 8 lanes
 *   of acc[(k*CRS + t)*8 ..] (t = (c*R + r)*S + s; K x CRS x 8 floats, 32-byte aligned, zeroed
 *   by the caller before the first image), and, when db (IN/OUT) is not NULL, sum_l dy[k, l]
 *   to db[k]. cycnn_sconv_fewc_dw_finish() then sums nacc such accumulators (acc_stride floats
 *   apart) in order, each one's 8 lanes in a fixed order, into dw (K x CRS).
 * Workspace (both): cycnn_sconv_fewc_workspace_bytes(g) bytes per thread, 64-byte aligned.
 * Nothing allocates; index arithmetic is 64-bit. Deterministic: the order of every sum depends
 * only on the geometry and the path (not on l0, l1, k0, k1).
 */
#ifndef CYCNN_SCONV_FEWC_H
#define CYCNN_SCONV_FEWC_H

#include <stddef.h>

#include "sconv_igemm.h"

#ifdef __cplusplus
extern "C" {
#endif

size_t cycnn_sconv_fewc_packed_floats(int K, int C, ptrdiff_t RS);
void cycnn_sconv_fewc_pack_weights(int K, int C, int R, int S, const float *w, float *wp);
size_t cycnn_sconv_fewc_workspace_bytes(const cycnn_conv_geom *g);
void cycnn_sconv_fewc(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                      const float *x, ptrdiff_t l0, ptrdiff_t l1, const float *bias, int relu,
                      float *y, ptrdiff_t ldy, void *ws);
void cycnn_sconv_fewc_dw(const void *cfg, const cycnn_conv_geom *g, const float *x,
                         const float *dy, int k0, int k1, float *acc, float *db, void *ws);
void cycnn_sconv_fewc_dw_finish(int K, ptrdiff_t CRS, const float *acc, ptrdiff_t acc_stride,
                                int nacc, float *dw);

/* ---- internal: the kernels the driver calls (portable *_generic in sconv_fewc.c, AVX2 in
 * sconv_fewc_avx2.c). xc points at the shifted copies of the tile's first pixel; tap t of the
 * tile's pixel j reads xc[toff[t] + j].
 * fwd: F (1..4) filters x ntiles tiles of nv (1..12/F) vectors of 8 pixels; w: nt taps x F,
 *   tap-major; acc_f = (first ? (bias ? bias[f] : 0) : y[f*ldy + j]) + sum_t w[t*F + f] *
 *   xc[toff[t] + j] stored to y[f*ldy + j] for j < (ntiles*nv - 1)*8 + nlast (1 <= nlast <= 8),
 *   max(0, .) when relu.
 * dw: F (1..2) filters x T (1..5) taps over nv vectors of pixels (the last with nlast lanes):
 *   acc[f*ldacc + t*8 + lane] += sum_v dy[f*ldy + v*8 + lane] * xc[toff[t] + v*8 + lane];
 *   db[f] (+)= sum_j dy[f*ldy + j] when db is not NULL.
 * cl_build: padded rows [h0, h1) of all channels, channels-last in blocks of 8 (zero past C),
 *   into a band of nr rows from row hb: xt[((cb*nr + h - hb)*wq + i)*8 + v] = x[cb*8 + v,
 *   h - pt, i - pl] (0 outside the image) for i < wq.
 * cl_tile: filter f, one output row, n (1..8) pixels from column ow0: y[j] = epilogue(
 *   (first ? (bias ? *bias : 0) : y[j]) + sum_{cb,r,s,v} w[((cb*R + r)*S + s)*8 + v] *
 *   xt[cb*cbs + r*rs + (j + s)*8 + v]) (xt at the window's top row, column ow0), S <= 7.
 * build: channels [c0, c0 + ncc) of x, padded rows [h0, h1), np planes per channel (pc floats
 *   apart) of rows xs floats: xc[((cl*np + p)*pc + (h - h0)*xs + i] = x[c0 + cl, h - pt,
 *   i + p - pl] (0 outside the image), then 16 zeros after the last row of each plane. */
void cycnn_sconv_fewc_cl_build_generic(const cycnn_conv_geom *g, ptrdiff_t wq, const float *x,
                                       ptrdiff_t hb, ptrdiff_t nr, ptrdiff_t h0, ptrdiff_t h1,
                                       float *xt);
void cycnn_sconv_fewc_cl_build_avx2(const cycnn_conv_geom *g, ptrdiff_t wq, const float *x,
                                    ptrdiff_t hb, ptrdiff_t nr, ptrdiff_t h0, ptrdiff_t h1,
                                    float *xt);
void cycnn_sconv_fewc_cl_tile_generic(int S, int R, int KB, const float *xt, ptrdiff_t cbs,
                                      ptrdiff_t rs, const float *w, int n, int first,
                                      const float *bias, int relu, float *y);
void cycnn_sconv_fewc_cl_tile_avx2(int S, int R, int KB, const float *xt, ptrdiff_t cbs,
                                   ptrdiff_t rs, const float *w, int n, int first,
                                   const float *bias, int relu, float *y);
void cycnn_sconv_fewc_build_generic(const cycnn_conv_geom *g, int np, ptrdiff_t xs, ptrdiff_t pc,
                                    const float *x, int c0, int ncc, ptrdiff_t h0, ptrdiff_t h1,
                                    float *xc);
void cycnn_sconv_fewc_build_avx2(const cycnn_conv_geom *g, int np, ptrdiff_t xs, ptrdiff_t pc,
                                 const float *x, int c0, int ncc, ptrdiff_t h0, ptrdiff_t h1,
                                 float *xc);
void cycnn_sconv_fewc_fwd_generic(int F, int nv, ptrdiff_t ntiles, int nlast, const float *xc,
                                  const ptrdiff_t *toff, ptrdiff_t nt, const float *w, int first,
                                  const float *bias, int relu, float *y, ptrdiff_t ldy);
void cycnn_sconv_fewc_dwtile_generic(int F, int T, ptrdiff_t nv, int nlast, const float *xc,
                                     const ptrdiff_t *toff, const float *dy, ptrdiff_t ldy,
                                     float *acc, ptrdiff_t ldacc, float *db);
void cycnn_sconv_fewc_fwd_avx2(int F, int nv, ptrdiff_t ntiles, int nlast, const float *xc,
                               const ptrdiff_t *toff, ptrdiff_t nt, const float *w, int first,
                               const float *bias, int relu, float *y, ptrdiff_t ldy);
void cycnn_sconv_fewc_dwtile_avx2(int F, int T, ptrdiff_t nv, int nlast, const float *xc,
                                  const ptrdiff_t *toff, const float *dy, ptrdiff_t ldy,
                                  float *acc, ptrdiff_t ldacc, float *db);

/* The columns [*a, *b) of a copy row of xs floats whose column i reads the image's column
 * i + p - pl inside [0, W) (both builds). */
static inline void cycnn_sconv_fewc_cols(ptrdiff_t W, ptrdiff_t pl, int p, ptrdiff_t xs,
                                         ptrdiff_t *a, ptrdiff_t *b)
{
    ptrdiff_t lo = pl - p, hi = W + pl - p;
    lo = lo < 0 ? 0 : lo > xs ? xs : lo;
    *a = lo;
    *b = hi < lo ? lo : hi > xs ? xs : hi;
}

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_SCONV_FEWC_H */
