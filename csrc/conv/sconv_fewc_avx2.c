/* sconv_fewc_avx2.c -- AVX2 kernels of the few-channel convolution (driver and portable twins
 * in sconv_fewc.c, contract in sconv_fewc.h; tests compare the "avx2" and "generic" paths).
 *
 * fwd: F filters x NV vectors of 8 output pixels (F * NV <= 12 accumulators, named, not an
 *   array: GCC keeps __m256 arrays in memory); per tap: NV unaligned loads of the shifted
 *   copies, F broadcasts of the filter block, F * NV FMAs. The accumulators start at the bias
 *   (or y's partial sums) and are stored with the ReLU; the last vector is masked when it has
 *   fewer than 8 pixels. F and NV are compile-time constants in each of the 25 instances.
 * dw: F (<= 2) filters x T (<= 5) taps of vector accumulators (+ F for db) over the pixels; the
 *   last, partial vector is loaded masked (dy AND the copies: a masked-off pixel contributes
 *   an exact 0 even where the copies hold an infinity). When dy sits 16 bytes past a 32-byte
 *   boundary (rows a multiple of 8 floats apart) the vectors start 4 pixels early, so that
 *   dy's loads are aligned, and the lane halves are swapped back at the end: the same sums bit
 *   for bit (lenet-c1 dw + db ~2-4% faster than with split loads).
 * cl_tile: channels-last, 8 pixels x 8 channel lanes; S (1..7) weight vectors in registers, the
 *   8 + S - 1 pixel vectors of a row loaded once each; lanes summed by an 8x8 transpose.
 * build / cl_build: the shifted copies (masked loads of the image rows) and the channels-last
 *   copy (8x8 transposes).
 * Built with -mavx2 -mfma; only called when the selected GEMM path has AVX2. No memory besides
 * the operands.
 */
#include <stddef.h>
#include <stdint.h>

#include "sconv_fewc.h"

#if (defined(__x86_64__) || defined(__i386__)) && !defined(CYCNN_GEMM_NO_X86)
#include <immintrin.h>

#include "../gemm/transpose8_avx2.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

static const int MASK_LANES[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* lanes < n set (1 <= n <= 8) */
ALWAYS_INLINE __m256i lane_mask(int n)
{
    return _mm256_loadu_si256((const __m256i *)(MASK_LANES + 8 - n));
}

#define M12(X, f) X(f, 0) X(f, 1) X(f, 2) X(f, 3) X(f, 4) X(f, 5) X(f, 6) X(f, 7) X(f, 8) \
    X(f, 9) X(f, 10) X(f, 11)
#define FM(X) M12(X, 0) M12(X, 1) M12(X, 2) M12(X, 3)
#define V12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

#define FWD_DECL(f, m) __m256 a##f##_##m = zero;
#define FWD_INIT(f, m)                                                                          \
    if (F > f && NV > m) {                                                                      \
        if (first)                                                                              \
            a##f##_##m = b##f;                                                                  \
        else if (m == NV - 1 && nlast < 8)                                                      \
            a##f##_##m = _mm256_maskload_ps(y + f * ldy + m * 8, tail);                         \
        else                                                                                    \
            a##f##_##m = _mm256_loadu_ps(y + f * ldy + m * 8);                                  \
    }
#define FWD_X(m) const __m256 x##m = NV > m ? _mm256_loadu_ps(xt + m * 8) : zero;
#define FWD_FMA(f, m)                                                                           \
    if (F > f && NV > m)                                                                        \
        a##f##_##m = _mm256_fmadd_ps(x##m, w##f, a##f##_##m);
#define FWD_W(f) const __m256 w##f = F > f ? _mm256_broadcast_ss(wt + f) : zero;
#define FWD_STORE(f, m)                                                                         \
    if (F > f && NV > m) {                                                                      \
        __m256 v = a##f##_##m;                                                                  \
        if (relu) /* v < 0 -> 0; NaN compares false and stays */                                \
            v = _mm256_andnot_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), v);                        \
        if (m == NV - 1 && nlast < 8)                                                           \
            _mm256_maskstore_ps(y + f * ldy + m * 8, tail, v);                                  \
        else                                                                                    \
            _mm256_storeu_ps(y + f * ldy + m * 8, v);                                           \
    }

ALWAYS_INLINE void fwd1(const int F, const int NV, int nlast, const float *xc,
                        const ptrdiff_t *toff, ptrdiff_t nt, const float *w, int first,
                        const float *bias, int relu, float *y, ptrdiff_t ldy)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256i tail = lane_mask(nlast);
    const __m256 b0 = bias != NULL ? _mm256_set1_ps(bias[0]) : zero;
    const __m256 b1 = bias != NULL && F > 1 ? _mm256_set1_ps(bias[1]) : zero;
    const __m256 b2 = bias != NULL && F > 2 ? _mm256_set1_ps(bias[2]) : zero;
    const __m256 b3 = bias != NULL && F > 3 ? _mm256_set1_ps(bias[3]) : zero;
    ptrdiff_t t;
    FM(FWD_DECL)
    FM(FWD_INIT)
    for (t = 0; t < nt; t++) {
        const float *xt = xc + toff[t];
        const float *wt = w + t * F;
        V12(FWD_X)
        {
            FWD_W(0)
            M12(FWD_FMA, 0)
        }
        if (F > 1) {
            FWD_W(1)
            M12(FWD_FMA, 1)
        }
        if (F > 2) {
            FWD_W(2)
            M12(FWD_FMA, 2)
        }
        if (F > 3) {
            FWD_W(3)
            M12(FWD_FMA, 3)
        }
    }
    FM(FWD_STORE)
}

/* ntiles tiles of NV vectors, 8*NV pixels apart; the last vector of the last one has nlast
 * pixels */
ALWAYS_INLINE void fwd(const int F, const int NV, ptrdiff_t ntiles, int nlast, const float *xc,
                       const ptrdiff_t *toff, ptrdiff_t nt, const float *w, int first,
                       const float *bias, int relu, float *y, ptrdiff_t ldy)
{
    ptrdiff_t i;
    for (i = 0; i < ntiles - 1; i++, xc += 8 * NV, y += 8 * NV)
        fwd1(F, NV, 8, xc, toff, nt, w, first, bias, relu, y, ldy);
    fwd1(F, NV, nlast, xc, toff, nt, w, first, bias, relu, y, ldy);
}

typedef void (*fwd_fn)(ptrdiff_t, int, const float *, const ptrdiff_t *, ptrdiff_t, const float *,
                       int, const float *, int, float *, ptrdiff_t);

#define FWD_INSTANCE(F, NV)                                                                     \
    static void fwd_##F##_##NV(ptrdiff_t ntiles, int nlast, const float *xc,                    \
                               const ptrdiff_t *toff, ptrdiff_t nt, const float *w, int first,  \
                               const float *bias, int relu, float *y, ptrdiff_t ldy)            \
    {                                                                                           \
        fwd(F, NV, ntiles, nlast, xc, toff, nt, w, first, bias, relu, y, ldy);                  \
    }
FWD_INSTANCE(4, 1) FWD_INSTANCE(4, 2) FWD_INSTANCE(4, 3)
FWD_INSTANCE(3, 1) FWD_INSTANCE(3, 2) FWD_INSTANCE(3, 3) FWD_INSTANCE(3, 4)
FWD_INSTANCE(2, 1) FWD_INSTANCE(2, 2) FWD_INSTANCE(2, 3) FWD_INSTANCE(2, 4)
FWD_INSTANCE(2, 5) FWD_INSTANCE(2, 6)
FWD_INSTANCE(1, 1) FWD_INSTANCE(1, 2) FWD_INSTANCE(1, 3) FWD_INSTANCE(1, 4)
FWD_INSTANCE(1, 5) FWD_INSTANCE(1, 6) FWD_INSTANCE(1, 7) FWD_INSTANCE(1, 8)
FWD_INSTANCE(1, 9) FWD_INSTANCE(1, 10) FWD_INSTANCE(1, 11) FWD_INSTANCE(1, 12)

static const fwd_fn FWD[4][12] = {
    {fwd_1_1, fwd_1_2, fwd_1_3, fwd_1_4, fwd_1_5, fwd_1_6, fwd_1_7, fwd_1_8, fwd_1_9, fwd_1_10,
     fwd_1_11, fwd_1_12},
    {fwd_2_1, fwd_2_2, fwd_2_3, fwd_2_4, fwd_2_5, fwd_2_6},
    {fwd_3_1, fwd_3_2, fwd_3_3, fwd_3_4},
    {fwd_4_1, fwd_4_2, fwd_4_3}};

void cycnn_sconv_fewc_fwd_avx2(int F, int nv, ptrdiff_t ntiles, int nlast, const float *xc,
                               const ptrdiff_t *toff, ptrdiff_t nt, const float *w, int first,
                               const float *bias, int relu, float *y, ptrdiff_t ldy)
{
    FWD[F - 1][nv - 1](ntiles, nlast, xc, toff, nt, w, first, bias, relu, y, ldy);
}

/* ---- weight gradient */

#define T5(X, f) X(f, 0) X(f, 1) X(f, 2) X(f, 3) X(f, 4)
#define FT(X) T5(X, 0) T5(X, 1)
#define DW_DECL(f, t) __m256 a##f##_##t = zero;
/* tap t: one load for both filters (the empty asm keeps GCC from folding a load into each
 * FMA), then the FMAs, so that one x register is live at a time */
#define DW_TAP(t)                                                                               \
    if (T > t) {                                                                                \
        __m256 x = LOADX(xc + toff[t] + v * 8);                                                 \
        __asm__("" : "+x"(x));                                                                  \
        a0_##t = _mm256_fmadd_ps(d0, x, a0_##t);                                                \
        if (F > 1)                                                                              \
            a1_##t = _mm256_fmadd_ps(d1, x, a1_##t);                                            \
    }
#define DW_OUT(f, t)                                                                            \
    if (F > f && T > t) {                                                                       \
        float *p = acc + f * ldacc + t * 8;                                                     \
        _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), a##f##_##t));                     \
    }
#define DW_STEP                                                                                 \
    {                                                                                           \
        const __m256 d0 = LOADX(dy + v * 8);                                                    \
        const __m256 d1 = F > 1 ? LOADX(dy + ldy + v * 8) : zero;                               \
        if (sums) { /* the first pass over these rows: fetch the next filters' rows too */      \
            _mm_prefetch((const char *)(dy + 2 * ldy + v * 8), _MM_HINT_T0);                    \
            _mm_prefetch((const char *)(dy + 3 * ldy + v * 8), _MM_HINT_T0);                    \
            s0 = _mm256_add_ps(s0, d0);                                                         \
            s1 = _mm256_add_ps(s1, d1);                                                         \
        }                                                                                       \
        DW_TAP(0) DW_TAP(1) DW_TAP(2) DW_TAP(3) DW_TAP(4)                                       \
    }

/* ((0+4)+(2+6)) + ((1+5)+(3+7)), the order of sconv_fewc.c's hsum8 */
ALWAYS_INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* H 0: the vectors start at pixel 0. H 4 (dy 16 bytes past a 32-byte boundary, rows a multiple
 * of 8 floats apart): they start at pixel -4, so that dy's loads are aligned (a load split
 * over two cache lines costs ~10% here); a lane then holds the pixels the other half's lane
 * holds at H 0, in the same order (the first vector's lanes 0..3 masked off add exact zeros),
 * and swapping the accumulators' halves at the end gives the H 0 sums bit for bit. */
ALWAYS_INLINE void dwtile(const int F, const int T, const int sums, const int H, ptrdiff_t nv,
                          int nlast, const float *xc, const ptrdiff_t *toff, const float *dy,
                          ptrdiff_t ldy, float *acc, ptrdiff_t ldacc, float *db)
{
    const __m256 zero = _mm256_setzero_ps();
    __m256i tail;
    __m256 s0 = zero, s1 = zero;
    ptrdiff_t v, v0 = 0, nfull;
    FT(DW_DECL)
    if (H) {
        const ptrdiff_t n = (nv - 1) * 8 + nlast + H;   /* pixels -H .. */
        const __m256i head = _mm256_setr_epi32(0, 0, 0, 0, -1, -1, -1, -1);
        xc -= H;
        dy -= H;
        nv = (n + 7) / 8;
        nlast = (int)(n - (nv - 1) * 8);
        tail = lane_mask(nlast);
        tail = nv == 1 ? _mm256_and_si256(tail, head) : head;
        v = 0;
#define LOADX(p) _mm256_maskload_ps(p, tail)
        DW_STEP
#undef LOADX
        v0 = 1;
        if (nv == 1)
            goto out;
    }
    tail = lane_mask(nlast);
    nfull = nlast == 8 ? nv : nv - 1;
#define LOADX(p) _mm256_loadu_ps(p)
    for (v = v0; v < nfull; v++)
        DW_STEP
#undef LOADX
#define LOADX(p) _mm256_maskload_ps(p, tail)
    if (nfull < nv) {
        v = nv - 1;
        DW_STEP
    }
#undef LOADX
out:
    if (H) {
#define DW_SWAP(f, t)                                                                           \
    if (F > f && T > t)                                                                         \
        a##f##_##t = _mm256_permute2f128_ps(a##f##_##t, a##f##_##t, 1);
        FT(DW_SWAP)
#undef DW_SWAP
        s0 = _mm256_permute2f128_ps(s0, s0, 1);
        s1 = _mm256_permute2f128_ps(s1, s1, 1);
    }
    FT(DW_OUT)
    if (sums) {
        db[0] += hsum(s0);
        if (F > 1)
            db[1] += hsum(s1);
    }
}

typedef void (*dw_fn)(ptrdiff_t, int, const float *, const ptrdiff_t *, const float *, ptrdiff_t,
                      float *, ptrdiff_t, float *);

#define DW_INSTANCE(F, T, S)                                                                    \
    static void dw_##F##_##T##_##S(ptrdiff_t nv, int nlast, const float *xc,                    \
                                   const ptrdiff_t *toff, const float *dy, ptrdiff_t ldy,       \
                                   float *acc, ptrdiff_t ldacc, float *db)                      \
    {                                                                                           \
        if (((uintptr_t)dy & 31) == 16 && (ldy & 7) == 0)                                       \
            dwtile(F, T, S, 4, nv, nlast, xc, toff, dy, ldy, acc, ldacc, db);                   \
        else                                                                                    \
            dwtile(F, T, S, 0, nv, nlast, xc, toff, dy, ldy, acc, ldacc, db);                   \
    }
#define DW_INSTANCES(F, S) DW_INSTANCE(F, 1, S) DW_INSTANCE(F, 2, S) DW_INSTANCE(F, 3, S) \
    DW_INSTANCE(F, 4, S) DW_INSTANCE(F, 5, S)
DW_INSTANCES(1, 0) DW_INSTANCES(2, 0) DW_INSTANCES(1, 1) DW_INSTANCES(2, 1)

static const dw_fn DW[2][2][5] = {
    {{dw_1_1_0, dw_1_2_0, dw_1_3_0, dw_1_4_0, dw_1_5_0},
     {dw_2_1_0, dw_2_2_0, dw_2_3_0, dw_2_4_0, dw_2_5_0}},
    {{dw_1_1_1, dw_1_2_1, dw_1_3_1, dw_1_4_1, dw_1_5_1},
     {dw_2_1_1, dw_2_2_1, dw_2_3_1, dw_2_4_1, dw_2_5_1}}};

void cycnn_sconv_fewc_dwtile_avx2(int F, int T, ptrdiff_t nv, int nlast, const float *xc,
                                  const ptrdiff_t *toff, const float *dy, ptrdiff_t ldy,
                                  float *acc, ptrdiff_t ldacc, float *db)
{
    DW[db != NULL][F - 1][T - 1](nv, nlast, xc, toff, dy, ldy, acc, ldacc, db);
}

/* ---- the copies: rows of xs floats in vectors of 8, each a masked load of the image row
 * (lanes outside [a, b) read nothing and are 0); the last vector of a row runs into the next
 * row, written after it, or into the plane's slack, zeroed after the last row. */
void cycnn_sconv_fewc_build_avx2(const cycnn_conv_geom *g, int np, ptrdiff_t xs, ptrdiff_t pc,
                                 const float *x, int c0, int ncc, ptrdiff_t h0, ptrdiff_t h1,
                                 float *xc)
{
    const ptrdiff_t H = g->H, W = g->W;
    const __m256 zero = _mm256_setzero_ps();
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int cl, p;
    ptrdiff_t h, i;
    for (cl = 0; cl < ncc; cl++) {
        const float *src = x + (ptrdiff_t)(c0 + cl) * H * W;
        for (p = 0; p < np; p++) {
            float *dst = xc + ((ptrdiff_t)cl * np + p) * pc;
            const ptrdiff_t shift = p - (ptrdiff_t)g->pl;
            ptrdiff_t a, b;
            cycnn_sconv_fewc_cols(W, g->pl, p, xs, &a, &b);
            for (h = h0; h < h1; h++) {
                float *row = dst + (h - h0) * xs;
                const ptrdiff_t ih = h - g->pt;
                if (ih < 0 || ih >= H || b == a) {
                    for (i = 0; i < xs; i += 8)
                        _mm256_storeu_ps(row + i, zero);
                    continue;
                }
                {
                    const float *in = src + ih * W + shift;
                    for (i = 0; i < xs; i += 8) {
                        if (i >= a && i + 8 <= b) {
                            _mm256_storeu_ps(row + i, _mm256_loadu_ps(in + i));
                        } else {
                            const __m256i col = _mm256_add_epi32(lanes, _mm256_set1_epi32((int)i));
                            const __m256i m = _mm256_andnot_si256(
                                _mm256_cmpgt_epi32(_mm256_set1_epi32((int)a), col),
                                _mm256_cmpgt_epi32(_mm256_set1_epi32((int)b), col));
                            _mm256_storeu_ps(row + i, _mm256_maskload_ps(in + i, m));
                        }
                    }
                }
            }
            for (i = 0; i < 16; i += 8)
                _mm256_storeu_ps(dst + (h1 - h0) * xs + i, zero);
        }
    }
}

/* ---- channels-last: few filters over many channels */

/* (rows of 8 channels of 8 pixels: 8x8 transposes, written out on named registers --
 * cycnn_transpose8_avx2 takes an array, which GCC kept on the stack here; lanes past C and
 * columns outside the image zero; only the padding columns zeroed apart) */
void cycnn_sconv_fewc_cl_build_avx2(const cycnn_conv_geom *g, ptrdiff_t wq, const float *x,
                                    ptrdiff_t hb, ptrdiff_t nr, ptrdiff_t h0, ptrdiff_t h1,
                                    float *xt)
{
    const ptrdiff_t H = g->H, W = g->W, HW = H * W, pl = g->pl;
    const int KB = (g->C + 7) / 8;
    const __m256 zero = _mm256_setzero_ps();
    /* image columns [a, b) land in xt's columns [a + pl, b + pl) inside [0, wq) */
    const ptrdiff_t a = pl < 0 ? -pl : 0, b = W + pl > wq ? wq - pl : W;
    int cb, v;
    ptrdiff_t h, i, iw;
    for (cb = 0; cb < KB; cb++) {
        const int nc = g->C - cb * 8 < 8 ? g->C - cb * 8 : 8;
        for (h = h0; h < h1; h++) {
            float *row = xt + ((cb * nr + h - hb) * wq) * 8;
            const ptrdiff_t ih = h - g->pt;
            if (ih < 0 || ih >= H || b <= a) {
                for (i = 0; i < wq; i++)
                    _mm256_store_ps(row + i * 8, zero);
                continue;
            }
            for (i = 0; i < a + pl; i++)
                _mm256_store_ps(row + i * 8, zero);
            for (i = b + pl; i < wq; i++)
                _mm256_store_ps(row + i * 8, zero);
            {
                const float *src = x + (ptrdiff_t)cb * 8 * HW + ih * W;
                float *dst = row + pl * 8;
                for (iw = a; iw < b; iw += 8) {
                    const int nw = b - iw < 8 ? (int)(b - iw) : 8;
                    __m256 r0, r1, r2, r3, r4, r5, r6, r7;
                    if (nw == 8 && nc == 8) {
                        r0 = _mm256_loadu_ps(src + iw);
                        r1 = _mm256_loadu_ps(src + HW + iw);
                        r2 = _mm256_loadu_ps(src + 2 * HW + iw);
                        r3 = _mm256_loadu_ps(src + 3 * HW + iw);
                        r4 = _mm256_loadu_ps(src + 4 * HW + iw);
                        r5 = _mm256_loadu_ps(src + 5 * HW + iw);
                        r6 = _mm256_loadu_ps(src + 6 * HW + iw);
                        r7 = _mm256_loadu_ps(src + 7 * HW + iw);
                    } else {
                        const __m256i m = lane_mask(nw);
#define CL_LD(V) r##V = nc > V ? _mm256_maskload_ps(src + V * HW + iw, m) : zero;
                        CL_LD(0) CL_LD(1) CL_LD(2) CL_LD(3) CL_LD(4) CL_LD(5) CL_LD(6) CL_LD(7)
#undef CL_LD
                    }
                    {
                        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
                        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
                        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
                        __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
                        __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
                        __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
                        __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
                        __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
                        float *d = dst + iw * 8;   /* column iw + j: 8 channels */
                        _mm256_store_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
                        if (nw > 1) _mm256_store_ps(d + 8, _mm256_permute2f128_ps(u1, u5, 0x20));
                        if (nw > 2) _mm256_store_ps(d + 16, _mm256_permute2f128_ps(u2, u6, 0x20));
                        if (nw > 3) _mm256_store_ps(d + 24, _mm256_permute2f128_ps(u3, u7, 0x20));
                        if (nw > 4) _mm256_store_ps(d + 32, _mm256_permute2f128_ps(u0, u4, 0x31));
                        if (nw > 5) _mm256_store_ps(d + 40, _mm256_permute2f128_ps(u1, u5, 0x31));
                        if (nw > 6) _mm256_store_ps(d + 48, _mm256_permute2f128_ps(u2, u6, 0x31));
                        if (nw > 7) _mm256_store_ps(d + 56, _mm256_permute2f128_ps(u3, u7, 0x31));
                    }
                }
            }
        }
    }
    (void)v;
}

#define CL_ACC(p) __m256 c##p = zero;
#define CL_W(s) const __m256 w##s = S > s ? _mm256_loadu_ps(wr + s * 8) : zero;
#define CL_J(J)                                                                                 \
    if (J < 8 + S - 1) {                                                                        \
        const __m256 d = _mm256_load_ps(row + J * 8);                                           \
        CL_S(0, J) CL_S(1, J) CL_S(2, J) CL_S(3, J) CL_S(4, J) CL_S(5, J) CL_S(6, J)           \
    }
#define CL_S(s, J)                                                                              \
    if (S > s && J - s >= 0 && J - s < 8) {                                                     \
        switch (J - s) {                                                                        \
        case 0: c0 = _mm256_fmadd_ps(w##s, d, c0); break;                                       \
        case 1: c1 = _mm256_fmadd_ps(w##s, d, c1); break;                                       \
        case 2: c2 = _mm256_fmadd_ps(w##s, d, c2); break;                                       \
        case 3: c3 = _mm256_fmadd_ps(w##s, d, c3); break;                                       \
        case 4: c4 = _mm256_fmadd_ps(w##s, d, c4); break;                                       \
        case 5: c5 = _mm256_fmadd_ps(w##s, d, c5); break;                                       \
        case 6: c6 = _mm256_fmadd_ps(w##s, d, c6); break;                                       \
        default: c7 = _mm256_fmadd_ps(w##s, d, c7); break;                                      \
        }                                                                                       \
    }

/* 8 pixels x 8 channel lanes in 8 accumulators; per (channel block, r): S weight vectors, the
 * row's 8 + S - 1 pixel vectors loaded once each (aligned), each feeding the S FMAs of the
 * pixels it is a tap of. Then the 8 accumulators transposed and summed: pixel p in lane p. */
ALWAYS_INLINE void cl_tile(const int S, int R, int KB, const float *xt, ptrdiff_t cbs,
                           ptrdiff_t rs, const float *w, int n, int first, const float *bias,
                           int relu, float *y)
{
    const __m256 zero = _mm256_setzero_ps();
    const __m256i tail = lane_mask(n);
    int cb, r;
    CL_ACC(0) CL_ACC(1) CL_ACC(2) CL_ACC(3) CL_ACC(4) CL_ACC(5) CL_ACC(6) CL_ACC(7)
    for (cb = 0; cb < KB; cb++)
        for (r = 0; r < R; r++) {
            const float *row = xt + cb * cbs + r * rs;
            const float *wr = w + ((ptrdiff_t)cb * R + r) * S * 8;
            CL_W(0) CL_W(1) CL_W(2) CL_W(3) CL_W(4) CL_W(5) CL_W(6)
            CL_J(0) CL_J(1) CL_J(2) CL_J(3) CL_J(4) CL_J(5) CL_J(6) CL_J(7)
            CL_J(8) CL_J(9) CL_J(10) CL_J(11) CL_J(12) CL_J(13)
        }
    {
        __m256 t[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
        __m256 v;
        cycnn_transpose8_avx2(t);   /* t[lane][p] */
        v = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(t[0], t[4]), _mm256_add_ps(t[2], t[6])),
                          _mm256_add_ps(_mm256_add_ps(t[1], t[5]), _mm256_add_ps(t[3], t[7])));
        v = _mm256_add_ps(v, first ? (bias != NULL ? _mm256_set1_ps(*bias) : zero)
                                   : _mm256_maskload_ps(y, tail));
        if (relu)
            v = _mm256_andnot_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ), v);
        _mm256_maskstore_ps(y, tail, v);
    }
}

typedef void (*cl_fn)(int, int, const float *, ptrdiff_t, ptrdiff_t, const float *, int, int,
                      const float *, int, float *);
#define CL_INSTANCE(S)                                                                          \
    static void cl_##S(int R, int KB, const float *xt, ptrdiff_t cbs, ptrdiff_t rs,             \
                       const float *w, int n, int first, const float *bias, int relu, float *y) \
    {                                                                                           \
        cl_tile(S, R, KB, xt, cbs, rs, w, n, first, bias, relu, y);                             \
    }
CL_INSTANCE(1) CL_INSTANCE(2) CL_INSTANCE(3) CL_INSTANCE(4) CL_INSTANCE(5) CL_INSTANCE(6)
CL_INSTANCE(7)
static const cl_fn CL[7] = {cl_1, cl_2, cl_3, cl_4, cl_5, cl_6, cl_7};

void cycnn_sconv_fewc_cl_tile_avx2(int S, int R, int KB, const float *xt, ptrdiff_t cbs,
                                   ptrdiff_t rs, const float *w, int n, int first,
                                   const float *bias, int relu, float *y)
{
    CL[S - 1](R, KB, xt, cbs, rs, w, n, first, bias, relu, y);
}

#else
typedef int cycnn_sconv_fewc_avx2_unused; /* ISO C: no empty translation units */
#endif
