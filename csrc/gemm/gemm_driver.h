/* gemm_driver.h -- type-generic body of the blocked GEMM driver, included by gemm.c once
 * for float and once for double (a C "template"; not a public header).
 *
 * The includer defines:
 *   T           element type             DRIVER   name of the function to define
 *   CONFIG      config struct type (gemm_internal.h): tiles, blocking, kernel, packers
 *
 * Loop nest (BLIS order), for C(MxN) += A(MxK) * B(KxN):
 *   jc: columns of C/B in blocks of nc (<= cfg->nc)
 *     pc: depth in blocks of kc (<= cfg->kc); beta applies on the first block only
 *       pack B(pc:pc+kc, jc:jc+nc) into nr-wide micro-panels          -> Bp (L2/L3)
 *       ic: rows in blocks of mc (<= cfg->mc)
 *         pack A(ic:ic+mc, pc:pc+kc) into mr-tall micro-panels         -> Ap (L2)
 *         jr: nr-wide micro-panel of Bp (stays in L1 across the ir loop)
 *           ir: mr-tall micro-panel of Ap -> micro-kernel on one mr x nr tile of C
 * Block sizes are balanced (e.g. K=576 with kc<=256 gives 3 blocks of 192, not
 * 256+256+64) so small / odd shapes still run mostly full, long micro-kernel calls.
 * Edge tiles (m < mr or n < nr) are computed into the workspace tile with beta = 0 and
 * merged into C, so C is never touched outside its M x N extent.
 *
 * Workspace layout (each part 64-byte aligned): Ap [mc*kc] | Bp [kc*nc] | tile [mr*nr].
 */

static void DRIVER(const CONFIG *cfg, int M, int N, int K, T alpha,
                   const T *A, ptrdiff_t rsa, ptrdiff_t csa,
                   const T *B, ptrdiff_t rsb, ptrdiff_t csb,
                   T beta, T *C, ptrdiff_t ldc, void *ws)
{
    const int MR = cfg->mr, NR = cfg->nr;
    int jc, pc, ic, jr, ir, i, j;
    int mcb, kcb, ncb, direct_b;
    T *Ap, *Bp, *tile;

    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {                       /* C = beta * C; C is not read when beta == 0 */
        for (i = 0; i < M; i++) {
            T *c = C + (ptrdiff_t)i * ldc;
            if (beta == (T)0)
                for (j = 0; j < N; j++) c[j] = (T)0;
            else if (beta != (T)1)
                for (j = 0; j < N; j++) c[j] *= beta;
        }
        return;
    }

    /* Direct B: rows of B are contiguous, so full-width micro-panels can be read in place
     * (row stride rsb) instead of being copied; only a partial last panel is packed. The
     * in-place panel must stay cache resident across the ir loop, hence a smaller kc. */
    direct_b = csb == 1 && M <= DIRECT_B_MAX_M;

    mcb = balanced_block(M, cfg->mc, MR);
    kcb = balanced_block(K, direct_b && cfg->kc > DIRECT_B_KC ? DIRECT_B_KC : cfg->kc, 1);
    ncb = balanced_block(N, cfg->nc, NR);

    Ap = (T *)ws;
    Bp = (T *)((char *)ws + align64((size_t)cfg->mc * cfg->kc * sizeof(T)));
    tile = (T *)((char *)Bp + align64((size_t)cfg->kc * cfg->nc * sizeof(T)));

    for (jc = 0; jc < N; jc += ncb) {
        const int nc = N - jc < ncb ? N - jc : ncb;
        const int nc_full = direct_b ? nc - nc % NR : 0;   /* columns read in place */
        for (pc = 0; pc < K; pc += kcb) {
            const int kc = K - pc < kcb ? K - pc : kcb;
            const T beta_p = pc == 0 ? beta : (T)1;
            const T *Bblk = B + pc * rsb + jc * csb;

            if (nc_full < nc)
                cfg->pack_b(NR, kc, nc - nc_full, Bblk + nc_full * csb, rsb, csb, Bp);

            for (ic = 0; ic < M; ic += mcb) {
                const int mc = M - ic < mcb ? M - ic : mcb;

                cfg->pack_a(MR, mc, kc, A + ic * rsa + pc * csa, rsa, csa, Ap);

                for (jr = 0; jr < nc; jr += NR) {
                    const int n = nc - jr < NR ? nc - jr : NR;
                    const T *bp = jr < nc_full ? Bblk + jr : Bp + (ptrdiff_t)(jr - nc_full) * kc;
                    const ptrdiff_t ldb = jr < nc_full ? rsb : NR;
#if DIRECT_B_PREFETCH
                    if (jr + NR < nc_full) {  /* warm the next in-place panel */
                        const char *nb = (const char *)(Bblk + jr + NR);
                        int q;
                        for (q = 0; q < kc; q++) {
                            __builtin_prefetch(nb + q * rsb * (ptrdiff_t)sizeof(T), 0, 3);
                            __builtin_prefetch(nb + q * rsb * (ptrdiff_t)sizeof(T) + NR * sizeof(T) - 1, 0, 3);
                        }
                    }
#endif
                    for (ir = 0; ir < mc; ir += MR) {
                        const int m = mc - ir < MR ? mc - ir : MR;
                        const T *ap = Ap + (ptrdiff_t)ir * kc;
                        T *c = C + (ptrdiff_t)(ic + ir) * ldc + jc + jr;

                        if (m == MR && n == NR) {
                            cfg->ukernel((size_t)kc, ap, bp, ldb, c, ldc, alpha, beta_p);
                        } else {
                            cfg->ukernel((size_t)kc, ap, bp, ldb, tile, NR, alpha, (T)0);
                            for (i = 0; i < m; i++) {
                                T *ci = c + (ptrdiff_t)i * ldc;
                                const T *ti = tile + i * NR;
                                if (beta_p == (T)0)
                                    for (j = 0; j < n; j++) ci[j] = ti[j];
                                else
                                    for (j = 0; j < n; j++) ci[j] = ti[j] + beta_p * ci[j];
                            }
                        }
                    }
                }
            }
        }
    }
}
