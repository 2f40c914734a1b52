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
#define _POSIX_C_SOURCE 200112L
#include <stdlib.h>
#include <string.h>

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

static const gemm_path *best_path(void);

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
    for (i = 0; i < NPATHS; i++) {
        const cycnn_sgemm_config *s = &paths[i].s;
        const cycnn_dgemm_config *d = &paths[i].d;
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
    sgemm_driver(&active_path()->s, M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, ws,
                 NULL, NULL, NULL);
}

void cycnn_dgemm(int M, int N, int K, double alpha,
                 const double *A, ptrdiff_t rsa, ptrdiff_t csa,
                 const double *B, ptrdiff_t rsb, ptrdiff_t csb,
                 double beta, double *C, ptrdiff_t ldc, void *ws)
{
    dgemm_driver(&active_path()->d, M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, ldc, ws,
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
