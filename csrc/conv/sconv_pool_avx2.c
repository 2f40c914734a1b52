/* sconv_pool_avx2.c -- AVX2 2x2 / stride-2 max and average pooling of pairs of conv output rows
 * for the inference plan's fused conv + pool (the portable twin is pool_rows_portable() in
 * sconv_igemm.c, reached through cycnn_sconv_pool_tile(); tests compare the "generic" and
 * "avx2" GEMM paths, which select one or the other).
 *
 * What it computes, for the rows r0 and r1 = r0 + Wo of one plane and 0 <= j < Wq:
 *   max: out[j] = nanmax(nanmax(r0[2j], r1[2j]), nanmax(r0[2j+1], r1[2j+1]))
 *   avg: out[j] = ((r0[2j] + r1[2j]) + (r0[2j+1] + r1[2j+1])) * 0.25
 * nanmax(a, b) is a NaN when either is (a NaN propagates, as in the max-pool kernels). The
 * summation order is the portable one's, so both give bit-identical results.
 * Loop: 16 input columns (8 outputs) per step -- the two rows combined vertically, then the
 * even and odd columns separated with shuffles and combined; a partial last step is done
 * again over the last 8 outputs (overlapping), or, when Wq < 8, with masked loads and stores.
 * Reads only columns < 2*Wq, writes only out[0 .. Wq). Built with -mavx2 -mfma; only called
 * when the GEMM path has AVX2.
 */
#include <stddef.h>

#include "sconv_igemm.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CYCNN_GEMM_NO_X86)
#include <immintrin.h>

static inline __m256 nanmax8(__m256 a, __m256 b)
{
    /* max_ps(b, a) gives a when either is NaN; then take b where b is the NaN */
    return _mm256_blendv_ps(_mm256_max_ps(b, a), b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}

/* 8 outputs from 16 columns of r0 and r1, lanes >= n masked (loads and stores; n <= 8) */
static inline void step8(int pool, const float *r0, const float *r1, float *out, int n)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i lo = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * n), lane);
    const __m256i hi = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * n - 8), lane);
    const __m256i om = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
    __m256 a0, a1, b0, b1, v0, v1, m;
    if (n == 8) {
        a0 = _mm256_loadu_ps(r0);
        a1 = _mm256_loadu_ps(r0 + 8);
        b0 = _mm256_loadu_ps(r1);
        b1 = _mm256_loadu_ps(r1 + 8);
    } else {
        a0 = _mm256_maskload_ps(r0, lo);
        a1 = _mm256_maskload_ps(r0 + 8, hi);
        b0 = _mm256_maskload_ps(r1, lo);
        b1 = _mm256_maskload_ps(r1 + 8, hi);
    }
    if (pool == 1) {
        v0 = nanmax8(a0, b0);
        v1 = nanmax8(a1, b1);
        m = nanmax8(_mm256_shuffle_ps(v0, v1, 0x88), _mm256_shuffle_ps(v0, v1, 0xDD));
    } else {
        v0 = _mm256_add_ps(a0, b0);
        v1 = _mm256_add_ps(a1, b1);
        m = _mm256_mul_ps(_mm256_add_ps(_mm256_shuffle_ps(v0, v1, 0x88),    /* even + odd */
                                        _mm256_shuffle_ps(v0, v1, 0xDD)),
                          _mm256_set1_ps(0.25f));
    }
    m = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), 0xD8));  /* in order */
    if (n == 8)
        _mm256_storeu_ps(out, m);
    else
        _mm256_maskstore_ps(out, om, m);
}

void cycnn_sconv_pool2x2_rows_avx2(int pool, const float *r0, ptrdiff_t Wo, int Wq, float *out)
{
    const float *r1 = r0 + Wo;
    int j;
    for (j = 0; j + 8 <= Wq; j += 8)
        step8(pool, r0 + 2 * j, r1 + 2 * j, out + j, 8);
    if (j < Wq) {
        if (Wq >= 8)      /* the last 8 outputs again, overlapping: same values */
            step8(pool, r0 + 2 * (Wq - 8), r1 + 2 * (Wq - 8), out + Wq - 8, 8);
        else
            step8(pool, r0, r1, out, Wq);
    }
}

#else
typedef int cycnn_sconv_pool_avx2_unused; /* ISO C: no empty translation units */
#endif
