/* gemm_driver.h -- type-generic body of the blocked GEMM driver, included by gemm.c once
 * for float and once for double (a C "template"; not a public header).
 *
 * The includer defines T (element type), CONFIG (config struct type, gemm_internal.h),
 * UKFN (micro-kernel pointer type) and DRIVER (name of the function to define), and
 * provides align64(), round_up(), balanced_block() and the DIRECT_B_* tunables.
 *
 * Loop nest (BLIS order), for C(MxN) = alpha*A(MxK)*B(KxN) + beta*C:
 *   jc: columns of C/B in blocks of nc (<= cfg->nc)
 *     pc: depth in blocks of kc (<= cfg->kc); beta applies on the first block only
 *       pack B(pc:pc+kc, jc:jc+nc) into nr-wide micro-panels          -> Bp (L2)
 *       ic: rows in blocks of mc (<= cfg->mc)
 *         pack A(ic:ic+mc, pc:pc+kc) into mr-tall micro-panels         -> Ap (L2)
 *         jr: one nr-wide micro-panel of B (stays in L1 across the ir loop)
 *           ir: one mr-tall micro-panel of Ap -> micro-kernel on an mr x nr tile of C
 *
 * Direct B: when rows of B are contiguous (csb == 1) and M is small (each B element then
 * feeds only 2*M flops, so copying B is a visible cost), full nr-wide panels are read in
 * place with row stride rsb and only a partial last panel is packed. kc is capped at
 * DIRECT_B_KC so the in-place panel stays L1/L2 resident across the ir loop, and the next
 * panel is prefetched while the current one is used. Paths whose kernels suffer from
 * 4 KiB-aliased row strides opt out for such strides (direct_b_any_stride == 0).
 *
 * Row edges (m < MR rows, full width) use the family's row-edge kernel when it has one, so a
 * batch of 1 does not pay for MR rows. Block sizes are balanced (e.g. K=576 with kc<=256 gives 3 blocks of 192, not
 * 256+256+64) so odd shapes still run long micro-kernel calls. Column edges: a tile with
 * exactly nr/2 columns uses the half-width kernel directly on C; other edge tiles
 * (m < mr or n < nr) are computed into the workspace tile with beta = 0 (using the
 * half-width kernel when n <= nr/2) and merged, so C is never touched outside M x N.
 *
 * Pre-packed operands (inference): Apre / Bpre, when not NULL, hold the whole of A / B packed
 * once by pack_a(MR, M, K) / pack_b(NR, K, N): panel r of A at Apre + r*MR*K (k-major, so the
 * rows pc..pc+kc of a panel start at + pc*MR), panel s of B at Bpre + s*NR*K. The driver then
 * packs nothing for that operand (A/B pointers and strides are ignored). Any kc blocking reads
 * such panels, so the layout does not depend on the blocking.
 * Epilogue: when ep is not NULL, EPILOGUE(ep, c, ldc, m, n, row, col) (defined by the includer)
 * runs on each finished m x n tile of C at global position (row, col) right after its last
 * depth block -- bias and activation applied while the tile is in L1.
 *
 * Workspace (each part 64-byte aligned): Ap [mc x kc] | Bp [kc x nc] | tile [mr x nr],
 * sized from the config's maxima (see cycnn_gemm_workspace_size()).
 */

static void DRIVER(const CONFIG *cfg, int M, int N, int K, T alpha,
                   const T *A, ptrdiff_t rsa, ptrdiff_t csa,
                   const T *B, ptrdiff_t rsb, ptrdiff_t csb,
                   T beta, T *C, ptrdiff_t ldc, void *ws,
                   const T *Apre, const T *Bpre, const cycnn_epilogue *ep)
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
        if (ep != NULL)
            EPILOGUE(ep, C, ldc, M, N, 0, 0);
        return;
    }

    direct_b = Bpre == NULL && csb == 1 && M <= DIRECT_B_MAX_M &&
               (cfg->direct_b_any_stride || ((size_t)rsb * sizeof(T)) % 4096 != 0);

    mcb = balanced_block(M, cfg->mc, MR);
    kcb = balanced_block(K, direct_b && cfg->kc > DIRECT_B_KC ? DIRECT_B_KC : cfg->kc, 1);
    /* Pre-packed B with few rows of A (inference on small batches): when all of A fits the
     * packed-A workspace, walk each B panel over the whole depth in one go (one sequential
     * stream per panel from memory instead of a jump every kc rows). */
    if (Bpre != NULL && (size_t)round_up(M, MR) * (size_t)K <=
                            (size_t)round_up(cfg->mc, MR) * (size_t)cfg->kc)   /* fits Ap */
        kcb = K;
    ncb = balanced_block(N, cfg->nc, NR);

    Ap = (T *)ws;
    Bp = (T *)((char *)Ap + align64((size_t)round_up(cfg->mc, MR) * cfg->kc * sizeof(T)));
    tile = (T *)((char *)Bp + align64((size_t)cfg->kc * round_up(cfg->nc, NR) * sizeof(T)));

    for (jc = 0; jc < N; jc += ncb) {
        const int nc = N - jc < ncb ? N - jc : ncb;
        const int nc_direct = direct_b ? nc - nc % NR : 0;   /* columns read in place */
        const int nc_pre = Bpre != NULL ? nc : 0;            /* columns pre-packed */

        for (pc = 0; pc < K; pc += kcb) {
            const int kc = K - pc < kcb ? K - pc : kcb;
            const T beta_p = pc == 0 ? beta : (T)1;
            const T *Bblk = Bpre != NULL ? NULL : B + pc * rsb + jc * csb;
            const cycnn_epilogue *ep_p = pc + kc == K ? ep : NULL;   /* on the last block */

            if (nc_direct < nc && nc_pre == 0)
                cfg->pack_b(NR, kc, nc - nc_direct, Bblk + nc_direct * csb, rsb, csb, Bp);

            for (ic = 0; ic < M; ic += mcb) {
                const int mc = M - ic < mcb ? M - ic : mcb;

                if (Apre == NULL)
                    cfg->pack_a(MR, mc, kc, A + ic * rsa + pc * csa, rsa, csa, Ap);

                for (jr = 0; jr < nc; jr += NR) {
                    const int n = nc - jr < NR ? nc - jr : NR;
                    const int in_place = jr < nc_direct;
                    const T *bp = nc_pre ? Bpre + (ptrdiff_t)((jc + jr) / NR) * K * NR + pc * NR
                                : in_place ? Bblk + jr : Bp + (ptrdiff_t)(jr - nc_direct) * kc;
                    const ptrdiff_t ldb = in_place ? rsb : NR;

#if defined(__GNUC__)
                    if (jr + NR < nc_direct) {      /* warm the next in-place panel */
                        const char *nb = (const char *)(Bblk + jr + NR);
                        const ptrdiff_t row_bytes = rsb * (ptrdiff_t)sizeof(T);
                        int q;
                        for (q = 0; q < kc; q++) {
                            __builtin_prefetch(nb + q * row_bytes, 0, 3);
                            __builtin_prefetch(nb + q * row_bytes + NR * sizeof(T) - 1, 0, 3);
                        }
                    }
#endif
                    for (ir = 0; ir < mc; ir += MR) {
                        const int m = mc - ir < MR ? mc - ir : MR;
                        const T *ap = Apre != NULL
                                          ? Apre + (ptrdiff_t)((ic + ir) / MR) * MR * K + pc * MR
                                          : Ap + (ptrdiff_t)ir * kc;
                        T *c = C + (ptrdiff_t)(ic + ir) * ldc + jc + jr;

                        if (m == MR && n == NR) {
                            cfg->ukernel((size_t)kc, ap, bp, ldb, c, ldc, alpha, beta_p);
                        } else if (m == MR && 2 * n == NR && cfg->ukernel_half) {
                            cfg->ukernel_half((size_t)kc, ap, bp, ldb, c, ldc, alpha, beta_p);
                        } else if (n == NR && cfg->ukernel_rows) {   /* m < MR rows only */
                            cfg->ukernel_rows(m, (size_t)kc, ap, bp, ldb, c, ldc, alpha, beta_p);
                        } else {                    /* edge tile via the workspace tile */
                            const UKFN uk = 2 * n <= NR && cfg->ukernel_half
                                                ? cfg->ukernel_half : cfg->ukernel;
                            uk((size_t)kc, ap, bp, ldb, tile, NR, alpha, (T)0);
                            for (i = 0; i < m; i++) {
                                T *ci = c + (ptrdiff_t)i * ldc;
                                const T *ti = tile + i * NR;
                                if (beta_p == (T)0)
                                    for (j = 0; j < n; j++) ci[j] = ti[j];
                                else
                                    for (j = 0; j < n; j++) ci[j] = ti[j] + beta_p * ci[j];
                            }
                        }
                        if (ep_p != NULL)      /* bias + activation while the tile is in L1 */
                            EPILOGUE(ep_p, c, ldc, m, n, ic + ir, jc + jr);
                    }
                }
            }
        }
    }
}
