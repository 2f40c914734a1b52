/* depthwise_avx2.c -- AVX2+FMA float32 depthwise forward for one plane, for stride 1 and
 * dilation 1 along the width (contract: depthwise.h; depthwise.c calls it where it applies,
 * and its portable twin, cycnn_dwconv_fwd_f32_generic from depthwise_impl.h, elsewhere).
 *
 * Design
 *   The portable kernel adds one tap at a time to a whole output row (a load and a store of
 *   y per tap and output); here an output vector stays in a register while all R*S taps are
 *   added to it, so each tap costs one unaligned load of x and one FMA.
 *   - Rows: an output row is "full" when all R filter rows fall inside the image. Full rows
 *     go in blocks of 4 (4 rows x 2 vectors = 8 independent FMA chains, enough to cover the
 *     FMA latency on two pipes); the other rows (the top and bottom borders) one at a time,
 *     with their own range of filter rows.
 *   - Columns: 16 at a time (two vectors) from column 0. Where all 16 columns' taps fall
 *     inside the row, plain unaligned loads; at the row's two ends, each tap s loads through
 *     a lane mask (the lanes whose input column 0 <= ow+j-pl+s < W exists and whose output
 *     ow+j < Wo does): vmaskmovps reads nothing outside its mask, so the zero padding is
 *     never materialised and no lane reads past the plane. Stores past Wo are masked too.
 *     The lane masks of the S taps are made once per 16 columns (hence S <= 16).
 *   - Each output is bias + sum over taps in (r, s) order, with FMAs (the portable kernel
 *     rounds the product and the sum apart; tests compare both with the float64 reference).
 * Parallelism: none (callers give threads whole planes). No memory besides the operands.
 */
#include <stdint.h>

#include "depthwise.h"

#if (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

#define BLOCK_ROWS 4

/* lanes j of the 8 columns from ow whose tap s reads inside the row (0 <= ow+j-pl+s < W) and
 * whose output exists (ow + j < Wo) */
static inline __m256i lanes(const cycnn_dwconv_geom *g, int ow, int s)
{
    const __m256i j = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i lo = _mm256_set1_epi32(g->pl - s - ow - 1);   /* j > pl-s-ow-1 */
    const __m256i hi = _mm256_set1_epi32(g->W + g->pl - s - ow); /* j < W+pl-s-ow */
    const __m256i out = _mm256_set1_epi32(g->Wo - ow);           /* j < Wo-ow */
    return _mm256_and_si256(_mm256_and_si256(_mm256_cmpgt_epi32(j, lo), _mm256_cmpgt_epi32(hi, j)),
                            _mm256_cmpgt_epi32(out, j));
}

/* y rows oh0 .. oh0+nr-1, all columns, filter rows [r0, r1) (inside the image for these
 * rows): 16 columns at a time, plain loads where all 16 columns' taps are inside the row,
 * masked loads (no access outside the mask) and stores at the row's two ends. nr is a
 * constant at each call site, so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void
rows_block(const cycnn_dwconv_geom *g, const float *x, const float *w, float bias, float *y,
           int oh0, const int nr, int r0, int r1, int a, int b)
{
    const int S = g->S;
    int64_t xo[BLOCK_ROWS];   /* offset of (filter row 0, column -pl) for each output row */
    float *yr[BLOCK_ROWS];
    __m256i mk[2][CYCNN_DWCONV_AVX2_MAX_S];
    int i, r, s, ow;
    for (i = 0; i < nr; i++) {
        xo[i] = ((int64_t)(oh0 + i) * g->sh - g->pt) * g->W - g->pl;
        yr[i] = y + (int64_t)(oh0 + i) * g->Wo;
    }
    for (ow = 0; ow < g->Wo; ow += 16) {
        __m256 acc[BLOCK_ROWS][2];
        for (i = 0; i < nr; i++)
            acc[i][0] = acc[i][1] = _mm256_set1_ps(bias);
        if (ow >= a && ow + 16 <= b) {
            for (r = r0; r < r1; r++) {
                const int64_t roff = (int64_t)r * g->dh * g->W + ow;
                for (s = 0; s < S; s++) {
                    const __m256 wv = _mm256_broadcast_ss(w + r * S + s);
                    for (i = 0; i < nr; i++) {
                        const float *p = x + (xo[i] + roff + s);
                        acc[i][0] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p), acc[i][0]);
                        acc[i][1] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(p + 8), acc[i][1]);
                    }
                }
            }
            for (i = 0; i < nr; i++) {
                _mm256_storeu_ps(yr[i] + ow, acc[i][0]);
                _mm256_storeu_ps(yr[i] + ow + 8, acc[i][1]);
            }
            continue;
        }
        for (s = 0; s < S; s++) {
            mk[0][s] = lanes(g, ow, s);
            mk[1][s] = lanes(g, ow + 8, s);
        }
        for (r = r0; r < r1; r++) {
            const int64_t roff = (int64_t)r * g->dh * g->W + ow;
            for (s = 0; s < S; s++) {
                const __m256 wv = _mm256_broadcast_ss(w + r * S + s);
                for (i = 0; i < nr; i++) {
                    const float *p = x + (xo[i] + roff + s);
                    acc[i][0] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(p, mk[0][s]), acc[i][0]);
                    acc[i][1] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(p + 8, mk[1][s]),
                                                acc[i][1]);
                }
            }
        }
        {
            const __m256i j = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            const __m256i st0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(g->Wo - ow), j);
            const __m256i st1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(g->Wo - ow - 8), j);
            for (i = 0; i < nr; i++) {
                _mm256_maskstore_ps(yr[i] + ow, st0, acc[i][0]);
                _mm256_maskstore_ps(yr[i] + ow + 8, st1, acc[i][1]);
            }
        }
    }
}

/* filter rows [*r0, *r1) whose input row lies inside the image for output row oh */
static void tap_rows(const cycnn_dwconv_geom *g, int oh, int *r0, int *r1)
{
    const int64_t top = (int64_t)oh * g->sh - g->pt;
    int lo = 0, hi = g->R;
    while (lo < hi && top + (int64_t)lo * g->dh < 0)
        lo++;
    while (hi > lo && top + (int64_t)(hi - 1) * g->dh >= g->H)
        hi--;
    *r0 = lo;
    *r1 = hi;
}

void cycnn_dwconv_fwd_f32_avx2(const cycnn_dwconv_geom *g, const float *x, const float *w,
                               float bias, float *y)
{
    /* interior columns [a, b): ow - pl >= 0 and ow - pl + S - 1 <= W - 1 (and ow < Wo) */
    const int a = g->pl;
    const int b = g->W - g->S + 1 + g->pl < g->Wo ? g->W - g->S + 1 + g->pl : g->Wo;
    int oh = 0;
    while (oh < g->Ho) {
        int r0, r1, n = 1;
        tap_rows(g, oh, &r0, &r1);
        if (r0 == 0 && r1 == g->R) {   /* how many full rows follow (up to a block) */
            while (n < BLOCK_ROWS && oh + n < g->Ho) {
                int q0, q1;
                tap_rows(g, oh + n, &q0, &q1);
                if (q0 != 0 || q1 != g->R)
                    break;
                n++;
            }
        }
        if (n == BLOCK_ROWS)
            rows_block(g, x, w, bias, y, oh, BLOCK_ROWS, r0, r1, a, b);
        else
            for (int i = 0; i < n; i++)
                rows_block(g, x, w, bias, y, oh + i, 1, r0, r1, a, b);
        oh += n;
    }
}

#else
typedef int cycnn_depthwise_avx2_unused; /* ISO C: no empty translation units */
#endif
