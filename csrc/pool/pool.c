/* pool.c -- float and double pooling kernels for one plane; contract in pool.h.
 *
 * The type-generic body (and its design note) is pool_impl.h, included once per element type
 * below. What is not type-generic lives here: the small helpers both types share, and the
 * SSE2 step of the 2x2 stride-2 max pool, which differs in lane count (4 floats, 2 doubles).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pool.h"

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define POOL_HAVE_SSE2 1
#endif

/* Geometry arithmetic is 64-bit throughout (see pool.h): sums such as pad + stride - 1 or
 * oh*stride + kernel need not fit in an int even when every field does. */
static int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

enum { CHUNK = 256 };            /* outputs per pass of the window-element-outer loops      */

/* Output columns [*lo, *hi) whose windows lie fully inside columns [0, W). */
static void interior_cols(const cycnn_pool_geom *g, int64_t *lo, int64_t *hi)
{
    const int64_t last = g->W - g->kw + g->pad_left;       /* largest in-bounds window start */
    *lo = imin((g->pad_left + g->sw - 1) / g->sw, g->Wo);
    *hi = last < 0 ? 0 : imin(last / g->sw + 1, g->Wo);
    if (*hi < *lo)
        *hi = *lo;
}

#ifdef POOL_HAVE_SSE2
/* SSE2 part of one output row of the 2x2 stride-2 max pool (called by max2x2s2_rows in
 * pool_impl.h): outputs [0, ncols) of the row whose windows read input rows r0 and r1, window
 * (oh, 0) having flat index origin. Returns the first column left to the scalar loop: ncols,
 * or 0 when the row is narrower than one vector. A ragged tail is done by one more vector step
 * that ends at ncols, overlapping columns already done (it writes the same values again). */

/* float: 4 outputs per step; offsets in 32-bit lanes, zero-extended to int64 at the end. */
static int64_t max2x2s2_row_sse2_f32(const float *r0, const float *r1, float *yrow,
                                     int64_t *irow, int64_t origin, int64_t W, int64_t ncols)
{
    /* W + 1 fits in an int32 lane: the caller takes this path only for W < INT32_MAX */
    const __m128i off_b = _mm_set1_epi32(1), off_c = _mm_set1_epi32((int32_t)W);
    const __m128i off_d = _mm_set1_epi32((int32_t)(W + 1)), zero = _mm_setzero_si128();
    int64_t ow = 0;
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
    return ow;
}

/* double: 2 outputs per step; masks are 64-bit lanes, so offsets are int64 directly. */
static int64_t max2x2s2_row_sse2_f64(const double *r0, const double *r1, double *yrow,
                                     int64_t *irow, int64_t origin, int64_t W, int64_t ncols)
{
    const __m128i off_b = _mm_set1_epi64x(1), off_c = _mm_set1_epi64x(W);
    const __m128i off_d = _mm_set1_epi64x(W + 1);
    int64_t ow = 0;
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
    return ow;
}
#endif /* POOL_HAVE_SSE2 */

/* T: element type; FN(name): name with the type suffix; code_t: offset of the chosen element
 * from its window's origin, kept as wide as T (int32_t for float, int64_t for double). */
#define T float
#define FN(name) name##_f32
#define code_t int32_t
#include "pool_impl.h"
#undef T
#undef FN
#undef code_t

#define T double
#define FN(name) name##_f64
#define code_t int64_t
#include "pool_impl.h"
#undef T
#undef FN
#undef code_t
