/* sconv_fewc.c -- float stride-1 convolution for few input channels or few filters (contract:
 * sconv_fewc.h); driver and portable kernels.
 *
 * Design
 *   The broadcast kernel (sconv_direct.c) vectorises along the filters and runs a register tile
 *   over the taps: a first layer (C = 1, 5x5: 25 taps) gives each tile 25 taps of depth, and a
 *   first layer's dx (1 output channel) fills 1 of its 16 filter lanes. This kernel vectorises
 *   along the OUTPUT PIXELS instead, on the flattened output plane l = oh*Wo + ow:
 *   - per image, the shifted copies X_{c,s}[h*Wo + ow] = xpad[c, h, ow + s] for the padded rows
 *     h < Hp = Ho + R - 1 (C*S planes of Hp*Wo floats + 16 zeros of slack: 5 x 32 x 28 floats,
 *     17.5 KiB, for lenet-c1). Then every output pixel l, whole rows included, reads tap
 *     (c, r, s) at X_{c,s}[l + r*Wo]: y[k, l] = sum_{c,r,s} w[k,c,r,s] * X_{c,s}[l + r*Wo],
 *     and 8 consecutive pixels are one unaligned vector load, whatever Wo is;
 *   - forward: register tiles of F filters x 12/F vectors of 8 pixels (F = 4: 4 x 3, 12 AVX2
 *     accumulators; the last filters of K % 4 take F = K % 4; F = 1 (dx of one channel) 1 x
 *     12), per tap: 12/F unaligned loads, F broadcasts of the filter block (packed tap-major,
 *     once per call), 12 FMAs. The accumulators start at the bias and are stored with the ReLU
 *     into y's rows; the last partial vector is masked.
 *   - weight gradient: dw[k,c,r,s] = sum_l dy[k, l] * X_{c,s}[l + r*Wo]: register tiles of 2
 *     filters x <= 5 taps (10 vector accumulators, + 2 for db), the depth running over all the
 *     image's pixels; the vectors are added to per-thread vector partial sums (K x CRS x 8) once
 *     per image and reduced (lanes, then threads, in a fixed order) at the end of the call.
 *   - few filters (<= 4) over many channels (>= 8; e.g. the dx of an RGB first layer, the
 *     forward pass of dy's 32 channels with the flipped filters into 3 "filters"): the
 *     CHANNELS-LAST path instead. dy is transposed (8x8 in registers) into blocks of 8 channels,
 *     xt[cb][h][w][8], per band of rows, row by row just before use; a tile is 8 pixels of one
 *     output row x 8 channel lanes in 8 accumulators: per (channel block, r) the S weight
 *     vectors stay in registers and each of the row's 8 + S - 1 pixel vectors is loaded once
 *     (aligned) and feeds the S FMAs of the pixels it is a tap of (0.4 loads per FMA); at the
 *     end an 8x8 transpose sums the lanes (S <= 7).
 *   - else, many copies (C x S planes over the budget): bands of positions with every channel,
 *     or chunks of channels (the sums then go through y between chunks); and the "strided"
 *     layout when that costs less (make_plan: one padded plane per channel, rows
 *     round8(Wo + S - 1) apart, the extra columns computed and dropped: S times fewer copies).
 *   Loop nest (forward): bands | channel chunks: build the copies | blocks of PIX_BLOCK pixels
 *   (the copies' window, the block's taps, stays in L1) | filter blocks | tiles.
 *   The AVX2 kernels (sconv_fewc_avx2.c) run when the selected GEMM path is avx2 or avx512;
 *   the portable ones below, the same sums in plain C, otherwise.
 * Parallelism: none inside; callers give threads images, or disjoint pixel ranges (forward) /
 *   filter ranges (weight gradient) of one image.
 * Memory: workspace = the copies (<= COPY_BUDGET floats, more only when a few rows of S planes
 *   are larger) + the tap offsets (+ strided: the sums of a band, K x its positions);
 *   channels-last: its copy of a band of rows (<= CL_BUDGET floats unless one row is larger).
 */
#include <string.h>

#include "sconv_fewc.h"
#include "../gemm/gemm_internal.h"

#define COPY_BUDGET 16384   /* floats of copies per chunk (64 KiB) */
#define PIX_BLOCK 384       /* positions per block: a multiple of 8 x 12 */
#define DW_TAPS 5           /* taps per weight-gradient tile */
#define SLACK 16            /* zero floats after each plane */
#define CL_MAX_K 4          /* channels-last: at most this many filters */
#define CL_MIN_C 8          /* and at least this many channels */
#define CL_BUDGET 65536     /* floats of its channels-last copy per band (256 KiB) */

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }
static ptrdiff_t round8(ptrdiff_t n) { return (n + 7) & ~(ptrdiff_t)7; }

/* How a call lays out its copies. "copies": np = S shifted planes per channel, rows xs = Wo
 * apart, so that the output's position q is its pixel l. "strided": one zero-padded plane per
 * channel (np = 1), rows xs = round8(Wo + S - 1) apart, tap (r, s) at r*xs + s; q = oh*xs + ow,
 * the columns ow >= Wo computed and dropped, the sums kept in a q-ordered buffer (ybuf) and
 * copied into y after the last chunk (S times fewer copies, xs/Wo times more FMAs: chosen when
 * it costs less, e.g. a first layer's dx, 32 channels). cc channels per chunk; bands of bq
 * positions of q (a multiple of 8; strided: of whole rows); planes pc floats apart. */
typedef struct {
    int strided, np, cc;
    ptrdiff_t xs, bq, pc;
    int cl;                  /* channels-last (few filters, many channels; see the note) */
    ptrdiff_t wq, br;        /* its columns per row (Wo + S + 7), output rows per band */
} fewc_plan;

static ptrdiff_t plane_floats(const cycnn_conv_geom *g, const fewc_plan *p)
{
    const ptrdiff_t Hp = (ptrdiff_t)g->Ho + g->R - 1;
    ptrdiff_t rows = (p->bq + p->xs - 1) / p->xs + g->R + 1;
    if (rows > Hp)
        rows = Hp;
    return round8(rows * p->xs + SLACK);
}

/* allow_strided 0: the shifted copies (the weight gradient reads dy by pixel) */
static fewc_plan make_plan(const cycnn_conv_geom *g, int allow_strided)
{
    const double Hp = (double)g->Ho + g->R - 1, K4 = g->K;
    const double crs = (double)g->C * g->R * g->S;
    fewc_plan p;
    ptrdiff_t whole, L;
    int nchunks;
    p.strided = 0;
    p.np = g->S;
    p.cc = 1;
    p.xs = g->Wo;
    p.bq = 8;
    p.pc = 8;
    p.cl = 0;
    p.wq = 8;
    p.br = 1;
    if (g->Wo <= 0 || g->Ho <= 0 || g->S <= 0)   /* nothing to compute */
        return p;
    if (allow_strided && g->K <= CL_MAX_K && g->C >= CL_MIN_C && g->S <= 7) {
        const ptrdiff_t cp = (g->C + 7) / 8 * 8;
        p.cl = 1;
        p.wq = (ptrdiff_t)g->Wo + g->S + 7;
        p.br = CL_BUDGET / (cp * p.wq) - (g->R - 1);
        if (p.br < 1)
            p.br = 1;
        if (p.br > g->Ho)
            p.br = g->Ho;
        return p;
    }
    {   /* cycles, roughly: 8 floats stored per copy, 16 multiply-adds per FMA cycle */
        const double xs = (double)round8((ptrdiff_t)g->Wo + g->S - 1);
        const double copies = g->C * g->S * Hp * g->Wo / 8 + K4 * crs * g->Ho * g->Wo / 16;
        const double strided = g->C * Hp * xs / 8 + K4 * crs * g->Ho * xs / 16 +
                               g->K * (double)g->Ho * g->Wo / 8;
        if (allow_strided && strided < copies) {
            p.strided = 1;
            p.np = 1;
            p.xs = (ptrdiff_t)xs;
        }
    }
    L = (ptrdiff_t)g->Ho * p.xs;              /* positions q */
    p.bq = round8(L);
    whole = plane_floats(g, &p) * p.np;
    if (whole * g->C <= COPY_BUDGET) {
        p.cc = g->C;
    } else if ((COPY_BUDGET / (p.np * g->C) - SLACK - (ptrdiff_t)(g->R + 2) * p.xs) / p.xs * p.xs
               >= 96) {    /* bands of at least 96 positions with every channel: the sums stay
                            * in registers (chunks of channels take them through y) */
        ptrdiff_t bq = (COPY_BUDGET / (p.np * g->C) - SLACK - (ptrdiff_t)(g->R + 2) * p.xs);
        bq = p.strided ? bq / p.xs * p.xs : bq & ~(ptrdiff_t)7;
        p.cc = g->C;
        p.bq = bq > round8(L) ? round8(L) : bq;
    } else if (whole <= COPY_BUDGET) {
        p.cc = (int)(COPY_BUDGET / whole);
    } else {                                  /* one channel's planes exceed the budget: bands */
        ptrdiff_t bq = (COPY_BUDGET / p.np - SLACK - (ptrdiff_t)(g->R + 2) * p.xs) & ~(ptrdiff_t)7;
        p.cc = 1;
        if (p.strided)
            bq = bq / p.xs * p.xs;
        p.bq = bq < 96 ? (p.strided ? p.xs * ((96 + p.xs - 1) / p.xs) : 96) : bq;
        if (p.bq > round8(L))
            p.bq = round8(L);
    }
    nchunks = (g->C + p.cc - 1) / p.cc;
    p.cc = nchunks > 0 ? (g->C + nchunks - 1) / nchunks : 1;
    p.pc = plane_floats(g, &p);
    return p;
}

static size_t copies_bytes(const cycnn_conv_geom *g, const fewc_plan *p)
{
    return align64((size_t)p->cc * p->np * p->pc * sizeof(float));
}

static size_t offsets_bytes(const cycnn_conv_geom *g, const fewc_plan *p)
{
    return align64((size_t)p->cc * g->R * g->S * sizeof(ptrdiff_t));
}

size_t cycnn_sconv_fewc_packed_floats(int K, int C, ptrdiff_t RS)
{
    return (size_t)K * (size_t)RS * ((size_t)C + (size_t)(C + 7) / 8 * 8);
}

void cycnn_sconv_fewc_pack_weights(int K, int C, int R, int S, const float *w, float *wp)
{
    const ptrdiff_t RS = (ptrdiff_t)R * S, CRS = C * RS;
    const int KB = (C + 7) / 8;
    float *cl = wp + (ptrdiff_t)K * CRS;
    int k0, f, cb, v;
    ptrdiff_t t;
    for (k0 = 0; k0 < K; k0 += 4) {          /* blocks of <= 4 filters, tap-major */
        const int F = K - k0 < 4 ? K - k0 : 4;
        float *blk = wp + (ptrdiff_t)k0 * CRS;
        for (t = 0; t < CRS; t++)
            for (f = 0; f < F; f++)
                blk[t * F + f] = w[(ptrdiff_t)(k0 + f) * CRS + t];
    }
    if (!(K <= CL_MAX_K && C >= CL_MIN_C && S <= 7))   /* make_plan never takes it */
        return;
    for (f = 0; f < K; f++)                  /* channels-last: [f][cb][r][s][8] */
        for (cb = 0; cb < KB; cb++)
            for (t = 0; t < RS; t++)
                for (v = 0; v < 8; v++)
                    cl[(((ptrdiff_t)f * KB + cb) * RS + t) * 8 + v] =
                        cb * 8 + v < C ? w[(ptrdiff_t)f * CRS + (cb * 8 + v) * RS + t] : 0.0f;
}

size_t cycnn_sconv_fewc_workspace_bytes(const cycnn_conv_geom *g)
{
    const fewc_plan p = make_plan(g, 1), q = make_plan(g, 0);
    const size_t ybuf = p.strided ? align64((size_t)(g->K > 0 ? g->K : 1) * p.bq * sizeof(float))
                                  : 0;
    const size_t fwd = p.cl ? align64((size_t)(g->C + 7) / 8 * 8 * (p.br + g->R - 1) * p.wq *
                                      sizeof(float))
                            : copies_bytes(g, &p) + offsets_bytes(g, &p) + ybuf;
    const size_t dw = copies_bytes(g, &q) + offsets_bytes(g, &q);
    return fwd > dw ? fwd : dw;
}

/* ---- portable kernels (the twins of sconv_fewc_avx2.c) */

void cycnn_sconv_fewc_build_generic(const cycnn_conv_geom *g, int np, ptrdiff_t xs,
                                    ptrdiff_t pc, const float *x, int c0, int ncc, ptrdiff_t h0,
                                    ptrdiff_t h1, float *xc)
{
    const ptrdiff_t H = g->H, W = g->W;
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
                float *restrict row = dst + (h - h0) * xs;
                const ptrdiff_t ih = h - g->pt;
                if (ih < 0 || ih >= H) {
                    for (i = 0; i < xs; i++)
                        row[i] = 0.0f;
                    continue;
                }
                {
                    const float *restrict in = src + ih * W + shift;
                    for (i = 0; i < a; i++)
                        row[i] = 0.0f;
                    for (i = a; i < b; i++)
                        row[i] = in[i];
                    for (i = b; i < xs; i++)
                        row[i] = 0.0f;
                }
            }
            for (i = 0; i < 16; i++)
                dst[(h1 - h0) * xs + i] = 0.0f;
        }
    }
}

static void tap_offsets(const cycnn_conv_geom *g, const fewc_plan *p, int ncc, ptrdiff_t *toff)
{
    int cl, r, s;
    ptrdiff_t t = 0;
    for (cl = 0; cl < ncc; cl++)
        for (r = 0; r < g->R; r++)
            for (s = 0; s < g->S; s++)
                toff[t++] = p->strided ? (ptrdiff_t)cl * p->pc + (ptrdiff_t)r * p->xs + s
                                       : ((ptrdiff_t)cl * g->S + s) * p->pc + (ptrdiff_t)r * p->xs;
}

/* The padded rows [h0, h1) that positions [q0, q0 + nq) read (vectors rounded up to 8). */
static void band_rows(const cycnn_conv_geom *g, const fewc_plan *p, ptrdiff_t q0, ptrdiff_t nq,
                      ptrdiff_t *h0, ptrdiff_t *h1)
{
    const ptrdiff_t Hp = (ptrdiff_t)g->Ho + g->R - 1;
    *h0 = q0 / p->xs;
    *h1 = (q0 + round8(nq) - 1) / p->xs + g->R;
    if (*h1 > Hp)
        *h1 = Hp;
}

static void fwd_tile_generic(int F, int nv, int nlast, const float *xc, const ptrdiff_t *toff,
                             ptrdiff_t nt, const float *w, int first, const float *bias,
                             int relu, float *y, ptrdiff_t ldy)
{
    float a[4][96];
    const int n = (nv - 1) * 8 + nlast;
    ptrdiff_t t;
    int f, j;
    for (f = 0; f < F; f++)
        for (j = 0; j < n; j++)
            a[f][j] = first ? (bias != NULL ? bias[f] : 0.0f) : y[f * ldy + j];
    for (t = 0; t < nt; t++) {
        const float *xt = xc + toff[t];
        for (f = 0; f < F; f++) {
            const float wv = w[t * F + f];
            for (j = 0; j < n; j++)
                a[f][j] += wv * xt[j];
        }
    }
    for (f = 0; f < F; f++)
        for (j = 0; j < n; j++)
            y[f * ldy + j] = relu && a[f][j] < 0.0f ? 0.0f : a[f][j];   /* NaN stays NaN */
}

void cycnn_sconv_fewc_fwd_generic(int F, int nv, ptrdiff_t ntiles, int nlast, const float *xc,
                                  const ptrdiff_t *toff, ptrdiff_t nt, const float *w, int first,
                                  const float *bias, int relu, float *y, ptrdiff_t ldy)
{
    ptrdiff_t i;
    for (i = 0; i < ntiles; i++)
        fwd_tile_generic(F, nv, i == ntiles - 1 ? nlast : 8, xc + i * 8 * nv, toff, nt, w, first,
                         bias, relu, y + i * 8 * nv, ldy);
}

/* The 8 lanes of v summed in the order of the AVX2 kernels: ((0+4)+(2+6)) + ((1+5)+(3+7)). */
static float hsum8(const float *v)
{
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

void cycnn_sconv_fewc_dwtile_generic(int F, int T, ptrdiff_t nv, int nlast, const float *xc,
                                     const ptrdiff_t *toff, const float *dy, ptrdiff_t ldy,
                                     float *acc, ptrdiff_t ldacc, float *db)
{
    float a[2][DW_TAPS][8], sd[2][8];
    ptrdiff_t v;
    int f, t, lane;
    memset(a, 0, sizeof a);
    memset(sd, 0, sizeof sd);
    for (v = 0; v < nv; v++) {
        const int lanes = v == nv - 1 ? nlast : 8;
        for (lane = 0; lane < lanes; lane++) {
            const ptrdiff_t j = v * 8 + lane;
            for (f = 0; f < F; f++) {
                const float d = dy[f * ldy + j];
                sd[f][lane] += d;
                for (t = 0; t < T; t++)
                    a[f][t][lane] += d * xc[toff[t] + j];
            }
        }
    }
    for (f = 0; f < F; f++) {
        for (t = 0; t < T; t++)
            for (lane = 0; lane < 8; lane++)
                acc[f * ldacc + t * 8 + lane] += a[f][t][lane];
        if (db != NULL)
            db[f] += hsum8(sd[f]);
    }
}

void cycnn_sconv_fewc_cl_build_generic(const cycnn_conv_geom *g, ptrdiff_t wq, const float *x,
                                       ptrdiff_t hb, ptrdiff_t nr, ptrdiff_t h0, ptrdiff_t h1,
                                       float *xt)
{
    const ptrdiff_t H = g->H, W = g->W;
    const int KB = (g->C + 7) / 8;
    int cb, v;
    ptrdiff_t h, i;
    for (cb = 0; cb < KB; cb++)
        for (h = h0; h < h1; h++) {
            float *row = xt + (cb * nr + h - hb) * wq * 8;
            const ptrdiff_t ih = h - g->pt;
            for (i = 0; i < wq; i++)
                for (v = 0; v < 8; v++) {
                    const ptrdiff_t iw = i - g->pl, c = (ptrdiff_t)cb * 8 + v;
                    row[i * 8 + v] = c < g->C && ih >= 0 && ih < H && iw >= 0 && iw < W
                                         ? x[(c * H + ih) * W + iw] : 0.0f;
                }
        }
}

void cycnn_sconv_fewc_cl_tile_generic(int S, int R, int KB, const float *xt, ptrdiff_t cbs,
                                      ptrdiff_t rs, const float *w, int n, int first,
                                      const float *bias, int relu, float *y)
{
    float a[8][8];
    int cb, r, s, j, v;
    memset(a, 0, sizeof a);
    for (cb = 0; cb < KB; cb++)
        for (r = 0; r < R; r++)
            for (s = 0; s < S; s++) {
                const float *wv = w + (((ptrdiff_t)cb * R + r) * S + s) * 8;
                const float *row = xt + cb * cbs + r * rs + s * 8;
                for (j = 0; j < n; j++)
                    for (v = 0; v < 8; v++)
                        a[j][v] += wv[v] * row[j * 8 + v];
            }
    for (j = 0; j < n; j++) {
        const float e = hsum8(a[j]) + (first ? (bias != NULL ? *bias : 0.0f) : y[j]);
        y[j] = relu && e < 0.0f ? 0.0f : e;   /* NaN stays NaN */
    }
}

typedef void (*cl_build_fn)(const cycnn_conv_geom *, ptrdiff_t, const float *, ptrdiff_t,
                            ptrdiff_t, ptrdiff_t, ptrdiff_t, float *);
typedef void (*cl_tile_fn)(int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *, int,
                           int, const float *, int, float *);

typedef void (*fwd_fn)(int, int, ptrdiff_t, int, const float *, const ptrdiff_t *, ptrdiff_t,
                       const float *, int, const float *, int, float *, ptrdiff_t);
typedef void (*dw_fn)(int, int, ptrdiff_t, int, const float *, const ptrdiff_t *, const float *,
                      ptrdiff_t, float *, ptrdiff_t, float *);

static int use_avx2(const void *cfg_)
{
#if CYCNN_GEMM_X86
    const cycnn_sgemm_config *cfg = (const cycnn_sgemm_config *)cfg_;
    return cfg->pack_b == cycnn_spack_b_avx2;   /* the avx2 and avx512 paths: AVX2 is there */
#else
    (void)cfg_;
    return 0;
#endif
}

/* ---- drivers */

typedef void (*build_fn)(const cycnn_conv_geom *, int, ptrdiff_t, ptrdiff_t, const float *, int,
                         int, ptrdiff_t, ptrdiff_t, float *);

/* The tiles of a chunk over nq positions: tap t of position j at xq[toff[t] + j], the sums
 * at y[k*ldy + j]. */
static void fwd_positions(fwd_fn fwd, const cycnn_conv_geom *g, const float *wp, int c0,
                          int ncc, const float *xq, const ptrdiff_t *toff, ptrdiff_t q1,
                          int first, const float *bias, int relu, float *y, ptrdiff_t ldy)
{
    const ptrdiff_t RS = (ptrdiff_t)g->R * g->S, CRS = g->C * RS;
    ptrdiff_t pb, j;
    int k0;
    for (pb = 0; pb < q1; pb += PIX_BLOCK) {
        const ptrdiff_t pe = q1 - pb < PIX_BLOCK ? q1 : pb + PIX_BLOCK;
        for (k0 = 0; k0 < g->K; k0 += 4) {
            const int F = g->K - k0 < 4 ? g->K - k0 : 4, M = 12 / F;
            const float *wk = wp + (ptrdiff_t)k0 * CRS + (ptrdiff_t)c0 * RS * F;
            const float *bk = first && bias != NULL ? bias + k0 : NULL;
            const ptrdiff_t nfull = (pe - pb) / (8 * M), rest = pe - pb - nfull * 8 * M;
            if (nfull > 0)
                fwd(F, M, nfull, 8, xq + pb, toff, ncc * RS, wk, first, bk, relu,
                    y + k0 * ldy + pb, ldy);
            if (rest > 0) {
                const int nv = (int)((rest + 7) / 8);
                j = pb + nfull * 8 * M;
                fwd(F, nv, 1, (int)(rest - (nv - 1) * 8), xq + j, toff, ncc * RS, wk, first, bk,
                    relu, y + k0 * ldy + j, ldy);
            }
        }
    }
}

void cycnn_sconv_fewc(const void *cfg, const cycnn_conv_geom *g, const float *wp,
                      const float *x, ptrdiff_t l0, ptrdiff_t l1, const float *bias, int relu,
                      float *y, ptrdiff_t ldy, void *ws)
{
    const fewc_plan p = make_plan(g, 1);
    const int K = g->K, C = g->C;
    const ptrdiff_t RS = (ptrdiff_t)g->R * g->S, Wo = g->Wo;
    float *xc = (float *)ws;
    ptrdiff_t *toff = (ptrdiff_t *)((char *)ws + copies_bytes(g, &p));
    float *ybuf = (float *)((char *)toff + offsets_bytes(g, &p));
    fwd_fn fwd = cycnn_sconv_fewc_fwd_generic;
    build_fn build = cycnn_sconv_fewc_build_generic;
    ptrdiff_t qa, qb, qs, h0, h1, j;
    int c0, k;

    if (K <= 0 || l1 <= l0)
        return;
#if CYCNN_GEMM_X86
    if (use_avx2(cfg)) {
        fwd = cycnn_sconv_fewc_fwd_avx2;
        build = cycnn_sconv_fewc_build_avx2;
    }
#endif
    if (C == 0 || RS == 0) {       /* no taps: y = bias (ReLU'd) */
        for (k = 0; k < K; k++)
            for (j = l0; j < l1; j++) {
                const float b = bias != NULL ? bias[k] : 0.0f;
                y[k * ldy + j] = relu && b < 0.0f ? 0.0f : b;
            }
        return;
    }
    if (p.cl) {        /* channels-last: bands of output rows, all channels at once */
        const int KB = (C + 7) / 8, R = g->R;
        const float *wcl = wp + (ptrdiff_t)K * C * RS;
        cl_build_fn clb = cycnn_sconv_fewc_cl_build_generic;
        cl_tile_fn clt = cycnn_sconv_fewc_cl_tile_generic;
        const ptrdiff_t oha = l0 / Wo, ohe = (l1 - 1) / Wo + 1;
        ptrdiff_t ohb, oh, ow0;
#if CYCNN_GEMM_X86
        if (use_avx2(cfg)) {
            clb = cycnn_sconv_fewc_cl_build_avx2;
            clt = cycnn_sconv_fewc_cl_tile_avx2;
        }
#endif
        for (ohb = oha; ohb < ohe; ohb += p.br) {
            const ptrdiff_t n_oh = ohe - ohb < p.br ? ohe - ohb : p.br, nr = n_oh + R - 1;
            const ptrdiff_t cbs = nr * p.wq * 8;
            clb(g, p.wq, x, ohb, nr, ohb, ohb + R - 1, xc);
            for (oh = ohb; oh < ohb + n_oh; oh++) {
                /* the band's copy row by row, each just before the output row that first
                 * reads it */
                clb(g, p.wq, x, ohb, nr, oh + R - 1, oh + R, xc);
                const ptrdiff_t cs = oh * Wo < l0 ? l0 - oh * Wo : 0;
                const ptrdiff_t ce = oh * Wo + Wo > l1 ? l1 - oh * Wo : Wo;
                for (ow0 = cs; ow0 < ce; ow0 += 8)
                    for (k = 0; k < K; k++)
                        clt(g->S, R, KB, xc + ((oh - ohb) * p.wq + ow0) * 8, cbs, p.wq * 8,
                            wcl + (ptrdiff_t)k * KB * RS * 8, ce - ow0 < 8 ? (int)(ce - ow0) : 8,
                            1, bias != NULL ? bias + k : NULL, relu, y + k * ldy + oh * Wo + ow0);
            }
        }
        return;
    }
    /* positions [qa, qb): the pixels themselves, or (strided) the rows holding them */
    qa = p.strided ? l0 / Wo * p.xs : l0;
    qb = p.strided ? ((l1 + Wo - 1) / Wo) * p.xs : l1;
    for (qs = qa; qs < qb; qs += p.bq) {
        const ptrdiff_t nq = qb - qs < p.bq ? qb - qs : p.bq;
        band_rows(g, &p, qs, nq, &h0, &h1);
        for (c0 = 0; c0 < C; c0 += p.cc) {
            const int ncc = C - c0 < p.cc ? C - c0 : p.cc;
            const int first = c0 == 0, last = c0 + ncc == C;
            build(g, p.np, p.xs, p.pc, x, c0, ncc, h0, h1, xc);
            tap_offsets(g, &p, ncc, toff);
            /* into y, or (strided) into ybuf (K x nq, position q - qs) */
            fwd_positions(fwd, g, wp, c0, ncc, xc + (qs - h0 * p.xs), toff, nq, first, bias,
                          relu && last, p.strided ? ybuf : y + qs, p.strided ? p.bq : ldy);
        }
        if (p.strided) {   /* rows [qs, qs + nq) / xs, the pixels of [l0, l1) among them */
            const ptrdiff_t oh0 = qs / p.xs, oh1 = (qs + nq) / p.xs;
            ptrdiff_t oh, a, b;
            for (oh = oh0; oh < oh1; oh++) {
                a = oh * Wo < l0 ? l0 - oh * Wo : 0;
                b = oh * Wo + Wo > l1 ? l1 - oh * Wo : Wo;
                for (k = 0; k < K && b > a; k++)
                    memcpy(y + k * ldy + oh * Wo + a, ybuf + k * p.bq + (oh - oh0) * p.xs + a,
                           (size_t)(b - a) * sizeof(float));
            }
        }
    }
}

void cycnn_sconv_fewc_dw(const void *cfg, const cycnn_conv_geom *g, const float *x,
                         const float *dy, int k0, int k1, float *acc, float *db, void *ws)
{
    const fewc_plan p = make_plan(g, 0);
    const int C = g->C;
    const ptrdiff_t RS = (ptrdiff_t)g->R * g->S, CRS = C * RS, Wo = g->Wo;
    const ptrdiff_t L = (ptrdiff_t)g->Ho * Wo;
    float *xc = (float *)ws;
    ptrdiff_t *toff;
    dw_fn tile = cycnn_sconv_fewc_dwtile_generic;
    build_fn build = cycnn_sconv_fewc_build_generic;
    ptrdiff_t lb, h0, h1, tt;
    int c0, k;

    if (k1 <= k0 || L == 0 || CRS == 0)
        return;
#if CYCNN_GEMM_X86
    if (use_avx2(cfg)) {
        tile = cycnn_sconv_fewc_dwtile_avx2;
        build = cycnn_sconv_fewc_build_avx2;
    }
#endif
    toff = (ptrdiff_t *)((char *)ws + copies_bytes(g, &p));
    for (lb = 0; lb < L; lb += p.bq) {
        const ptrdiff_t nb = L - lb < p.bq ? L - lb : p.bq;
        const ptrdiff_t nv = (nb + 7) / 8;
        const int nlast = (int)(nb - (nv - 1) * 8);
        band_rows(g, &p, lb, nb, &h0, &h1);
        for (c0 = 0; c0 < C; c0 += p.cc) {
            const int ncc = C - c0 < p.cc ? C - c0 : p.cc;
            const ptrdiff_t nt = ncc * RS;
            const ptrdiff_t ng = (nt + DW_TAPS - 1) / DW_TAPS, tg = (nt + ng - 1) / ng;
            build(g, p.np, p.xs, p.pc, x, c0, ncc, h0, h1, xc);
            tap_offsets(g, &p, ncc, toff);
            for (k = k0; k < k1; k += 2) {
                const int F = k1 - k < 2 ? k1 - k : 2;
                for (tt = 0; tt < nt; tt += tg)
                    tile(F, (int)(nt - tt < tg ? nt - tt : tg), nv, nlast, xc + (lb - h0 * Wo),
                         toff + tt, dy + k * L + lb, L, acc + (k * CRS + c0 * RS + tt) * 8,
                         CRS * 8, db != NULL && c0 == 0 && tt == 0 ? db + k : NULL);
            }
        }
    }
}

void cycnn_sconv_fewc_dw_finish(int K, ptrdiff_t CRS, const float *acc, ptrdiff_t acc_stride,
                                int nacc, float *dw)
{
    ptrdiff_t i;
    int a;
    for (i = 0; i < (ptrdiff_t)K * CRS; i++) {
        float s = 0.0f;
        for (a = 0; a < nacc; a++)
            s += hsum8(acc + a * acc_stride + i * 8);
        dw[i] = s;
    }
}
