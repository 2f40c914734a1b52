/* depthwise_impl.h -- body of the depthwise kernels, instantiated once per element type by
 * depthwise.c (T is the element type, FN(name) the suffixed function name). Contract in
 * depthwise.h.
 *
 * Loop order: output row outer; for each filter tap (r, s) whose input row is in bounds, one
 * pass over the output columns whose input column is in bounds ([ow0, ow1) from col_range,
 * computed once per tap, so the inner loop has no branch). The inner loops are an axpy
 * (forward: y row += w * strided x row; backward data: strided dx row += w * dy row) or a dot
 * product (backward filter), unit-stride when the stride is 1, which the compiler vectorises.
 * An output row stays in L1 while all R*S taps are added to it.
 */

/* forward: y = bias + sum over taps */
void FN(cycnn_dwconv_fwd)(const cycnn_dwconv_geom *g, const T *x, const T *w, T bias, T *y)
{
    for (int oh = 0; oh < g->Ho; ++oh) {
        T *restrict yrow = y + (int64_t)oh * g->Wo;
        for (int ow = 0; ow < g->Wo; ++ow)
            yrow[ow] = bias;
        for (int r = 0; r < g->R; ++r) {
            const int64_t ih = (int64_t)oh * g->sh + (int64_t)r * g->dh - g->pt;
            if (ih < 0 || ih >= g->H)
                continue;
            const T *xrow = x + ih * g->W;
            for (int s = 0; s < g->S; ++s) {
                int ow0, ow1;
                const int64_t off = (int64_t)s * g->dw - g->pl;
                col_range(g, off, &ow0, &ow1);
                if (ow1 <= ow0)
                    continue;
                const T wv = w[r * g->S + s];
                const T *restrict xs = xrow + (int64_t)ow0 * g->sw + off;  /* column of ow0 */
                T *restrict ys = yrow + ow0;
                const int n = ow1 - ow0;
                if (g->sw == 1) {
                    for (int k = 0; k < n; ++k)
                        ys[k] += wv * xs[k];
                } else {
                    const int sw = g->sw;
                    for (int k = 0; k < n; ++k)
                        ys[k] += wv * xs[(int64_t)k * sw];
                }
            }
        }
    }
}

/* backward data: dx += scatter of w * dy */
void FN(cycnn_dwconv_bwd_data)(const cycnn_dwconv_geom *g, const T *dy, const T *w, T *dx)
{
    for (int oh = 0; oh < g->Ho; ++oh) {
        const T *restrict dyrow = dy + (int64_t)oh * g->Wo;
        for (int r = 0; r < g->R; ++r) {
            const int64_t ih = (int64_t)oh * g->sh + (int64_t)r * g->dh - g->pt;
            if (ih < 0 || ih >= g->H)
                continue;
            T *dxrow = dx + ih * g->W;
            for (int s = 0; s < g->S; ++s) {
                int ow0, ow1;
                const int64_t off = (int64_t)s * g->dw - g->pl;
                col_range(g, off, &ow0, &ow1);
                if (ow1 <= ow0)
                    continue;
                const T wv = w[r * g->S + s];
                T *restrict xs = dxrow + (int64_t)ow0 * g->sw + off;
                const T *restrict ds = dyrow + ow0;
                const int n = ow1 - ow0;
                if (g->sw == 1) {
                    for (int k = 0; k < n; ++k)
                        xs[k] += wv * ds[k];
                } else {
                    const int sw = g->sw;
                    for (int k = 0; k < n; ++k)
                        xs[(int64_t)k * sw] += wv * ds[k];
                }
            }
        }
    }
}

/* backward filter: dw[r, s] += sum of dy * x over the plane */
void FN(cycnn_dwconv_bwd_filter)(const cycnn_dwconv_geom *g, const T *dy, const T *x, T *dw)
{
    for (int r = 0; r < g->R; ++r) {
        for (int s = 0; s < g->S; ++s) {
            int ow0, ow1;
            const int64_t off = (int64_t)s * g->dw - g->pl;
            col_range(g, off, &ow0, &ow1);
            if (ow1 <= ow0)
                continue;
            T acc = 0;
            for (int oh = 0; oh < g->Ho; ++oh) {
                const int64_t ih = (int64_t)oh * g->sh + (int64_t)r * g->dh - g->pt;
                if (ih < 0 || ih >= g->H)
                    continue;
                const T *restrict ds = dy + (int64_t)oh * g->Wo + ow0;
                const T *restrict xs = x + ih * g->W + (int64_t)ow0 * g->sw + off;
                const int n = ow1 - ow0;
                T row = 0;
                if (g->sw == 1) {
                    for (int k = 0; k < n; ++k)
                        row += ds[k] * xs[k];
                } else {
                    const int sw = g->sw;
                    for (int k = 0; k < n; ++k)
                        row += ds[k] * xs[(int64_t)k * sw];
                }
                acc += row;
            }
            dw[r * g->S + s] += acc;
        }
    }
}
