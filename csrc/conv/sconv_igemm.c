/* sconv_igemm.c -- float convolution of one image as an implicit GEMM (contract: sconv_igemm.h).
 *
 * Design
 *   y (K x L) = Wmat (K x CRS) . col (CRS x L), CRS = C*R*S, L = Ho*Wo, computed with the GEMM
 *   micro-kernels of the selected path (csrc/gemm: 6x16 on AVX2, 8x32 on AVX-512, 4x8
 *   generic), but without the im2col matrix and without re-packing the weights per image:
 *   - the weights are packed ONCE per call (cycnn_sconv_pack_weights) into the micro-kernel's
 *     A layout, depth-blocked exactly as the driver below walks them, and shared by all threads;
 *   - the image is copied once into a zero-padded buffer xp (C x Hp x Wp), so that tap (c,r,s)
 *     of output pixel (oh,ow) is xp[c*Hp*Wp + (oh*sh + r*dh)*Wp + ow*sw + s*dw] with no bounds
 *     tests;
 *   - each kc x nr B micro-panel is packed straight from xp: the nr pixels of a panel split into
 *     "segments" (runs inside one output row, computed once per panel); a segment is a copy of
 *     its length per tap (taps' offsets computed once per depth block), with 8-float AVX2
 *     loads/stores for stride 1 when the GEMM path has AVX2 (sconv_pack_avx2.c), a portable
 *     loop (strided for other strides) otherwise;
 *   - a pointwise convolution (1x1, stride 1, nothing padded or cropped: cycnn_sconv_pointwise)
 *     needs no padded copy: x itself is B (C x L, rows L apart) and the caller passes it as xp;
 *     its micro-panels are packed one at a time (the GEMM path's pack_b, a contiguous copy of
 *     nr floats per channel) right before the mr-panels of weights run over them, so each is
 *     written and read in L1. Reading B in place instead is no option here: its rows are L
 *     floats apart (1 KiB for 16x16 images), so a kc-deep panel maps onto a few L1 sets.
 *   Loop nest (BLIS order): jc over pixel blocks of nc | pc over depth blocks of kc: pack the
 *   kc x nc B block (L2; pointwise: per panel, below) | jr over nr-wide panels (L1) | ir over
 *   the mr-tall weight panels -> micro-kernel (beta 0 on the first depth block, 1 after); rows
 *   past K take the row-edge kernel when the path has one (6x16: 64 filters = 10 tiles + 4
 *   rows), other edge tiles (columns past l1) go through a workspace tile, as in gemm_driver.h.
 *   After the last depth block each register tile, still in L1, gets the epilogue: + bias[k],
 *   then ReLU / leaky ReLU when asked (cycnn_sconv_igemm_act); full AVX2 tiles in AVX2
 *   (sconv_pack_avx2.c: the portable loop cost 7-10% of the 1x1 benchmark's forward pass).
 *   cycnn_sconv_igemm_next also prefetches the next image's input (and optionally output)
 *   while it computes, an equal share before every micro-kernel call (prefetch.h): one core,
 *   64x128x16x16 -> 64 filters, 3.30 ms instead of 3.75 when every image comes from memory.
 * Parallelism: none inside; callers run images (or pixel ranges of one image) on threads, each
 *   with its own workspace and padded image. Deterministic: the summation order depends only
 *   on the geometry and the GEMM path (not on the pixel range, the prefetches or whether a
 *   pointwise image was copied first).
 * Memory: workspace = Bp (kc x nc + nr slack) + tile (mr x nr) + kc tap offsets; padded image
 *   C*Hp*Wp + nr floats (Hp = (Ho-1)*sh + (R-1)*dh + 1, Wp alike), none for a pointwise one.
 *
 * Also here, for the inference plan: cycnn_sconv_pool_tile (a non-overlapping pool of a conv
 * output block, AVX2 2x2 in sconv_pool_avx2.c).
 */
#include <string.h>

#include "sconv_igemm.h"
#include "../gemm/gemm_internal.h"
#include "prefetch.h"

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }
static ptrdiff_t round_up(ptrdiff_t x, ptrdiff_t m) { return (x + m - 1) / m * m; }

/* Split n into the fewest blocks of at most `max`, of equal size rounded up to `mult`
 * (the same rule as the GEMM driver). */
static ptrdiff_t balanced_block(ptrdiff_t n, ptrdiff_t max, ptrdiff_t mult)
{
    ptrdiff_t nblocks, b;
    if (n <= 0)
        return mult;
    nblocks = (n + max - 1) / max;
    b = (n + nblocks - 1) / nblocks;
    b = (b + mult - 1) / mult * mult;
    return b < max ? b : max;
}

const void *cycnn_sconv_config(void)
{
    return cycnn_sgemm_path_config("auto");
}

size_t cycnn_sconv_packed_weights_floats(const void *cfg_, int K, ptrdiff_t CRS)
{
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    return (size_t)round_up(K, cfg->mr) * (size_t)CRS;
}

void cycnn_sconv_pack_weights(const void *cfg_, int K, ptrdiff_t CRS, const float *w,
                              ptrdiff_t rsw, ptrdiff_t csw, float *wp)
{
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    const ptrdiff_t kcb = balanced_block(CRS, cfg->kc, 1), Kr = round_up(K, cfg->mr);
    ptrdiff_t pc;
    if (K <= 0)
        return;
    /* depth block starting at pc lives at wp + pc*Kr: panels of mr rows x kc, k-major */
    for (pc = 0; pc < CRS; pc += kcb) {
        const ptrdiff_t kc = CRS - pc < kcb ? CRS - pc : kcb;
        cfg->pack_a(cfg->mr, K, (int)kc, w + pc * csw, rsw, csw, wp + pc * Kr);
    }
}

/* A 1x1 convolution with stride 1 and nothing padded or cropped: the padded image is the image
 * itself and B = x (C x L, rows L apart). */
static int pointwise(const cycnn_conv_geom *g)
{
    return g->R == 1 && g->S == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 &&
           g->Ho == g->H && g->Wo == g->W;
}

int cycnn_sconv_pointwise(const cycnn_conv_geom *g)
{
    return pointwise(g);
}

/* Hp x Wp: every row/column some output pixel's tap can reach, origin at (-pt, -pl). */
static void padded_dims(const cycnn_conv_geom *g, ptrdiff_t *Hp, ptrdiff_t *Wp)
{
    *Hp = (ptrdiff_t)(g->Ho - 1) * g->sh + (ptrdiff_t)(g->R - 1) * g->dh + 1;
    *Wp = (ptrdiff_t)(g->Wo - 1) * g->sw + (ptrdiff_t)(g->S - 1) * g->dw + 1;
}

size_t cycnn_sconv_padded_floats(const void *cfg_, const cycnn_conv_geom *g)
{
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    ptrdiff_t Hp, Wp;
    padded_dims(g, &Hp, &Wp);
    return (size_t)g->C * (size_t)Hp * (size_t)Wp + (size_t)cfg->nr;
}

void cycnn_sconv_pad_image(const void *cfg_, const cycnn_conv_geom *g, const float *x, float *xp)
{
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    const ptrdiff_t H = g->H, W = g->W, pt = g->pt, pl = g->pl;
    ptrdiff_t Hp, Wp, c, i;
    /* columns j of xp with 0 <= j - pl < W */
    ptrdiff_t j0, j1;
    padded_dims(g, &Hp, &Wp);
    j0 = pl > 0 ? pl : 0;
    j1 = pl + W < Wp ? pl + W : Wp;
    if (j1 < j0)
        j1 = j0;
    for (c = 0; c < g->C; c++) {
        const float *xc = x + c * H * W;
        float *dc = xp + c * Hp * Wp;
        for (i = 0; i < Hp; i++) {
            const ptrdiff_t ih = i - pt;
            float *d = dc + i * Wp;
            if (ih < 0 || ih >= H || j1 == j0) {
                memset(d, 0, (size_t)Wp * sizeof(float));
                continue;
            }
            if (j0 > 0)
                memset(d, 0, (size_t)j0 * sizeof(float));
            memcpy(d + j0, xc + ih * W + (j0 - pl), (size_t)(j1 - j0) * sizeof(float));
            if (j1 < Wp)
                memset(d + j1, 0, (size_t)(Wp - j1) * sizeof(float));
        }
    }
    memset(xp + g->C * Hp * Wp, 0, (size_t)cfg->nr * sizeof(float));   /* over-read slack */
}

size_t cycnn_sconv_workspace_bytes(const void *cfg_)
{
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    return align64(((size_t)cfg->kc * (size_t)round_up(cfg->nc, cfg->nr) + (size_t)cfg->nr) *
                   sizeof(float)) +
           align64((size_t)cfg->mr * (size_t)cfg->nr * sizeof(float)) +
           align64((size_t)cfg->kc * sizeof(ptrdiff_t));
}

#define MAX_NR 64

#if CYCNN_GEMM_X86
void cycnn_sconv_pack_rows_avx2(int nr, ptrdiff_t kc, const ptrdiff_t *taps, const float *xp,
                                int nseg, const int *seg_j, const int *seg_len,
                                const ptrdiff_t *seg_off, float *dst);
void cycnn_sconv_tile_epilogue_avx2(int m, int n, const float *bias, int act, float slope,
                                    float *c, ptrdiff_t ldc);
#endif

/* Portable twin of cycnn_sconv_pack_rows_avx2 (sconv_pack_avx2.c), with a column stride sw:
 * dst[p*nr + seg_j[q] + t] = xp[taps[p] + seg_off[q] + t*sw]. */
static void pack_rows_portable(int nr, ptrdiff_t kc, const ptrdiff_t *taps, const float *xp,
                               int nseg, const int *seg_j, const int *seg_len,
                               const ptrdiff_t *seg_off, int sw, float *dst)
{
    int q, t;
    ptrdiff_t p;
    for (q = 0; q < nseg; q++) {
        const float *src = xp + seg_off[q];
        float *d = dst + seg_j[q];
        const int len = seg_len[q];
        if (sw == 1) {
            for (p = 0; p < kc; p++) {
                const float *s = src + taps[p];
                float *o = d + p * nr;
                for (t = 0; t < len; t++)
                    o[t] = s[t];
            }
        } else {
            for (p = 0; p < kc; p++) {
                const float *s = src + taps[p];
                float *o = d + p * nr;
                for (t = 0; t < len; t++)
                    o[t] = s[(ptrdiff_t)t * sw];
            }
        }
    }
}

/* Pack the B block: depth rows [pc, pc+kc) (taps) x pixels [jc, jc+nc) into ceil(nc/nr)
 * panels of kc x nr, k-major. Columns past nc in the last panel are zero. taps: kc slots. */
static void pack_b_image(const cycnn_sgemm_config *cfg, const cycnn_conv_geom *g,
                         const float *xp, ptrdiff_t Hp, ptrdiff_t Wp, ptrdiff_t pc,
                         ptrdiff_t kc, ptrdiff_t jc, ptrdiff_t nc, ptrdiff_t *taps, float *Bp)
{
    const int nr = cfg->nr;
    const ptrdiff_t plane = Hp * Wp;
    ptrdiff_t seg_off[MAX_NR];
    int seg_j[MAX_NR], seg_len[MAX_NR];
    ptrdiff_t jr, p;
    int c, r, s;
#if CYCNN_GEMM_X86
    /* the avx2 and avx512 paths pack B with AVX2 code already: AVX2 is there */
    const int use_avx2 = cfg->pack_b == cycnn_spack_b_avx2 && nr % 8 == 0;
#endif

    /* offset of tap (c, r, s) of depth row pc + p in the padded image */
    c = (int)(pc / ((ptrdiff_t)g->R * g->S));
    r = (int)(pc / g->S % g->R);
    s = (int)(pc % g->S);
    for (p = 0; p < kc; p++) {
        taps[p] = c * plane + (ptrdiff_t)r * g->dh * Wp + (ptrdiff_t)s * g->dw;
        if (++s == g->S) {
            s = 0;
            if (++r == g->R) {
                r = 0;
                c++;
            }
        }
    }

    for (jr = 0; jr < nc; jr += nr) {
        const int n = nc - jr < nr ? (int)(nc - jr) : nr;
        float *dst = Bp + jr * kc;
        int nseg = 0, j = 0;
        ptrdiff_t l = jc + jr;
        /* segments: runs of the panel's pixels inside one output row */
        while (j < n) {
            const ptrdiff_t oh = l / g->Wo, ow = l % g->Wo;
            int len = g->Wo - (int)ow;
            if (len > n - j)
                len = n - j;
            seg_off[nseg] = oh * g->sh * Wp + ow * g->sw;
            seg_j[nseg] = j;
            seg_len[nseg] = len;
            nseg++;
            j += len;
            l += len;
        }
        if (n < nr)
            memset(dst, 0, (size_t)kc * (size_t)nr * sizeof(float));
#if CYCNN_GEMM_X86
        if (use_avx2 && g->sw == 1) {
            cycnn_sconv_pack_rows_avx2(nr, kc, taps, xp, nseg, seg_j, seg_len, seg_off, dst);
            continue;
        }
#endif
        pack_rows_portable(nr, kc, taps, xp, nseg, seg_j, seg_len, seg_off, g->sw, dst);
    }
}

/* + bias[k], then act: 0 none, 1 ReLU (NaN stays NaN), 2 leaky ReLU (v < 0 ? slope*v : v), on
 * the K x nc block at y (rows ldy apart); bias[0] is row 0's. */
static void epilogue(int K, ptrdiff_t nc, const float *bias, int act, float slope, float *y,
                     ptrdiff_t ldy)
{
    int k;
    ptrdiff_t j;
    if (bias == NULL && act == 0)
        return;
    for (k = 0; k < K; k++) {
        float *row = y + k * ldy;
        const float b = bias != NULL ? bias[k] : 0.0f;
        if (act == 1)
            for (j = 0; j < nc; j++) {
                const float v = row[j] + b;
                row[j] = v < 0.0f ? 0.0f : v;   /* NaN stays NaN */
            }
        else if (act == 2)
            for (j = 0; j < nc; j++) {
                const float v = row[j] + b;
                row[j] = v < 0.0f ? slope * v : v;
            }
        else
            for (j = 0; j < nc; j++)
                row[j] += b;
    }
}

static void igemm(const cycnn_sgemm_config *cfg, const cycnn_conv_geom *g, const float *wp,
                  const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias, int act,
                  float slope, float *y, ptrdiff_t ldy, void *ws, const float *x_next,
                  const float *y_next)
{
    const int MR = cfg->mr, NR = cfg->nr, K = g->K;
    const ptrdiff_t CRS = (ptrdiff_t)g->C * g->R * g->S, Kr = round_up(K, MR);
    const ptrdiff_t kcb = balanced_block(CRS, cfg->kc, 1);
    const ptrdiff_t ncb = balanced_block(l1 - l0, cfg->nc, NR);
    float *Bp = (float *)ws;
    float *tile = (float *)((char *)ws + align64(((size_t)cfg->kc * (size_t)round_up(cfg->nc, NR) +
                                                  (size_t)NR) * sizeof(float)));
    ptrdiff_t *taps = (ptrdiff_t *)((char *)tile + align64((size_t)MR * NR * sizeof(float)));
    cycnn_prefetch_cursor pf;
    const int pw = pointwise(g);
#if CYCNN_GEMM_X86
    /* the avx2 and avx512 paths: AVX2 is there */
    const int avx2_tile = cfg->pack_b == cycnn_spack_b_avx2 && NR % 8 == 0;
#endif
    ptrdiff_t Hp, Wp, jc, pc, jr, i, j;
    int ir;

    if (K <= 0 || l1 <= l0 || NR > MAX_NR)
        return;
    padded_dims(g, &Hp, &Wp);
    if (CRS == 0) {                       /* no input channels: y = bias */
        for (ir = 0; ir < K; ir++)
            for (j = l0; j < l1; j++)
                y[ir * ldy + j] = 0.0f;
        epilogue(K, l1 - l0, bias, act, slope, y + l0, ldy);
        return;
    }
    /* the next image's input and output, a share per micro-kernel call */
    cycnn_prefetch_init(&pf, x_next, (size_t)g->C * g->H * g->W * sizeof(float), y_next,
                        (size_t)((K - 1) * ldy + l1) * sizeof(float),
                        (CRS + kcb - 1) / kcb * ((l1 - l0 + NR - 1) / NR) * (Kr / MR));

    for (jc = l0; jc < l1; jc += ncb) {
        const ptrdiff_t nc = l1 - jc < ncb ? l1 - jc : ncb;
        for (pc = 0; pc < CRS; pc += kcb) {
            const ptrdiff_t kc = CRS - pc < kcb ? CRS - pc : kcb;
            const float beta = pc == 0 ? 0.0f : 1.0f;
            const int last = pc + kc == CRS;
            const float *ablk = wp + pc * Kr;
            if (!pw)
                pack_b_image(cfg, g, xp, Hp, Wp, pc, kc, jc, nc, taps, Bp);
            for (jr = 0; jr < nc; jr += NR) {
                const int n = nc - jr < NR ? (int)(nc - jr) : NR;
                const float *bp = pw ? Bp : Bp + jr * kc;
                if (pw)   /* one micro-panel at a time, used while in L1 */
                    cfg->pack_b(NR, (int)kc, n, xp + pc * Hp * Wp + jc + jr, Hp * Wp, 1, Bp);
                for (ir = 0; ir < K; ir += MR) {
                    const int m = K - ir < MR ? K - ir : MR;
                    cycnn_prefetch_step(&pf);
                    const float *ap = ablk + (ptrdiff_t)ir * kc;
                    float *c = y + (ptrdiff_t)ir * ldy + jc + jr;
                    if (m == MR && n == NR) {
                        cfg->ukernel((size_t)kc, ap, bp, NR, c, ldy, 1.0f, beta);
                    } else if (m == MR && 2 * n == NR && cfg->ukernel_half) {
                        cfg->ukernel_half((size_t)kc, ap, bp, NR, c, ldy, 1.0f, beta);
                    } else if (n == NR && cfg->ukernel_rows) {   /* m < MR rows only */
                        cfg->ukernel_rows(m, (size_t)kc, ap, bp, NR, c, ldy, 1.0f, beta);
                    } else {
                        const cycnn_sgemm_ukernel_fn uk =
                            2 * n <= NR && cfg->ukernel_half ? cfg->ukernel_half : cfg->ukernel;
                        uk((size_t)kc, ap, bp, NR, tile, NR, 1.0f, 0.0f);
                        for (i = 0; i < m; i++) {
                            float *ci = c + i * ldy;
                            const float *ti = tile + i * NR;
                            if (beta == 0.0f)
                                for (j = 0; j < n; j++) ci[j] = ti[j];
                            else
                                for (j = 0; j < n; j++) ci[j] += ti[j];
                        }
                    }
                    if (!last || (bias == NULL && act == 0))
                        continue;
                    /* bias + activation while the tile is in L1 */
#if CYCNN_GEMM_X86
                    if (avx2_tile && n == NR) {
                        cycnn_sconv_tile_epilogue_avx2(m, NR, bias != NULL ? bias + ir : NULL,
                                                       act, slope, c, ldy);
                        continue;
                    }
#endif
                    epilogue(m, n, bias != NULL ? bias + ir : NULL, act, slope, c, ldy);
                }
            }
        }
    }
}

void cycnn_sconv_igemm(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                       const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                       int relu, float *y, ptrdiff_t ldy, void *ws)
{
    igemm((const cycnn_sgemm_config *)cfg, g, wp, xp, l0, l1, bias, relu ? 1 : 0, 0.0f, y, ldy,
          ws, NULL, NULL);
}

void cycnn_sconv_igemm_next(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                            const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                            int relu, float *y, ptrdiff_t ldy, void *ws, const float *x_next,
                            const float *y_next)
{
    igemm((const cycnn_sgemm_config *)cfg, g, wp, xp, l0, l1, bias, relu ? 1 : 0, 0.0f, y, ldy,
          ws, x_next, y_next);
}

void cycnn_sconv_igemm_act(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                           const float *xp, ptrdiff_t l0, ptrdiff_t l1, const float *bias,
                           int act, float slope, float *y, ptrdiff_t ldy, void *ws)
{
    igemm((const cycnn_sgemm_config *)cfg, g, wp, xp, l0, l1, bias, act, slope, y, ldy, ws,
          NULL, NULL);
}

/* ---- fused pooling of a conv output tile (the inference plan) ---- */

#if CYCNN_GEMM_X86
void cycnn_sconv_pool2x2_rows_avx2(int pool, const float *r0, ptrdiff_t Wo, int Wq, float *out);
#endif

static float nanmax1(float a, float b)
{
    return (a > b || a != a) ? a : b;   /* a NaN in either propagates */
}

/* One pooled row: out[j] for the ph x pw window at rows r.., columns j*pw..; each window
 * column combined over the rows first, then the columns (the order the AVX2 twin uses). */
static void pool_rows_portable(int pool, const float *r, ptrdiff_t Wo, int ph, int pw, int Wq,
                               float *out)
{
    int j, a, b;
    for (j = 0; j < Wq; j++) {
        const float *w = r + (ptrdiff_t)j * pw;
        float m = 0.0f;
        for (b = 0; b < pw; b++) {
            float col = w[b];
            for (a = 1; a < ph; a++)
                col = pool == 1 ? nanmax1(col, w[a * Wo + b]) : col + w[a * Wo + b];
            m = b == 0 ? col : pool == 1 ? nanmax1(m, col) : m + col;
        }
        out[j] = pool == 1 ? m : m / (float)(ph * pw);
    }
}

void cycnn_sconv_pool_tile(const void *cfg_, int pool, const float *tile, int rows, int Wo,
                           int ph, int pw, int K, ptrdiff_t width, float *out,
                           ptrdiff_t out_plane, int Wq)
{
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    const int Hq = rows / ph;
    int k, i;
#if CYCNN_GEMM_X86
    const int use_avx2 = cfg->pack_b == cycnn_spack_b_avx2 && ph == 2 && pw == 2;
#else
    (void)cfg;
#endif
    for (k = 0; k < K; k++)
        for (i = 0; i < Hq; i++) {
            const float *r = tile + k * width + (ptrdiff_t)i * ph * Wo;
            float *o = out + k * out_plane + (ptrdiff_t)i * Wq;
#if CYCNN_GEMM_X86
            if (use_avx2) {
                cycnn_sconv_pool2x2_rows_avx2(pool, r, Wo, Wq, o);
                continue;
            }
#endif
            pool_rows_portable(pool, r, Wo, ph, pw, Wq, o);
        }
}
