/* pool_f32.c -- float pooling kernels for one plane; contract in pool.h.
 * pool_f64.c is the same code for double: keep the two files in step.
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
 * plane go through max2x2s2_rows(), which handles 4 outputs per step with SSE2 (baseline
 * x86-64, no runtime dispatch needed). The four window elements a b / c d are deinterleaved
 * from two 8-float loads per input row, then folded with the same rule as the generic loop,
 *   take v  iff  v > best || v != v,
 * as compare masks and and/andnot/or selects (no branches). The chosen element is tracked
 * as an int32 offset from the window origin (0, 1, W or W+1) and widened to the int64 flat
 * index at the end. A ragged row end is one extra, overlapping vector step. Rows narrower
 * than one vector, non-SSE2 builds and the ceil-mode edge row/column use scalar code with
 * the same rule, so results do not depend on the path taken.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pool.h"

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define POOL_HAVE_SSE2 1
#endif

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

/* Generic max pool for the output block [oh0, oh1) x [ow0, ow1). */
static void max_generic(const cycnn_pool_geom *g, const float *x, float *y, int64_t *idx,
                        int oh0, int oh1, int ow0, int ow1)
{
    const int H = g->H, W = g->W, Wo = g->Wo;
    for (int oh = oh0; oh < oh1; ++oh) {
        const int top = oh * g->sh - g->pad_top;
        const int ih0 = imax(top, 0), ih1 = imin(top + g->kh, H);
        for (int ow = ow0; ow < ow1; ++ow) {
            const int left = ow * g->sw - g->pad_left;
            const int iw0 = imax(left, 0), iw1 = imin(left + g->kw, W);
            float best = -INFINITY;
            int64_t best_i = (ih0 < ih1 && iw0 < iw1) ? (int64_t)ih0 * W + iw0 : -1;
            for (int ih = ih0; ih < ih1; ++ih) {
                const float *row = x + (int64_t)ih * W;
                for (int iw = iw0; iw < iw1; ++iw) {
                    const float v = row[iw];
                    if (v > best || v != v) {
                        best = v;
                        best_i = (int64_t)ih * W + iw;
                    }
                }
            }
            y[(int64_t)oh * Wo + ow] = best;
            idx[(int64_t)oh * Wo + ow] = best_i;
        }
    }
}

enum { CHUNK = 256 };            /* outputs per pass of the window-element-outer loops      */
typedef int32_t code_t;          /* offset of the chosen element from its window's origin   */

/* Output columns [*lo, *hi) whose windows lie fully inside columns [0, W). */
static void interior_cols(const cycnn_pool_geom *g, int *lo, int *hi)
{
    const int last = g->W - g->kw + g->pad_left;       /* largest in-bounds window start */
    *lo = imin((g->pad_left + g->sw - 1) / g->sw, g->Wo);
    *hi = last < 0 ? 0 : imin(last / g->sw + 1, g->Wo);
    if (*hi < *lo)
        *hi = *lo;
}

/* Fold element e of n windows (values src[k*sw]) into their running max best[k] and
 * chosen offset code[k], with the rule "take v iff v > best or v is NaN", branch-free.
 * The rule is written as  !(v <= (best is NaN ? +inf : best)),  which is the same
 * predicate (v NaN: true; best NaN, v a number: false; else v > best) in a form GCC
 * vectorises for double too. */
static inline void max_fold(const float *restrict src, int sw, int n, code_t e,
                            float *restrict best, code_t *restrict code)
{
    for (int k = 0; k < n; ++k) {
        const float v = src[(int64_t)k * sw], b = best[k];
        const float b_or_inf = b != b ? (float)INFINITY : b;
        const int take = !(v <= b_or_inf);
        best[k] = take ? v : b;
        code[k] = take ? e : code[k];
    }
}

/* Max pool of output row oh, columns [ow0, ow1) (interior: no column clipping), window rows
 * [ih0, ih1) (non-empty). Window element outer, outputs inner: see the note at the top. */
static void max_row_interior(const cycnn_pool_geom *g, const float *restrict x,
                             float *restrict y, int64_t *restrict idx,
                             int oh, int ih0, int ih1, int ow0, int ow1)
{
    const int W = g->W, kw = g->kw, sw = g->sw;
    code_t code[CHUNK];
    for (int c0 = ow0; c0 < ow1; c0 += CHUNK) {
        const int n = imin(CHUNK, ow1 - c0);
        const int64_t origin = (int64_t)ih0 * W + (int64_t)c0 * sw - g->pad_left;
        float *restrict best = y + (int64_t)oh * g->Wo + c0;
        const float *src = x + origin;              /* element (0, 0) of window c0 */
        for (int k = 0; k < n; ++k) {
            best[k] = src[(int64_t)k * sw];
            code[k] = 0;
        }
        for (int ih = ih0; ih < ih1; ++ih) {
            for (int j = (ih == ih0); j < kw; ++j) {
                const code_t e = (code_t)(ih - ih0) * W + j;
                src = x + origin + e;
                if (sw == 1)        /* constant strides get their own vectorised loops */
                    max_fold(src, 1, n, e, best, code);
                else if (sw == 2)
                    max_fold(src, 2, n, e, best, code);
                else
                    max_fold(src, sw, n, e, best, code);
            }
        }
        int64_t *restrict out = idx + (int64_t)oh * g->Wo + c0;
        for (int k = 0; k < n; ++k)
            out[k] = origin + (int64_t)k * sw + code[k];
    }
}

/* 2x2 stride-2 max pool of output rows [0, nrows), columns [0, ncols); every window must be
 * inside the plane (2*nrows <= H, 2*ncols <= W). */
static void max2x2s2_rows(const cycnn_pool_geom *g, const float *x, float *y, int64_t *idx,
                          int nrows, int ncols)
{
    const int W = g->W, Wo = g->Wo;
    for (int oh = 0; oh < nrows; ++oh) {
        const float *r0 = x + (int64_t)(2 * oh) * W;
        const float *r1 = r0 + W;
        float *yrow = y + (int64_t)oh * Wo;
        int64_t *irow = idx + (int64_t)oh * Wo;
        const int64_t origin = (int64_t)(2 * oh) * W; /* flat index of window (oh, 0) */
        int ow = 0;
#ifdef POOL_HAVE_SSE2
        const __m128i off_b = _mm_set1_epi32(1), off_c = _mm_set1_epi32(W);
        const __m128i off_d = _mm_set1_epi32(W + 1), zero = _mm_setzero_si128();
        /* a ragged tail is done by one more vector step that ends at ncols, overlapping
         * columns already done (it writes the same values again) */
        for (; ncols >= 4 && ow < ncols; ow += 4) {
            if (ow > ncols - 4)
                ow = ncols - 4;
            const __m128 p0 = _mm_loadu_ps(r0 + 2 * ow), p1 = _mm_loadu_ps(r0 + 2 * ow + 4);
            const __m128 q0 = _mm_loadu_ps(r1 + 2 * ow), q1 = _mm_loadu_ps(r1 + 2 * ow + 4);
            const __m128 a = _mm_shuffle_ps(p0, p1, _MM_SHUFFLE(2, 0, 2, 0)); /* even cols */
            const __m128 b = _mm_shuffle_ps(p0, p1, _MM_SHUFFLE(3, 1, 3, 1)); /* odd cols  */
            const __m128 c = _mm_shuffle_ps(q0, q1, _MM_SHUFFLE(2, 0, 2, 0));
            const __m128 d = _mm_shuffle_ps(q0, q1, _MM_SHUFFLE(3, 1, 3, 1));
            __m128 m = a, t;
            __m128i off = zero, ti;
            /* take b, c, d in window order where v > m or v is NaN */
            t = _mm_or_ps(_mm_cmpgt_ps(b, m), _mm_cmpunord_ps(b, b));
            ti = _mm_castps_si128(t);
            m = _mm_or_ps(_mm_and_ps(t, b), _mm_andnot_ps(t, m));
            off = _mm_or_si128(_mm_and_si128(ti, off_b), _mm_andnot_si128(ti, off));
            t = _mm_or_ps(_mm_cmpgt_ps(c, m), _mm_cmpunord_ps(c, c));
            ti = _mm_castps_si128(t);
            m = _mm_or_ps(_mm_and_ps(t, c), _mm_andnot_ps(t, m));
            off = _mm_or_si128(_mm_and_si128(ti, off_c), _mm_andnot_si128(ti, off));
            t = _mm_or_ps(_mm_cmpgt_ps(d, m), _mm_cmpunord_ps(d, d));
            ti = _mm_castps_si128(t);
            m = _mm_or_ps(_mm_and_ps(t, d), _mm_andnot_ps(t, m));
            off = _mm_or_si128(_mm_and_si128(ti, off_d), _mm_andnot_si128(ti, off));
            _mm_storeu_ps(yrow + ow, m);
            /* idx = origin + 2*ow + {0, 2, 4, 6} + off  (off >= 0: zero-extend to int64) */
            const int64_t base = origin + 2 * ow;
            const __m128i lo = _mm_add_epi64(_mm_unpacklo_epi32(off, zero),
                                             _mm_set_epi64x(base + 2, base));
            const __m128i hi = _mm_add_epi64(_mm_unpackhi_epi32(off, zero),
                                             _mm_set_epi64x(base + 6, base + 4));
            _mm_storeu_si128((__m128i *)(irow + ow), lo);
            _mm_storeu_si128((__m128i *)(irow + ow + 2), hi);
        }
#endif
        for (; ow < ncols; ++ow) {
            const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            float m = a;
            int off = 0;
            if (b > m || b != b) { m = b; off = 1; }
            if (c > m || c != c) { m = c; off = W; }
            if (d > m || d != d) { m = d; off = W + 1; }
            yrow[ow] = m;
            irow[ow] = origin + 2 * ow + off;
        }
    }
}

void cycnn_maxpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y, int64_t *idx)
{
    if (g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 &&
        g->pad_top == 0 && g->pad_left == 0) {
        /* full windows via the fast path; a ceil-mode edge row/column via the generic one */
        const int fr = imin(g->Ho, g->H / 2), fc = imin(g->Wo, g->W / 2);
        max2x2s2_rows(g, x, y, idx, fr, fc);
        max_generic(g, x, y, idx, 0, fr, fc, g->Wo);
        max_generic(g, x, y, idx, fr, g->Ho, 0, g->Wo);
        return;
    }
    int lo, hi;
    interior_cols(g, &lo, &hi);
    for (int oh = 0; oh < g->Ho; ++oh) {
        const int top = oh * g->sh - g->pad_top;
        const int ih0 = imax(top, 0), ih1 = imin(top + g->kh, g->H);
        if (ih0 >= ih1 || (int64_t)g->kh * g->W > INT32_MAX) { /* empty rows; code_t overflow */
            max_generic(g, x, y, idx, oh, oh + 1, 0, g->Wo);
            continue;
        }
        max_generic(g, x, y, idx, oh, oh + 1, 0, lo);
        max_row_interior(g, x, y, idx, oh, ih0, ih1, lo, hi);
        max_generic(g, x, y, idx, oh, oh + 1, hi, g->Wo);
    }
}

int cycnn_maxpool2d_bwd_f32(int64_t n_out, const float *dy, const int64_t *idx,
                            int64_t hw, float *dx)
{
    int bad = 0;
    if (hw > 0)
        memset(dx, 0, (size_t)hw * sizeof(float));
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
static void avg_generic(const cycnn_pool_geom *g, const float *x, float *y,
                        int oh0, int oh1, int ow0, int ow1)
{
    const int H = g->H, W = g->W, Wo = g->Wo;
    const float divisor = (float)g->kh * (float)g->kw;
    for (int oh = oh0; oh < oh1; ++oh) {
        const int top = oh * g->sh - g->pad_top;
        const int ih0 = imax(top, 0), ih1 = imin(top + g->kh, H);
        for (int ow = ow0; ow < ow1; ++ow) {
            const int left = ow * g->sw - g->pad_left;
            const int iw0 = imax(left, 0), iw1 = imin(left + g->kw, W);
            float sum = 0.0f;
            for (int ih = ih0; ih < ih1; ++ih) {
                const float *row = x + (int64_t)ih * W;
                for (int iw = iw0; iw < iw1; ++iw)
                    sum += row[iw];
            }
            y[(int64_t)oh * Wo + ow] = sum / divisor;
        }
    }
}

/* Average pool of output row oh, interior columns [ow0, ow1), window rows [ih0, ih1):
 * window element outer, outputs inner (same summation order as avg_generic). */
static void avg_row_interior(const cycnn_pool_geom *g, const float *restrict x,
                             float *restrict y, int oh, int ih0, int ih1, int ow0, int ow1)
{
    const int W = g->W, kw = g->kw, sw = g->sw;
    const float divisor = (float)g->kh * (float)g->kw;
    float *restrict sum = y + (int64_t)oh * g->Wo;
    for (int k = ow0; k < ow1; ++k)
        sum[k] = 0.0f;
    for (int ih = ih0; ih < ih1; ++ih) {
        for (int j = 0; j < kw; ++j) {
            const float *restrict src = x + (int64_t)ih * W - g->pad_left + j;
            for (int k = ow0; k < ow1; ++k)
                sum[k] += src[(int64_t)k * sw];
        }
    }
    for (int k = ow0; k < ow1; ++k)
        sum[k] /= divisor;
}

void cycnn_avgpool2d_fwd_f32(const cycnn_pool_geom *g, const float *x, float *y)
{
    int lo, hi;
    interior_cols(g, &lo, &hi);
    for (int oh = 0; oh < g->Ho; ++oh) {
        const int top = oh * g->sh - g->pad_top;
        const int ih0 = imax(top, 0), ih1 = imin(top + g->kh, g->H);
        avg_generic(g, x, y, oh, oh + 1, 0, lo);
        avg_row_interior(g, x, y, oh, ih0, ih1, lo, hi);
        avg_generic(g, x, y, oh, oh + 1, hi, g->Wo);
    }
}

void cycnn_avgpool2d_bwd_f32(const cycnn_pool_geom *g, const float *dy, float *dx)
{
    const int H = g->H, W = g->W, Wo = g->Wo;
    const float divisor = (float)g->kh * (float)g->kw;
    if ((int64_t)H * W > 0)
        memset(dx, 0, (size_t)H * (size_t)W * sizeof(float));
    for (int oh = 0; oh < g->Ho; ++oh) {
        const int top = oh * g->sh - g->pad_top;
        const int ih0 = imax(top, 0), ih1 = imin(top + g->kh, H);
        for (int ow = 0; ow < Wo; ++ow) {
            const int left = ow * g->sw - g->pad_left;
            const int iw0 = imax(left, 0), iw1 = imin(left + g->kw, W);
            const float share = dy[(int64_t)oh * Wo + ow] / divisor;
            for (int ih = ih0; ih < ih1; ++ih) {
                float *row = dx + (int64_t)ih * W;
                for (int iw = iw0; iw < iw1; ++iw)
                    row[iw] += share;
            }
        }
    }
}
