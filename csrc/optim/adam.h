/* adam.h -- the float32 Adam update of one array range (cycnn._kernels.optim calls it).
 *
 * For 0 <= i < n (torch.optim.Adam's formula, L2 weight decay folded into the gradient):
 *     g' = g[i] + wd * p[i]                  (only when has_wd; wd = 0 leaves g untouched)
 *     m[i] = b1 * m[i] + c1 * g'             (c1 = 1 - b1)
 *     v[i] = b2 * v[i] + c2 * g'^2           (c2 = 1 - b2)
 *     p[i] -= step_size * m[i] / (sqrt(v[i]) / sqrt_bc2 + eps)
 * step_size = lr / (1 - b1^t) and sqrt_bc2 = sqrt(1 - b2^t) come from the caller.
 * p, m, v IN/OUT, g IN; the four ranges must not overlap (restrict). Computed in float.
 *
 * Two builds of one loop (adam_impl.h): portable C (SSE2 on x86-64) and AVX2+FMA
 * (adam_avx2.c, compiled with -mavx2 -mfma), chosen per call by cycnn_adam_f32 from the CPU's
 * features (cpu.h), never by compile flags of the whole library. The AVX2 build contracts
 * a*b+c into fused multiply-adds, so its last bit may differ from the portable one's.
 * Why C and not Cython: the loop must be vectorised at full width with float sqrt/div; it is
 * memory- and divider-bound (28 bytes, one sqrt and two divisions per element).
 */
#ifndef CYCNN_ADAM_H
#define CYCNN_ADAM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float b1, c1, b2, c2;      /* beta1, 1 - beta1, beta2, 1 - beta2 (1 - beta rounded from double:
                                  1.0f - 0.999f would be off by 5e-5 relative) */
    float step_size, sqrt_bc2, eps, wd;
    int has_wd;
} cycnn_adam_hyper;

/* Dispatching entry point (AVX2+FMA when the CPU has them and avx2 is allowed). */
void cycnn_adam_f32(float *p, const float *g, float *m, float *v, ptrdiff_t n,
                    const cycnn_adam_hyper *h);
/* The two builds, for tests that compare them (the AVX2 one only where the CPU can run it). */
void cycnn_adam_f32_generic(float *p, const float *g, float *m, float *v, ptrdiff_t n,
                            const cycnn_adam_hyper *h);
void cycnn_adam_f32_avx2(float *p, const float *g, float *m, float *v, ptrdiff_t n,
                         const cycnn_adam_hyper *h);
/* 1 when cycnn_adam_f32 takes the AVX2 build, 0 for the portable one; set_path(0) forces the
 * portable build, set_path(1) restores the automatic choice. */
int cycnn_adam_f32_path(void);
void cycnn_adam_f32_set_path(int allow_avx2);

#ifdef __cplusplus
}
#endif

#endif /* CYCNN_ADAM_H */
