/* sgemm_bcast.c -- float GEMM with the large operand read in place (contract: sgemm_bcast.h).
 *
 * Design
 *   For a Dense layer on a small batch, y = x @ W^T and dx = dy @ W use each element of the
 *   weight matrix W for only batch-many multiply-adds, so packing W into micro-panels (a
 *   strided transpose for W^T) costs a visible share of the arithmetic. Here the products are
 *   taken transposed, y^T = W . x^T and dx^T = W^T . dy^T: C (M x N) = A . B with A the weight
 *   matrix (any strides) and B the small batch operand.
 *   - B is packed once per call into 16-column panels (K x 16, k-major), the layout of the weight
 *     gradient's dy^T panels, by that kernel's pack (csrc/conv/sconv_dw*.c).
 *   - A is NOT packed: the tile kernel of the weight gradient (m <= 6 rows x 16 columns in 12
 *     AVX2 accumulators) broadcasts its m values per k-step straight from A -- m row pointers
 *     ("taps" rsa apart) advancing by csa ("one segment" of kc pixels sw = csa apart). For W the
 *     6 values come from 6 rows (6 sequential streams), for W^T from 6 neighbouring floats.
 *   Loop nest: k-blocks of <= KC (balanced; the 16-column panel block, 16 KiB, stays in L1 and
 *   the rows' segments are reused by every panel) | groups of <= 6 rows (balanced, so 1000 rows
 *   give 6s and 5s, no lone row) | panels: tile, added to C (C is zeroed first).
 * Parallelism: none inside; callers split rows among threads sharing Bp.
 * Memory: Bp (caller's), nothing else.
 */
#include <string.h>

#include "sgemm_bcast.h"
#include "../conv/sconv_dw.h"

#define KC 256        /* depth per block: a 16-column panel block is 16 KiB */
#define MAX_ROWS 6    /* rows per register tile */

size_t cycnn_sgemm_bcast_packed_floats(int K, int N)
{
    return (size_t)K * (size_t)((N + 15) / 16 * 16);
}

void cycnn_sgemm_bcast_pack(const void *cfg, int K, int N, const float *B, ptrdiff_t csb,
                            float *Bp)
{
    cycnn_sconv_dw_pack_fn pack;
    cycnn_sconv_dw_tile_fn tile;
    int j0;
    cycnn_sconv_dw_kernels(cfg, &pack, &tile);
    if (K <= 0)
        return;
    for (j0 = 0; j0 < N; j0 += 16) {
        const int kv = N - j0 < 16 ? N - j0 : 16;
        pack(kv <= 8 ? 8 : 16, kv, B + (ptrdiff_t)j0 * csb, csb, 0, K,
             Bp + (ptrdiff_t)j0 * K, NULL);
    }
}

void cycnn_sgemm_bcast(const void *cfg, int i0, int i1, int N, int K, const float *A,
                       ptrdiff_t rsa, ptrdiff_t csa, const float *Bp, float *C, ptrdiff_t ldc)
{
    cycnn_sconv_dw_pack_fn pack;
    cycnn_sconv_dw_tile_fn tile;
    const ptrdiff_t taps[MAX_ROWS] = { 0, rsa, 2 * rsa, 3 * rsa, 4 * rsa, 5 * rsa };
    const ptrdiff_t rows = i1 - i0;
    ptrdiff_t ngroups, nkb, kcb, k0, i;

    if (rows <= 0 || N <= 0)
        return;
    for (i = i0; i < i1; i++)
        memset(C + i * ldc, 0, (size_t)N * sizeof(float));
    if (K <= 0)
        return;
    cycnn_sconv_dw_kernels(cfg, &pack, &tile);
    ngroups = (rows + MAX_ROWS - 1) / MAX_ROWS;
    nkb = (K + KC - 1) / KC;
    kcb = (K + nkb - 1) / nkb;
    for (k0 = 0; k0 < K; k0 += kcb) {
        const int kc = K - k0 < kcb ? (int)(K - k0) : (int)kcb;
        const ptrdiff_t seg_off = k0 * csa;
        ptrdiff_t grp, r = i0;
        for (grp = 0; grp < ngroups; grp++) {
            const int m = (int)(rows / ngroups + (grp < rows % ngroups));
            const float *a = A + r * rsa;
            int j0;
            for (j0 = 0; j0 < N; j0 += 16) {
                const int kv = N - j0 < 16 ? N - j0 : 16;
                const int kw = kv <= 8 ? 8 : 16;
                tile(m, kw, kv, taps, a, 1, &seg_off, &kc, csa,
                     Bp + (ptrdiff_t)j0 * K + (ptrdiff_t)k0 * kw, C + r * ldc + j0, ldc);
            }
            r += m;
        }
    }
}
