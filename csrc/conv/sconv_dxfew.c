/* sconv_dxfew.c -- dx of a float stride-1 convolution with few input channels and
 * width-preserving padding (contract: sconv_dxfew.h); driver and portable kernel.
 *
 * Design
 *   The flipped-filter convolution of dy (sconv_direct.c, sconv_fewc.c) computes dx with C
 *   "filters": a first layer's one input channel fills 1 of 16 filter lanes, and the
 *   channels-last path serves one output channel per copy of dy (0.7x col2im for lenet-c1).
 *   col2im (w^T . dy into a column matrix, then scatter-add) wastes the GEMM's 6-row tile on
 *   CRS = 25 rows and reads the 25 x L column matrix again to scatter it. Here the scatter is
 *   fused into the GEMM's register-tile store. With Wo == W a dy row and a dx row have the same
 *   width, so on the flattened output plane p = oh*W + ow
 *     Z_{c,r,s}[p] = sum_k w[k, c, r, s] * dy[k, p]   lands at   dx[c, p + (r - pt)*W + (s - pl)]
 *   (a constant shift per tap), except for the lanes whose column ow + s - pl falls outside
 *   [0, W): those would wrap into the neighbouring row, and are masked to an exact 0 (from a
 *   per-image table of p's column, two compares per vector). Rows outside [0, H) land in a
 *   per-thread padded dx plane of Ho + R - 1 rows (+ margins; L1-resident for a first layer:
 *   32 x 28 floats for lenet-c1), zeroed per image; rows pt .. pt + H - 1 are copied to dx.
 *   - register tile (AVX2, sconv_dxfew_avx2.c): T taps (r of one (c, s), T <= 6) x NV vectors of
 *     8 pixels (T*NV <= 12; lenet-c1: 5 x 2), the depth running over the K channels of dy: per
 *     k, NV loads of dy[k, p .. p + 8*NV), T broadcasts of the packed weights, T*NV FMAs. The T
 *     rows of one store target different dx rows; consecutive tiles step s (a whole K loop
 *     between overlapping read-modify-writes).
 *   - the R taps of a filter column s split into ceil(R / 6) groups of equal size (R = 7:
 *     4 + 3); NV = min(4, 12 / T) (3x3: 3 x 4). The pixels past the plane (L % (8*NV)) run as
 *     one more tile over a zero-padded copy of dy's last columns; their lanes are masked too.
 *   - when dy's rows would share few L1 sets (a plane a multiple of 256 floats, e.g. 32 x 32:
 *     rows 4 KiB apart, all K rows of a tile in one 8-way set), each tile's K x 8*NV floats of
 *     dy are copied contiguous first (RGB 3x3 on 32x32, 64 filters: 1.4x); lenet-c1's rows of
 *     784 floats spread over all sets and are read in place.
 *   Loop nest per image: pixel tiles | channels c | column taps s | tap groups | k. A tile's dy
 *   (K x 8*NV floats) stays in L1 across its C*S*groups register tiles.
 *   The AVX2 kernel runs when the selected GEMM path is avx2 or avx512 (as sconv_fewc.c); the
 *   portable one below, the same sums in plain C, otherwise. The caller (conv.pyx) runs each
 *   image's dx right after its weight gradient (sconv_fewc_dw), while dy[n] is in L2; else
 *   (cold) the AVX2 loop prefetches dy two tiles ahead.
 * Parallelism: none inside; callers give threads whole images.
 * Memory: workspace = C padded planes (round8(pl + L8 + (R - 1)*W + S + 8) floats each, L8 = L
 *   rounded up to the tile) + p's columns (L8 ints) + the last tile's dy and the contiguous
 *   tile (K x 8*NV floats each): 11 KiB for lenet-c1.
 */
#include <string.h>

#include "sconv_dxfew.h"
#include "../gemm/gemm_internal.h"

#define MAX_TAPS 6          /* taps per register tile */
#define MAX_ACC 12          /* vector accumulators per register tile */

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }
static ptrdiff_t round8(ptrdiff_t n) { return (n + 7) & ~(ptrdiff_t)7; }

typedef struct {
    int tg, nv;             /* taps per group, vectors per tile */
    ptrdiff_t pt_, L, L8;   /* pixels per tile, plane, plane rounded up to tiles */
    ptrdiff_t cs;           /* floats per padded plane */
} dxfew_plan;

static dxfew_plan make_plan(const cycnn_conv_geom *g)
{
    dxfew_plan p;
    const int R = g->R > 0 ? g->R : 1;
    const int ng = (R + MAX_TAPS - 1) / MAX_TAPS;
    p.tg = (R + ng - 1) / ng;
    p.nv = MAX_ACC / p.tg > 4 ? 4 : MAX_ACC / p.tg;
    p.pt_ = 8 * p.nv;
    p.L = (ptrdiff_t)g->Ho * g->Wo;
    p.L8 = (p.L + p.pt_ - 1) / p.pt_ * p.pt_;
    p.cs = round8((ptrdiff_t)g->pl + p.L8 + (ptrdiff_t)(R - 1) * g->W + g->S + 8);
    return p;
}

/* A tile's K rows of dy, ldy floats apart, crowd into few sets of a 64-set, 8-way L1 (e.g. 32 x
 * 32 planes: rows 4 KiB apart, all in one set): copy each tile contiguous first. */
static int aliased(ptrdiff_t ldy, int K, int nv)
{
    ptrdiff_t a, b, t;
    if (ldy % 16 != 0)
        return 0;
    a = (ldy / 16) % 64;           /* sets = 64 / gcd(ldy / 16, 64) */
    b = 64;
    while (a != 0) {
        t = b % a;
        b = a;
        a = t;
    }
    return (64 / b) * 8 < (ptrdiff_t)K * (nv / 2 + 1);
}

int cycnn_sconv_dxfew_applies(const cycnn_conv_geom *g)
{
    return g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->C >= 1 && g->K >= 1 &&
           g->R >= 1 && g->S >= 1 && g->H >= 1 && g->W >= 1 && g->Ho >= 1 && g->Wo == g->W &&
           g->pl >= 0 && g->pl <= g->S - 1;
}

size_t cycnn_sconv_dxfew_packed_floats(int K, int C, int R, int S)
{
    return (size_t)K * (size_t)C * (size_t)R * (size_t)S;
}

/* wp[((c*S + s)*R + r0)*K + k*T + r - r0] = w[k, c, r, s] for the group [r0, r0 + T) of r. */
void cycnn_sconv_dxfew_pack_weights(int K, int C, int R, int S, const float *w, float *wp)
{
    cycnn_conv_geom g;
    dxfew_plan p;
    int c, s, r0, r, k;
    memset(&g, 0, sizeof g);
    g.R = R;
    g.S = S;
    p = make_plan(&g);
    for (c = 0; c < C; c++)
        for (s = 0; s < S; s++)
            for (r0 = 0; r0 < R; r0 += p.tg) {
                const int T = R - r0 < p.tg ? R - r0 : p.tg;
                float *blk = wp + (((ptrdiff_t)c * S + s) * R + r0) * K;
                for (k = 0; k < K; k++)
                    for (r = 0; r < T; r++)
                        blk[k * T + r] = w[(((ptrdiff_t)k * C + c) * R + r0 + r) * S + s];
            }
}

size_t cycnn_sconv_dxfew_workspace_bytes(const cycnn_conv_geom *g)
{
    const dxfew_plan p = make_plan(g);
    return align64((size_t)g->C * p.cs * sizeof(float)) + align64((size_t)p.L8 * sizeof(int)) +
           2 * align64((size_t)(g->K > 0 ? g->K : 1) * p.pt_ * sizeof(float));
}

void cycnn_sconv_dxfew_tiles_generic(int K, int C, int R, int S, int tg, int nv,
                                     const float *dy, ptrdiff_t ldy, ptrdiff_t p0, ptrdiff_t p1,
                                     const int *col, const float *wp, ptrdiff_t W, int pl,
                                     float *buf, ptrdiff_t cs, float *pk, int cold)
{
    const int n = 8 * nv;
    float z[MAX_TAPS][32];
    ptrdiff_t p;
    int c, s, r0, r, k, j;
    (void)cold;
    for (p = p0; p < p1; p += n) {
        const float *dyt = pk != NULL ? pk : dy + (p - p0);
        const ptrdiff_t ld = pk != NULL ? n : ldy;
        for (k = 0; pk != NULL && k < K; k++)
            for (j = 0; j < n; j++)
                pk[k * n + j] = dy[k * ldy + (p - p0) + j];
        for (c = 0; c < C; c++)
            for (s = 0; s < S; s++) {
                const int lo = pl - s, hi = (int)W + pl - s;   /* valid: lo <= col < hi */
                for (r0 = 0; r0 < R; r0 += tg) {
                    const int T = R - r0 < tg ? R - r0 : tg;
                    const float *wg = wp + (((ptrdiff_t)c * S + s) * R + r0) * K;
                    float *out = buf + c * cs + p + (ptrdiff_t)r0 * W + s - pl;
                    memset(z, 0, sizeof z);
                    for (k = 0; k < K; k++)
                        for (r = 0; r < T; r++) {
                            const float wv = wg[k * T + r];
                            for (j = 0; j < n; j++)
                                z[r][j] += wv * dyt[k * ld + j];
                        }
                    for (r = 0; r < T; r++)
                        for (j = 0; j < n; j++)
                            if (col[p + j] >= lo && col[p + j] < hi)
                                out[r * W + j] += z[r][j];
                }
            }
    }
}

typedef void (*tiles_fn)(int, int, int, int, int, int, const float *, ptrdiff_t, ptrdiff_t,
                         ptrdiff_t, const int *, const float *, ptrdiff_t, int, float *,
                         ptrdiff_t, float *, int);

void cycnn_sconv_dxfew(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                       const float *dy, int cold, float *dx, void *ws)
{
    const dxfew_plan p = make_plan(g);
    const int C = g->C, K = g->K;
    const ptrdiff_t W = g->W, H = g->H, rows = (ptrdiff_t)g->Ho + g->R - 1;
    const ptrdiff_t Lf = p.L / p.pt_ * p.pt_;     /* the full tiles' pixels */
    float *planes = (float *)ws;
    int *col = (int *)((char *)ws + align64((size_t)C * p.cs * sizeof(float)));
    float *tail = (float *)((char *)col + align64((size_t)p.L8 * sizeof(int)));
    float *pk = (float *)((char *)tail + align64((size_t)K * p.pt_ * sizeof(float)));
    float *buf = planes + g->pl;                  /* row 0, column 0 of channel 0 */
    tiles_fn tiles = cycnn_sconv_dxfew_tiles_generic;
    ptrdiff_t i, ow, k, ih0, ih1;
    int c;

#if CYCNN_GEMM_X86
    if (((const cycnn_sgemm_config *)cfg)->pack_b == cycnn_spack_b_avx2)   /* avx2, avx512 */
        tiles = cycnn_sconv_dxfew_tiles_avx2;
#else
    (void)cfg;
#endif
    if (!aliased(p.L, K, p.nv))
        pk = NULL;
    memset(planes, 0, (size_t)C * p.cs * sizeof(float));
    for (i = 0; i < p.L; i += W)                  /* the columns; past the plane: masked */
        for (ow = 0; ow < W; ow++)
            col[i + ow] = (int)ow;
    for (i = p.L; i < p.L8; i++)
        col[i] = -(1 << 30);
    if (Lf > 0)
        tiles(K, C, g->R, g->S, p.tg, p.nv, dy, p.L, 0, Lf, col, wp, W, g->pl, buf, p.cs, pk,
              cold);
    if (Lf < p.L) {                               /* the last tile over zero-padded columns */
        for (k = 0; k < K; k++) {
            memcpy(tail + k * p.pt_, dy + k * p.L + Lf, (size_t)(p.L - Lf) * sizeof(float));
            memset(tail + k * p.pt_ + (p.L - Lf), 0, (size_t)(p.L8 - p.L) * sizeof(float));
        }
        tiles(K, C, g->R, g->S, p.tg, p.nv, tail, p.pt_, Lf, p.L8, col, wp, W, g->pl, buf,
              p.cs, pk, 0);
    }
    /* dx rows ih <- plane rows ih + pt inside [0, rows); 0 elsewhere */
    ih0 = -(ptrdiff_t)g->pt < 0 ? 0 : -(ptrdiff_t)g->pt;
    ih1 = rows - g->pt < H ? rows - g->pt : H;
    if (ih1 < ih0)
        ih1 = ih0 = 0;
    for (c = 0; c < C; c++) {
        float *d = dx + (ptrdiff_t)c * H * W;
        memset(d, 0, (size_t)(ih0 * W) * sizeof(float));
        memcpy(d + ih0 * W, buf + c * p.cs + (ih0 + g->pt) * W,
               (size_t)((ih1 - ih0) * W) * sizeof(float));
        memset(d + ih1 * W, 0, (size_t)((H - ih1) * W) * sizeof(float));
    }
}
