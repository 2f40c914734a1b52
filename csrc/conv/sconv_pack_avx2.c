/* sconv_pack_avx2.c -- AVX2 copy of one implicit-GEMM B micro-panel from a padded image
 * (stride-1 convolutions; the portable twin is pack_rows_portable() in sconv_igemm.c, and
 * tests compare the two through the "generic" and "avx2" GEMM paths); and the epilogue of one
 * register tile (+ bias, activation: cycnn_sconv_tile_epilogue_avx2, at the end; portable twin
 * epilogue() in sconv_igemm.c, the same operations in the same order).
 *
 * What it computes: for each segment q (a run of seg_len[q] pixels of the panel that lie in one
 * output row) and each depth row p < kc:
 *     dst[p*nr + seg_j[q] + t] = xp[taps[p] + seg_off[q] + t],   0 <= t < seg_len[q].
 * Loop order: segments outer, rows inner (a tight loop of 8-float loads and stores). A partial
 * 8-float chunk is a read-modify-write (blend), so lanes outside the segment keep their value
 * whatever order segments are written in; it may touch up to 7 floats past the end of dst
 * (the panel buffer carries that slack). Loads may read up to 7 floats past a segment (the
 * padded image carries that slack too). Built with -mavx2 -mfma; only called when
 * the selected GEMM path needs AVX2 anyway. No memory besides the operands.
 */
#include <stddef.h>

#include "sconv_igemm.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CYCNN_GEMM_NO_X86)
#include <immintrin.h>

void cycnn_sconv_pack_rows_avx2(int nr, ptrdiff_t kc, const ptrdiff_t *taps, const float *xp,
                                int nseg, const int *seg_j, const int *seg_len,
                                const ptrdiff_t *seg_off, float *dst)
{
    int q;
    for (q = 0; q < nseg; q++) {
        const float *src = xp + seg_off[q];
        float *d = dst + seg_j[q];
        const int len = seg_len[q];
        ptrdiff_t p;
        int t;
        if (len == 16) {
            for (p = 0; p < kc; p++) {
                const float *s = src + taps[p];
                float *o = d + p * nr;
                _mm256_storeu_ps(o, _mm256_loadu_ps(s));
                _mm256_storeu_ps(o + 8, _mm256_loadu_ps(s + 8));
            }
            continue;
        }
        for (t = 0; t < len; t += 8) {
            const int left = len - t < 8 ? len - t : 8;
            const __m256 mask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                _mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
            if (left == 8) {
                for (p = 0; p < kc; p++)
                    _mm256_storeu_ps(d + p * nr + t, _mm256_loadu_ps(src + taps[p] + t));
            } else {
                for (p = 0; p < kc; p++) {     /* read-modify-write: lanes past the segment keep */
                    float *o = d + p * nr + t; /* what is there (vmaskmovps stores are slow on */
                    _mm256_storeu_ps(o, _mm256_blendv_ps(_mm256_loadu_ps(o),       /* Zen) */
                                                         _mm256_loadu_ps(src + taps[p] + t),
                                                         mask));
                }
            }
        }
    }
}

/* The epilogue of one m x n register tile (n a multiple of 8), rows ldc apart:
 * c = act(c + bias[i]) -- the portable twin is epilogue() in sconv_igemm.c, the same
 * operations in the same order (act 1: v < 0 ? 0 : v, NaN kept; 2: v < 0 ? slope*v : v).
 * bias may be NULL. */
void cycnn_sconv_tile_epilogue_avx2(int m, int n, const float *bias, int act, float slope,
                                    float *c, ptrdiff_t ldc)
{
    const __m256 zero = _mm256_setzero_ps(), vs = _mm256_set1_ps(slope);
    int i, j;
    for (i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        const __m256 b = bias != NULL ? _mm256_broadcast_ss(bias + i) : zero;
        for (j = 0; j < n; j += 8) {
            __m256 v = _mm256_loadu_ps(ci + j);
            if (bias != NULL)
                v = _mm256_add_ps(v, b);
            if (act == 1)          /* (0 > v) ? 0 : v: NaN stays NaN */
                v = _mm256_max_ps(zero, v);
            else if (act == 2)
                v = _mm256_blendv_ps(v, _mm256_mul_ps(vs, v), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
            _mm256_storeu_ps(ci + j, v);
        }
    }
}

#else
typedef int cycnn_sconv_pack_avx2_unused; /* ISO C: no empty translation units */
#endif
