/* pool_f64.c -- double pooling kernels for one plane; contract in pool.h.
 * This is pool_f32.c for double: same structure, same rules; keep the two files in step.
 * The only real difference is the SSE2 block of max2x2s2_rows(), which handles 2 outputs
 * per step and keeps the chosen-element offset in 64-bit lanes (see pool_f32.c for the
 * design notes).
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
static void max_generic(const cycnn_pool_geom *g, const double *x, double *y, int64_t *idx,
                        int oh0, int oh1, int ow0, int ow1)
{
    const int H = g->H, W = g->W, Wo = g->Wo;
    for (int oh = oh0; oh < oh1; ++oh) {
        const int top = oh * g->sh - g->pad_top;
        const int ih0 = imax(top, 0), ih1 = imin(top + g->kh, H);
        for (int ow = ow0; ow < ow1; ++ow) {
            const int left = ow * g->sw - g->pad_left;
            const int iw0 = imax(left, 0), iw1 = imin(left + g->kw, W);
            double best = -INFINITY;
            int64_t best_i = (ih0 < ih1 && iw0 < iw1) ? (int64_t)ih0 * W + iw0 : -1;
            for (int ih = ih0; ih < ih1; ++ih) {
                const double *row = x + (int64_t)ih * W;
                for (int iw = iw0; iw < iw1; ++iw) {
                    const double v = row[iw];
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
typedef int64_t code_t;          /* offset of the chosen element from its window's origin   */

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
static inline void max_fold(const double *restrict src, int sw, int n, code_t e,
                            double *restrict best, code_t *restrict code)
{
    for (int k = 0; k < n; ++k) {
        const double v = src[(int64_t)k * sw], b = best[k];
        const double b_or_inf = b != b ? (double)INFINITY : b;
        const int take = !(v <= b_or_inf);
        best[k] = take ? v : b;
        code[k] = take ? e : code[k];
    }
}

/* Max pool of output row oh, columns [ow0, ow1) (interior: no column clipping), window rows
 * [ih0, ih1) (non-empty). Window element outer, outputs inner: see the note at the top. */
static void max_row_interior(const cycnn_pool_geom *g, const double *restrict x,
                             double *restrict y, int64_t *restrict idx,
                             int oh, int ih0, int ih1, int ow0, int ow1)
{
    const int W = g->W, kw = g->kw, sw = g->sw;
    code_t code[CHUNK];
    for (int c0 = ow0; c0 < ow1; c0 += CHUNK) {
        const int n = imin(CHUNK, ow1 - c0);
        const int64_t origin = (int64_t)ih0 * W + (int64_t)c0 * sw - g->pad_left;
        double *restrict best = y + (int64_t)oh * g->Wo + c0;
        const double *src = x + origin;             /* element (0, 0) of window c0 */
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
static void max2x2s2_rows(const cycnn_pool_geom *g, const double *x, double *y, int64_t *idx,
                          int nrows, int ncols)
{
    const int W = g->W, Wo = g->Wo;
    for (int oh = 0; oh < nrows; ++oh) {
        const double *r0 = x + (int64_t)(2 * oh) * W;
        const double *r1 = r0 + W;
        double *yrow = y + (int64_t)oh * Wo;
        int64_t *irow = idx + (int64_t)oh * Wo;
        const int64_t origin = (int64_t)(2 * oh) * W; /* flat index of window (oh, 0) */
        int ow = 0;
#ifdef POOL_HAVE_SSE2
        /* 2 outputs per step; masks are 64-bit lanes, so offsets are int64 directly */
        const __m128i off_b = _mm_set1_epi64x(1), off_c = _mm_set1_epi64x(W);
        const __m128i off_d = _mm_set1_epi64x((int64_t)W + 1);
        /* a ragged tail is done by one more vector step that ends at ncols, overlapping
         * columns already done (it writes the same values again) */
        for (; ncols >= 2 && ow < ncols; ow += 2) {
            if (ow > ncols - 2)
                ow = ncols - 2;
            const __m128d p0 = _mm_loadu_pd(r0 + 2 * ow), p1 = _mm_loadu_pd(r0 + 2 * ow + 2);
            const __m128d q0 = _mm_loadu_pd(r1 + 2 * ow), q1 = _mm_loadu_pd(r1 + 2 * ow + 2);
            const __m128d a = _mm_unpacklo_pd(p0, p1); /* even cols */
            const __m128d b = _mm_unpackhi_pd(p0, p1); /* odd cols  */
            const __m128d c = _mm_unpacklo_pd(q0, q1);
            const __m128d d = _mm_unpackhi_pd(q0, q1);
            __m128d m = a, t;
            __m128i off = _mm_setzero_si128(), ti;
            /* take b, c, d in window order where v > m or v is NaN */
            t = _mm_or_pd(_mm_cmpgt_pd(b, m), _mm_cmpunord_pd(b, b));
            ti = _mm_castpd_si128(t);
            m = _mm_or_pd(_mm_and_pd(t, b), _mm_andnot_pd(t, m));
            off = _mm_or_si128(_mm_and_si128(ti, off_b), _mm_andnot_si128(ti, off));
            t = _mm_or_pd(_mm_cmpgt_pd(c, m), _mm_cmpunord_pd(c, c));
            ti = _mm_castpd_si128(t);
            m = _mm_or_pd(_mm_and_pd(t, c), _mm_andnot_pd(t, m));
            off = _mm_or_si128(_mm_and_si128(ti, off_c), _mm_andnot_si128(ti, off));
            t = _mm_or_pd(_mm_cmpgt_pd(d, m), _mm_cmpunord_pd(d, d));
            ti = _mm_castpd_si128(t);
            m = _mm_or_pd(_mm_and_pd(t, d), _mm_andnot_pd(t, m));
            off = _mm_or_si128(_mm_and_si128(ti, off_d), _mm_andnot_si128(ti, off));
            _mm_storeu_pd(yrow + ow, m);
            /* idx = origin + 2*ow + {0, 2} + off */
            const int64_t base = origin + 2 * ow;
            _mm_storeu_si128((__m128i *)(irow + ow),
                             _mm_add_epi64(off, _mm_set_epi64x(base + 2, base)));
        }
#endif
        for (; ow < ncols; ++ow) {
            const double a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            double m = a;
            int off = 0;
            if (b > m || b != b) { m = b; off = 1; }
            if (c > m || c != c) { m = c; off = W; }
            if (d > m || d != d) { m = d; off = W + 1; }
            yrow[ow] = m;
            irow[ow] = origin + 2 * ow + off;
        }
    }
}

void cycnn_maxpool2d_fwd_f64(const cycnn_pool_geom *g, const double *x, double *y, int64_t *idx)
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

int cycnn_maxpool2d_bwd_f64(int64_t n_out, const double *dy, const int64_t *idx,
                            int64_t hw, double *dx)
{
    int bad = 0;
    if (hw > 0)
        memset(dx, 0, (size_t)hw * sizeof(double));
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
static void avg_generic(const cycnn_pool_geom *g, const double *x, double *y,
                        int oh0, int oh1, int ow0, int ow1)
{
    const int H = g->H, W = g->W, Wo = g->Wo;
    const double divisor = (double)g->kh * (double)g->kw;
    for (int oh = oh0; oh < oh1; ++oh) {
        const int top = oh * g->sh - g->pad_top;
        const int ih0 = imax(top, 0), ih1 = imin(top + g->kh, H);
        for (int ow = ow0; ow < ow1; ++ow) {
            const int left = ow * g->sw - g->pad_left;
            const int iw0 = imax(left, 0), iw1 = imin(left + g->kw, W);
            double sum = 0.0;
            for (int ih = ih0; ih < ih1; ++ih) {
                const double *row = x + (int64_t)ih * W;
                for (int iw = iw0; iw < iw1; ++iw)
                    sum += row[iw];
            }
            y[(int64_t)oh * Wo + ow] = sum / divisor;
        }
    }
}

/* Average pool of output row oh, interior columns [ow0, ow1), window rows [ih0, ih1):
 * window element outer, outputs inner (same summation order as avg_generic). */
static void avg_row_interior(const cycnn_pool_geom *g, const double *restrict x,
                             double *restrict y, int oh, int ih0, int ih1, int ow0, int ow1)
{
    const int W = g->W, kw = g->kw, sw = g->sw;
    const double divisor = (double)g->kh * (double)g->kw;
    double *restrict sum = y + (int64_t)oh * g->Wo;
    for (int k = ow0; k < ow1; ++k)
        sum[k] = 0.0;
    for (int ih = ih0; ih < ih1; ++ih) {
        for (int j = 0; j < kw; ++j) {
            const double *restrict src = x + (int64_t)ih * W - g->pad_left + j;
            for (int k = ow0; k < ow1; ++k)
                sum[k] += src[(int64_t)k * sw];
        }
    }
    for (int k = ow0; k < ow1; ++k)
        sum[k] /= divisor;
}

void cycnn_avgpool2d_fwd_f64(const cycnn_pool_geom *g, const double *x, double *y)
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

void cycnn_avgpool2d_bwd_f64(const cycnn_pool_geom *g, const double *dy, double *dx)
{
    const int H = g->H, W = g->W, Wo = g->Wo;
    const double divisor = (double)g->kh * (double)g->kw;
    if ((int64_t)H * W > 0)
        memset(dx, 0, (size_t)H * (size_t)W * sizeof(double));
    for (int oh = 0; oh < g->Ho; ++oh) {
        const int top = oh * g->sh - g->pad_top;
        const int ih0 = imax(top, 0), ih1 = imin(top + g->kh, H);
        for (int ow = 0; ow < Wo; ++ow) {
            const int left = ow * g->sw - g->pad_left;
            const int iw0 = imax(left, 0), iw1 = imin(left + g->kw, W);
            const double share = dy[(int64_t)oh * Wo + ow] / divisor;
            for (int ih = ih0; ih < ih1; ++ih) {
                double *row = dx + (int64_t)ih * W;
                for (int iw = iw0; iw < iw1; ++iw)
                    row[iw] += share;
            }
        }
    }
}
