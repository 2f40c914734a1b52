/* sconv_dw_avx2.c -- AVX2 kernels of the float weight gradient (driver and portable twins in
 * sconv_dw.c; contract in sconv_dw.h; tests compare the "avx2" and "generic" GEMM paths).
 *
 * pack: a panel of dy^T (pixels x 8 or 16 filters) by 8x8 in-register transposes of dy rows,
 *   the transposed vectors summed on the way into db (a scalar loop for the last np % 8 pixels).
 * tile: m (1..6) taps x 16 (or 8) filters in 2m (or m) ymm accumulators, held over all pixels
 *   of the panel: per pixel, 2 (1) aligned panel loads, m broadcasts straight from the padded
 *   image, 2m (m) FMAs -- the 6x16 GEMM micro-kernel's arithmetic, with A read in place.
 *   m and the width are compile-time constants in each of the 12 instances (switch below), so
 *   the accumulators stay in registers. The sum is added to c once per call.
 * Built with -mavx2 -mfma; only called when the selected GEMM path has AVX2. No memory besides
 * the operands.
 */
#include <stddef.h>

#include "sconv_dw.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CYCNN_GEMM_NO_X86)
#include <immintrin.h>

#include "../gemm/transpose8_avx2.h"

void cycnn_sconv_dw_pack_avx2(int kw, int kv, const float *dyk, ptrdiff_t L, ptrdiff_t l0,
                              ptrdiff_t np, float *b, float *db)
{
    int h, v;
    for (h = 0; h < kw; h += 8) {            /* filters h .. h+7 of the panel */
        const int valid = kv - h < 8 ? kv - h : 8;
        const float *rows = dyk + (ptrdiff_t)h * L + l0;
        __m256 sum = _mm256_setzero_ps();
        float tail[8] = {0}, part[8];
        ptrdiff_t j = 0;
        if (valid <= 0) {
            for (j = 0; j < np; j++)
                _mm256_store_ps(b + j * kw + h, sum);
            continue;
        }
        for (; j + 8 <= np; j += 8) {
            __m256 t[8];
            int p;
            for (v = 0; v < 8; v++)
                t[v] = v < valid ? _mm256_loadu_ps(rows + v * L + j) : _mm256_setzero_ps();
            cycnn_transpose8_avx2(t);
            for (p = 0; p < 8; p++) {
                _mm256_store_ps(b + (j + p) * kw + h, t[p]);
                sum = _mm256_add_ps(sum, t[p]);
            }
        }
        for (; j < np; j++)
            for (v = 0; v < 8; v++) {
                const float e = v < valid ? rows[v * L + j] : 0.0f;
                b[j * kw + h + v] = e;
                tail[v] += e;
            }
        if (db != NULL) {
            _mm256_storeu_ps(part, sum);
            for (v = 0; v < valid; v++)
                db[h + v] += part[v] + tail[v];
        }
    }
}

/* One row of the tile: tap J's broadcast times the panel's one or two vectors. */
#define TAP_FMA(J)                                                                              \
    if (M > J) {                                                                                \
        const __m256 a = _mm256_broadcast_ss(x##J + ix);                                        \
        c##J##0 = _mm256_fmadd_ps(a, b0, c##J##0);                                               \
        if (NV == 2)                                                                            \
            c##J##1 = _mm256_fmadd_ps(a, b1, c##J##1);                                           \
    }
#define TAP_STORE(J)                                                                            \
    if (M > J) {                                                                                \
        _mm256_storeu_ps(t + J * 16, c##J##0);                                                  \
        if (NV == 2)                                                                            \
            _mm256_storeu_ps(t + J * 16 + 8, c##J##1);                                          \
    }

/* (named accumulators, not arrays: GCC keeps an array of __m256 in memory) */
static inline __attribute__((always_inline)) void
tile(const int M, const int NV, int kv, const ptrdiff_t *taps, const float *xp, int nseg,
     const ptrdiff_t *seg_off, const int *seg_len, ptrdiff_t sw, const float *b, float *c,
     ptrdiff_t ldc)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    float t[6 * 16];
    int j, v, q;
    for (q = 0; q < nseg; q++) {
        const float *xs = xp + seg_off[q];
        const float *x0 = xs + taps[0];
        const float *x1 = M > 1 ? xs + taps[1] : x0, *x2 = M > 2 ? xs + taps[2] : x0;
        const float *x3 = M > 3 ? xs + taps[3] : x0, *x4 = M > 4 ? xs + taps[4] : x0;
        const float *x5 = M > 5 ? xs + taps[5] : x0;
        const float *bend = b + (ptrdiff_t)seg_len[q] * 8 * NV;
        ptrdiff_t ix = 0;
        for (; b < bend; ix += sw, b += 8 * NV) {
            const __m256 b0 = _mm256_load_ps(b);
            const __m256 b1 = NV == 2 ? _mm256_load_ps(b + 8) : b0;
            TAP_FMA(0) TAP_FMA(1) TAP_FMA(2) TAP_FMA(3) TAP_FMA(4) TAP_FMA(5)
        }
    }
    TAP_STORE(0) TAP_STORE(1) TAP_STORE(2) TAP_STORE(3) TAP_STORE(4) TAP_STORE(5)
    for (j = 0; j < M; j++) {
        float *cj = c + j * ldc;
        const float *tj = t + j * 16;
        if (kv == 8 * NV) {
            _mm256_storeu_ps(cj, _mm256_add_ps(_mm256_loadu_ps(cj), _mm256_loadu_ps(tj)));
            if (NV == 2)
                _mm256_storeu_ps(cj + 8, _mm256_add_ps(_mm256_loadu_ps(cj + 8),
                                                       _mm256_loadu_ps(tj + 8)));
        } else {
            for (v = 0; v < kv; v++)
                cj[v] += tj[v];
        }
    }
}

#define TILE_INSTANCE(M, NV)                                                                    \
    static void tile_##M##_##NV(int kv, const ptrdiff_t *taps, const float *xp, int nseg,      \
                                const ptrdiff_t *seg_off, const int *seg_len, ptrdiff_t sw,    \
                                const float *b, float *c, ptrdiff_t ldc)                       \
    {                                                                                           \
        tile(M, NV, kv, taps, xp, nseg, seg_off, seg_len, sw, b, c, ldc);                       \
    }
TILE_INSTANCE(1, 1) TILE_INSTANCE(2, 1) TILE_INSTANCE(3, 1)
TILE_INSTANCE(4, 1) TILE_INSTANCE(5, 1) TILE_INSTANCE(6, 1)
TILE_INSTANCE(1, 2) TILE_INSTANCE(2, 2) TILE_INSTANCE(3, 2)
TILE_INSTANCE(4, 2) TILE_INSTANCE(5, 2) TILE_INSTANCE(6, 2)

typedef void (*tile_fn)(int, const ptrdiff_t *, const float *, int, const ptrdiff_t *,
                        const int *, ptrdiff_t, const float *, float *, ptrdiff_t);
static const tile_fn tiles[2][6] = {
    { tile_1_1, tile_2_1, tile_3_1, tile_4_1, tile_5_1, tile_6_1 },
    { tile_1_2, tile_2_2, tile_3_2, tile_4_2, tile_5_2, tile_6_2 },
};

void cycnn_sconv_dw_tile_avx2(int m, int kw, int kv, const ptrdiff_t *taps, const float *xp,
                              int nseg, const ptrdiff_t *seg_off, const int *seg_len,
                              ptrdiff_t sw, const float *b, float *c, ptrdiff_t ldc)
{
    tiles[kw == 16][m - 1](kv, taps, xp, nseg, seg_off, seg_len, sw, b, c, ldc);
}

#else
typedef int cycnn_sconv_dw_avx2_unused; /* ISO C: no empty translation units */
#endif
