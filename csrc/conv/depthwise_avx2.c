/* depthwise_avx2.c -- AVX2+FMA float32 depthwise forward for one plane, width stride 1 or 2
 * and width dilation 1 (contract: depthwise.h; depthwise.c calls it where it applies, and its
 * portable twin, cycnn_dwconv_fwd_f32_generic from depthwise_impl.h, elsewhere).
 *
 * Design
 *   The portable kernel adds one tap at a time to a whole output row (a load and a store of
 *   y per tap and output); here an output vector stays in a register while all R*S taps are
 *   added to it, so each tap costs one unaligned load of x (two and a shuffle for stride 2)
 *   and one FMA.
 *   - The plane is first copied into the workspace with its zero padding made real: Hp rows of
 *     Wp columns, Wp covering every column the last 16-column block of a row reads. Every
 *     load is then a plain unaligned load with no bounds (masked loads at the row ends
 *     measured 3-4x slower per FMA on Zen 3 than the copy costs).
 *   - Output rows go in blocks of 4 and columns in blocks of 16: 4 x 2 vectors = 8
 *     independent FMA chains, enough to cover the FMA latency on two pipes. Left-over rows go
 *     one at a time; the columns past Wo of a row's last block are computed (on padding) but
 *     their stores are masked.
 *   - Stride 2: the 16 inputs under 8 outputs are loaded as two vectors, and their even
 *     lanes gathered with one shuffle and one cross-lane permute.
 *   - Each output is bias + sum over taps in (r, s) order, with FMAs (the portable kernel
 *     rounds the product and the sum apart; tests compare both with the float64 reference).
 * Backward: dx (stride and dilation 1, one filter per channel) is this forward kernel run on dy
 *   with the flipped filter (depthwise.c); the weight gradient, cycnn_dwconv_bwd_filter_f32_avx2
 *   (width stride 1 or 2, width dilation 1), pads x the same way, then for up to 12 taps at a time keeps one vector accumulator per
 *   tap over the plane (each dy vector loaded once per row for all of them), summed across
 *   lanes at the end.
 * Parallelism: none (callers give threads whole planes, each with its own workspace).
 * Memory: the workspace, cycnn_dwconv_fwd_f32_ws_floats(g) floats; nothing else.
 */
#include <stdint.h>

#include "depthwise.h"

#if (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>

#define BLOCK_ROWS 4

/* padded plane: rows oh*sh + r*dh for oh < Ho, columns ow*sw + s for ow < Wo rounded up to a
 * 16-column block, plus the odd column after the last one a stride-2 load reads */
static int64_t padded_rows(const cycnn_dwconv_geom *g)
{
    return (int64_t)(g->Ho - 1) * g->sh + (int64_t)(g->R - 1) * g->dh + 1;
}

static int64_t padded_cols(const cycnn_dwconv_geom *g)
{
    return ((int64_t)g->Wo + 15) / 16 * 16 * g->sw + g->S;
}

size_t cycnn_dwconv_fwd_f32_avx2_ws_floats(const cycnn_dwconv_geom *g)
{
    const int64_t rows = padded_rows(g), cols = padded_cols(g);
    return rows > 0 && cols > 0 ? (size_t)(rows * cols) : 0;   /* (0: an empty plane) */
}

/* lanes 0, 2, .., 14 of the 16 floats lo:hi, in order */
static inline __m256 even_lanes(__m256 lo, __m256 hi)
{
    const __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)); /* lo0 lo2 hi0 hi2 | lo4.. */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* the inputs of the 8 outputs whose first tap input is p */
#define LOAD(p) (SW == 1 ? _mm256_loadu_ps(p) \
                         : even_lanes(_mm256_loadu_ps(p), _mm256_loadu_ps((p) + 8)))

/* y rows oh0 .. oh0+nr-1 from the padded plane xp (Wp columns), width stride SW. nr and SW are
 * constants at each call site, so the accumulators stay in registers and the loads are picked
 * at compile time; so are RS (3: a 3x3 filter, its tap loops unrolled; 0: g's R x S). */
static inline __attribute__((always_inline)) void
rows_block(const cycnn_dwconv_geom *g, const float *xp, int64_t Wp, const float *w, float bias,
           float *y, int oh0, const int nr, const int SW, const int RS)
{
    const int R = RS ? RS : g->R, S = RS ? RS : g->S;
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int i, r, s, ow;
    for (ow = 0; ow < g->Wo; ow += 16) {
        __m256 acc[BLOCK_ROWS][2];
        for (i = 0; i < nr; i++)
            acc[i][0] = acc[i][1] = _mm256_set1_ps(bias);
        for (r = 0; r < R; r++) {
            const float *row = xp + ((int64_t)oh0 * g->sh + (int64_t)r * g->dh) * Wp +
                               (int64_t)ow * SW;
            for (s = 0; s < S; s++) {
                const __m256 wv = _mm256_broadcast_ss(w + r * S + s);
                for (i = 0; i < nr; i++) {
                    const float *p = row + (int64_t)i * g->sh * Wp + s;
                    acc[i][0] = _mm256_fmadd_ps(wv, LOAD(p), acc[i][0]);
                    acc[i][1] = _mm256_fmadd_ps(wv, LOAD(p + 8 * SW), acc[i][1]);
                }
            }
        }
        for (i = 0; i < nr; i++) {
            float *yr = y + (int64_t)(oh0 + i) * g->Wo + ow;
            if (ow + 16 <= g->Wo) {
                _mm256_storeu_ps(yr, acc[i][0]);
                _mm256_storeu_ps(yr + 8, acc[i][1]);
            } else {
                _mm256_maskstore_ps(yr, _mm256_cmpgt_epi32(_mm256_set1_epi32(g->Wo - ow), iota),
                                    acc[i][0]);
                _mm256_maskstore_ps(yr + 8, _mm256_cmpgt_epi32(
                                        _mm256_set1_epi32(g->Wo - ow - 8), iota), acc[i][1]);
            }
        }
    }
}

/* xp (Hp x Wp) = the plane with its padding: padded (t, u) is x (t - pt, u - pl), or 0.
 * Each row is zeroed with vector stores, then its x columns copied over (8 at a time, the
 * last few one by one): libc's memset/memcpy per row cost as much as the convolution of a
 * 28x28 plane. */
static void pad_plane(const cycnn_dwconv_geom *g, const float *x, float *xp, int64_t Hp,
                      int64_t Wp)
{
    /* columns u of a padded row that hold x columns: [c0, c1) */
    const int64_t c0 = g->pl < Wp ? g->pl : Wp;
    const int64_t c1 = (int64_t)g->pl + g->W < Wp ? (int64_t)g->pl + g->W : Wp;
    const __m256 zero = _mm256_setzero_ps();
    int64_t t, u;
    for (t = 0; t < Hp; t++) {
        float *dst = xp + t * Wp;
        const int64_t ih = t - g->pt;
        for (u = 0; u + 8 <= Wp; u += 8)
            _mm256_storeu_ps(dst + u, zero);
        for (; u < Wp; u++)
            dst[u] = 0.0f;
        if (ih < 0 || ih >= g->H || c1 <= c0)
            continue;
        {
            const float *src = x + ih * g->W - c0;   /* src[u] is x column u - pl */
            for (u = c0; u + 8 <= c1; u += 8)
                _mm256_storeu_ps(dst + u, _mm256_loadu_ps(src + u));
            for (; u < c1; u++)
                dst[u] = src[u];
        }
    }
}

/* all output rows, width stride SW, filter RS (see rows_block) */
static inline __attribute__((always_inline)) void
plane(const cycnn_dwconv_geom *g, const float *xp, int64_t Wp, const float *w, float bias,
      float *y, const int SW, const int RS)
{
    int oh = 0;
    for (; oh + BLOCK_ROWS <= g->Ho; oh += BLOCK_ROWS)
        rows_block(g, xp, Wp, w, bias, y, oh, BLOCK_ROWS, SW, RS);
    for (; oh < g->Ho; oh++)
        rows_block(g, xp, Wp, w, bias, y, oh, 1, SW, RS);
}

void cycnn_dwconv_fwd_f32_avx2(const cycnn_dwconv_geom *g, const float *x, const float *w,
                               float bias, float *y, float *ws)
{
    const int64_t Wp = padded_cols(g);
    const int k3 = g->R == 3 && g->S == 3;
    pad_plane(g, x, ws, padded_rows(g), Wp);
    if (g->sw == 1 && k3)
        plane(g, ws, Wp, w, bias, y, 1, 3);
    else if (g->sw == 1)
        plane(g, ws, Wp, w, bias, y, 1, 0);
    else if (k3)
        plane(g, ws, Wp, w, bias, y, 2, 3);
    else
        plane(g, ws, Wp, w, bias, y, 2, 0);
}

/* ---- weight gradient (stride and dilation 1): dw[t] += sum over the plane of dy * x at tap t */

static inline float hsum(__m256 v)
{
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

/* taps t0 .. t0+NT-1 (NT and the width stride SW constant at each call site: the accumulators
 * stay in registers) over the padded plane xp: each row's dy vectors (the last one masked)
 * times the row's tap windows */
static inline __attribute__((always_inline)) void
dw_taps(const cycnn_dwconv_geom *g, const float *dy, const float *xp, int64_t Wp, int t0,
        const int NT, const int SW, float *dw)
{
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(g->Wo % 8), iota);
    const int full = g->Wo / 8 * 8;
    __m256 acc[12];
    int64_t off[12];
    int j, oh, ow;
    for (j = 0; j < NT; j++) {
        acc[j] = _mm256_setzero_ps();
        off[j] = (int64_t)((t0 + j) / g->S) * g->dh * Wp + (t0 + j) % g->S;
    }
    for (oh = 0; oh < g->Ho; oh++) {
        const float *d = dy + (int64_t)oh * g->Wo;
        const float *xr = xp + (int64_t)oh * g->sh * Wp;
        for (ow = 0; ow < full; ow += 8) {
            const __m256 dv = _mm256_loadu_ps(d + ow);
            for (j = 0; j < NT; j++)
                acc[j] = _mm256_fmadd_ps(dv, LOAD(xr + off[j] + (int64_t)ow * SW), acc[j]);
        }
        if (full < g->Wo) {   /* lanes past Wo: dy masked to 0 (the padded x is readable) */
            const __m256 dv = _mm256_maskload_ps(d + full, tail);
            for (j = 0; j < NT; j++)
                acc[j] = _mm256_fmadd_ps(dv, LOAD(xr + off[j] + (int64_t)full * SW), acc[j]);
        }
    }
    for (j = 0; j < NT; j++)
        dw[t0 + j] += hsum(acc[j]);
}

void cycnn_dwconv_bwd_filter_f32_avx2(const cycnn_dwconv_geom *g, const float *dy,
                                      const float *x, float *dw, float *ws)
{
    const int64_t Wp = padded_cols(g);
    const int T = g->R * g->S;
    int t0;
    pad_plane(g, x, ws, padded_rows(g), Wp);
    for (t0 = 0; t0 < T; t0 += 12) {
        switch (T - t0 < 12 ? T - t0 : 12) {
        case 1:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 1, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 1, 2, dw);
            break;
        case 2:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 2, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 2, 2, dw);
            break;
        case 3:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 3, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 3, 2, dw);
            break;
        case 4:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 4, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 4, 2, dw);
            break;
        case 5:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 5, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 5, 2, dw);
            break;
        case 6:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 6, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 6, 2, dw);
            break;
        case 7:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 7, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 7, 2, dw);
            break;
        case 8:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 8, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 8, 2, dw);
            break;
        case 9:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 9, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 9, 2, dw);
            break;
        case 10:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 10, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 10, 2, dw);
            break;
        case 11:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 11, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 11, 2, dw);
            break;
        default:
            if (g->sw == 1) dw_taps(g, dy, ws, Wp, t0, 12, 1, dw);
            else dw_taps(g, dy, ws, Wp, t0, 12, 2, dw);
            break;
        }
    }
}

#else
typedef int cycnn_depthwise_avx2_unused; /* ISO C: no empty translation units */
#endif
