/* sconv_direct_avx2.c -- AVX2 kernels of the broadcast convolution (driver and portable twins
 * in sconv_direct.c, contract in sconv_direct.h; tests compare the "avx2" and "generic" paths).
 *
 * tile: m (1..6) pixels x 16 filters in 2m ymm accumulators (named, not an array: GCC keeps
 *   __m256 arrays in memory); per tap: one tap offset, 2 aligned loads of the filter panel, m
 *   broadcasts from the padded image (pixel j's pointer + the tap offset), 2m FMAs. m is a
 *   compile-time constant in each of the 6 instances. Partial sums come from / go to the
 *   pixel-major buffer (16 floats per pixel).
 * store: the buffer (np x 16) into y's rows by 8x8 transposes, + bias, ReLU keeping NaN; the
 *   last np % 8 pixels one by one.
 * Built with -mavx2 -mfma; only called when the selected GEMM path has AVX2. No memory besides
 * the operands.
 */
#include <stddef.h>

#include "sconv_direct.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CYCNN_GEMM_NO_X86)
#include <immintrin.h>

#include "../gemm/transpose8_avx2.h"

#define PIX_FMA(J)                                                                              \
    if (M > J) {                                                                                \
        const __m256 a = _mm256_broadcast_ss(x##J + off);                                       \
        c##J##0 = _mm256_fmadd_ps(a, w0, c##J##0);                                               \
        c##J##1 = _mm256_fmadd_ps(a, w1, c##J##1);                                               \
    }
#define PIX_LOAD(J)                                                                             \
    if (M > J && !first) {                                                                      \
        c##J##0 = _mm256_load_ps(acc + J * 16);                                                 \
        c##J##1 = _mm256_load_ps(acc + J * 16 + 8);                                             \
    }
#define PIX_STORE(J)                                                                            \
    if (M > J) {                                                                                \
        _mm256_store_ps(acc + J * 16, c##J##0);                                                 \
        _mm256_store_ps(acc + J * 16 + 8, c##J##1);                                             \
    }

static inline __attribute__((always_inline)) void
tile(const int M, const ptrdiff_t *poff, const float *xp, const ptrdiff_t *taps, ptrdiff_t kc,
     const float *w, float *acc, int first)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    const float *x0 = xp + poff[0];
    const float *x1 = M > 1 ? xp + poff[1] : x0, *x2 = M > 2 ? xp + poff[2] : x0;
    const float *x3 = M > 3 ? xp + poff[3] : x0, *x4 = M > 4 ? xp + poff[4] : x0;
    const float *x5 = M > 5 ? xp + poff[5] : x0;
    ptrdiff_t t;
    PIX_LOAD(0) PIX_LOAD(1) PIX_LOAD(2) PIX_LOAD(3) PIX_LOAD(4) PIX_LOAD(5)
    for (t = 0; t < kc; t++, w += 16) {
        const ptrdiff_t off = taps[t];
        const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
        PIX_FMA(0) PIX_FMA(1) PIX_FMA(2) PIX_FMA(3) PIX_FMA(4) PIX_FMA(5)
    }
    PIX_STORE(0) PIX_STORE(1) PIX_STORE(2) PIX_STORE(3) PIX_STORE(4) PIX_STORE(5)
}

#define TILE_INSTANCE(M)                                                                        \
    static void tile_##M(const ptrdiff_t *poff, const float *xp, const ptrdiff_t *taps,         \
                         ptrdiff_t kc, const float *w, float *acc, int first)                  \
    {                                                                                           \
        tile(M, poff, xp, taps, kc, w, acc, first);                                             \
    }
TILE_INSTANCE(1) TILE_INSTANCE(2) TILE_INSTANCE(3)
TILE_INSTANCE(4) TILE_INSTANCE(5) TILE_INSTANCE(6)

typedef void (*tile_fn)(const ptrdiff_t *, const float *, const ptrdiff_t *, ptrdiff_t,
                        const float *, float *, int);
static const tile_fn tiles[6] = { tile_1, tile_2, tile_3, tile_4, tile_5, tile_6 };

void cycnn_sconv_direct_tile_avx2(int m, const ptrdiff_t *poff, const float *xp,
                                  const ptrdiff_t *taps, ptrdiff_t kc, const float *w,
                                  float *acc, int first)
{
    tiles[m - 1](poff, xp, taps, kc, w, acc, first);
}

static inline __m256 epilogue(__m256 v, __m256 b, int relu)
{
    v = _mm256_add_ps(v, b);
    /* v < 0 -> 0; NaN compares false and stays */
    return relu ? _mm256_andnot_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ), v) : v;
}

void cycnn_sconv_direct_store_avx2(const float *acc, ptrdiff_t np, int kv, const float *bias,
                                   int relu, float *y, ptrdiff_t ldy)
{
    int h, v;
    for (h = 0; h < kv; h += 8) {             /* filters h .. h+7 */
        const int rows = kv - h < 8 ? kv - h : 8;
        float bl[8] = {0};
        __m256 bv;
        ptrdiff_t j = 0;
        for (v = 0; v < rows; v++)
            bl[v] = bias != NULL ? bias[h + v] : 0.0f;
        for (; j + 8 <= np; j += 8) {
            __m256 r[8];
            int p;
            for (p = 0; p < 8; p++)          /* pixel j+p: filters h .. h+7 */
                r[p] = _mm256_load_ps(acc + (j + p) * 16 + h);
            cycnn_transpose8_avx2(r);        /* r[v]: filter h+v at pixels j .. j+7 */
            for (v = 0; v < rows; v++) {
                bv = _mm256_set1_ps(bl[v]);
                _mm256_storeu_ps(y + (ptrdiff_t)(h + v) * ldy + j, epilogue(r[v], bv, relu));
            }
        }
        for (; j < np; j++)
            for (v = 0; v < rows; v++) {
                const float e = acc[j * 16 + h + v] + bl[v];
                y[(ptrdiff_t)(h + v) * ldy + j] = relu && e < 0.0f ? 0.0f : e;
            }
    }
}

#else
typedef int cycnn_sconv_direct_avx2_unused; /* ISO C: no empty translation units */
#endif
