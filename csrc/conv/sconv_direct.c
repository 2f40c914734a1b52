/* sconv_direct.c -- float convolution of one image with no B panels (contract: sconv_direct.h);
 * driver and portable kernels.
 *
 * Design
 *   y^T (L x K) = col^T (L x CRS) . Wmat^T (CRS x K), in register tiles of 6 output pixels x
 *   16 filters (12 AVX2 accumulators), the reduction running over the taps:
 *   - A = the image, NOT packed: the 6 pixels' values at tap t are broadcast straight from the
 *     zero-padded image xp, pixel j at offset poff[j] = oh*sh*Wp + ow*sw, tap (c,r,s) at
 *     c*Hp*Wp + r*dh*Wp + s*dw. The 6 pixels may lie in different output rows, so any
 *     geometry (stride, dilation, padding, Wo < 6) takes the same kernel with no edge cases.
 *   - B = the filters, packed ONCE per call into 16-filter panels (CRS x 16, tap-major, zero
 *     past K) and shared by the threads; per tap the tile loads 2 vectors of it.
 *   This is the GEMM micro-kernel's arithmetic (6 broadcasts + 2 loads per 12 FMAs) with the
 *   im2col operand read in place, so nothing is packed per image: the implicit GEMM
 *   (sconv_igemm.c) copies CRS x 16 B panels per 16 pixels, which pays off only when many
 *   filters share them; here first layers (C = 1) and layers with few filters do not pay it.
 *   Loop nest: blocks of <= PIX_BLOCK pixels | 16-filter panels | chunks of <= TAP_CHUNK taps
 *   (the panel's chunk, 16 KiB, stays in L1) | 6-pixel tiles: the tile's partial sums go to a
 *   pixel-major buffer (PIX_BLOCK x 16, L1) between chunks; after the last chunk the buffer is
 *   transposed into y's 16 rows (8x8 transposes) with bias and ReLU.
 * Parallelism: none inside; callers give threads images or disjoint pixel ranges.
 * Memory: workspace = buffer (PIX_BLOCK x 16) + tap offsets (CRS) + pixel offsets (PIX_BLOCK).
 */
#include <string.h>

#include "sconv_direct.h"
#include "../gemm/gemm_internal.h"

#define PIX_BLOCK 240   /* pixels per block, a multiple of 6 */
#define TAP_CHUNK 128   /* taps per chunk: the panel's chunk is 16 KiB */
#define TILE_PIX 6

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

size_t cycnn_sconv_direct_packed_floats(int K, ptrdiff_t CRS)
{
    return (size_t)((K + 15) / 16) * 16 * (size_t)CRS;
}

void cycnn_sconv_direct_pack_weights(int K, ptrdiff_t CRS, const float *w, float *wp)
{
    int k0, v;
    ptrdiff_t t;
    for (k0 = 0; k0 < K; k0 += 16) {
        float *panel = wp + (ptrdiff_t)k0 * CRS;
        for (t = 0; t < CRS; t++)
            for (v = 0; v < 16; v++)
                panel[t * 16 + v] = k0 + v < K ? w[(ptrdiff_t)(k0 + v) * CRS + t] : 0.0f;
    }
}

size_t cycnn_sconv_direct_workspace_bytes(const cycnn_conv_geom *g)
{
    const size_t crs = (size_t)g->C * (size_t)g->R * (size_t)g->S;
    return align64((size_t)PIX_BLOCK * 16 * sizeof(float)) + align64(crs * sizeof(ptrdiff_t)) +
           align64((size_t)PIX_BLOCK * sizeof(ptrdiff_t));
}

/* ---- portable kernels (twins of sconv_direct_avx2.c) */

void cycnn_sconv_direct_tile_generic(int m, const ptrdiff_t *poff, const float *xp,
                                     const ptrdiff_t *taps, ptrdiff_t kc, const float *w,
                                     float *acc, int first)
{
    float a[TILE_PIX][16];
    ptrdiff_t t;
    int j, v;
    for (j = 0; j < m; j++)
        for (v = 0; v < 16; v++)
            a[j][v] = first ? 0.0f : acc[j * 16 + v];
    for (j = 0; j < m; j++) {
        const float *xj = xp + poff[j];
        for (t = 0; t < kc; t++) {
            const float xv = xj[taps[t]];
            for (v = 0; v < 16; v++)
                a[j][v] += xv * w[t * 16 + v];
        }
    }
    for (j = 0; j < m; j++)
        for (v = 0; v < 16; v++)
            acc[j * 16 + v] = a[j][v];
}

void cycnn_sconv_direct_store_generic(const float *acc, ptrdiff_t np, int kv, const float *bias,
                                      int relu, float *y, ptrdiff_t ldy)
{
    ptrdiff_t j;
    int v;
    for (v = 0; v < kv; v++) {
        const float b = bias != NULL ? bias[v] : 0.0f;
        float *row = y + v * ldy;
        for (j = 0; j < np; j++) {
            const float e = acc[j * 16 + v] + b;
            row[j] = relu && e < 0.0f ? 0.0f : e;   /* NaN stays NaN */
        }
    }
}

/* ---- driver */

void cycnn_sconv_direct(const void *cfg_, const cycnn_conv_geom *g, const float *wp,
                        const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                        int relu, float *y, ptrdiff_t ldy, void *ws)
{
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    const int K = g->K;
    const ptrdiff_t Hp = (ptrdiff_t)(g->Ho - 1) * g->sh + (ptrdiff_t)(g->R - 1) * g->dh + 1;
    const ptrdiff_t Wp = (ptrdiff_t)(g->Wo - 1) * g->sw + (ptrdiff_t)(g->S - 1) * g->dw + 1;
    const ptrdiff_t crs = (ptrdiff_t)g->C * g->R * g->S;
    float *acc = (float *)ws;
    ptrdiff_t *taps = (ptrdiff_t *)((char *)ws + align64((size_t)PIX_BLOCK * 16 * sizeof(float)));
    ptrdiff_t *poff = (ptrdiff_t *)((char *)taps + align64((size_t)crs * sizeof(ptrdiff_t)));
    void (*tile)(int, const ptrdiff_t *, const float *, const ptrdiff_t *, ptrdiff_t,
                 const float *, float *, int) = cycnn_sconv_direct_tile_generic;
    void (*store)(const float *, ptrdiff_t, int, const float *, int, float *, ptrdiff_t) =
        cycnn_sconv_direct_store_generic;
    ptrdiff_t t, nblocks, pb, lb, kcb;
    int c, r, s, k0;

    if (K <= 0 || l1 <= l0)
        return;
#if CYCNN_GEMM_X86
    if (cfg->pack_b == cycnn_spack_b_avx2) {   /* the avx2 and avx512 paths: AVX2 is there */
        tile = cycnn_sconv_direct_tile_avx2;
        store = cycnn_sconv_direct_store_avx2;
    }
#else
    (void)cfg;
#endif
    if (crs == 0) {                            /* no input channels: y = bias */
        memset(acc, 0, (size_t)PIX_BLOCK * 16 * sizeof(float));
        for (k0 = 0; k0 < K; k0 += 16)
            for (lb = l0; lb < l1; lb += PIX_BLOCK)
                store(acc, l1 - lb < PIX_BLOCK ? l1 - lb : PIX_BLOCK, K - k0 < 16 ? K - k0 : 16,
                      bias != NULL ? bias + k0 : NULL, relu, y + (ptrdiff_t)k0 * ldy + lb, ldy);
        return;
    }
    for (t = 0, c = 0; c < g->C; c++)
        for (r = 0; r < g->R; r++)
            for (s = 0; s < g->S; s++)
                taps[t++] = c * Hp * Wp + (ptrdiff_t)r * g->dh * Wp + (ptrdiff_t)s * g->dw;
    nblocks = (crs + TAP_CHUNK - 1) / TAP_CHUNK;
    kcb = (crs + nblocks - 1) / nblocks;
    nblocks = (l1 - l0 + PIX_BLOCK - 1) / PIX_BLOCK;
    pb = ((l1 - l0 + nblocks - 1) / nblocks + TILE_PIX - 1) / TILE_PIX * TILE_PIX;

    for (lb = l0; lb < l1; lb += pb) {
        const ptrdiff_t np = l1 - lb < pb ? l1 - lb : pb;
        ptrdiff_t j, oh = lb / g->Wo, ow = lb % g->Wo;
        for (j = 0; j < np; j++) {
            poff[j] = oh * g->sh * Wp + ow * g->sw;
            if (++ow == g->Wo) {
                ow = 0;
                oh++;
            }
        }
        for (k0 = 0; k0 < K; k0 += 16) {
            const float *panel = wp + (ptrdiff_t)k0 * crs;
            ptrdiff_t tc;
            for (tc = 0; tc < crs; tc += kcb) {
                const ptrdiff_t kc = crs - tc < kcb ? crs - tc : kcb;
                for (j = 0; j < np; j += TILE_PIX)
                    tile(np - j < TILE_PIX ? (int)(np - j) : TILE_PIX, poff + j, xp, taps + tc,
                         kc, panel + tc * 16, acc + j * 16, tc == 0);
            }
            store(acc, np, K - k0 < 16 ? K - k0 : 16, bias != NULL ? bias + k0 : NULL, relu,
                  y + (ptrdiff_t)k0 * ldy + lb, ldy);
        }
    }
}
