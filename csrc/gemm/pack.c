/* pack.c -- packing of A and B blocks into micro-panels (portable C, float and double).
 *
 * pack_a: the mc x kc block A[i*rsa + p*csa] becomes ceil(mc/mr) micro-panels; panel r holds
 *         rows r*mr .. r*mr+mr-1 stored k-major: Ap[r*mr*kc + p*mr + i]. Missing rows of the
 *         last panel are zero, so micro-kernels always see a full tile.
 * pack_b: the kc x nc block B[p*rsb + j*csb] becomes ceil(nc/nr) micro-panels; panel s holds
 *         columns s*nr .. s*nr+nr-1 stored k-major: Bp[s*nr*kc + p*nr + j]. Missing columns
 *         are zero.
 * Both are the same operation on "lines" (rows of A, columns of B): w lines whose element
 * at depth p sits at src[l*ls + p*ks] go to dst[p*w + l].
 * Loop order follows the source layout so reads are sequential: when the packed dimension
 * (i for A, j for B) is unit-stride we copy runs of mr/nr contiguous values per k; otherwise
 * we walk each source row/column along k and scatter into the panel (stride mr/nr, which
 * stays within the L1-sized panel). The common tile widths are dispatched to copies with
 * a compile-time width so the compiler can unroll / vectorise them.
 * Memory: only the destination buffer (caller's workspace).
 */
#include "gemm_internal.h"

#define DEFINE_PACKERS(T, PFX, PACK_A, PACK_B)                                              \
                                                                                            \
/* One full-width panel whose packed dimension is unit-stride: w contiguous values/k. */ \
static inline void PFX##_contig(int w, int kc, const T *restrict src, ptrdiff_t ld,         \
                                T *restrict dst)                                         \
{                                                                                           \
    int p, i;                                                                               \
    for (p = 0; p < kc; p++) {                                                              \
        for (i = 0; i < w; i++)                                                             \
            dst[i] = src[i];                                                                \
        src += ld;                                                                          \
        dst += w;                                                                           \
    }                                                                                       \
}                                                                                           \
                                                                                            \
/* One panel (possibly partial: n <= w lines) whose lines run along k with stride ks and \
 * whose line starts are ls apart. */                                                       \
static inline void PFX##_strided(int w, int n, int kc, const T *restrict src,               \
                                 ptrdiff_t ls, ptrdiff_t ks, T *restrict dst)               \
{                                                                                           \
    int p, i;                                                                               \
    if (ks == 1) {                                                                          \
        for (i = 0; i < n; i++) {                                                           \
            const T *s = src + i * ls;                                                      \
            for (p = 0; p < kc; p++)                                                        \
                dst[p * w + i] = s[p];                                                      \
        }                                                                                   \
    } else {                                                                                \
        for (p = 0; p < kc; p++)                                                            \
            for (i = 0; i < n; i++)                                                         \
                dst[p * w + i] = src[i * ls + p * ks];                                      \
    }                                                                                       \
    if (n < w)                                                                              \
        for (p = 0; p < kc; p++)                                                            \
            for (i = n; i < w; i++)                                                         \
                dst[p * w + i] = (T)0;                                                      \
}                                                                                           \
                                                                                            \
/* Packs `total` lines (rows of A or columns of B) into panels of w lines. Line l, depth \
 * p lives at src[l*ls + p*ks]. */                                                          \
static void PFX##_lines(int w, int total, int kc, const T *src, ptrdiff_t ls,               \
                        ptrdiff_t ks, T *dst)                                               \
{                                                                                           \
    int l0;                                                                                 \
    for (l0 = 0; l0 < total; l0 += w) {                                                     \
        const int n = total - l0 < w ? total - l0 : w;                                      \
        const T *s = src + l0 * ls;                                                         \
        if (ls == 1 && n == w) {                                                            \
            switch (w) {      /* constant widths let the copy be unrolled/vectorised */     \
            case 4:  PFX##_contig(4, kc, s, ks, dst); break;                                \
            case 6:  PFX##_contig(6, kc, s, ks, dst); break;                                \
            case 8:  PFX##_contig(8, kc, s, ks, dst); break;                                \
            case 16: PFX##_contig(16, kc, s, ks, dst); break;                               \
            case 32: PFX##_contig(32, kc, s, ks, dst); break;                               \
            default: PFX##_contig(w, kc, s, ks, dst); break;                                \
            }                                                                               \
        } else {                                                                            \
            switch (w) {                                                                    \
            case 4:  PFX##_strided(4, n, kc, s, ls, ks, dst); break;                        \
            case 6:  PFX##_strided(6, n, kc, s, ls, ks, dst); break;                        \
            case 8:  PFX##_strided(8, n, kc, s, ls, ks, dst); break;                        \
            case 16: PFX##_strided(16, n, kc, s, ls, ks, dst); break;                       \
            case 32: PFX##_strided(32, n, kc, s, ls, ks, dst); break;                       \
            default: PFX##_strided(w, n, kc, s, ls, ks, dst); break;                        \
            }                                                                               \
        }                                                                                   \
        dst += (ptrdiff_t)w * kc;                                                           \
    }                                                                                       \
}                                                                                           \
                                                                                            \
void PACK_A(int mr, int mc, int kc, const T *A, ptrdiff_t rsa, ptrdiff_t csa, T *Ap)        \
{                                                                                           \
    PFX##_lines(mr, mc, kc, A, rsa, csa, Ap);                                               \
}                                                                                           \
                                                                                            \
void PACK_B(int nr, int kc, int nc, const T *B, ptrdiff_t rsb, ptrdiff_t csb, T *Bp)        \
{                                                                                           \
    PFX##_lines(nr, nc, kc, B, csb, rsb, Bp);                                               \
}

DEFINE_PACKERS(float, spack, cycnn_spack_a, cycnn_spack_b)
DEFINE_PACKERS(double, dpack, cycnn_dpack_a, cycnn_dpack_b)
