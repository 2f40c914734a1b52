/* conv.h -- im2col / col2im for NCHW convolution, float (_f32) and double (_f64).
 *
 * One image (one n) at a time: x is the C x H x W plane stack of that image, contiguous.
 * The column matrix has C*R*S rows and Ho*Wo columns, row-major:
 *
 *   col[((c*R + r)*S + s) * (Ho*Wo) + oh*Wo + ow] = x[c, oh*sh - pt + r*dh, ow*sw - pl + s*dw]
 *
 * where a position outside [0,H) x [0,W) reads as zero padding (bottom/right padding is implied
 * by Ho and Wo, which the caller computes). So the convolution of the image is the GEMM
 *   y (K x Ho*Wo) = w (K x C*R*S) . col (C*R*S x Ho*Wo).
 *
 * im2col  (IN x, OUT col): writes every element of col.
 * col2im  (IN col, IN/OUT x): ADDS each column element into the input position it came from
 *         (padding positions are dropped); the caller zeroes x first. This is the adjoint of
 *         im2col, so dx = col2im(w^T . dy).
 * No allocation; x and col must not overlap.
 */
#ifndef CYCNN_CONV_H
#define CYCNN_CONV_H

#ifdef __cplusplus
extern "C" {
#endif

void cycnn_im2col_f32(const float *restrict x, int C, int H, int W, int R, int S,
                      int sh, int sw, int pt, int pl, int dh, int dw, int Ho, int Wo,
                      float *restrict col);
void cycnn_col2im_f32(const float *restrict col, int C, int H, int W, int R, int S,
                      int sh, int sw, int pt, int pl, int dh, int dw, int Ho, int Wo,
                      float *restrict x);
void cycnn_im2col_f64(const double *restrict x, int C, int H, int W, int R, int S,
                      int sh, int sw, int pt, int pl, int dh, int dw, int Ho, int Wo,
                      double *restrict col);
void cycnn_col2im_f64(const double *restrict col, int C, int H, int W, int R, int S,
                      int sh, int sw, int pt, int pl, int dh, int dw, int Ho, int Wo,
                      double *restrict x);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_CONV_H */
