/* sconv_dw.c -- float weight gradient of one image without the im2col matrix (contract:
 * sconv_dw.h), driver and portable kernels.
 *
 * Design
 *   dW^T (CRS x K) += col (CRS x L) . dy^T (L x K), the reduction running over the L output
 *   pixels, computed in register tiles of m <= 6 taps x 16 filters (12 AVX2 accumulators):
 *   - B = dy^T, packed per block of pixels into 16-filter panels (np x 16, pixel-major, zero
 *     past K; a last panel of 8 when K % 16 is 1..8). dy's row sums (db) come free while packing.
 *   - A is NOT packed: the m taps' values at a pixel are broadcast straight from the zero-padded
 *     image xp (cycnn_sconv_pad_image), tap (c,r,s) at offset c*Hp*Wp + r*dh*Wp + s*dw; a run of
 *     pixels inside one output row (a "segment") advances by sw, the next row starts sh*Wp
 *     further. So any stride, dilation and padding take the same kernel, with no bounds tests.
 *   - Taps are cut into balanced groups of at most 6 (CRS = 25 gives 5 groups of 5, not 4 x 6
 *     + 1): the kernel's speed per tap holds down to 4 taps (8 accumulators cover the FMA
 *     latency), a lone tap would run latency-bound.
 *   Loop nest: pixel blocks of <= PIX_BLOCK (the 16-filter panel, 16 KiB, stays in L1) |
 *   16-filter panels: pack | tap groups: tile kernel, accumulators in registers over the whole
 *   block, then added to acc (CRS x K, 1/PIX_BLOCK of the FMAs' traffic).
 *   The AVX2 kernels (sconv_dw_avx2.c) run when the selected GEMM path is avx2 or avx512 (both
 *   imply AVX2); the portable ones below, the same loops in plain C, otherwise.
 *   cycnn_sconv_dw_next prefetches the next image's x and dy meanwhile, an equal share before
 *   every tile call (prefetch.h): the tiles run at the GEMM peak on a cache-hot image (92
 *   GFLOP/s on one core for 64x128x16x16 -> 64, 1x1) but lost a fifth of that waiting for
 *   each new image from memory; with the prefetches 3.3 ms instead of 3.7 for the 64 images.
 * Parallelism: none inside; callers give threads their own images (and acc) or disjoint tap
 *   ranges of one image. Deterministic for a given geometry, tap range and path.
 * Memory: workspace = panel (PIX_BLOCK x 16) + tap offsets (CRS) + segments; no allocation.
 */
#include <string.h>

#include "sconv_dw.h"
#include "../gemm/gemm_internal.h"
#include "prefetch.h"

#define PIX_BLOCK 1024   /* pixels per block: the 16-filter panel is 16 KiB */
#define MAX_TAPS 6      /* taps per register tile */

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

static ptrdiff_t max_segments(void) { return PIX_BLOCK + 2; }   /* Wo = 1: one per pixel */

size_t cycnn_sconv_dw_workspace_bytes(const cycnn_conv_geom *g)
{
    const size_t crs = (size_t)g->C * (size_t)g->R * (size_t)g->S;
    return align64((size_t)PIX_BLOCK * 16 * sizeof(float)) +
           align64(crs * sizeof(ptrdiff_t)) +
           align64((size_t)max_segments() * sizeof(ptrdiff_t)) +
           align64((size_t)max_segments() * sizeof(int));
}

/* ---- portable kernels (the twins of sconv_dw_avx2.c) */

static void pack_portable(int kw, int kv, const float *dyk, ptrdiff_t L, ptrdiff_t l0,
                          ptrdiff_t np, float *b, float *db)
{
    ptrdiff_t j;
    int v;
    for (v = 0; v < kv; v++) {
        const float *row = dyk + v * L + l0;
        float sum = 0.0f;
        for (j = 0; j < np; j++) {
            b[j * kw + v] = row[j];
            sum += row[j];
        }
        if (db != NULL)
            db[v] += sum;
    }
    for (; v < kw; v++)
        for (j = 0; j < np; j++)
            b[j * kw + v] = 0.0f;
}

/* m taps x KW filters; KW a constant after inlining, so the v loops vectorise. */
static inline __attribute__((always_inline)) void
tile_portable_kw(const int KW, int m, int kv, const ptrdiff_t *taps, const float *xp, int nseg,
                 const ptrdiff_t *seg_off, const int *seg_len, ptrdiff_t sw, const float *b,
                 float *c, ptrdiff_t ldc)
{
    float acc[MAX_TAPS][16];
    int j, v, q, i;
    memset(acc, 0, sizeof(acc));
    for (q = 0; q < nseg; q++) {
        const float *xs = xp + seg_off[q];
        const int len = seg_len[q];
        for (j = 0; j < m; j++) {
            const float *xj = xs + taps[j];
            const float *bj = b;
            for (i = 0; i < len; i++, bj += KW) {
                const float a = xj[(ptrdiff_t)i * sw];
                for (v = 0; v < KW; v++)
                    acc[j][v] += a * bj[v];
            }
        }
        b += (ptrdiff_t)len * KW;
    }
    for (j = 0; j < m; j++)
        for (v = 0; v < kv; v++)
            c[j * ldc + v] += acc[j][v];
}

static void tile_portable(int m, int kw, int kv, const ptrdiff_t *taps, const float *xp,
                          int nseg, const ptrdiff_t *seg_off, const int *seg_len, ptrdiff_t sw,
                          const float *b, float *c, ptrdiff_t ldc)
{
    if (kw == 16)
        tile_portable_kw(16, m, kv, taps, xp, nseg, seg_off, seg_len, sw, b, c, ldc);
    else
        tile_portable_kw(8, m, kv, taps, xp, nseg, seg_off, seg_len, sw, b, c, ldc);
}

/* ---- kernel choice and driver */

void cycnn_sconv_dw_kernels(const void *cfg, cycnn_sconv_dw_pack_fn *pack,
                            cycnn_sconv_dw_tile_fn *tile)
{
    *pack = pack_portable;
    *tile = tile_portable;
#if CYCNN_GEMM_X86
    /* the avx2 and avx512 paths: AVX2 is there */
    if (((const cycnn_sgemm_config *)cfg)->pack_b == cycnn_spack_b_avx2) {
        *pack = cycnn_sconv_dw_pack_avx2;
        *tile = cycnn_sconv_dw_tile_avx2;
    }
#else
    (void)cfg;
#endif
}

void cycnn_sconv_dw(const void *cfg, const cycnn_conv_geom *g, const float *xp, const float *dy,
                    ptrdiff_t t0, ptrdiff_t t1, float *acc, ptrdiff_t ldacc, float *db,
                    void *ws)
{
    cycnn_sconv_dw_next(cfg, g, xp, dy, t0, t1, acc, ldacc, db, ws, NULL, 0, NULL);
}

void cycnn_sconv_dw_next(const void *cfg, const cycnn_conv_geom *g, const float *xp,
                         const float *dy, ptrdiff_t t0, ptrdiff_t t1, float *acc,
                         ptrdiff_t ldacc, float *db, void *ws, const float *x_next,
                         ptrdiff_t x_next_floats, const float *dy_next)
{
    const int K = g->K;
    const ptrdiff_t L = (ptrdiff_t)g->Ho * g->Wo;
    const ptrdiff_t Hp = (ptrdiff_t)(g->Ho - 1) * g->sh + (ptrdiff_t)(g->R - 1) * g->dh + 1;
    const ptrdiff_t Wp = (ptrdiff_t)(g->Wo - 1) * g->sw + (ptrdiff_t)(g->S - 1) * g->dw + 1;
    const ptrdiff_t crs = (ptrdiff_t)g->C * g->R * g->S;
    const ptrdiff_t ntaps = t1 - t0;
    float *panel = (float *)ws;
    ptrdiff_t *taps = (ptrdiff_t *)((char *)ws + align64((size_t)PIX_BLOCK * 16 * sizeof(float)));
    ptrdiff_t *seg_off = (ptrdiff_t *)((char *)taps + align64((size_t)crs * sizeof(ptrdiff_t)));
    int *seg_len = (int *)((char *)seg_off + align64((size_t)max_segments() * sizeof(ptrdiff_t)));
    cycnn_sconv_dw_pack_fn pack;
    cycnn_sconv_dw_tile_fn tile;
    cycnn_prefetch_cursor pf;
    ptrdiff_t nblocks, pb, l0, t, ngroups;
    int c, r, s, k0;

    if (K <= 0 || L <= 0 || ntaps <= 0)
        return;
    cycnn_sconv_dw_kernels(cfg, &pack, &tile);

    /* offsets of the taps t0 .. t1-1 in the padded image */
    c = (int)(t0 / ((ptrdiff_t)g->R * g->S));
    r = (int)(t0 / g->S % g->R);
    s = (int)(t0 % g->S);
    for (t = 0; t < ntaps; t++) {
        taps[t] = c * Hp * Wp + (ptrdiff_t)r * g->dh * Wp + (ptrdiff_t)s * g->dw;
        if (++s == g->S) {
            s = 0;
            if (++r == g->R) {
                r = 0;
                c++;
            }
        }
    }
    ngroups = (ntaps + MAX_TAPS - 1) / MAX_TAPS;

    nblocks = (L + PIX_BLOCK - 1) / PIX_BLOCK;
    pb = (L + nblocks - 1) / nblocks;
    /* the next image's input and output gradient, a share per tile call */
    cycnn_prefetch_init(&pf, x_next, (size_t)x_next_floats * sizeof(float), dy_next,
                        (size_t)K * (size_t)L * sizeof(float),
                        nblocks * ((K + 15) / 16) * ngroups);
    for (l0 = 0; l0 < L; l0 += pb) {
        const ptrdiff_t np = L - l0 < pb ? L - l0 : pb;
        ptrdiff_t l = l0, left = np;
        int nseg = 0;
        while (left > 0) {       /* runs of the block's pixels inside one output row */
            const ptrdiff_t oh = l / g->Wo, ow = l % g->Wo;
            ptrdiff_t len = g->Wo - ow;
            if (len > left)
                len = left;
            const ptrdiff_t off = oh * g->sh * Wp + ow * g->sw;
            if (nseg > 0 && off == seg_off[nseg - 1] + seg_len[nseg - 1] * g->sw) {
                seg_len[nseg - 1] += (int)len;   /* contiguous with the previous run (1x1) */
            } else {
                seg_off[nseg] = off;
                seg_len[nseg] = (int)len;
                nseg++;
            }
            l += len;
            left -= len;
        }
        for (k0 = 0; k0 < K; k0 += 16) {
            const int kv = K - k0 < 16 ? K - k0 : 16;
            const int kw = kv <= 8 ? 8 : 16;
            ptrdiff_t grp, tg = 0;
            pack(kw, kv, dy + (ptrdiff_t)k0 * L, L, l0, np, panel, db != NULL ? db + k0 : NULL);
            for (grp = 0; grp < ngroups; grp++) {   /* balanced groups of <= 6 taps */
                const int m = (int)(ntaps / ngroups + (grp < ntaps % ngroups));
                cycnn_prefetch_step(&pf);
                tile(m, kw, kv, taps + tg, xp, nseg, seg_off, seg_len, g->sw, panel,
                     acc + (t0 + tg) * ldacc + k0, ldacc);
                tg += m;
            }
        }
    }
}
