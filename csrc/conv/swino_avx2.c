/* swino_avx2.c -- AVX2 transforms of the Winograd convolution (driver, design and portable
 * twins in swino.c, contract in swino.h; tests compare the "avx2" and "generic" paths).
 *
 * gather: 8 channel planes at a time, read row after row (8 sequential streams), 8 columns x
 *      8 channels loaded as 8 row pieces and transposed (the last 8 columns of a row overlap
 *      the previous 8 rather than going one by one); measured 28 us per 64 x 32 x 32 image
 *      where rows outer, channels inner took 32 (64 planes at one offset: 4 KiB aliasing).
 * in:  per tile and 8 channels: the 6x6 input vectors (unit stride in the HWC copy), then
 *      T = B^T d column by column and V = T B row by row, stored into V; B^T's rows factored
 *      over shared differences (bt6: 18 operations where its 26 terms take 26; the transform
 *      15% faster with its data in L2, the forward pass 2-3%).
 * out: per tile and 8 filters: the 36 vectors of M, S = A^T M, Y = S A, stored pixel-major
 *      into Z (bias and ReLU come with the store into y); A^T's rows factored as B^T's (at6).
 * dyt: per tile and 8 filters (weight gradient): the m x m vectors of dy, T = G_m g, then
 *      U = T G_m^T, stored into the block's Udy.
 * Each other sum is comb() / combn(): the non-zero coefficients of a constant
 * row in order, the first a multiply, the rest FMAs; the loops unroll at compile time so the
 * zero terms vanish.
 * Built with -mavx2 -mfma; only called when the selected GEMM path has AVX2.
 */
#include <stddef.h>

#include "swino.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CYCNN_GEMM_NO_X86)
#include <immintrin.h>
#include <string.h>

#include "../gemm/transpose8_avx2.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

void cycnn_swino_gather_avx2(const cycnn_conv_geom *g, int Cp, ptrdiff_t h0, ptrdiff_t h1,
                             ptrdiff_t Wx, const float *x, float *xt)
{
    const ptrdiff_t plane = (ptrdiff_t)g->H * g->W;
    const ptrdiff_t w0 = g->pl > 0 ? g->pl : 0, w1 = g->pl + g->W < Wx ? g->pl + g->W : Wx;
    const int c8 = w1 - w0 >= 8 ? g->C / 8 * 8 : 0;       /* channels copied 8 at a time */
    ptrdiff_t h, w;
    int c, i;
    for (h = h0; h < h1; h++) {                             /* what the copies leave: zeros */
        const ptrdiff_t ih = h - g->pt;
        float *d = xt + (h - h0) * Wx * Cp;
        if (ih < 0 || ih >= g->H || w1 <= w0) {
            memset(d, 0, (size_t)(Wx * Cp) * sizeof(float));
            continue;
        }
        memset(d, 0, (size_t)(w0 * Cp) * sizeof(float));
        memset(d + w1 * Cp, 0, (size_t)((Wx - w1) * Cp) * sizeof(float));
        for (w = w0; w < w1; w++)                           /* channels past c8 one by one */
            for (c = c8; c < Cp; c++)
                d[w * Cp + c] = c < g->C ? x[(c * g->H + ih) * (ptrdiff_t)g->W + w - g->pl] : 0.0f;
    }
    for (c = 0; c < c8; c += 8)            /* 8 channel planes read row after row */
        for (h = h0 > g->pt ? h0 : g->pt; h < h1 && h - g->pt < g->H; h++) {
            float *d = xt + (h - h0) * Wx * Cp + c;
            const float *src = x + (c * (ptrdiff_t)g->H + h - g->pt) * g->W - g->pl;
            for (w = w0; w < w1; w += 8) {                  /* 8 columns, the last overlapping */
                __m256 r[8];
                if (w + 8 > w1)
                    w = w1 - 8;
                for (i = 0; i < 8; i++)
                    r[i] = _mm256_loadu_ps(src + i * plane + w);
                cycnn_transpose8_avx2(r);
                for (i = 0; i < 8; i++)
                    _mm256_storeu_ps(d + (w + i) * Cp, r[i]);
            }
        }
}

/* sum over k < n of coef[k] * in[k * stride], the zero coefficients skipped */
ALWAYS_INLINE __m256 combn(const float *coef, int n, const __m256 *in, int stride)
{
    __m256 s = _mm256_setzero_ps();
    int k, first = 1;
#pragma GCC unroll 6
    for (k = 0; k < n; k++)
        if (coef[k] != 0.0f) {
            const __m256 c = _mm256_set1_ps(coef[k]);
            s = first ? _mm256_mul_ps(c, in[k * stride]) : _mm256_fmadd_ps(c, in[k * stride], s);
            first = 0;
        }
    return s;
}

ALWAYS_INLINE __m256 comb(const float *coef, const __m256 *in, int stride)
{
    return combn(coef, 6, in, stride);
}

/* B^T applied to d[0], d[st], ..., d[5 st] into o[0], o[ost], ..., o[5 ost], its rows
 * factored over the shared differences a = d4 - d2, b = d3 - d1, s = d2 + d3, t = d2 - d3
 * (18 operations where the 26 terms of the rows take 26; the same terms as CYCNN_SWINO_BT:
 * row 0 = (d0 + d4) - 1.5 b - 2 d2, row 1 = ((d4 - d1) - t) - 1.5 s, row 2 = ((d4 + d1) - s)
 * + 1.5 t, row 3 = a + 0.5 b, row 4 = a - 2 b, row 5 = (d1 + d5) - 1.5 a - 2 d3). */
ALWAYS_INLINE void bt6(const __m256 *d, int st, __m256 *o, int ost)
{
    const __m256 d0 = d[0], d1 = d[st], d2 = d[2 * st], d3 = d[3 * st], d4 = d[4 * st];
    const __m256 d5 = d[5 * st];
    const __m256 a = _mm256_sub_ps(d4, d2), b = _mm256_sub_ps(d3, d1);
    const __m256 s = _mm256_add_ps(d2, d3), t = _mm256_sub_ps(d2, d3);
    const __m256 half = _mm256_set1_ps(0.5f), c15 = _mm256_set1_ps(1.5f);
    const __m256 two = _mm256_set1_ps(2.0f);
    o[0] = _mm256_fnmadd_ps(two, d2, _mm256_fnmadd_ps(c15, b, _mm256_add_ps(d0, d4)));
    o[ost] = _mm256_fnmadd_ps(c15, s, _mm256_sub_ps(_mm256_sub_ps(d4, d1), t));
    o[2 * ost] = _mm256_fmadd_ps(c15, t, _mm256_sub_ps(_mm256_add_ps(d4, d1), s));
    o[3 * ost] = _mm256_fmadd_ps(half, b, a);
    o[4 * ost] = _mm256_fnmadd_ps(two, b, a);
    o[5 * ost] = _mm256_fnmadd_ps(two, d3, _mm256_fnmadd_ps(c15, a, _mm256_add_ps(d1, d5)));
}

void cycnn_swino_in_avx2(const float *xt, ptrdiff_t Wx, int Cp, int m, int tw, ptrdiff_t t0,
                         int nt, ptrdiff_t vs, float *V)
{
    int t, c, i, j, k;
    for (t = 0; t < nt; t++) {
        const ptrdiff_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        const float *base = xt + (ty * m * Wx + tx * m) * Cp;
        float *vt = V + (ptrdiff_t)t * Cp;
        for (c = 0; c < Cp; c += 8) {
            __m256 T[6][6];
#pragma GCC unroll 6
            for (j = 0; j < 6; j++) {                 /* column j of T = B^T d */
                __m256 d[6];
#pragma GCC unroll 6
                for (k = 0; k < 6; k++)
                    d[k] = _mm256_loadu_ps(base + (k * Wx + j) * Cp + c);
                bt6(d, 1, &T[0][j], 6);
            }
#pragma GCC unroll 6
            for (i = 0; i < 6; i++) {                 /* row i of V = T B */
                __m256 v[6];
                bt6(T[i], 1, v, 1);
#pragma GCC unroll 6
                for (j = 0; j < 6; j++)
                    _mm256_storeu_ps(vt + (i * 6 + j) * vs + c, v[j]);
            }
        }
    }
}

/* A^T (m x 6) applied to x[0], x[st], ..., x[5 st] into o[0], o[ost], ..., factored over
 * p = x1 + x2 and q = x1 - x2 (the points 1 and -1): row 0 = ((x0 + p) + x3) + x4, row 1 =
 * (q + 2 x3) - 0.5 x4 (+ x5 for m = 2), row 2 = (p + 4 x3) + 0.25 x4, row 3 = ((q + 8 x3) -
 * 0.125 x4) + x5: 12 operations for m = 4 where its 18 terms take 18. */
ALWAYS_INLINE void at6(const int m, const __m256 *x, int st, __m256 *o, int ost)
{
    const __m256 x1 = x[st], x2 = x[2 * st], x3 = x[3 * st], x4 = x[4 * st], x5 = x[5 * st];
    const __m256 p = _mm256_add_ps(x1, x2), q = _mm256_sub_ps(x1, x2);
    const __m256 r1 = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), x4,
                                       _mm256_fmadd_ps(_mm256_set1_ps(2.0f), x3, q));
    o[0] = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x[0], p), x3), x4);
    if (m == 2) {
        o[ost] = _mm256_add_ps(r1, x5);
        return;
    }
    o[ost] = r1;
    o[2 * ost] = _mm256_fmadd_ps(_mm256_set1_ps(0.25f), x4,
                                 _mm256_fmadd_ps(_mm256_set1_ps(4.0f), x3, p));
    o[3 * ost] = _mm256_add_ps(_mm256_fnmadd_ps(_mm256_set1_ps(0.125f), x4,
                                                _mm256_fmadd_ps(_mm256_set1_ps(8.0f), x3, q)),
                               x5);
}

ALWAYS_INLINE void out_tile(const int m, const float *M, int tb, int t, ptrdiff_t ty,
                            ptrdiff_t tx, int h, int Ho, int Wo, float *Z)
{
    __m256 Mx[36], S[4][6], Y[4][4];
    int xi, a, b, j;
#pragma GCC unroll 36
    for (xi = 0; xi < 36; xi++)
        Mx[xi] = _mm256_load_ps(M + ((ptrdiff_t)xi * tb + t) * 16 + h);
#pragma GCC unroll 6
    for (j = 0; j < 6; j++)                           /* S = A^T M, column by column */
        at6(m, &Mx[j], 6, &S[0][j], 6);
#pragma GCC unroll 4
    for (a = 0; a < m; a++)                           /* Y = S A, stored inside Ho x Wo */
        at6(m, S[a], 1, Y[a], 1);
    if (ty * m + m <= Ho && tx * m + m <= Wo) {
#pragma GCC unroll 4
        for (a = 0; a < m; a++)
#pragma GCC unroll 4
            for (b = 0; b < m; b++)
                _mm256_store_ps(Z + ((ty * m + a) * Wo + tx * m + b) * 16 + h, Y[a][b]);
        return;
    }
    for (a = 0; a < m && ty * m + a < Ho; a++)
        for (b = 0; b < m && tx * m + b < Wo; b++)
            _mm256_store_ps(Z + ((ty * m + a) * Wo + tx * m + b) * 16 + h, Y[a][b]);
}

void cycnn_swino_out_avx2(const float *M, int tb, int nt, int m, ptrdiff_t t0, int tw, int Ho,
                          int Wo, float *Z)
{
    int t, h;
    for (t = 0; t < nt; t++) {
        const ptrdiff_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        for (h = 0; h < 16; h += 8) {
            if (m == 2)
                out_tile(2, M, tb, t, ty, tx, h, Ho, Wo, Z);
            else
                out_tile(4, M, tb, t, ty, tx, h, Ho, Wo, Z);
        }
    }
}

ALWAYS_INLINE void dyt_tile(const int m, const float *G, const float *base, ptrdiff_t Wd,
                            int Kp, float *Udy, int tb, int t)
{
    __m256 g[4][4], T[6][4];
    int i, j, a, b;
#pragma GCC unroll 4
    for (a = 0; a < m; a++)
#pragma GCC unroll 4
        for (b = 0; b < m; b++)
            g[a][b] = _mm256_loadu_ps(base + (a * Wd + b) * Kp);
#pragma GCC unroll 6
    for (i = 0; i < 6; i++)                           /* T = G g */
#pragma GCC unroll 4
        for (b = 0; b < m; b++)
            T[i][b] = combn(G + i * m, m, &g[0][b], 4);
#pragma GCC unroll 6
    for (i = 0; i < 6; i++)                           /* U = T G^T */
#pragma GCC unroll 6
        for (j = 0; j < 6; j++) {
            const __m256 s = combn(G + j * m, m, T[i], 1);
            _mm256_store_ps(Udy + ((ptrdiff_t)(i * 6 + j) * tb + t) * 16, s);
        }
}

void cycnn_swino_dyt_avx2(const float *dyt, ptrdiff_t Wd, int Kp, int m, int tw, ptrdiff_t t0,
                          int nt, int tb, int k0, float *Udy)
{
    int t, h;
    for (t = 0; t < nt; t++) {
        const ptrdiff_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        const float *base = dyt + (ty * m * Wd + tx * m) * Kp + k0;
        for (h = 0; h < 16; h += 8) {
            if (m == 2)
                dyt_tile(2, &CYCNN_SWINO_GD2[0][0], base + h, Wd, Kp, Udy + h, tb, t);
            else
                dyt_tile(4, &CYCNN_SWINO_GD4[0][0], base + h, Wd, Kp, Udy + h, tb, t);
        }
    }
}

#endif
