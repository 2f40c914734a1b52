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

/* float: the portable forward and weight gradient are built as *_generic (FN pastes
 * cycnn_dwconv_fwd_f32, which this macro then renames); the functions of the same names below
 * pick them or the AVX2 builds. */
#define cycnn_dwconv_fwd_f32 cycnn_dwconv_fwd_f32_generic
#define cycnn_dwconv_bwd_filter_f32 cycnn_dwconv_bwd_filter_f32_generic
#define T float
#define FN(name) name##_f32
#include "depthwise_impl.h"
#undef T
#undef FN
#undef cycnn_dwconv_fwd_f32
#undef cycnn_dwconv_bwd_filter_f32

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

/* ---- float backward: the AVX2 builds where they apply (dx: stride and dilation 1; dw: the
 * forward kernel's rule) */

static int dw_applies(const cycnn_dwconv_geom *g)   /* the forward kernel's rule */
{
    return g->sw <= 2 && g->dw == 1 && cycnn_dwconv_f32_path();
}

static int dx_applies(const cycnn_dwconv_geom *g)
{
    return g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && cycnn_dwconv_f32_path();
}

/* dx's geometry as a forward pass over dy with the flipped filter: dx[i, j] = sum_{r,s}
 * w[R-1-r, S-1-s] * dy[i - (R-1-pt) + r, j - (S-1-pl) + s] (needs pt <= R-1, pl <= S-1) */
static int dx_as_forward(const cycnn_dwconv_geom *g, cycnn_dwconv_geom *t)
{
    if (!dx_applies(g) || g->pt > g->R - 1 || g->pl > g->S - 1 ||
        g->R * g->S > CYCNN_DWCONV_DX_MAX_TAPS)
        return 0;
    *t = *g;
    t->H = g->Ho;
    t->W = g->Wo;
    t->Ho = g->H;
    t->Wo = g->W;
    t->pt = g->R - 1 - g->pt;
    t->pl = g->S - 1 - g->pl;
    return 1;
}

size_t cycnn_dwconv_bwd_f32_ws_floats(const cycnn_dwconv_geom *g)
{
#if (defined(__x86_64__) || defined(__i386__))
    cycnn_dwconv_geom t;
    size_t n = dw_applies(g) ? cycnn_dwconv_fwd_f32_avx2_ws_floats(g) : 0;
    if (dx_as_forward(g, &t) && cycnn_dwconv_fwd_f32_avx2_ws_floats(&t) > n)
        n = cycnn_dwconv_fwd_f32_avx2_ws_floats(&t);
    return n;
#else
    (void)g;
    return 0;
#endif
}

int cycnn_dwconv_bwd_data_f32_set(const cycnn_dwconv_geom *g, const float *dy, const float *w,
                                  float *dx, float *ws)
{
#if (defined(__x86_64__) || defined(__i386__))
    cycnn_dwconv_geom t;
    float flipped[CYCNN_DWCONV_DX_MAX_TAPS];
    int i;
    if (ws == NULL || !dx_as_forward(g, &t))
        return 0;
    for (i = 0; i < g->R * g->S; i++)
        flipped[i] = w[g->R * g->S - 1 - i];
    cycnn_dwconv_fwd_f32_avx2(&t, dy, flipped, 0.0f, dx, ws);
    return 1;
#else
    (void)g; (void)dy; (void)w; (void)dx; (void)ws;
    return 0;
#endif
}

void cycnn_dwconv_bwd_filter_f32(const cycnn_dwconv_geom *g, const float *dy, const float *x,
                                 float *dw, float *ws)
{
#if (defined(__x86_64__) || defined(__i386__))
    if (ws != NULL && dw_applies(g)) {
        cycnn_dwconv_bwd_filter_f32_avx2(g, dy, x, dw, ws);
        return;
    }
#endif
    cycnn_dwconv_bwd_filter_f32_generic(g, dy, x, dw);
}
