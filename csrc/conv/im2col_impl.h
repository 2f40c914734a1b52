/* im2col_impl.h -- the body of im2col/col2im, instantiated once per element type by im2col.c
 * (T is the element type, FN(name) the suffixed function name). See conv.h for the contract.
 *
 * Design: loop over the C*R*S rows of col; for each (c, r, s) and output row oh the input row
 * ih is fixed, so the inner loop over ow walks one input row. The valid ow range (where the
 * input column iw = ow*sw - pl + s*dw lies inside [0, W)) is computed once per (s) so the inner
 * loop has no bounds tests: zeros before and after, a copy (stride 1) or a strided gather
 * in between. col2im mirrors it with += . Cost O(C*R*S*Ho*Wo), no extra memory.
 *
 * Index arithmetic: the geometry arrives as C ints, but every sum or product of geometry values
 * (ow*sw, s*dw - pl, oh*sh - pt + r*dh, (-offset + sw - 1) / sw, row offsets) is computed in
 * int64_t, so no geometry a caller can pass overflows: a stride of 2**31 - 1 next to a padding
 * of 2**30 only gives coordinates far outside [0, H) x [0, W), which read as padding.
 */

/* First and one-past-last ow whose input column is inside [0, W) (64-bit: see above). */
static void FN(valid_range)(int64_t W, int64_t sw, int64_t offset, int64_t Wo,
                            int64_t *lo, int64_t *hi)
{
    /* iw = ow*sw + offset must satisfy 0 <= iw < W */
    int64_t a = offset >= 0 ? 0 : (-offset + sw - 1) / sw;
    int64_t b = W - offset <= 0 ? 0 : (W - offset + sw - 1) / sw;
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
    const int64_t plane = (int64_t)H * W, L = (int64_t)Ho * Wo;
    for (int64_t c = 0; c < C; ++c) {
        const T *xc = x + c * plane;
        for (int64_t r = 0; r < R; ++r) {
            for (int64_t s = 0; s < S; ++s) {
                T *row = col + ((c * R + r) * S + s) * L;
                const int64_t offset = s * dw - pl;
                int64_t lo, hi;
                FN(valid_range)(W, sw, offset, Wo, &lo, &hi);
                for (int64_t oh = 0; oh < Ho; ++oh) {
                    T *out = row + oh * Wo;
                    const int64_t ih = oh * sh - pt + r * dh;
                    if (ih < 0 || ih >= H) {
                        for (int64_t ow = 0; ow < Wo; ++ow) out[ow] = 0;
                        continue;
                    }
                    const T *in = xc + ih * W;  /* input row; column of ow is offset + ow*sw */
                    for (int64_t ow = 0; ow < lo; ++ow) out[ow] = 0;
                    if (sw == 1) {
                        if (hi > lo)
                            memcpy(out + lo, in + (offset + lo), (size_t)(hi - lo) * sizeof(T));
                    } else {
                        for (int64_t ow = lo; ow < hi; ++ow) out[ow] = in[offset + ow * sw];
                    }
                    for (int64_t ow = hi; ow < Wo; ++ow) out[ow] = 0;
                }
            }
        }
    }
}

void FN(cycnn_col2im)(const T *restrict col, int C, int H, int W, int R, int S,
                      int sh, int sw, int pt, int pl, int dh, int dw, int Ho, int Wo,
                      T *restrict x)
{
    const int64_t plane = (int64_t)H * W, L = (int64_t)Ho * Wo;
    for (int64_t c = 0; c < C; ++c) {
        T *xc = x + c * plane;
        for (int64_t r = 0; r < R; ++r) {
            for (int64_t s = 0; s < S; ++s) {
                const T *row = col + ((c * R + r) * S + s) * L;
                const int64_t offset = s * dw - pl;
                int64_t lo, hi;
                FN(valid_range)(W, sw, offset, Wo, &lo, &hi);
                for (int64_t oh = 0; oh < Ho; ++oh) {
                    const int64_t ih = oh * sh - pt + r * dh;
                    if (ih < 0 || ih >= H) continue;
                    const T *src = row + oh * Wo;
                    T *dst = xc + ih * W;       /* input row; column of ow is offset + ow*sw */
                    if (sw == 1) {
                        for (int64_t ow = lo; ow < hi; ++ow) dst[offset + ow] += src[ow];
                    } else {
                        for (int64_t ow = lo; ow < hi; ++ow) dst[offset + ow * sw] += src[ow];
                    }
                }
            }
        }
    }
}
