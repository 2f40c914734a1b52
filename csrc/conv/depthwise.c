/* depthwise.c -- float and double depthwise convolution kernels for one plane; contract in
 * depthwise.h, loops and their design in depthwise_impl.h (included once per element type). */
#include <stdint.h>

#include "depthwise.h"

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

#define T float
#define FN(name) name##_f32
#include "depthwise_impl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "depthwise_impl.h"
#undef T
#undef FN
