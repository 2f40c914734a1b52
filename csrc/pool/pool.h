/* pool.h -- 2-D max and average pooling kernels for one (n, c) plane (float and double).
 *
 * Every function works on ONE plane: a row-major H x W input (x or dx) and a row-major
 * Ho x Wo output (y, dy, idx). Callers loop (or parallelise) over the N*C planes of an NCHW
 * tensor. The functions are single-threaded, never allocate, and touch nothing outside the
 * planes they are given; calls on distinct planes are thread-safe.
 * Both types are built from one body: pool_impl.h, instantiated for float and double by pool.c.
 *
 * Geometry (struct cycnn_pool_geom, all fields IN; int64_t, and so is all arithmetic on them:
 * with a stride near 2**31, oh*sh + kh or pad + sw - 1 do not fit in an int. Each field must be
 * below 2**31 and H*W, Ho*Wo below 2**62; cycnn.ops validates that.)
 *   H, W        input plane size                      (>= 0)
 *   Ho, Wo      output plane size, computed by the caller; bottom/right padding and
 *               ceil-mode are implied by them          (>= 0)
 *   kh, kw      window size                            (>= 1)
 *   sh, sw      stride                                 (>= 1)
 *   pad_top, pad_left   implicit padding before row 0 / column 0 (>= 0)
 *
 *   Output (oh, ow) covers input rows    ih = oh*sh - pad_top  + i,  0 <= i < kh
 *                          and columns   iw = ow*sw - pad_left + j,  0 <= j < kw.
 *   Only (ih, iw) inside [0, H) x [0, W) are ever read or written: padding is implicit and
 *   never dereferenced. "Window order" below is row-major: i outer, j inner.
 *   A window with no in-bounds element (impossible when padding <= kernel/2 on every side
 *   and Ho, Wo follow the usual floor/ceil formula) is handled as documented per function.
 *
 * Max pool forward   cycnn_maxpool2d_fwd_{f32,f64}(g, x, y, idx)
 *   IN  x[H*W]; OUT y[Ho*Wo], idx[Ho*Wo] (int64).
 *   y[oh*Wo+ow]   = max of x over the in-bounds window (padding acts as -inf).
 *   idx[oh*Wo+ow] = ih*W + iw, the flat in-plane position of the element chosen:
 *     - ties: the FIRST maximum in window order (so an all -inf window gives its first
 *       in-bounds element);
 *     - NaN propagates: a NaN beats every number, and among several NaNs the LAST one in
 *       window order is recorded. This is exactly PyTorch's CPU rule
 *       "take v if v > best or v is NaN", checked against torch 2.13.
 *   Empty window: y = -inf, idx = -1 (the backward then reports it as out of range).
 *   2x2 windows with stride 2 and no padding take a branch-free SIMD path (SSE2 on x86-64,
 *   scalar elsewhere); other geometries vectorise across the output columns whose windows
 *   are not clipped. Every path gives bit-identical results.
 *
 * Max pool backward  cycnn_maxpool2d_bwd_{f32,f64}(n_out, dy, idx, hw, dx)
 *   IN  dy[n_out], idx[n_out] (from the forward), hw = H*W; OUT dx[hw].
 *   dx is zeroed, then dx[idx[o]] += dy[o] for every o (overlapping windows accumulate,
 *   in increasing o order).
 *   Returns 0 when all indices are in [0, hw); otherwise 1, and each bad element is skipped.
 *
 * Avg pool forward   cycnn_avgpool2d_fwd_{f32,f64}(g, x, y)
 *   IN  x[H*W]; OUT y[Ho*Wo].
 *   y = (sum of the in-bounds window elements, in window order) / (kh*kw):
 *   padding counts as zeros in the divisor (PyTorch count_include_pad=True). The sum is
 *   accumulated in the element type (float for _f32), as PyTorch's CPU kernel does.
 *   Empty window: y = 0.
 *
 * Avg pool backward  cycnn_avgpool2d_bwd_{f32,f64}(g, dy, dx)
 *   IN  dy[Ho*Wo]; OUT dx[H*W].
 *   dx is zeroed, then for every output o (row-major) dy[o] / (kh*kw) is added to each
 *   in-bounds element of its window (padding positions receive nothing).
 *
 * No argument is checked: the caller guarantees the sizes above and non-overlapping
 * input/output planes. NaN/Inf in x or dy propagate as IEEE arithmetic says (do not build
 * with -ffast-math: the NaN rules above rely on v != v).
 */
#ifndef CYCNN_POOL_H
#define CYCNN_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cycnn_pool_geom {
    int64_t H, W;              /* input plane   */
    int64_t Ho, Wo;            /* output plane  */
    int64_t kh, kw;            /* window        */
    int64_t sh, sw;            /* stride        */
    int64_t pad_top, pad_left; /* leading pads  */
} cycnn_pool_geom;

void cycnn_maxpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y, int64_t *idx);
void cycnn_maxpool2d_fwd_f64(const cycnn_pool_geom *g, const double *x, double *y, int64_t *idx);

int cycnn_maxpool2d_bwd_f32(int64_t n_out, const float *dy, const int64_t *idx,
                            int64_t hw, float *dx);
int cycnn_maxpool2d_bwd_f64(int64_t n_out, const double *dy, const int64_t *idx,
                            int64_t hw, double *dx);

void cycnn_avgpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y);
void cycnn_avgpool2d_fwd_f64(const cycnn_pool_geom *g, const double *x, double *y);

void cycnn_avgpool2d_bwd_f32(const cycnn_pool_geom *g, const float *dy, float *dx);
void cycnn_avgpool2d_bwd_f64(const cycnn_pool_geom *g, const double *dy, double *dx);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_POOL_H */
