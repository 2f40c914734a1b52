/* sconv_igemm.h -- float convolution as an implicit GEMM: the GEMM's B panels are packed straight
 * from a zero-padded copy of the image, no im2col matrix (see sconv_igemm.c for the design).
 *
 * Geometry (cycnn_conv_geom): one image x of C x H x W, filters K x C x R x S, strides sh/sw,
 * top/left padding pt/pl (may be negative: rows/columns cropped), dilations dh/dw, output
 * Ho x Wo (the caller computes it; bottom/right padding is implied). Output pixel (oh, ow), tap
 * (c, r, s) reads x[c, oh*sh - pt + r*dh, ow*sw - pl + s*dw], zero outside the image.
 *
 * Use, per call:
 *   1. cfg = cycnn_sconv_config(): snapshot of the selected GEMM path (tile and blocking).
 *   2. cycnn_sconv_pack_weights(cfg, ...): A = the K x CRS filter matrix (CRS = C*R*S, any
 *      strides), packed once into the micro-kernel layout; read-only afterwards, so all threads
 *      share it. Size: cycnn_sconv_packed_weights_floats(cfg, K, CRS) floats.
 *   3. per image: cycnn_sconv_pad_image() into a buffer of cycnn_sconv_padded_floats() floats,
 *      then cycnn_sconv_igemm() for a range [l0, l1) of output pixels l = oh*Wo + ow.
 *      y[k*ldy + l] = bias[k] + sum_{c,r,s} w[k, c, r, s] * x[c, ...] (then max(0, .) if relu),
 *      for 0 <= k < K, l0 <= l < l1. Threads may work on disjoint pixel ranges of one image.
 * Buffers: the workspace (cycnn_sconv_workspace_bytes(cfg)) is per thread, 64-byte aligned.
 * Nothing allocates. All index arithmetic is 64-bit (ptrdiff_t).
 */
#ifndef CYCNN_SCONV_IGEMM_H
#define CYCNN_SCONV_IGEMM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int C, H, W;            /* input image */
    int K, R, S;            /* filters */
    int sh, sw, pt, pl, dh, dw;
    int Ho, Wo;             /* output */
} cycnn_conv_geom;

/* Opaque: the GEMM path (cycnn_sgemm_config) the packed weights were made for. */
const void *cycnn_sconv_config(void);

size_t cycnn_sconv_packed_weights_floats(const void *cfg, int K, ptrdiff_t CRS);
/* wp (OUT) <- A[i, p] = w[i*rsw + p*csw], 0 <= i < K, 0 <= p < CRS. */
void cycnn_sconv_pack_weights(const void *cfg, int K, ptrdiff_t CRS, const float *w,
                              ptrdiff_t rsw, ptrdiff_t csw, float *wp);

/* Floats of the padded image (C x Hp x Wp plus slack for over-reading copies). */
size_t cycnn_sconv_padded_floats(const void *cfg, const cycnn_conv_geom *g);
/* xp (OUT) <- x (IN, C x H x W contiguous), zero-padded to Hp x Wp per channel. */
void cycnn_sconv_pad_image(const void *cfg, const cycnn_conv_geom *g, const float *x, float *xp);

size_t cycnn_sconv_workspace_bytes(const void *cfg);

/* y (OUT, rows ldy apart) for pixels [l0, l1): see above. bias (IN) may be NULL. */
void cycnn_sconv_igemm(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                       const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                       int relu, float *y, ptrdiff_t ldy, void *ws);
/* The same, prefetching the next image's operands while computing (prefetch.h): x_next its
 * unpadded input (C x H x W, what cycnn_sconv_pad_image will read; or, pointwise, the image the
 * next call computes on) and y_next its output (K rows ldy apart). Either may be NULL. The
 * results do not depend on them. */
void cycnn_sconv_igemm_next(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                            const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                            int relu, float *y, ptrdiff_t ldy, void *ws, const float *x_next,
                            const float *y_next);
/* 1 when g is a 1x1 convolution with stride 1 and nothing padded or cropped: the "padded image"
 * is the image itself (pass x as xp, no copy), and B is packed straight from its rows. */
int cycnn_sconv_pointwise(const cycnn_conv_geom *g);
/* The same with the activation as a code: act 0 none, 1 ReLU (as relu above), 2 leaky ReLU
 * (v < 0 ? slope*v : v) -- the CYCNN_ACT_* codes of gemm/gemm.h. The inference plan calls it on
 * a band of output rows (g with pt - oh0*sh and Ho = the band's rows). */
void cycnn_sconv_igemm_act(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                           const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                           int act, float slope, float *y, ptrdiff_t ldy, void *ws);

/* Pooling of a conv output tile (the inference plan's fused conv + pool): K planes of
 * rows x Wo, `width` floats apart, with a non-overlapping ph x pw window (stride = window, no
 * padding, floor mode) into out: K planes out_plane apart, rows / ph rows of Wq (<= Wo / pw)
 * floats. pool 1: max (a NaN propagates), 2: average (window sum / (ph*pw)). No indices.
 * 2x2 windows take an AVX2 path when the GEMM path cfg has AVX2 (bit-identical). */
void cycnn_sconv_pool_tile(const void *cfg, int pool, const float *tile, int rows, int Wo,
                           int ph, int pw, int K, ptrdiff_t width, float *out,
                           ptrdiff_t out_plane, int Wq);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_SCONV_IGEMM_H */
