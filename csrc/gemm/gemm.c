/* gemm.c -- cycnn's GEMM front end: path table, runtime dispatch, workspace sizing, and the
 * blocked driver (instantiated from gemm_driver.h for float and double).
 *
 * A "path" bundles one micro-kernel family (generic / avx2 / avx512) with its tile shape and
 * cache blocking, for float and double. The table is static and read-only; the selected
 * path is one pointer to an entry of it, written atomically (release) by cycnn_gemm_init() /
 * cycnn_gemm_select() and read atomically (acquire) ONCE per GEMM call, which then uses that
 * entry throughout. So switching paths while GEMMs run in other threads is safe: each GEMM runs
 * wholly on the old or wholly on the new path (a convolution running across a switch may do
 * some images on each; every one is correct). ISA kernels live in *_avx2.c / *_avx512.c, which are the only
 * files built with ISA flags; this file is baseline C and only calls them through the table
 * after cpu.c confirmed the CPU/OS support them.
 *
 * Memory: the caller's workspace only (cycnn_gemm_workspace_size() bytes, 64-byte aligned,
 * sized for the largest path so it is valid whatever path is selected). Never allocates.
 */
#define _GNU_SOURCE             /* sysconf(_SC_LEVEL1_DCACHE_SIZE ...) of glibc */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemm.h"
#include "gemm_internal.h"
#include "../cpu.h"

typedef struct {
    const char *name;
    int (*supported)(void);
    cycnn_sgemm_config s;
    cycnn_dgemm_config d;
} gemm_path;

static int generic_supported(void) { return 1; }

#if CYCNN_GEMM_X86
static int avx2_supported(void)
{
    return cycnn_cpu_has_avx2() && cycnn_cpu_has_fma();
}
static int avx512_supported(void)
{
    /* the avx512 files are compiled with F/DQ/VL + AVX2/FMA enabled: require all of them */
    return avx2_supported() && cycnn_cpu_has_avx512f() && cycnn_cpu_has_avx512dq() &&
           cycnn_cpu_has_avx512vl();
}
#endif

/* Ordered worst to best; "auto" picks the last supported entry.
 * Blocking {mr, nr, mc, kc, nc} in elements (mc a multiple of mr, nc of nr), tuned on Zen 4
 * (32 KiB L1d, 1 MiB L2 per core): packed A block mc x kc <= 128 KiB and packed B block
 * kc x nc <= 512 KiB sit in L2; a kc x nr B micro-panel (16-32 KiB) is reused from L1/L2 by
 * all mc/mr A panels. Measured: kc 192..384 and nc 512 vs 1024 are within noise for the
 * target shapes, so the smaller workspace was kept (~640 KiB in total). */
static const gemm_path paths[] = {
    { "generic", generic_supported,
      { CYCNN_SGEMM_GENERIC_MR, CYCNN_SGEMM_GENERIC_NR, 64, 256, 512,
        cycnn_sgemm_ukernel_4x8_generic, NULL, cycnn_spack_a, cycnn_spack_b, 0 },
      { CYCNN_DGEMM_GENERIC_MR, CYCNN_DGEMM_GENERIC_NR, 64, 256, 256,
        cycnn_dgemm_ukernel_4x4_generic, NULL, cycnn_dpack_a, cycnn_dpack_b, 0 } },
#if CYCNN_GEMM_X86
    { "avx2", avx2_supported,
      { CYCNN_SGEMM_AVX2_MR, CYCNN_SGEMM_AVX2_NR, 120, 256, 512,
        cycnn_sgemm_ukernel_6x16_avx2, cycnn_sgemm_ukernel_6x8_avx2,
        cycnn_spack_a_avx2, cycnn_spack_b_avx2, 0, cycnn_sgemm_ukernel_rows16_avx2 },
      { CYCNN_DGEMM_AVX2_MR, CYCNN_DGEMM_AVX2_NR, 96, 192, 256,
        cycnn_dgemm_ukernel_6x8_avx2, cycnn_dgemm_ukernel_6x4_avx2,
        cycnn_dpack_a_avx2, cycnn_dpack_b_avx2, 0 } },
    { "avx512", avx512_supported,
      { CYCNN_SGEMM_AVX512_MR, CYCNN_SGEMM_AVX512_NR, 128, 256, 512,
        cycnn_sgemm_ukernel_8x32_avx512, cycnn_sgemm_ukernel_8x16_avx512,
        cycnn_spack_a_avx2, cycnn_spack_b_avx2, 1 },
      { CYCNN_DGEMM_AVX512_MR, CYCNN_DGEMM_AVX512_NR, 64, 256, 256,
        cycnn_dgemm_ukernel_8x16_avx512, cycnn_dgemm_ukernel_8x8_avx512,
        cycnn_dpack_a_avx2, cycnn_dpack_b_avx2, 1 } },
#endif
};
#define NPATHS ((int)(sizeof(paths) / sizeof(paths[0])))

/* ---- run-time blocking of cycnn_sgemm / cycnn_dgemm ----
 * The table's {mc, kc, nc} are the constants tuned on Zen 4; the pre-packed entry points and
 * the convolution drivers (which read a path's config through cycnn_sgemm_path_config) keep
 * them. The plain GEMM calls run on a copy of each path whose blocking is derived once from
 * the cache sizes of the CPU it runs on (after the analytical model of BLIS, Low et al. 2016):
 *   kc: the kc x NR B micro-panel, reused by every A micro-panel of the block, fills 3/4 of
 *       L1d (6 of 8 ways; the A micro-panel streams from L2 through the rest), a multiple
 *       of 8 in [128, 512];
 *   mc: the mc x kc packed A block fills 3/8 of L2 (the rest holds the B micro-panels in
 *       flight, C tiles and the next block's lines), a multiple of MR in [MR, 512];
 *   nc: the kc x nc packed B block is read from L3, once per mc rows of A: a multiple of
 *       NR with kc x nc <= min(2 L2, L3 / 8) (a core's share of an L3 shared with other cores
 *       and, on cloud machines, guests; sysconf may report the whole socket's), in
 *       [nc_table, 4096]. Measured on Zen 3 (kc 384, mc 126; benchmarks/gemm_ab.py): nc 672,
 *       1024 and 2720 within noise of each other on 1024^3, 2048x2048x256 and the Dense
 *       shapes, so the smallest, which keeps the workspace near 1 MiB, is the rule.
 * When the cache sizes are unknown (sysconf returns 0 or -1, or a non-Linux libc), the
 * table's constants stay; the avx512 path keeps them too (they were measured on the Zen 4
 * with AVX-512, where the rule, kc 192 and mc 512, has not been measured). CYCNN_GEMM_BLOCKING="mc,kc,nc" (benchmarks; read once at init)
 * replaces the rule for the float GEMM of the path in use, each value clamped to the bounds
 * above ("table" keeps the constants). B read in place (gemm_driver.h) keeps its depth cap
 * DIRECT_B_KC: measured here (Zen 3, dense dx 64x1000x3136) 64 and 48 were 0.83x / 0.74x of
 * 128, 256 and 384 within noise of it.
 * Memory: cycnn_gemm_workspace_size() covers the table's and the derived blocking. */

#define BLK_KC_MIN 128
#define BLK_KC_MAX 512
#define BLK_MC_MAX 512
#define BLK_NC_MAX 4096

static gemm_path tuned[NPATHS];           /* paths[] with derived blocking */
static int tuned_state = 0;               /* 0: not yet, 1: being derived, 2: ready */

static long cache_bytes(int name)
{
#if defined(_SC_LEVEL1_DCACHE_SIZE)
    long v = sysconf(name);
    return v > 0 ? v : 0;
#else
    (void)name;
    return 0;
#endif
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Blocking of one tile shape (mr x nr, es-byte elements) for caches l1/l2/l3 (bytes). */
static void derive_blocking(int mr, int nr, size_t es, long l1, long l2, long l3, int nc_table,
                            int *mc, int *kc, int *nc)
{
    size_t b_bytes;
    *kc = clampi((int)((size_t)l1 * 3 / 4 / ((size_t)nr * es)) / 8 * 8, BLK_KC_MIN, BLK_KC_MAX);
    *mc = clampi((int)((size_t)l2 * 3 / 8 / ((size_t)*kc * es)) / mr * mr, mr,
                 BLK_MC_MAX / mr * mr);
    b_bytes = 2 * (size_t)l2;
    if (l3 > 0 && (size_t)l3 / 8 < b_bytes)
        b_bytes = (size_t)l3 / 8;
    *nc = clampi((int)(b_bytes / ((size_t)*kc * es)) / nr * nr, nc_table, BLK_NC_MAX / nr * nr);
}

/* "mc,kc,nc" -> clamped blocking of tile mr x nr; 0 when s does not parse. */
static int parse_blocking(const char *s, int mr, int nr, int *mc, int *kc, int *nc)
{
    int a, b, c;
    char tail;
    if (sscanf(s, "%d,%d,%d%c", &a, &b, &c, &tail) != 3)
        return 0;
    *kc = clampi(b, 8, BLK_KC_MAX);
    *mc = clampi(a / mr * mr, mr, BLK_MC_MAX / mr * mr);
    *nc = clampi(c / nr * nr, nr, BLK_NC_MAX / nr * nr);
    return 1;
}

static const gemm_path *best_path(void);
static const gemm_path *find_path(const char *name);

static const gemm_path *find_path_supported(const char *name)
{
    const gemm_path *p = strcmp(name, "auto") == 0 ? NULL : find_path(name);
    return p != NULL && p->supported() ? p : NULL;
}

static void derive_tuned(void)
{
    const long l1 = cache_bytes(_SC_LEVEL1_DCACHE_SIZE), l2 = cache_bytes(_SC_LEVEL2_CACHE_SIZE);
    const long l3 = cache_bytes(_SC_LEVEL3_CACHE_SIZE);
    const char *env = getenv("CYCNN_GEMM_BLOCKING");
    const char *simd = getenv("CYCNN_SIMD");
    const gemm_path *in_use = simd != NULL && simd[0] != '\0' ? find_path_supported(simd) : NULL;
    int i;
    if (in_use == NULL)
        in_use = best_path();
    for (i = 0; i < NPATHS; i++) {
        gemm_path *t = &tuned[i];
        *t = paths[i];
        if (env != NULL && &paths[i] == in_use && strcmp(env, "table") != 0 &&
            parse_blocking(env, t->s.mr, t->s.nr, &t->s.mc, &t->s.kc, &t->s.nc))
            continue;                        /* the override (float only) */
        if (env != NULL && strcmp(env, "table") == 0)
            continue;
        if (strcmp(paths[i].name, "avx512") == 0)
            continue;                        /* its table was measured on the AVX-512 CPU */
        if (l1 > 0 && l2 > 0) {
            derive_blocking(t->s.mr, t->s.nr, sizeof(float), l1, l2, l3, paths[i].s.nc,
                            &t->s.mc, &t->s.kc, &t->s.nc);
            derive_blocking(t->d.mr, t->d.nr, sizeof(double), l1, l2, l3, paths[i].d.nc,
                            &t->d.mc, &t->d.kc, &t->d.nc);
        }
    }
}

/* The derived copy of path p (derived once, by whichever thread comes first). */
static const gemm_path *tuned_of(const gemm_path *p)
{
    int state = __atomic_load_n(&tuned_state, __ATOMIC_ACQUIRE);
    if (state != 2) {
        int expected = 0;
        if (__atomic_compare_exchange_n(&tuned_state, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            derive_tuned();
            __atomic_store_n(&tuned_state, 2, __ATOMIC_RELEASE);
        } else {
            while (__atomic_load_n(&tuned_state, __ATOMIC_ACQUIRE) != 2)
                ;                            /* another thread is deriving (microseconds) */
        }
    }
    return &tuned[p - paths];
}

/* NULL until cycnn_gemm_init()/select(); a GEMM issued before that uses the best path.
 * Accessed only through __atomic builtins (see the note at the top). */
static const gemm_path *current = NULL;

static void set_current(const gemm_path *p)
{
    __atomic_store_n(&current, p, __ATOMIC_RELEASE);
}

/* ---- helpers used by the driver ---- */

/* Direct-B mode (see gemm_driver.h): used when rows of B are contiguous and M is small
 * enough that copying B would be a noticeable share of the work (each B element feeds only
 * 2*M flops); the in-place panel is kc x nr with kc <= DIRECT_B_KC. For larger M, packing
 * amortises, and packed panels avoid the cache-set conflicts of power-of-two row strides. */
#ifndef DIRECT_B_MAX_M
#define DIRECT_B_MAX_M 256
#endif
#ifndef DIRECT_B_KC
#define DIRECT_B_KC 128
#endif

static size_t align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }
static int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* Split n into the fewest blocks of at most `max`, of equal size rounded up to `mult`. */
static int balanced_block(int n, int max, int mult)
{
    int nblocks = (n + max - 1) / max;
    int b = (n + nblocks - 1) / nblocks;
    b = (b + mult - 1) / mult * mult;
    return b < max ? b : max;
}

/* Bias and activation on an m x n tile of C whose first element is C[row, col]. Plain loops
 * over rows that the compiler vectorises at baseline flags. The activation keeps NaN (x < 0 is
 * false for NaN), as np.maximum(x, 0) does. */
static void s_epilogue(const cycnn_epilogue *ep, float *c, ptrdiff_t ldc, int m, int n,
                       int row, int col)
{
    int i, j;
    for (i = 0; i < m; i++) {
        float *restrict ci = c + (ptrdiff_t)i * ldc;
        if (ep->bias != NULL && ep->bias_mode == CYCNN_BIAS_ROWS) {
            const float b = ep->bias[row + i];
            for (j = 0; j < n; j++) ci[j] += b;
        } else if (ep->bias != NULL && ep->bias_mode == CYCNN_BIAS_COLS) {
            const float *restrict b = ep->bias + col;
            for (j = 0; j < n; j++) ci[j] += b[j];
        }
        if (ep->act == CYCNN_ACT_RELU) {
            for (j = 0; j < n; j++) ci[j] = ci[j] < 0.0f ? 0.0f : ci[j];
        } else if (ep->act == CYCNN_ACT_LEAKY_RELU) {
            const float slope = ep->slope;
            for (j = 0; j < n; j++) ci[j] = ci[j] < 0.0f ? slope * ci[j] : ci[j];
        }
    }
}

#define T float
#define EPILOGUE s_epilogue
#define CONFIG cycnn_sgemm_config
#define UKFN cycnn_sgemm_ukernel_fn
#define DRIVER sgemm_driver
#include "gemm_driver.h"
#undef T
#undef CONFIG
#undef UKFN
#undef DRIVER

#undef EPILOGUE
#define T double
#define EPILOGUE(ep, c, ldc, m, n, row, col) ((void)0)   /* double: no pre-packed entry */
#define CONFIG cycnn_dgemm_config
#define UKFN cycnn_dgemm_ukernel_fn
#define DRIVER dgemm_driver
#include "gemm_driver.h"
#undef T
#undef CONFIG
#undef UKFN
#undef DRIVER
#undef EPILOGUE

/* ---- public API ---- */

static const gemm_path *active_path(void)
{
    const gemm_path *p = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
    if (p == NULL) {
        /* first use before init: install the best path unless a select() got there first */
        const gemm_path *expected = NULL, *best = best_path();
        if (__atomic_compare_exchange_n(&current, &expected, best, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            p = best;
        else
            p = expected;
    }
    return p;
}

/* Must match the layout in gemm_driver.h: Ap | Bp | tile. */
static size_t config_bytes(int mr, int nr, int mc, int kc, int nc, size_t elsize)
{
    return align64((size_t)round_up(mc, mr) * kc * elsize) +
           align64((size_t)kc * round_up(nc, nr) * elsize) +
           align64((size_t)mr * nr * elsize);
}

size_t cycnn_gemm_workspace_size(void)
{
    size_t best = 0;
    int i;
    for (i = 0; i < 2 * NPATHS; i++) {     /* the table's and the derived blocking */
        const gemm_path *p = i < NPATHS ? &paths[i] : tuned_of(&paths[i - NPATHS]);
        const cycnn_sgemm_config *s = &p->s;
        const cycnn_dgemm_config *d = &p->d;
        size_t bs = config_bytes(s->mr, s->nr, s->mc, s->kc, s->nc, sizeof(float));
        size_t bd = config_bytes(d->mr, d->nr, d->mc, d->kc, d->nc, sizeof(double));
        if (bs > best) best = bs;
        if (bd > best) best = bd;
    }
    return best;
}

void cycnn_sgemm(int M, int N, int K, float alpha,
                 const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                 const float *B, ptrdiff_t rsb, ptrdiff_t csb,
                 float beta, float *C, ptrdiff_t ldc, void *ws)
{
    sgemm_driver(&tuned_of(active_path())->s, M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, ws,
                 NULL, NULL, NULL);
}

void cycnn_dgemm(int M, int N, int K, double alpha,
                 const double *A, ptrdiff_t rsa, ptrdiff_t csa,
                 const double *B, ptrdiff_t rsb, ptrdiff_t csb,
                 double beta, double *C, ptrdiff_t ldc, void *ws)
{
    dgemm_driver(&tuned_of(active_path())->d, M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, ws,
                 NULL, NULL, NULL);
}

static const gemm_path *best_path(void)
{
    int i;
    for (i = NPATHS - 1; i > 0; i--)
        if (paths[i].supported())
            return &paths[i];
    return &paths[0];
}

static const gemm_path *find_path(const char *name)
{
    int i;
    for (i = 0; i < NPATHS; i++)
        if (strcmp(paths[i].name, name) == 0)
            return &paths[i];
    return NULL;
}

int cycnn_gemm_supported(const char *name)
{
    const gemm_path *p;
    if (name == NULL)
        return 0;
    if (strcmp(name, "auto") == 0)
        return 1;
    p = find_path(name);
    return p != NULL && p->supported();
}

int cycnn_gemm_select(const char *name)
{
    const gemm_path *p;
    if (name == NULL)
        return -1;
    if (strcmp(name, "auto") == 0) {
        set_current(best_path());
        return 0;
    }
    p = find_path(name);
    if (p == NULL) {
        /* known ISA names that this build does not contain (non-x86) are "unsupported" */
        if (strcmp(name, "avx2") == 0 || strcmp(name, "avx512") == 0)
            return -2;
        return -1;
    }
    if (!p->supported())
        return -2;
    set_current(p);
    return 0;
}

int cycnn_gemm_init(void)
{
    const char *env = getenv("CYCNN_SIMD");
    set_current(best_path());
    if (env != NULL && env[0] != '\0')
        return cycnn_gemm_select(env) == 0 ? 0 : -1;
    return 0;
}

const char *cycnn_gemm_kernel_name(void)
{
    return active_path()->name;
}

const cycnn_sgemm_config *cycnn_sgemm_path_config(const char *name)
{
    const gemm_path *p;
    if (name == NULL || strcmp(name, "auto") == 0)
        return &active_path()->s;
    p = find_path(name);
    return p != NULL && p->supported() ? &p->s : NULL;
}


/* ---- pre-packed operands (inference) ---- */

const void *cycnn_sgemm_path(const char *name)
{
    return cycnn_sgemm_path_config(name);
}

int cycnn_sgemm_path_mr(const void *path) { return ((const cycnn_sgemm_config *)path)->mr; }
int cycnn_sgemm_path_nr(const void *path) { return ((const cycnn_sgemm_config *)path)->nr; }

size_t cycnn_sgemm_packed_a_size(const void *path, int M, int K)
{
    const int mr = cycnn_sgemm_path_mr(path);
    return (size_t)round_up(M, mr) * (size_t)K;
}

size_t cycnn_sgemm_packed_b_size(const void *path, int K, int N)
{
    const int nr = cycnn_sgemm_path_nr(path);
    return (size_t)K * (size_t)round_up(N, nr);
}

void cycnn_sgemm_pack_a(const void *path, int M, int K, const float *A, ptrdiff_t rsa,
                        ptrdiff_t csa, float *Ap)
{
    const cycnn_sgemm_config *cfg = path;
    if (M > 0 && K > 0)
        cfg->pack_a(cfg->mr, M, K, A, rsa, csa, Ap);
}

void cycnn_sgemm_pack_b(const void *path, int K, int N, const float *B, ptrdiff_t rsb,
                        ptrdiff_t csb, float *Bp)
{
    const cycnn_sgemm_config *cfg = path;
    if (N > 0 && K > 0)
        cfg->pack_b(cfg->nr, K, N, B, rsb, csb, Bp);
}

void cycnn_sgemm_apacked(const void *path, int M, int N, int K, const float *Ap,
                         const float *B, ptrdiff_t rsb, ptrdiff_t csb, float *C, ptrdiff_t ldc,
                         const cycnn_epilogue *ep, void *ws)
{
    sgemm_driver(path, M, N, K, 1.0f, NULL, 0, 0, B, rsb, csb, 0.0f, C, ldc, ws, Ap, NULL, ep);
}

void cycnn_sgemm_bpacked(const void *path, int M, int N, int K, const float *A, ptrdiff_t rsa,
                         ptrdiff_t csa, const float *Bp, float *C, ptrdiff_t ldc,
                         const cycnn_epilogue *ep, void *ws)
{
    sgemm_driver(path, M, N, K, 1.0f, A, rsa, csa, NULL, 0, 0, 0.0f, C, ldc, ws, NULL, Bp, ep);
}
