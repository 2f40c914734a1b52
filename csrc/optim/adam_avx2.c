/* adam_avx2.c -- the AVX2+FMA build of the float32 Adam loop (adam_impl.h; contract in adam.h).
 * setup.py compiles *_avx2.c with -mavx2 -mfma; adam.c calls it only on CPUs that have both. */
#include <math.h>

#include "adam.h"

#define ADAM_FN cycnn_adam_f32_avx2
#include "adam_impl.h"
