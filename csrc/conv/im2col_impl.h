/* im2col_impl.h -- the body of im2col/col2im, instantiated once per element type by im2col.c
 * (T is the element type, FN(name) the suffixed function name). See conv.h for the contract.
 *
 * Design: loop over the C*R*S rows of col; for each (c, r, s) and output row oh the input row
 * ih is fixed, so the inner loop over ow walks one input row. The valid ow range (where the
 * input column iw = ow*sw - pl + s*dw lies inside [0, W)) is computed once per (s) so the inner
 * loop has no bounds tests: zeros before and after, a copy (stride 1) or a strided gather
 * in between. col2im mirrors it with += . Cost O(C*R*S*Ho*Wo), no extra memory.
 */

/* First and one-past-last ow whose input column is inside [0, W). */
static void FN(valid_range)(int W, int sw, int offset, int Wo, int *lo, int *hi)
{
    /* iw = ow*sw + offset must satisfy 0 <= iw < W */
    int a = offset >= 0 ? 0 : (-offset + sw - 1) / sw;
    int b = W - offset <= 0 ? 0 : (W - offset + sw - 1) / sw;
    if (a > Wo) a = Wo;
    if (b > Wo) b = Wo;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

void FN(cycnn_im2col)(const T *restrict x, int C, int H, int W, int R, int S,
                      int sh, int sw, int pt, int pl, int dh, int dw, int Ho, int Wo,
                      T *restrict col)
{
    const ptrdiff_t plane = (ptrdiff_t)H * W, L = (ptrdiff_t)Ho * Wo;
    for (int c = 0; c < C; ++c) {
        const T *xc = x + c * plane;
        for (int r = 0; r < R; ++r) {
            for (int s = 0; s < S; ++s) {
                T *row = col + ((ptrdiff_t)(c * R + r) * S + s) * L;
                const int offset = s * dw - pl;
                int lo, hi;
                FN(valid_range)(W, sw, offset, Wo, &lo, &hi);
                for (int oh = 0; oh < Ho; ++oh) {
                    T *out = row + (ptrdiff_t)oh * Wo;
                    const int ih = oh * sh - pt + r * dh;
                    if (ih < 0 || ih >= H) {
                        for (int ow = 0; ow < Wo; ++ow) out[ow] = 0;
                        continue;
                    }
                    const T *in = xc + (ptrdiff_t)ih * W + offset;
                    for (int ow = 0; ow < lo; ++ow) out[ow] = 0;
                    if (sw == 1) {
                        memcpy(out + lo, in + lo, (size_t)(hi - lo) * sizeof(T));
                    } else {
                        for (int ow = lo; ow < hi; ++ow) out[ow] = in[(ptrdiff_t)ow * sw];
                    }
                    for (int ow = hi; ow < Wo; ++ow) out[ow] = 0;
                }
            }
        }
    }
}

void FN(cycnn_col2im)(const T *restrict col, int C, int H, int W, int R, int S,
                      int sh, int sw, int pt, int pl, int dh, int dw, int Ho, int Wo,
                      T *restrict x)
{
    const ptrdiff_t plane = (ptrdiff_t)H * W, L = (ptrdiff_t)Ho * Wo;
    for (int c = 0; c < C; ++c) {
        T *xc = x + c * plane;
        for (int r = 0; r < R; ++r) {
            for (int s = 0; s < S; ++s) {
                const T *row = col + ((ptrdiff_t)(c * R + r) * S + s) * L;
                const int offset = s * dw - pl;
                int lo, hi;
                FN(valid_range)(W, sw, offset, Wo, &lo, &hi);
                for (int oh = 0; oh < Ho; ++oh) {
                    const int ih = oh * sh - pt + r * dh;
                    if (ih < 0 || ih >= H) continue;
                    const T *src = row + (ptrdiff_t)oh * Wo;
                    T *dst = xc + (ptrdiff_t)ih * W + offset;
                    if (sw == 1) {
                        for (int ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
                    } else {
                        for (int ow = lo; ow < hi; ++ow) dst[(ptrdiff_t)ow * sw] += src[ow];
                    }
                }
            }
        }
    }
}
