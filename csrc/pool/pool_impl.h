/* pool_impl.h -- the body of the pooling kernels, instantiated once per element type by pool.c
 * (T is the element type, FN(name) the suffixed function name, code_t the type of the chosen
 * element's offset; imin, imax, CHUNK, interior_cols and the SSE2 row steps come from pool.c).
 * See pool.h for the contract. All geometry values and everything computed from them (output
 * and input coordinates, window bounds, flat offsets) are int64_t, so no sum or product of
 * in-range fields overflows.
 *
 * Scalar reference layout (max_generic, avg_generic, both backwards): output rows outer,
 * output columns inner, the window (rows then columns) innermost, reading only the in-bounds
 * part of the window, whose limits are clipped once per output row / column.
 *
 * Forward, any geometry: in each output row, the columns whose windows lie fully inside
 * [0, W) (the "interior", found by interior_cols) are done window-element-outer: for each
 * window element (i, j), in window order, one branch-free pass over a chunk of up to CHUNK
 * outputs updates their running max (kept in y itself) and the chosen element's offset
 * (a small stack array), or their running sum. That inner loop is a unit- or
 * constant-stride select/add that the compiler vectorises, and every output still sees its
 * elements in window order, so results are bit-identical to the scalar loops. Edge columns
 * and rows whose windows are empty use the scalar loops.
 *
 * Max forward, 2x2 stride 2 without padding: the outputs whose window lies fully inside the
 * plane go through max2x2s2_rows(), whose SSE2 step (max2x2s2_row_sse2_{f32,f64} in pool.c;
 * baseline x86-64, no runtime dispatch needed) handles 4 float or 2 double outputs at a time.
 * The four window elements a b / c d are deinterleaved from two 16-byte loads per input row
 * and output step, then folded with the same rule as the generic loop,
 *   take v  iff  v > best || v != v,
 * as compare masks and and/andnot/or selects (no branches). The chosen element is tracked
 * as an offset from the window origin (0, 1, W or W+1): int32 lanes for float, widened to the
 * int64 flat index at the end; int64 lanes for double. A ragged row end is one extra,
 * overlapping vector step. Rows narrower than one vector, non-SSE2 builds and the ceil-mode
 * edge row/column use scalar code with the same rule, so results do not depend on the path
 * taken.
 */

/* Generic max pool for the output block [oh0, oh1) x [ow0, ow1). */
static void FN(max_generic)(const cycnn_pool_geom *g, const T *x, T *y, int64_t *idx,
                            int64_t oh0, int64_t oh1, int64_t ow0, int64_t ow1)
{
    const int64_t H = g->H, W = g->W, Wo = g->Wo;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
        const int64_t top = oh * g->sh - g->pad_top;
        const int64_t ih0 = imax(top, 0), ih1 = imin(top + g->kh, H);
        for (int64_t ow = ow0; ow < ow1; ++ow) {
            const int64_t left = ow * g->sw - g->pad_left;
            const int64_t iw0 = imax(left, 0), iw1 = imin(left + g->kw, W);
            T best = -INFINITY;
            int64_t best_i = (ih0 < ih1 && iw0 < iw1) ? ih0 * W + iw0 : -1;
            for (int64_t ih = ih0; ih < ih1; ++ih) {
                const T *row = x + ih * W;
                for (int64_t iw = iw0; iw < iw1; ++iw) {
                    const T v = row[iw];
                    if (v > best || v != v) {
                        best = v;
                        best_i = ih * W + iw;
                    }
                }
            }
            y[oh * Wo + ow] = best;
            idx[oh * Wo + ow] = best_i;
        }
    }
}

/* Fold element e of n windows (values src[k*sw]) into their running max best[k] and
 * chosen offset code[k], with the rule "take v iff v > best or v is NaN", branch-free.
 * The rule is written as  !(v <= (best is NaN ? +inf : best)),  which is the same
 * predicate (v NaN: true; best NaN, v a number: false; else v > best) in a form GCC
 * vectorises for double too. */
static inline void FN(max_fold)(const T *restrict src, int64_t sw, int64_t n, code_t e,
                                T *restrict best, code_t *restrict code)
{
    for (int64_t k = 0; k < n; ++k) {
        const T v = src[k * sw], b = best[k];
        const T b_or_inf = b != b ? (T)INFINITY : b;
        const int take = !(v <= b_or_inf);
        best[k] = take ? v : b;
        code[k] = take ? e : code[k];
    }
}

/* Max pool of output row oh, columns [ow0, ow1) (interior: no column clipping), window rows
 * [ih0, ih1) (non-empty). Window element outer, outputs inner: see the note at the top. */
static void FN(max_row_interior)(const cycnn_pool_geom *g, const T *restrict x,
                                 T *restrict y, int64_t *restrict idx,
                                 int64_t oh, int64_t ih0, int64_t ih1, int64_t ow0, int64_t ow1)
{
    const int64_t W = g->W, kw = g->kw, sw = g->sw;
    code_t code[CHUNK];
    for (int64_t c0 = ow0; c0 < ow1; c0 += CHUNK) {
        const int64_t n = imin(CHUNK, ow1 - c0);
        const int64_t origin = ih0 * W + c0 * sw - g->pad_left;
        T *restrict best = y + oh * g->Wo + c0;
        const T *src = x + origin;              /* element (0, 0) of window c0 */
        for (int64_t k = 0; k < n; ++k) {
            best[k] = src[k * sw];
            code[k] = 0;
        }
        for (int64_t ih = ih0; ih < ih1; ++ih) {
            for (int64_t j = (ih == ih0); j < kw; ++j) {
                const code_t e = (code_t)(ih - ih0) * W + j;
                src = x + origin + e;
                if (sw == 1)        /* constant strides get their own vectorised loops */
                    FN(max_fold)(src, 1, n, e, best, code);
                else if (sw == 2)
                    FN(max_fold)(src, 2, n, e, best, code);
                else
                    FN(max_fold)(src, sw, n, e, best, code);
            }
        }
        int64_t *restrict out = idx + oh * g->Wo + c0;
        for (int64_t k = 0; k < n; ++k)
            out[k] = origin + k * sw + code[k];
    }
}

/* 2x2 stride-2 max pool of output rows [0, nrows), columns [0, ncols); every window must be
 * inside the plane (2*nrows <= H, 2*ncols <= W). */
static void FN(max2x2s2_rows)(const cycnn_pool_geom *g, const T *x, T *y, int64_t *idx,
                              int64_t nrows, int64_t ncols)
{
    const int64_t W = g->W, Wo = g->Wo;
    for (int64_t oh = 0; oh < nrows; ++oh) {
        const T *r0 = x + (2 * oh) * W;
        const T *r1 = r0 + W;
        T *yrow = y + oh * Wo;
        int64_t *irow = idx + oh * Wo;
        const int64_t origin = (2 * oh) * W; /* flat index of window (oh, 0) */
        int64_t ow = 0;
#ifdef POOL_HAVE_SSE2   /* the vector part (pool.c), then scalar code for what is left */
        ow = FN(max2x2s2_row_sse2)(r0, r1, yrow, irow, origin, W, ncols);
#endif
        for (; ow < ncols; ++ow) {
            const T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            T m = a;
            int64_t off = 0;
            if (b > m || b != b) { m = b; off = 1; }
            if (c > m || c != c) { m = c; off = W; }
            if (d > m || d != d) { m = d; off = W + 1; }
            yrow[ow] = m;
            irow[ow] = origin + 2 * ow + off;
        }
    }
}

void FN(cycnn_maxpool2d_fwd)(const cycnn_pool_geom *g, const T *x, T *y, int64_t *idx)
{
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 &&
        g->pad_top == 0 && g->pad_left == 0 && g->W < INT32_MAX) { /* int32 lanes hold W+1 */
        /* full windows via the fast path; a ceil-mode edge row/column via the generic one */
        const int64_t fr = imin(g->Ho, g->H / 2), fc = imin(g->Wo, g->W / 2);
        FN(max2x2s2_rows)(g, x, y, idx, fr, fc);
        FN(max_generic)(g, x, y, idx, 0, fr, fc, g->Wo);
        FN(max_generic)(g, x, y, idx, fr, g->Ho, 0, g->Wo);
        return;
    }
    int64_t lo, hi;
    interior_cols(g, &lo, &hi);
    for (int64_t oh = 0; oh < g->Ho; ++oh) {
        const int64_t top = oh * g->sh - g->pad_top;
        const int64_t ih0 = imax(top, 0), ih1 = imin(top + g->kh, g->H);
        if (ih0 >= ih1 || g->kh * g->W > INT32_MAX) { /* empty rows; code_t overflow */
            FN(max_generic)(g, x, y, idx, oh, oh + 1, 0, g->Wo);
            continue;
        }
        FN(max_generic)(g, x, y, idx, oh, oh + 1, 0, lo);
        FN(max_row_interior)(g, x, y, idx, oh, ih0, ih1, lo, hi);
        FN(max_generic)(g, x, y, idx, oh, oh + 1, hi, g->Wo);
    }
}

int FN(cycnn_maxpool2d_bwd)(int64_t n_out, const T *dy, const int64_t *idx,
                            int64_t hw, T *dx)
{
    int bad = 0;
    if (hw > 0)
        memset(dx, 0, (size_t)hw * sizeof(T));
    for (int64_t o = 0; o < n_out; ++o) {
        const int64_t i = idx[o];
        if ((uint64_t)i >= (uint64_t)hw) { /* also catches i < 0 */
            bad = 1;
            continue;
        }
        dx[i] += dy[o];
    }
    return bad;
}

/* Average pool of the output block [oh0, oh1) x [ow0, ow1), scalar. */
static void FN(avg_generic)(const cycnn_pool_geom *g, const T *x, T *y,
                            int64_t oh0, int64_t oh1, int64_t ow0, int64_t ow1)
{
    const int64_t H = g->H, W = g->W, Wo = g->Wo;
    const T divisor = (T)g->kh * (T)g->kw;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
        const int64_t top = oh * g->sh - g->pad_top;
        const int64_t ih0 = imax(top, 0), ih1 = imin(top + g->kh, H);
        for (int64_t ow = ow0; ow < ow1; ++ow) {
            const int64_t left = ow * g->sw - g->pad_left;
            const int64_t iw0 = imax(left, 0), iw1 = imin(left + g->kw, W);
            T sum = 0;
            for (int64_t ih = ih0; ih < ih1; ++ih) {
                const T *row = x + ih * W;
                for (int64_t iw = iw0; iw < iw1; ++iw)
                    sum += row[iw];
            }
            y[oh * Wo + ow] = sum / divisor;
        }
    }
}

/* Average pool of output row oh, interior columns [ow0, ow1), window rows [ih0, ih1):
 * window element outer, outputs inner (same summation order as avg_generic). */
static void FN(avg_row_interior)(const cycnn_pool_geom *g, const T *restrict x,
                                 T *restrict y, int64_t oh, int64_t ih0, int64_t ih1,
                                 int64_t ow0, int64_t ow1)
{
    const int64_t W = g->W, kw = g->kw, sw = g->sw;
    const T divisor = (T)g->kh * (T)g->kw;
    T *restrict sum = y + oh * g->Wo;
    for (int64_t k = ow0; k < ow1; ++k)
        sum[k] = 0;
    for (int64_t ih = ih0; ih < ih1; ++ih) {
        for (int64_t j = 0; j < kw; ++j) {
            /* element j of window ow0 (in-bounds: ow0 is an interior column) */
            const T *restrict src = x + (ih * W + ow0 * sw - g->pad_left + j);
            for (int64_t k = ow0; k < ow1; ++k)
                sum[k] += src[(k - ow0) * sw];
        }
    }
    for (int64_t k = ow0; k < ow1; ++k)
        sum[k] /= divisor;
}

void FN(cycnn_avgpool2d_fwd)(const cycnn_pool_geom *g, const T *x, T *y)
{
    int64_t lo, hi;
    interior_cols(g, &lo, &hi);
    for (int64_t oh = 0; oh < g->Ho; ++oh) {
        const int64_t top = oh * g->sh - g->pad_top;
        const int64_t ih0 = imax(top, 0), ih1 = imin(top + g->kh, g->H);
        FN(avg_generic)(g, x, y, oh, oh + 1, 0, lo);
        if (lo < hi)   /* (else its window loops would spin kh*kw times doing nothing) */
            FN(avg_row_interior)(g, x, y, oh, ih0, ih1, lo, hi);
        FN(avg_generic)(g, x, y, oh, oh + 1, hi, g->Wo);
    }
}

void FN(cycnn_avgpool2d_bwd)(const cycnn_pool_geom *g, const T *dy, T *dx)
{
    const int64_t H = g->H, W = g->W, Wo = g->Wo;
    const T divisor = (T)g->kh * (T)g->kw;
    if (H * W > 0)
        memset(dx, 0, (size_t)H * (size_t)W * sizeof(T));
    for (int64_t oh = 0; oh < g->Ho; ++oh) {
        const int64_t top = oh * g->sh - g->pad_top;
        const int64_t ih0 = imax(top, 0), ih1 = imin(top + g->kh, H);
        for (int64_t ow = 0; ow < Wo; ++ow) {
            const int64_t left = ow * g->sw - g->pad_left;
            const int64_t iw0 = imax(left, 0), iw1 = imin(left + g->kw, W);
            const T share = dy[oh * Wo + ow] / divisor;
            for (int64_t ih = ih0; ih < ih1; ++ih) {
                T *row = dx + ih * W;
                for (int64_t iw = iw0; iw < iw1; ++iw)
                    row[iw] += share;
            }
        }
    }
}
