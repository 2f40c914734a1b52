/* gemm_pack_avx2.c -- AVX2 packing for the transposing case (used by the avx2 and avx512
 * paths; both require AVX2).
 *
 * Packing w lines (rows of A, or columns of B) that are each contiguous along k (ks == 1,
 * e.g. row-major A, or B = X^T) into the k-major micro-panel layout dst[p*w + l] is a
 * w x kc -> kc x w transpose. The portable code (pack.c) does it one scalar at a time with
 * stride-w stores; here 8x8 (float) / 4x4 (double) blocks are transposed in registers
 * (unpack / shuffle / 128-bit permutes), so each source line is read with full-width loads
 * and each packed row written with full-width stores.
 * Panels of 6 lines (the avx2 path's A) are transposed as 8x8 blocks with 2 zero lines.
 * Other layouts (unit-stride lines, general strides), partial panels and other widths that
 * are not a multiple of the block fall back to the portable routines. Same contract as
 * cycnn_[sd]pack_[ab] (gemm_internal.h). Memory: only the destination buffer.
 */
#include "gemm_internal.h"

#if CYCNN_GEMM_X86
#include <immintrin.h>

#include "transpose8_avx2.h"

/* Transpose the 8x8 block src[l*ls + p] (l, p < 8) into dst[p*w + l]. */
static inline void transpose_8x8_ps(const float *src, ptrdiff_t ls, float *dst, int w)
{
    __m256 r[8];
    int q;
    for (q = 0; q < 8; q++)
        r[q] = _mm256_loadu_ps(src + q * ls);
    cycnn_transpose8_avx2(r);
    for (q = 0; q < 8; q++)
        _mm256_storeu_ps(dst + q * w, r[q]);
}

/* Full 6-line panels (the 6x16 kernel's A: 6 rows of a row-major A, each contiguous along
 * k) into dst[p*6 + l]: 8 depths at a time, the 6 lines loaded as 8-wide vectors (2 zero
 * lines), transposed in registers, and the 8 packed rows of 6 stored with overlapping 8-wide
 * stores in increasing order (each store's 2 extra values are overwritten by the next; the
 * last row is stored as 4 + 2, so nothing is written past the 48 values). The depths past
 * the last multiple of 8 and a partial last panel go the portable way. */
static void spack_lines6_t(int total, int kc, const float *src, ptrdiff_t ls, float *dst)
{
    int l0, p, l;
    for (l0 = 0; l0 + 6 <= total; l0 += 6) {
        const float *s = src + l0 * ls;
        for (p = 0; p + 8 <= kc; p += 8) {
            __m256 r[8];
            float *d = dst + p * 6;
            int q;
            for (q = 0; q < 6; q++)
                r[q] = _mm256_loadu_ps(s + q * ls + p);
            r[6] = r[7] = _mm256_setzero_ps();
            cycnn_transpose8_avx2(r);
            for (q = 0; q < 7; q++)
                _mm256_storeu_ps(d + q * 6, r[q]);
            _mm_storeu_ps(d + 42, _mm256_castps256_ps128(r[7]));
            _mm_storel_pi((__m64 *)(d + 46), _mm256_extractf128_ps(r[7], 1));
        }
        for (; p < kc; p++)
            for (l = 0; l < 6; l++)
                dst[p * 6 + l] = s[l * ls + p];
        dst += (ptrdiff_t)6 * kc;
    }
    if (l0 < total)                   /* last, partial panel: portable (zero-pads) */
        cycnn_spack_a(6, total - l0, kc, src + l0 * ls, ls, 1, dst);
}

/* Transpose the 4x4 block src[l*ls + p] (l, p < 4) into dst[p*w + l]. */
static inline void transpose_4x4_pd(const double *src, ptrdiff_t ls, double *dst, int w)
{
    __m256d r0 = _mm256_loadu_pd(src + 0 * ls), r1 = _mm256_loadu_pd(src + 1 * ls);
    __m256d r2 = _mm256_loadu_pd(src + 2 * ls), r3 = _mm256_loadu_pd(src + 3 * ls);
    __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(dst + 0 * w, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(dst + 1 * w, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(dst + 2 * w, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(dst + 3 * w, _mm256_permute2f128_pd(t1, t3, 0x31));
}

/* total lines of kc values (line l, depth p at src[l*ls + p]) -> panels of w lines. */
#define DEFINE_TRANSPOSE_PACK(NAME, T, BLK, TRANSPOSE, FALLBACK_LINES)                      \
static void NAME(int w, int total, int kc, const T *src, ptrdiff_t ls, T *dst)              \
{                                                                                           \
    int l0, lb, p, l;                                                                       \
    for (l0 = 0; l0 + w <= total; l0 += w) {                                                \
        const T *s = src + l0 * ls;                                                         \
        /* BLK lines at a time along all of k: only BLK source streams are live, which      \
         * avoids cache-set thrashing when ls is a multiple of 4 KiB. */                    \
        for (lb = 0; lb < w; lb += BLK)                                                     \
            for (p = 0; p + BLK <= kc; p += BLK)                                            \
                TRANSPOSE(s + lb * ls + p, ls, dst + p * w + lb, w);                        \
        p = kc - kc % BLK;                                                                  \
        for (; p < kc; p++)                                                                 \
            for (l = 0; l < w; l++)                                                         \
                dst[p * w + l] = s[l * ls + p];                                             \
        dst += (ptrdiff_t)w * kc;                                                           \
    }                                                                                       \
    if (l0 < total)                   /* last, partial panel: portable (zero-pads) */       \
        FALLBACK_LINES(w, total - l0, kc, src + l0 * ls, ls, dst);                          \
}

/* The portable packers take (A, rsa, csa) / (B, rsb, csb); adapt them to "lines". */
static void spack_lines_portable(int w, int n, int kc, const float *src, ptrdiff_t ls,
                                 float *dst)
{
    cycnn_spack_a(w, n, kc, src, ls, 1, dst);
}
static void dpack_lines_portable(int w, int n, int kc, const double *src, ptrdiff_t ls,
                                 double *dst)
{
    cycnn_dpack_a(w, n, kc, src, ls, 1, dst);
}

DEFINE_TRANSPOSE_PACK(spack_lines_t, float, 8, transpose_8x8_ps, spack_lines_portable)
DEFINE_TRANSPOSE_PACK(dpack_lines_t, double, 4, transpose_4x4_pd, dpack_lines_portable)

void cycnn_spack_a_avx2(int mr, int mc, int kc, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                        float *Ap)
{
    if (csa == 1 && rsa != 1 && mr % 8 == 0)
        spack_lines_t(mr, mc, kc, A, rsa, Ap);
    else if (csa == 1 && rsa != 1 && mr == 6)
        spack_lines6_t(mc, kc, A, rsa, Ap);
    else
        cycnn_spack_a(mr, mc, kc, A, rsa, csa, Ap);
}

void cycnn_spack_b_avx2(int nr, int kc, int nc, const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                        float *Bp)
{
    if (rsb == 1 && csb != 1 && nr % 8 == 0)
        spack_lines_t(nr, nc, kc, B, csb, Bp);
    else
        cycnn_spack_b(nr, kc, nc, B, rsb, csb, Bp);
}

void cycnn_dpack_a_avx2(int mr, int mc, int kc, const double *A, ptrdiff_t rsa,
                        ptrdiff_t csa, double *Ap)
{
    if (csa == 1 && rsa != 1 && mr % 4 == 0)
        dpack_lines_t(mr, mc, kc, A, rsa, Ap);
    else
        cycnn_dpack_a(mr, mc, kc, A, rsa, csa, Ap);
}

void cycnn_dpack_b_avx2(int nr, int kc, int nc, const double *B, ptrdiff_t rsb,
                        ptrdiff_t csb, double *Bp)
{
    if (rsb == 1 && csb != 1 && nr % 4 == 0)
        dpack_lines_t(nr, nc, kc, B, csb, Bp);
    else
        cycnn_dpack_b(nr, kc, nc, B, rsb, csb, Bp);
}

#else
typedef int cycnn_gemm_pack_avx2_unused; /* ISO C: no empty translation units */
#endif
