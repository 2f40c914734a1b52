/* adam_impl.h -- the body of the float32 Adam loop (contract in adam.h), included by adam.c
 * (portable build) and adam_avx2.c (AVX2+FMA build) with ADAM_FN naming the function. One
 * plain loop over restrict pointers, which the compiler vectorises at the width of the file's
 * flags; float constants only, so no lane is widened to double. */
void ADAM_FN(float *restrict p, const float *restrict g, float *restrict m,
             float *restrict v, ptrdiff_t n, const cycnn_adam_hyper *h)
{
    const float b1 = h->b1, b2 = h->b2, c1 = h->c1, c2 = h->c2;
    const float lr = h->step_size, bc = h->sqrt_bc2, eps = h->eps, wd = h->wd;
    ptrdiff_t i;
    if (h->has_wd) {
        for (i = 0; i < n; i++) {
            const float gi = g[i] + wd * p[i];
            const float mi = b1 * m[i] + c1 * gi, vi = b2 * v[i] + c2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] - lr * mi / (sqrtf(vi) / bc + eps);
        }
    } else {
        for (i = 0; i < n; i++) {
            const float gi = g[i];
            const float mi = b1 * m[i] + c1 * gi, vi = b2 * v[i] + c2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] - lr * mi / (sqrtf(vi) / bc + eps);
        }
    }
}
