/* sconv_dxfew_avx2.c -- AVX2 tile loop of the few-channel dx kernel (driver and portable twin in
 * sconv_dxfew.c, contract in sconv_dxfew.h; tests compare the "avx2" and "generic" paths with
 * the reference).
 *
 * tile: T (1..6) taps x NV (1..4) vectors of 8 pixels, T*NV <= 12 named accumulators (GCC keeps
 *   __m256 arrays in memory); per k: T broadcasts of the packed weights, NV unaligned loads of
 *   dy, T*NV FMAs (registers: 12 accumulators + the fewer of the T weights and the NV pixel
 *   vectors, held while the other operand streams through one register). Then the fused
 *   col2im: each accumulator ANDed with its vector's column mask (an exact 0 where the tap's
 *   column falls outside the image, even for an infinity) and added into the padded dx plane
 *   (unaligned load, add, store). T and NV are compile-time constants in each of the 19
 *   instances.
 * tiles: the loop over pixel tiles | c | s | tap groups; a tile's dy is first copied contiguous
 *   when the driver asks (pk: rows of dy 4 KiB apart would share one L1 set); when dy is cold
 *   (not just read by the weight gradient) the K rows of the tile after next are prefetched
 *   into L2: K streams are more than the hardware prefetchers follow (1.1x for a dx alone,
 *   lenet-c1 and RGB 3x3; slower when dy is in L2 already).
 * Built with -mavx2 -mfma; only called when the selected GEMM path has AVX2. No memory besides
 * the operands.
 */
#include <stddef.h>

#include "sconv_dxfew.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CYCNN_GEMM_NO_X86)
#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define R6(X, v) X(0, v) X(1, v) X(2, v) X(3, v) X(4, v) X(5, v)
#define RV(X) R6(X, 0) R6(X, 1) R6(X, 2) R6(X, 3)

#define DECL(r, v) __m256 a##r##_##v = zero;
#define WB(r) const __m256 w##r = T > r ? _mm256_broadcast_ss(wk + r) : zero;
#define FMA(r, v)                                                                              \
    if (T > r && NV > v)                                                                       \
        a##r##_##v = _mm256_fmadd_ps(x##v, w##r, a##r##_##v);
#define XV(v)                                                                                  \
    if (NV > v) {                                                                              \
        const __m256 x##v = _mm256_loadu_ps(d + v * 8);                                        \
        R6(FMA, v)                                                                             \
    }
#define XL(v) const __m256 x##v = NV > v ? _mm256_loadu_ps(d + v * 8) : zero;
#define FMAW(r, v)                                                                             \
    if (NV > v)                                                                                \
        a##r##_##v = _mm256_fmadd_ps(x##v, w, a##r##_##v);
#define WR(r)                                                                                  \
    if (T > r) {                                                                               \
        const __m256 w = _mm256_broadcast_ss(wk + r);                                          \
        FMAW(r, 0) FMAW(r, 1) FMAW(r, 2) FMAW(r, 3)                                            \
    }
#define MASK(v)                                                                                \
    const __m256i c##v = NV > v ? _mm256_loadu_si256((const __m256i *)(col + v * 8)) : izero;  \
    const __m256 m##v = _mm256_castsi256_ps(_mm256_and_si256(_mm256_cmpgt_epi32(c##v, lo1),    \
                                                             _mm256_cmpgt_epi32(hi, c##v)));
#define STORE(r, v)                                                                            \
    if (T > r && NV > v) {                                                                     \
        float *o = out + r * W + v * 8;                                                        \
        _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), _mm256_and_ps(a##r##_##v, m##v))); \
    }

/* out[r*W + j] += (lo <= col[j] < hi) ? sum_k wg[k*T + r] * dy[k*ldy + j] : 0, j < 8*NV */
ALWAYS_INLINE void tile(const int T, const int NV, int K, const float *dy, ptrdiff_t ldy,
                        const float *wg, const int *col, int lo, int hi_, float *out,
                        ptrdiff_t W)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256i izero = _mm256_setzero_si256();
    const __m256i lo1 = _mm256_set1_epi32(lo - 1), hi = _mm256_set1_epi32(hi_);
    int k;
    RV(DECL)
    for (k = 0; k < K; k++) {
        const float *wk = wg + k * T;
        const float *d = dy + k * ldy;
        if (T > NV) {      /* NV pixel vectors in registers, one weight at a time */
            XL(0) XL(1) XL(2) XL(3)
            WR(0) WR(1) WR(2) WR(3) WR(4) WR(5)
        } else {           /* T weights in registers, one pixel vector at a time */
            WB(0) WB(1) WB(2) WB(3) WB(4) WB(5)
            XV(0) XV(1) XV(2) XV(3)
        }
    }
    {
        MASK(0) MASK(1) MASK(2) MASK(3)
        RV(STORE)
    }
}

typedef void (*tile_fn)(int, const float *, ptrdiff_t, const float *, const int *, int, int,
                        float *, ptrdiff_t);

#define INST(t, nv)                                                                            \
    static void tile_##t##_##nv(int K, const float *dy, ptrdiff_t ldy, const float *wg,          \
                                const int *col, int lo, int hi, float *out, ptrdiff_t W)       \
    {                                                                                          \
        tile(t, nv, K, dy, ldy, wg, col, lo, hi, out, W);                                      \
    }
INST(1, 1) INST(1, 2) INST(1, 3) INST(1, 4)
INST(2, 1) INST(2, 2) INST(2, 3) INST(2, 4)
INST(3, 1) INST(3, 2) INST(3, 3) INST(3, 4)
INST(4, 1) INST(4, 2) INST(4, 3)
INST(5, 1) INST(5, 2)
INST(6, 1) INST(6, 2)

static const tile_fn TILES[6][4] = {
    {tile_1_1, tile_1_2, tile_1_3, tile_1_4},
    {tile_2_1, tile_2_2, tile_2_3, tile_2_4},
    {tile_3_1, tile_3_2, tile_3_3, tile_3_4},
    {tile_4_1, tile_4_2, tile_4_3, NULL},
    {tile_5_1, tile_5_2, NULL, NULL},
    {tile_6_1, tile_6_2, NULL, NULL},
};

void cycnn_sconv_dxfew_tiles_avx2(int K, int C, int R, int S, int tg, int nv,
                                  const float *dy, ptrdiff_t ldy, ptrdiff_t p0, ptrdiff_t p1,
                                  const int *col, const float *wp, ptrdiff_t W, int pl,
                                  float *buf, ptrdiff_t cs, float *pk, int cold)
{
    const ptrdiff_t n = 8 * nv;
    ptrdiff_t p, k, j;
    int c, s, r0;
    for (p = p0; p < p1; p += n) {
        const float *dyt = pk != NULL ? pk : dy + (p - p0);
        const ptrdiff_t ld = pk != NULL ? n : ldy;
        for (k = 0; pk != NULL && k < K; k++)    /* the tile's dy, contiguous */
            for (j = 0; j < n; j += 8)
                _mm256_store_ps(pk + k * n + j, _mm256_loadu_ps(dy + k * ldy + (p - p0) + j));
        if (cold && p + 2 * n < p1)     /* the K rows of the tile after next, into L2 */
            for (k = 0; k < K; k++)
                for (j = 0; j < n; j += 16)
                    _mm_prefetch((const char *)(dy + k * ldy + (p + 2 * n - p0) + j), _MM_HINT_T1);
        for (c = 0; c < C; c++)
            for (s = 0; s < S; s++) {
                const int lo = pl - s, hi = (int)W + pl - s;
                for (r0 = 0; r0 < R; r0 += tg) {
                    const int T = R - r0 < tg ? R - r0 : tg;
                    TILES[T - 1][nv - 1](K, dyt, ld, wp + (((ptrdiff_t)c * S + s) * R + r0) * K,
                                         col + p, lo, hi,
                                         buf + c * cs + p + (ptrdiff_t)r0 * W + s - pl, W);
                }
            }
    }
}

#else
typedef int cycnn_sconv_dxfew_avx2_unused; /* ISO C: no empty translation units */
#endif
