/* depthwise.h -- depthwise 2-D convolution kernels for one plane (float and double).
 *
 * Depthwise convolution is the grouped convolution with one input channel per group
 * (groups == C): output channel k reads only input channel c = k / M, M = K / C filters per
 * channel (the depth multiplier). Each function works on ONE plane: a row-major H x W input
 * plane (x or dx), a row-major Ho x Wo output plane (y or dy) and one R x S filter (w or dw).
 * Callers loop (or parallelise) over planes. The functions are single-threaded, never
 * allocate, and touch nothing outside the planes (and workspace) they are given.
 * Both types are built from one body: depthwise_impl.h, instantiated by depthwise.c.
 *
 * Geometry (struct cycnn_dwconv_geom, all fields IN)
 *   H, W      input plane size (>= 1);  Ho, Wo  output plane size (>= 1), computed by the
 *             caller, which thereby fixes the bottom/right padding
 *   R, S      filter size (>= 1);  sh, sw  stride (>= 1);  dh, dw  dilation (>= 1)
 *   pt, pl    implicit zero padding before row 0 / column 0 (>= 0)
 *
 *   Output (oh, ow), filter tap (r, s) reads input row    ih = oh*sh + r*dh - pt
 *                                          and column      iw = ow*sw + s*dw - pl;
 *   taps outside [0, H) x [0, W) read zero and are never dereferenced.
 *
 * Forward        cycnn_dwconv_fwd_{f32,f64}(g, x, w, bias, y [, ws for f32])
 *   IN x[H*W], w[R*S], bias (a scalar); OUT y[Ho*Wo] (fully written):
 *   y[oh, ow] = bias + sum_{r, s} w[r, s] * x[ih, iw].
 * Backward data  cycnn_dwconv_bwd_data_{f32,f64}(g, dy, w, dx)
 *   IN dy[Ho*Wo], w[R*S]; IN/OUT dx[H*W]: dx[ih, iw] += w[r, s] * dy[oh, ow] for every tap
 *   (the caller zeroes dx first, then accumulates one call per filter reading that channel).
 * Backward filter cycnn_dwconv_bwd_filter_{f32,f64}(g, dy, x, dw [, ws for f32])
 *   IN dy[Ho*Wo], x[H*W]; IN/OUT dw[R*S]: dw[r, s] += sum_{oh, ow} dy[oh, ow] * x[ih, iw]
 *   (the caller zeroes dw and accumulates over the images, in image order).
 *
 * No argument is checked: the caller guarantees the sizes above.
 */
#ifndef CYCNN_DEPTHWISE_H
#define CYCNN_DEPTHWISE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cycnn_dwconv_geom {
    int H, W, Ho, Wo;
    int R, S, sh, sw, dh, dw, pt, pl;
} cycnn_dwconv_geom;

void cycnn_dwconv_fwd_f32(const cycnn_dwconv_geom *g, const float *x, const float *w,
                          float bias, float *y, float *ws);
void cycnn_dwconv_fwd_f64(const cycnn_dwconv_geom *g, const double *x, const double *w,
                          double bias, double *y);
/* cycnn_dwconv_fwd_f32 runs the AVX2+FMA build (depthwise_avx2.c: width stride 1 or 2, width
 * dilation 1, a CPU with AVX2 and FMA) on a workspace ws of cycnn_dwconv_fwd_f32_ws_floats(g)
 * floats (per thread), the portable one when that is 0 or ws is NULL. */
size_t cycnn_dwconv_fwd_f32_ws_floats(const cycnn_dwconv_geom *g);
void cycnn_dwconv_fwd_f32_generic(const cycnn_dwconv_geom *g, const float *x, const float *w,
                                  float bias, float *y);
void cycnn_dwconv_fwd_f32_avx2(const cycnn_dwconv_geom *g, const float *x, const float *w,
                               float bias, float *y, float *ws);
size_t cycnn_dwconv_fwd_f32_avx2_ws_floats(const cycnn_dwconv_geom *g);
/* float backward on AVX2+FMA (a CPU with AVX2 and FMA; dw: width stride 1 or 2 and width
 * dilation 1 as the forward, dx: stride and dilation 1), on a workspace
 * of cycnn_dwconv_bwd_f32_ws_floats(g) floats per thread (0: not applicable):
 * cycnn_dwconv_bwd_filter_f32 (above) takes its AVX2 build when ws is not NULL and it applies;
 * cycnn_dwconv_bwd_data_f32_set SETS dx (not +=) to the gradient through one filter -- the
 * forward kernel on dy with the flipped filter -- and returns 1, or returns 0 without touching
 * dx where it does not apply (also pt > R-1, pl > S-1 or more than
 * CYCNN_DWCONV_DX_MAX_TAPS taps; the caller then zeroes dx and adds
 * cycnn_dwconv_bwd_data_f32). */
#define CYCNN_DWCONV_DX_MAX_TAPS 64
size_t cycnn_dwconv_bwd_f32_ws_floats(const cycnn_dwconv_geom *g);
int cycnn_dwconv_bwd_data_f32_set(const cycnn_dwconv_geom *g, const float *dy, const float *w,
                                  float *dx, float *ws);
void cycnn_dwconv_bwd_filter_f32_generic(const cycnn_dwconv_geom *g, const float *dy,
                                         const float *x, float *dw);
void cycnn_dwconv_bwd_filter_f32_avx2(const cycnn_dwconv_geom *g, const float *dy,
                                      const float *x, float *dw, float *ws);
/* 1 when the float forward takes the AVX2 build where it applies; tests set_path(0) to force
 * the portable one, set_path(1) restores the automatic choice */
int cycnn_dwconv_f32_path(void);
void cycnn_dwconv_f32_set_path(int allow_avx2);
void cycnn_dwconv_bwd_data_f32(const cycnn_dwconv_geom *g, const float *dy, const float *w,
                               float *dx);
void cycnn_dwconv_bwd_data_f64(const cycnn_dwconv_geom *g, const double *dy, const double *w,
                               double *dx);
void cycnn_dwconv_bwd_filter_f32(const cycnn_dwconv_geom *g, const float *dy, const float *x,
                                 float *dw, float *ws);
void cycnn_dwconv_bwd_filter_f64(const cycnn_dwconv_geom *g, const double *dy, const double *x,
                                 double *dw);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_DEPTHWISE_H */
