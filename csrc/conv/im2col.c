/* im2col.c -- im2col/col2im for float and double (the body is in im2col_impl.h). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "conv.h"

#define T float
#define FN(name) name##_f32
#include "im2col_impl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "im2col_impl.h"
#undef T
#undef FN
