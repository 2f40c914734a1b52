/* swino.c -- Winograd convolution F(2x2, 5x5) / F(4x4, 3x3) of one image (contract: swino.h);
 * driver, filter transform and the portable twins of swino_avx2.c. Callers: the inference
 * plan (filters transformed once) and training's float32 forward pass and stride-1 dx
 * (cycnn._kernels.conv: transformed per call, 16-filter panels in parallel; the transform of
 * 128 x 128 3x3 filters takes about 1.2 ms on one core, 3% of that layer's forward pass).
 *
 * Design
 *   A stride-1 5x5 (3x3) convolution computes each 2x2 (4x4) block of outputs from the 6x6
 *   input tile d under it as Y = A^T [sum_c U_c (.) V_c] A, with U = G g G^T the filter's and
 *   V = B^T d B the tile's 6x6 transform (element-wise product (.)): 36 multiply-adds per
 *   channel and filter for 4 (16) outputs where direct convolution does 100 (144): 2.8x (4x)
 *   fewer. The sum over channels is 36 independent GEMMs, one per transform element xi:
 *     M[xi] (tiles x K) = V[xi] (tiles x Cp) . U[xi] (Cp x K),
 *   run on the broadcast convolution's register tile (6 tiles x 16 filters, cycnn_sconv_direct
 *   _tile_avx2 of sconv_direct_avx2.c: V read in place, 6 broadcasts + 2 vectors of U per
 *   step). Toom-Cook points 0, 1, -1, 2, -1/2 and infinity: one B^T for both filter sizes.
 * Error (measured against float64, random unit-variance inputs, weights scaled 1/sqrt(CRS)):
 *   F(2x2, 5x5), C = 32: 5e-6 absolute on outputs up to 4 (direct float32: 8e-7); F(4x4, 3x3),
 *   C = 64: 1e-5. The points +-2 instead gave 1.2e-5 / 2.4e-5, +-1/2 2.1e-5 / 2.0e-5. An Inf
 *   or NaN in a 6x6 input tile reaches every output of its block (direct convolution: only the
 *   outputs whose window holds it).
 * Loop nest (one image, one thread), blocked so that a block's data stay in L2 (512 KiB per
 *   core on Zen 3) while the filters stream past: blocks of tr whole tile rows, the most whose
 *   V (36 x tb x Cp, tb = tr x tiles per row) fits 256 KiB, evened out (cifar-3x3: 3 + 3 + 2
 *   rows of 8 tiles; vgg-3x3: 2 + 2 + 2 + 1 rows of 7; lenet-c2: the whole image) |
 *     the block's input rows gathered into an HWC copy xt (rows x Wx x Cp, zero padded, so a
 *     tile's 6 x 6 x 8-channel vectors are unit-stride loads; the 6 - m rows it shares with the
 *     block before are moved from the end of the copy, not gathered again) | V |
 *     16-filter panels (U's panel, 36 x Cp x 16, is read once per sub-block) |
 *     sub-blocks of at most 18 tiles, evened out: the 36 GEMMs into M (36 x 19 x 16, 43 KiB),
 *     register tiles of nearly equal size (14 tiles: 5 + 5 + 4, not 6 + 6 + 2), then the
 *     output transform into Z (the block's output rows, pixel-major per panel) |
 *   the broadcast convolution's store (8x8 transposes, + bias, ReLU) from Z into y's rows.
 *   A block's own data are V + M + xt + Z (cifar-3x3: 221 + 41 + 122 + 98 KiB), with one U
 *   panel (147 KiB) at a time streaming through; U (all panels: 36 x Cp x K, 590 KiB for
 *   cifar-3x3, 2.3 MiB for vgg-3x3) comes from L3 once per block. Blocks of 2 rows (all of
 *   cifar-3x3's in 473 KiB) measured slower: U then streams 4 times per image, not 3. The
 *   whole-image HWC copy and output buffer this replaced (296 + 262 KiB for cifar-3x3) were
 *   evicted by the filter stream between their write and their read.
 * Memory: workspace = xt + V + M + Z + the GEMM tile's offset tables; nothing allocates.
 */
#include <string.h>

#include "swino.h"
#include "sconv_direct.h"
#include "../gemm/gemm_internal.h"

#define XI 36                              /* transform elements of a 6x6 tile */
static const double POINTS[5] = {0.0, 1.0, -1.0, 2.0, -0.5};

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }
static int padded_channels(int C) { return (C + 7) / 8 * 8; }

/* Floats between V's transform elements for tb tiles: tb x Cp rounded up to an odd number of
 * 64-byte lines. The input transform stores a tile's 36 elements 36 strides apart; an even
 * number of lines puts them in few L1 sets (cifar-3x3: 24 x 64 floats = 96 lines, 2 sets of
 * 8 ways for 36 lines), so half its stores missed L1. */
static ptrdiff_t v_stride(int tb, int Cp)
{
    const ptrdiff_t lines = ((ptrdiff_t)tb * Cp + 15) / 16;
    return (lines | 1) * 16;
}

int cycnn_swino_tile(const cycnn_conv_geom *g)
{
    if (g->R != g->S || g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1)
        return 0;
    return g->R == 5 ? 2 : g->R == 3 ? 4 : 0;
}

size_t cycnn_swino_panel_floats(int C) { return (size_t)XI * padded_channels(C) * 16; }

size_t cycnn_swino_packed_floats(int K, int C)
{
    return (size_t)((K + 15) / 16) * cycnn_swino_panel_floats(C);
}

/* The filter transform of panels [p0, p1): for each panel and channel, the 16 filters' R x R
 * taps side by side (zero past K), T = G g and U = T G^T in float64, 16 filters at a time
 * (the loops over v vectorise; each store fills a whole 64-byte line of the panel). Every
 * sum runs in the same order for every range, so the result does not depend on the split. */
void cycnn_swino_pack_weights_panels(int K, int C, int R, const float *w, float *wp, int p0,
                                     int p1)
{
    const int Cp = padded_channels(C);
    const size_t panel_floats = cycnn_swino_panel_floats(C);
    double G[6][5] = {{0}};
    int i, j, a, b, c, p, v;
    if (p1 <= p0)
        return;
    memset(wp + (ptrdiff_t)p0 * panel_floats, 0, (size_t)(p1 - p0) * panel_floats * sizeof(float));
    for (i = 0; i < 5; i++) {             /* G[i][a] = p_i^a / prod_{l != i} (p_i - p_l) */
        double f = 1.0, pw = 1.0;
        for (j = 0; j < 5; j++)
            if (j != i)
                f *= POINTS[i] - POINTS[j];
        for (a = 0; a < R; a++, pw *= POINTS[i])
            G[i][a] = pw / f;
    }
    G[5][R - 1] = 1.0;                    /* the point at infinity */
    for (p = p0; p < p1; p++) {
        const int nk = K - p * 16 < 16 ? K - p * 16 : 16;
        float *panel = wp + (ptrdiff_t)p * panel_floats;
        for (c = 0; c < C; c++) {
            double g[25][16], T[6][5][16];
            for (a = 0; a < R * R; a++)
                for (v = 0; v < 16; v++)
                    g[a][v] = v < nk ? w[(((ptrdiff_t)p * 16 + v) * C + c) * R * R + a] : 0.0;
            for (i = 0; i < 6; i++)       /* T = G g */
                for (b = 0; b < R; b++) {
                    double s[16];
                    for (v = 0; v < 16; v++)
                        s[v] = 0.0;
                    for (a = 0; a < R; a++)
                        for (v = 0; v < 16; v++)
                            s[v] += G[i][a] * g[a * R + b][v];
                    for (v = 0; v < 16; v++)
                        T[i][b][v] = s[v];
                }
            for (i = 0; i < 6; i++)       /* U = T G^T */
                for (j = 0; j < 6; j++) {
                    double s[16];
                    float *u = panel + ((ptrdiff_t)(i * 6 + j) * Cp + c) * 16;
                    for (v = 0; v < 16; v++)
                        s[v] = 0.0;
                    for (b = 0; b < R; b++)
                        for (v = 0; v < 16; v++)
                            s[v] += T[i][b][v] * G[j][b];
                    for (v = 0; v < 16; v++)
                        u[v] = (float)s[v];
                }
        }
    }
}

void cycnn_swino_pack_weights(int K, int C, int R, const float *w, float *wp)
{
    cycnn_swino_pack_weights_panels(K, C, R, w, wp, 0, (K + 15) / 16);
}

#ifndef SUB_TILES
#define SUB_TILES 18                       /* tiles per GEMM block: M is 43 KiB */
#endif
#define M_STRIDE (SUB_TILES | 1)           /* M's tiles per transform element: odd, as v_stride */
#ifndef VBLOCK_BYTES
#define VBLOCK_BYTES 262144                /* V of a block of tile rows within 256 KiB */
#endif
#ifndef DW_VBLOCK_BYTES
#define DW_VBLOCK_BYTES 524288             /* the weight gradient's V and Udy within 512 KiB */
#endif

/* How the forward pass of geometry g (m = cycnn_swino_tile(g)) cuts an image: tiles th x tw,
 * blocks of tr whole tile rows (the last may have fewer), the HWC rows a block reads. */
typedef struct {
    int tw, th, tr;                        /* tiles per row, tile rows, tile rows per block */
    int cap;      /* the most tile rows per block for g's width and any height up to g's: the
                   * workspace is sized for it (the plan runs bands of rows in a workspace
                   * sized for the whole image, and evening out may give a band more rows
                   * per block than the whole image: 3 tile rows in 1 block, 4 in 2 x 2) */
    ptrdiff_t Wx, rows;                    /* HWC copy: columns, rows of one block */
} wino_layout;

static wino_layout layout(const cycnn_conv_geom *g, int m, int per_tile, size_t budget)
{
    wino_layout L;
    const size_t row_v = (size_t)XI * ((g->Wo + m - 1) / m) * per_tile * sizeof(float);
    L.tw = (g->Wo + m - 1) / m;
    L.th = (g->Ho + m - 1) / m;
    L.Wx = (ptrdiff_t)(L.tw - 1) * m + 6;
    L.tr = (int)(budget / row_v);         /* tile rows whose V fits the budget */
    if (L.tr < 1)
        L.tr = 1;
    L.cap = L.tr < L.th ? L.tr : L.th;
    if (L.tr >= L.th)
        L.tr = L.th;
    else                                  /* as many blocks, evened out */
        L.tr = (L.th + (L.th + L.tr - 1) / L.tr - 1) / ((L.th + L.tr - 1) / L.tr);
    L.rows = (ptrdiff_t)(L.tr - 1) * m + 6;
    return L;
}

size_t cycnn_swino_workspace_bytes(const cycnn_conv_geom *g)
{
    const int m = cycnn_swino_tile(g), Cp = padded_channels(g->C);
    wino_layout L;
    if (m == 0 || g->Ho <= 0 || g->Wo <= 0)
        return 0;
    L = layout(g, m, Cp, VBLOCK_BYTES);
    return align64((size_t)(((ptrdiff_t)L.cap - 1) * m + 6) * L.Wx * Cp * sizeof(float)) +
           align64((size_t)XI * v_stride(L.cap * L.tw, Cp) * sizeof(float)) +
           align64((size_t)XI * M_STRIDE * 16 * sizeof(float)) +
           align64((size_t)((g->K + 15) / 16) * L.cap * m * g->Wo * 16 * sizeof(float)) +
           align64((size_t)Cp * sizeof(ptrdiff_t)) + align64(6 * sizeof(ptrdiff_t));
}

/* xt[((h - h0) * Wx + w) * Cp + c] = x[c, h - pt, w - pl] for rows h0 <= h < h1 (zero outside
 * the image and for c >= C): zero the rows, then copy channel by channel (unit-stride
 * reads). */
static void gather_portable(const cycnn_conv_geom *g, int Cp, ptrdiff_t h0, ptrdiff_t h1,
                            ptrdiff_t Wx, const float *x, float *xt)
{
    ptrdiff_t h, w, w0, w1;
    int c;
    memset(xt, 0, (size_t)((h1 - h0) * Wx * Cp) * sizeof(float));
    w0 = g->pl > 0 ? g->pl : 0;
    w1 = g->pl + g->W < Wx ? g->pl + g->W : Wx;
    for (c = 0; c < g->C; c++)
        for (h = h0; h < h1; h++) {
            const ptrdiff_t ih = h - g->pt;
            const float *row = x + ((ptrdiff_t)c * g->H + ih) * g->W - g->pl;
            if (ih < 0 || ih >= g->H)
                continue;
            for (w = w0; w < w1; w++)
                xt[((h - h0) * Wx + w) * Cp + c] = row[w];
        }
}

/* ---- portable twins of swino_avx2.c: the transforms straight from the tables of swino.h
 * (zero terms skipped); the AVX2 input and output transforms factor B^T's and A^T's rows over
 * shared differences (bt6, at6), so the paths round differently (the tests hold both to the
 * same bound against float64 and to each other). */

static float comb(const float *coef, const float *in, int stride)
{
    float s = 0.0f;
    int k, first = 1;
    for (k = 0; k < 6; k++)
        if (coef[k] != 0.0f) {
            s = first ? coef[k] * in[k * stride] : s + coef[k] * in[k * stride];
            first = 0;
        }
    return s;
}

static void in_portable(const float *xt, ptrdiff_t Wx, int Cp, int m, int tw, ptrdiff_t t0,
                        int nt, ptrdiff_t vs, float *V)
{
    int t, c, i, j, k;
    for (t = 0; t < nt; t++) {
        const ptrdiff_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        const float *base = xt + (ty * m * Wx + tx * m) * Cp;
        for (c = 0; c < Cp; c++) {
            float d[6][6], T[6][6];
            for (k = 0; k < 6; k++)
                for (j = 0; j < 6; j++)
                    d[k][j] = base[(k * Wx + j) * Cp + c];
            for (i = 0; i < 6; i++)                   /* T = B^T d */
                for (j = 0; j < 6; j++)
                    T[i][j] = comb(CYCNN_SWINO_BT[i], &d[0][j], 6);
            for (i = 0; i < 6; i++)                   /* V = T B */
                for (j = 0; j < 6; j++)
                    V[(i * 6 + j) * vs + t * Cp + c] = comb(CYCNN_SWINO_BT[j], T[i], 1);
        }
    }
}

static void out_portable(const float *M, int tb, int nt, int m, ptrdiff_t t0, int tw, int Ho,
                         int Wo, float *Z)
{
    const float(*AT)[6] = m == 2 ? CYCNN_SWINO_AT2 : CYCNN_SWINO_AT4;
    int t, v, a, b, xi, j;
    for (t = 0; t < nt; t++) {
        const ptrdiff_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        for (v = 0; v < 16; v++) {
            float Mx[XI], S[4][6];
            for (xi = 0; xi < XI; xi++)
                Mx[xi] = M[((ptrdiff_t)xi * tb + t) * 16 + v];
            for (a = 0; a < m; a++)                   /* S = A^T M */
                for (j = 0; j < 6; j++)
                    S[a][j] = comb(AT[a], &Mx[j], 6);
            for (a = 0; a < m && ty * m + a < Ho; a++)
                for (b = 0; b < m && tx * m + b < Wo; b++)
                    Z[((ty * m + a) * Wo + tx * m + b) * 16 + v] = comb(AT[b], S[a], 1);
        }
    }
}

/* ---- driver */

void cycnn_swino(const void *cfg_, const cycnn_conv_geom *g, const float *wp, const float *x,
                 const float *bias, int relu, float *y, ptrdiff_t ldy, void *ws)
{
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    const int m = cycnn_swino_tile(g), Cp = padded_channels(g->C), K = g->K;
    void (*gather)(const cycnn_conv_geom *, int, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *,
                   float *) = gather_portable;
    void (*in)(const float *, ptrdiff_t, int, int, int, ptrdiff_t, int, ptrdiff_t, float *) =
        in_portable;
    void (*tile)(int, const ptrdiff_t *, const float *, const ptrdiff_t *, ptrdiff_t,
                 const float *, float *, int) = cycnn_sconv_direct_tile_generic;
    void (*out)(const float *, int, int, int, ptrdiff_t, int, int, int, float *) = out_portable;
    void (*store)(const float *, ptrdiff_t, int, const float *, int, float *, ptrdiff_t) =
        cycnn_sconv_direct_store_generic;
    const int ov = 6 - m;                  /* input rows shared by consecutive tile rows */
    wino_layout L;
    ptrdiff_t zpanel, xrow, vs;
    float *xt, *V, *M, *Z;
    ptrdiff_t *taps, *poff;
    int tb, c, k0, xi, j, q, ty0;

    if (m == 0 || K <= 0 || g->Ho <= 0 || g->Wo <= 0)
        return;
#if CYCNN_GEMM_X86
    if (cfg->pack_b == cycnn_spack_b_avx2) {   /* the avx2 and avx512 paths: AVX2 is there */
        gather = cycnn_swino_gather_avx2;
        in = cycnn_swino_in_avx2;
        tile = cycnn_sconv_direct_tile_avx2;
        out = cycnn_swino_out_avx2;
        store = cycnn_sconv_direct_store_avx2;
    }
#else
    (void)cfg;
#endif
    L = layout(g, m, Cp, VBLOCK_BYTES);
    tb = L.tr * L.tw;
    vs = v_stride(tb, Cp);
    xrow = L.Wx * Cp;
    zpanel = (ptrdiff_t)L.tr * m * g->Wo * 16;
    xt = (float *)ws;
    V = (float *)((char *)xt + align64((size_t)(L.rows * xrow) * sizeof(float)));
    M = (float *)((char *)V + align64((size_t)XI * vs * sizeof(float)));
    Z = (float *)((char *)M + align64((size_t)XI * M_STRIDE * 16 * sizeof(float)));
    taps = (ptrdiff_t *)((char *)Z + align64((size_t)((K + 15) / 16) * zpanel * sizeof(float)));
    poff = (ptrdiff_t *)((char *)taps + align64((size_t)Cp * sizeof(ptrdiff_t)));
    for (c = 0; c < Cp; c++)
        taps[c] = c;
    for (j = 0; j < 6; j++)
        poff[j] = (ptrdiff_t)j * Cp;
    for (ty0 = 0; ty0 < L.th; ty0 += L.tr) {   /* blocks of whole tile rows */
        const int nr = L.th - ty0 < L.tr ? L.th - ty0 : L.tr;
        const int nt = nr * L.tw, oh0 = ty0 * m;
        const int nh = g->Ho - oh0 < nr * m ? g->Ho - oh0 : nr * m;   /* output rows */
        const ptrdiff_t h0 = oh0, h1 = oh0 + (ptrdiff_t)(nr - 1) * m + 6;
        if (ty0 == 0)                      /* the HWC rows of the block */
            gather(g, Cp, h0, h1, L.Wx, x, xt);
        else {                             /* the previous block's last ov rows are its first */
            memmove(xt, xt + (L.rows - ov) * xrow, (size_t)(ov * xrow) * sizeof(float));
            gather(g, Cp, h0 + ov, h1, L.Wx, x, xt + ov * xrow);
        }
        const int nsub = (nt + SUB_TILES - 1) / SUB_TILES;
        in(xt, L.Wx, Cp, m, L.tw, 0, nt, vs, V);
        for (k0 = 0; k0 < K; k0 += 16) {
            const int p = k0 / 16;
            const float *U = wp + (ptrdiff_t)p * cycnn_swino_panel_floats(g->C);
            for (q = 0; q < nsub; q++) {   /* sub-blocks and register tiles evened out */
                const int s0 = nt * q / nsub, ns = nt * (q + 1) / nsub - s0;
                const int calls = (ns + 5) / 6;
                for (xi = 0; xi < XI; xi++)
                    for (j = 0; j < calls; j++) {
                        const int a = ns * j / calls, b = ns * (j + 1) / calls;
                        tile(b - a, poff, V + xi * vs + (ptrdiff_t)(s0 + a) * Cp, taps, Cp,
                             U + (ptrdiff_t)xi * Cp * 16, M + ((ptrdiff_t)xi * M_STRIDE + a) * 16,
                             1);
                    }
                out(M, M_STRIDE, ns, m, s0, L.tw, nh, g->Wo, Z + (ptrdiff_t)p * zpanel);
            }
        }
        for (k0 = 0; k0 < K; k0 += 16)     /* pixel-major panels into y's rows, + bias, ReLU */
            store(Z + (ptrdiff_t)(k0 / 16) * zpanel, (ptrdiff_t)nh * g->Wo,
                  K - k0 < 16 ? K - k0 : 16, bias != NULL ? bias + k0 : NULL, relu,
                  y + (ptrdiff_t)k0 * ldy + (ptrdiff_t)oh0 * g->Wo, ldy);
    }
}

/* ---- weight gradient (training)
 *
 * dw[k, c, r, s] = sum over images and output pixels of dy[k, oh, ow] * x[c, oh - pt + r,
 * ow - pl + s] is a correlation with R x R outputs whose "filter" is dy: on the same m x m
 * output tiles, each tile's share is F(R x R, m x m) on the same 6x6 input tile,
 *   dw[k, c] += A_R^T [ (G_m g G_m^T) (.) (B^T d B) ] A_R,   g the tile of dy[k], d of x[c],
 * with the same B^T (so the forward pass's input transform), G_m (6 x m) and A_R^T (R x 6)
 * from the same points. Summed over tiles and images in the transform domain,
 *   acc[xi] (Cp x K) += V[xi]^T (Cp x tiles) . Udy[xi] (tiles x K)
 * -- GEMMs as deep as a block of tiles, on the broadcast tile again (6 channels x 16
 * filters, V's values broadcast, 2 vectors of Udy per tile) -- and turned into dw once per
 * call (cycnn_swino_dw_finish). Loop nest per image: blocks of whole tile rows as the
 * forward pass's, but larger (V and one panel's Udy, 36 x (Cp + 16) per tile, within 512
 * KiB): each block streams all of acc (36 x Cp x Kp; 2.3 MiB for vgg-3x3) in and out, so
 * fewer, deeper blocks pay even when V no longer stays in L2 (one core, vgg-3x3: 256 KiB
 * blocks of 1 tile row 37.5 ms, 512 KiB 32.6, 768 KiB 31.3; cifar-3x3 23.0, 22.3, 21.7) |
 * the block's rows of x and dy gathered channels-last (x's shared rows moved, as the forward
 * pass's) | V | 16-filter panels: Udy of the panel (36 x tiles x 16), then for each xi and
 * 6 channels one register tile over the whole block into acc's panel (36 x Cp x 16, ~73 KiB
 * for 32 channels, in L2 with V and Udy); every other block takes the panels in reverse, so
 * the acc panel it starts with is the one just updated (cifar-3x3, cachegrind with a 512 KiB
 * last level: 15% fewer misses in the GEMMs).
 * Error: against float64, 2.5e-6 of the largest dw (direct float32: about 1e-7), measured in
 * NumPy on lenet-c2 and 3x3, 64-channel shapes. */

static int padded_filters(int K) { return (K + 15) / 16 * 16; }

size_t cycnn_swino_dw_acc_floats(int K, int C)
{
    return (size_t)XI * padded_channels(C) * padded_filters(K);
}

/* The weight gradient's blocks: V and one panel's Udy (36 x (Cp + 16) per tile) in budget. */
static wino_layout dw_layout(const cycnn_conv_geom *g, int m)
{
    return layout(g, m, padded_channels(g->C) + 16, DW_VBLOCK_BYTES);
}

size_t cycnn_swino_dw_workspace_bytes(const cycnn_conv_geom *g)
{
    const int m = cycnn_swino_tile(g), Cp = padded_channels(g->C), Kp = padded_filters(g->K);
    wino_layout L;
    if (m == 0 || g->Ho <= 0 || g->Wo <= 0)
        return 0;
    L = dw_layout(g, m);
    return align64((size_t)(((ptrdiff_t)L.cap - 1) * m + 6) * L.Wx * Cp * sizeof(float)) +
           align64((size_t)L.cap * m * L.tw * m * Kp * sizeof(float)) +
           align64((size_t)XI * v_stride(L.cap * L.tw, Cp) * sizeof(float)) +
           align64((size_t)XI * ((L.cap * L.tw) | 1) * 16 * sizeof(float)) +
           align64((size_t)L.cap * L.tw * sizeof(ptrdiff_t)) + align64(6 * sizeof(ptrdiff_t));
}

/* Udy[(xi * tb + t) * 16 + v] = (G g G^T)[xi] for filters k0 + v (v < 16) of tiles t < nt
 * (tile t0 + t), g the m x m tile of dyt (Hd x Wd x Kp, channels-last). */
static void dyt_portable(const float *dyt, ptrdiff_t Wd, int Kp, int m, int tw, ptrdiff_t t0,
                         int nt, int tb, int k0, float *Udy)
{
    const float *G = m == 2 ? &CYCNN_SWINO_GD2[0][0] : &CYCNN_SWINO_GD4[0][0];
    int t, v, i, j, a, b;
    for (t = 0; t < nt; t++) {
        const ptrdiff_t ty = (t0 + t) / tw, tx = (t0 + t) % tw;
        const float *base = dyt + (ty * m * Wd + tx * m) * Kp + k0;
        for (v = 0; v < 16; v++) {
            float T[6][4];
            for (i = 0; i < 6; i++)                   /* T = G g */
                for (b = 0; b < m; b++) {
                    float s = 0.0f;
                    for (a = 0; a < m; a++)
                        s += G[i * m + a] * base[(a * Wd + b) * Kp + v];
                    T[i][b] = s;
                }
            for (i = 0; i < 6; i++)                   /* U = T G^T */
                for (j = 0; j < 6; j++) {
                    float s = 0.0f;
                    for (b = 0; b < m; b++)
                        s += T[i][b] * G[j * m + b];
                    Udy[((ptrdiff_t)(i * 6 + j) * tb + t) * 16 + v] = s;
                }
        }
    }
}

void cycnn_swino_dw(const void *cfg_, const cycnn_conv_geom *g, const float *x, const float *dy,
                    float *acc, void *ws)
{
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    const int m = cycnn_swino_tile(g), Cp = padded_channels(g->C), Kp = padded_filters(g->K);
    void (*gather)(const cycnn_conv_geom *, int, ptrdiff_t, ptrdiff_t, ptrdiff_t, const float *,
                   float *) = gather_portable;
    void (*in)(const float *, ptrdiff_t, int, int, int, ptrdiff_t, int, ptrdiff_t, float *) =
        in_portable;
    void (*dyt_fn)(const float *, ptrdiff_t, int, int, int, ptrdiff_t, int, int, int, float *) =
        dyt_portable;
    void (*tile)(int, const ptrdiff_t *, const float *, const ptrdiff_t *, ptrdiff_t,
                 const float *, float *, int) = cycnn_sconv_direct_tile_generic;
    const int ov = 6 - m;
    cycnn_conv_geom gd;
    wino_layout L;
    ptrdiff_t Wd, xrow, vs;
    float *xt, *dyt, *V, *U;
    ptrdiff_t *taps, *poff;
    const int np = Kp / 16;
    int tb, xi, j, t, c0, ty0, pi;

    if (m == 0 || g->K <= 0 || g->C <= 0 || g->Ho <= 0 || g->Wo <= 0)
        return;
#if CYCNN_GEMM_X86
    if (cfg->pack_b == cycnn_spack_b_avx2) {
        gather = cycnn_swino_gather_avx2;
        in = cycnn_swino_in_avx2;
        dyt_fn = cycnn_swino_dyt_avx2;
        tile = cycnn_sconv_direct_tile_avx2;
    }
#else
    (void)cfg;
#endif
    L = dw_layout(g, m);
    tb = L.tr * L.tw;
    vs = v_stride(tb, Cp);
    Wd = (ptrdiff_t)L.tw * m;
    xrow = L.Wx * Cp;
    xt = (float *)ws;
    dyt = (float *)((char *)xt + align64((size_t)(L.rows * xrow) * sizeof(float)));
    V = (float *)((char *)dyt + align64((size_t)L.tr * m * Wd * Kp * sizeof(float)));
    U = (float *)((char *)V + align64((size_t)XI * vs * sizeof(float)));
    taps = (ptrdiff_t *)((char *)U + align64((size_t)XI * (tb | 1) * 16 * sizeof(float)));
    poff = (ptrdiff_t *)((char *)taps + align64((size_t)tb * sizeof(ptrdiff_t)));
    for (t = 0; t < tb; t++)
        taps[t] = (ptrdiff_t)t * Cp;
    for (j = 0; j < 6; j++)
        poff[j] = j;
    gd = *g;                                   /* dy as an unpadded K-channel image */
    gd.C = g->K;
    gd.H = g->Ho;
    gd.W = g->Wo;
    gd.pt = gd.pl = 0;
    for (ty0 = 0; ty0 < L.th; ty0 += L.tr) {   /* blocks of whole tile rows, as the forward */
        const int nr = L.th - ty0 < L.tr ? L.th - ty0 : L.tr;
        const int nt = nr * L.tw;
        const ptrdiff_t h0 = (ptrdiff_t)ty0 * m, h1 = h0 + (ptrdiff_t)(nr - 1) * m + 6;
        if (ty0 == 0)
            gather(g, Cp, h0, h1, L.Wx, x, xt);
        else {
            memmove(xt, xt + (L.rows - ov) * xrow, (size_t)(ov * xrow) * sizeof(float));
            gather(g, Cp, h0 + ov, h1, L.Wx, x, xt + ov * xrow);
        }
        gather(&gd, Kp, h0, h0 + (ptrdiff_t)nr * m, Wd, dy, dyt);
        in(xt, L.Wx, Cp, m, L.tw, 0, nt, vs, V);
        for (pi = 0; pi < np; pi++) {      /* every other block backwards: the panel of acc */
            const int p = (ty0 / L.tr) % 2 ? np - 1 - pi : pi;   /* last updated is in L2 */
            float *accp = acc + (ptrdiff_t)p * XI * Cp * 16;
            dyt_fn(dyt, Wd, Kp, m, L.tw, 0, nt, tb | 1, p * 16, U);   /* odd: as V */
            for (xi = 0; xi < XI; xi++)
                for (c0 = 0; c0 < Cp; c0 += 6)
                    tile(Cp - c0 < 6 ? Cp - c0 : 6, poff, V + xi * vs + c0, taps,
                         nt, U + (ptrdiff_t)xi * (tb | 1) * 16,
                         accp + ((ptrdiff_t)xi * Cp + c0) * 16, 0);
        }
    }
}

void cycnn_swino_dw_finish(int K, int C, int R, const float *acc, ptrdiff_t acc_stride,
                           int nacc, int k0, int k1, float *dw)
{
    const int Cp = padded_channels(C);
    double A[5][6] = {{0}};                   /* A_R^T: row i = the points to the power i */
    int i, j, a, b, k, c, n;
    for (i = 0; i < R; i++)
        for (j = 0; j < 5; j++) {
            double p = 1.0;
            for (a = 0; a < i; a++)
                p *= POINTS[j];
            A[i][j] = p;
        }
    A[R - 1][5] = 1.0;
    (void)K;
    for (k = k0; k < k1; k++)
        for (c = 0; c < C; c++) {
            double M[XI], T[5][6];
            const ptrdiff_t off = ((ptrdiff_t)(k / 16) * XI * Cp + c) * 16 + k % 16;
            for (i = 0; i < XI; i++) {        /* the threads' partial sums, in order */
                float s = 0.0f;
                for (n = 0; n < nacc; n++)
                    s += acc[n * acc_stride + off + (ptrdiff_t)i * Cp * 16];
                M[i] = s;
            }
            for (i = 0; i < R; i++)           /* T = A^T M */
                for (b = 0; b < 6; b++) {
                    double s = 0.0;
                    for (a = 0; a < 6; a++)
                        s += A[i][a] * M[a * 6 + b];
                    T[i][b] = s;
                }
            for (i = 0; i < R; i++)           /* dw = T A */
                for (j = 0; j < R; j++) {
                    double s = 0.0;
                    for (b = 0; b < 6; b++)
                        s += T[i][b] * A[j][b];
                    dw[(((ptrdiff_t)k * C + c) * R + i) * R + j] = (float)s;
                }
        }
}
