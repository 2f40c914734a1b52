/* depthwise.c -- float and double depthwise convolution kernels for one plane; contract in
 * depthwise.h, loops and their design in depthwise_impl.h (included once per element type). */
#include <stdint.h>

#include "depthwise.h"
#include "../cpu.h"

/* Output columns [*lo, *hi) whose input column ow*sw + off lies in [0, W) (64-bit arithmetic:
 * off may be as low as -pl). */
static void col_range(const cycnn_dwconv_geom *g, int64_t off, int *lo, int *hi)
{
    /* smallest ow with ow*sw + off >= 0, one past the largest with ow*sw + off <= W - 1 */
    int64_t a = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
    const int64_t last = (int64_t)g->W - 1 - off;
    int64_t b = last < 0 ? 0 : last / g->sw + 1;
    if (a > g->Wo)
        a = g->Wo;
    if (b > g->Wo)
        b = g->Wo;
    *lo = (int)a;
    *hi = (int)(b < a ? a : b);
}

/* float: the portable forward is built as cycnn_dwconv_fwd_f32_generic (FN pastes
 * cycnn_dwconv_fwd_f32, which this macro then renames); cycnn_dwconv_fwd_f32 below picks it
 * or the AVX2 build. */
#define cycnn_dwconv_fwd_f32 cycnn_dwconv_fwd_f32_generic
#define T float
#define FN(name) name##_f32
#include "depthwise_impl.h"
#undef T
#undef FN
#undef cycnn_dwconv_fwd_f32

#define T double
#define FN(name) name##_f64
#include "depthwise_impl.h"
#undef T
#undef FN

/* ---- float forward: the AVX2 build where it applies (width stride 1 or 2, width dilation 1) */

static int allow_avx2 = 1;   /* tests flip it to compare the builds */

int cycnn_dwconv_f32_path(void)
{
#if (defined(__x86_64__) || defined(__i386__))
    return allow_avx2 && cycnn_cpu_has_avx2() && cycnn_cpu_has_fma();
#else
    return 0;
#endif
}

void cycnn_dwconv_f32_set_path(int allow)
{
    allow_avx2 = allow != 0;
}

static int avx2_applies(const cycnn_dwconv_geom *g)
{
#if (defined(__x86_64__) || defined(__i386__))
    return g->sw <= 2 && g->dw == 1 && cycnn_dwconv_f32_path();
#else
    (void)g;
    return 0;
#endif
}

size_t cycnn_dwconv_fwd_f32_ws_floats(const cycnn_dwconv_geom *g)
{
#if (defined(__x86_64__) || defined(__i386__))
    if (avx2_applies(g))
        return cycnn_dwconv_fwd_f32_avx2_ws_floats(g);
#endif
    (void)g;
    return 0;
}

void cycnn_dwconv_fwd_f32(const cycnn_dwconv_geom *g, const float *x, const float *w,
                          float bias, float *y, float *ws)
{
#if (defined(__x86_64__) || defined(__i386__))
    if (ws != NULL && avx2_applies(g)) {
        cycnn_dwconv_fwd_f32_avx2(g, x, w, bias, y, ws);
        return;
    }
#endif
    cycnn_dwconv_fwd_f32_generic(g, x, w, bias, y);
}
