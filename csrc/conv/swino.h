/* swino.h -- Winograd convolution of float images, F(2x2, 5x5) and F(4x4, 3x3) on 6x6 input
 * tiles (see swino.c for the design and the error it adds).
 *
 * Geometry: cycnn_conv_geom of sconv_igemm.h with R == S == 5 (m = 2) or R == S == 3 (m = 4),
 * stride 1 and dilation 1 (cycnn_swino_tile(g) says which m, or 0 when the geometry is not
 * one of these). Any padding; Ho, Wo need not be multiples of m.
 *
 * Use:
 *   1. cycnn_swino_pack_weights(): the K x C x R x R filters (contiguous) transformed into
 *      cycnn_swino_packed_floats(K, C) floats, once (an inference plan keeps them). Panels of 16
 *      filters, each 36 x Cp x 16 (Cp = C rounded up to 8; zero past K and C).
      cycnn_swino_pack_weights_panels(): panels [p0, p1) only (of the same wp: panel p at
      wp + p * cycnn_swino_panel_floats(C)), the same values: threads may pack disjoint ranges
      (the training convolution packs per call, its filters change every step).
 *   2. per image: cycnn_swino() with the UNPADDED image x (C x H x W contiguous):
 *        y[k*ldy + oh*Wo + ow] = bias[k] + sum_{c,r,s} w[k,c,r,s] * x[c, oh - pt + r, ow - pl + s]
 *      (zero outside the image; then max(0, .) when relu, NaN kept) for k < g->K, oh < g->Ho,
 *      ow < g->Wo. g->K may be a group of whole panels: pass wp + (k0 / 16) *
 *      cycnn_swino_panel_floats(C) for filters k0.. (k0 a multiple of 16). bias (IN) may be NULL.
 *      ws: cycnn_swino_workspace_bytes(g) bytes, 64-byte aligned, per thread; enough too
 *      for a geometry that differs from g only by fewer output rows and its own pt (a band
 *      of g's rows, as the inference plan runs with one image on several threads).
 * Nothing allocates; index arithmetic is 64-bit. Deterministic: the order of every sum depends
 * only on the geometry and the path.
 */
#ifndef CYCNN_SWINO_H
#define CYCNN_SWINO_H

#include <stddef.h>

#include "sconv_igemm.h"

#ifdef __cplusplus
extern "C" {
#endif

int cycnn_swino_tile(const cycnn_conv_geom *g);
size_t cycnn_swino_panel_floats(int C);
size_t cycnn_swino_packed_floats(int K, int C);
void cycnn_swino_pack_weights(int K, int C, int R, const float *w, float *wp);
void cycnn_swino_pack_weights_panels(int K, int C, int R, const float *w, float *wp, int p0,
                                     int p1);
size_t cycnn_swino_workspace_bytes(const cycnn_conv_geom *g);
void cycnn_swino(const void *cfg, const cycnn_conv_geom *g, const float *wp, const float *x,
                 const float *bias, int relu, float *y, ptrdiff_t ldy, void *ws);

/* Weight gradient (training; design in swino.c): for each image, cycnn_swino_dw() adds its
 * share, in the transform domain, to acc (cycnn_swino_dw_acc_floats(K, C) floats, 32-byte
 * aligned, zeroed by the caller before the first image; threads keep their own acc); x the
 * image (C x H x W), dy its gradient (K x Ho x Wo), ws cycnn_swino_dw_workspace_bytes(g) bytes
 * (64-byte aligned). Then cycnn_swino_dw_finish() sums nacc accumulators acc_stride floats
 * apart, in order, and writes filters [k0, k1) of dw (K x C x R x R) = sum over images and
 * pixels of dy[k, oh, ow] * x[c, oh - pt + r, ow - pl + s] (threads may finish disjoint
 * ranges). */
size_t cycnn_swino_dw_acc_floats(int K, int C);
size_t cycnn_swino_dw_workspace_bytes(const cycnn_conv_geom *g);
void cycnn_swino_dw(const void *cfg, const cycnn_conv_geom *g, const float *x, const float *dy,
                    float *acc, void *ws);
void cycnn_swino_dw_finish(int K, int C, int R, const float *acc, ptrdiff_t acc_stride,
                           int nacc, int k0, int k1, float *dw);

/* ---- internal: the transform matrices for the points 0, 1, -1, 2, -1/2 and infinity (swino.c
 * derives G from the points when it packs the filters), and the transforms. */
static const float CYCNN_SWINO_BT[6][6] = {      /* B^T, the same for both filter sizes */
    {1, 1.5f, -2, -1.5f, 1, 0},   {0, -1, -2.5f, -0.5f, 1, 0}, {0, 1, 0.5f, -2.5f, 1, 0},
    {0, -0.5f, -1, 0.5f, 1, 0},   {0, 2, -1, -2, 1, 0},        {0, 1, 1.5f, -2, -1.5f, 1}};
static const float CYCNN_SWINO_AT2[2][6] = {     /* A^T of F(2x2, 5x5): row a = points^a */
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -0.5f, 1}};
static const float CYCNN_SWINO_AT4[4][6] = {     /* A^T of F(4x4, 3x3) */
    {1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -0.5f, 0}, {0, 1, 1, 4, 0.25f, 0},
    {0, 1, -1, 8, -0.125f, 1}};

static const float CYCNN_SWINO_GD2[6][2] = {     /* G_m of the weight gradient: dy's 2x2 tiles */
    {1, 0}, {-1.0f / 3, -1.0f / 3}, {1.0f / 3, -1.0f / 3}, {1.0f / 15, 2.0f / 15},
    {-16.0f / 15, 8.0f / 15}, {0, 1}};
static const float CYCNN_SWINO_GD4[6][4] = {     /* and its 4x4 tiles */
    {1, 0, 0, 0}, {-1.0f / 3, -1.0f / 3, -1.0f / 3, -1.0f / 3},
    {1.0f / 3, -1.0f / 3, 1.0f / 3, -1.0f / 3}, {1.0f / 15, 2.0f / 15, 4.0f / 15, 8.0f / 15},
    {-16.0f / 15, 8.0f / 15, -4.0f / 15, 2.0f / 15}, {0, 0, 0, 1}};

/* ---- internal: the transforms (portable in swino.c, AVX2 in swino_avx2.c).
 * gather: xt[((h - h0) * Wx + w) * Cp + c] = x[c, h - pt, w - pl] for h0 <= h < h1, w < Wx
 *      (g's pt, pl, H, W, C; zero outside the image and for c >= C): rows of the image in
 *      HWC order.
 * in:  tiles t < nt (tile index t0 + t; row (t0+t) / tw, column (t0+t) % tw) of xt (rows
 *      of the image in HWC order, Wx x Cp each): V[xi * vs + t * Cp + c] = (B^T d B)[xi] for
 *      each channel c < Cp, d the 6x6 input tile at row ty*m, column tx*m (vs >= nt * Cp).
 * out: tiles t < nt: Y = A^T M A (m x m) from M[(xi * tb + t) * 16 + v], stored for the
 *      outputs inside Ho x Wo into Z[(oh * Wo + ow) * 16 + v], v < 16 (bias and ReLU come in
 *      the store, cycnn_sconv_direct_store_*). */
void cycnn_swino_gather_avx2(const cycnn_conv_geom *g, int Cp, ptrdiff_t h0, ptrdiff_t h1,
                             ptrdiff_t Wx, const float *x, float *xt);
void cycnn_swino_in_avx2(const float *xt, ptrdiff_t Wx, int Cp, int m, int tw, ptrdiff_t t0,
                         int nt, ptrdiff_t vs, float *V);
/* dyt: Udy[(xi * tb + t) * 16 + v] = (G_m g G_m^T)[xi] for filters k0 + v of tiles t < nt
 *      (tile t0 + t), g the m x m tile of dyt (channels-last, Kp channels, rows Wd wide). */
void cycnn_swino_dyt_avx2(const float *dyt, ptrdiff_t Wd, int Kp, int m, int tw, ptrdiff_t t0,
                          int nt, int tb, int k0, float *Udy);
void cycnn_swino_out_avx2(const float *M, int tb, int nt, int m, ptrdiff_t t0, int tw, int Ho,
                          int Wo, float *Z);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_SWINO_H */
