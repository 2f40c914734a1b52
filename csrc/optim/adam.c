/* adam.c -- the portable build of the float32 Adam loop and the run-time choice between it and
 * the AVX2+FMA build (contract in adam.h). */
#include <math.h>

#include "adam.h"
#include "../cpu.h"

#define ADAM_FN cycnn_adam_f32_generic
#include "adam_impl.h"

static int allow_avx2 = 1;   /* tests flip it to compare the builds; read once per call */

int cycnn_adam_f32_path(void)
{
    return allow_avx2 && cycnn_cpu_has_avx2() && cycnn_cpu_has_fma();
}

void cycnn_adam_f32_set_path(int allow)
{
    allow_avx2 = allow != 0;
}

void cycnn_adam_f32(float *p, const float *g, float *m, float *v, ptrdiff_t n,
                    const cycnn_adam_hyper *h)
{
    if (cycnn_adam_f32_path())
        cycnn_adam_f32_avx2(p, g, m, v, n, h);
    else
        cycnn_adam_f32_generic(p, g, m, v, n, h);
}
