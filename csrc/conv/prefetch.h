/* prefetch.h -- pull the next image's operands into the cache while a kernel computes the
 * current one (internal to csrc/conv; static inline, no state beyond the cursor).
 *
 * A kernel that runs one image after another (sconv_igemm.c, sconv_dw.c) is handed the next
 * image's input and output (or output gradient) and spreads software prefetches of them over
 * its inner steps: each step issues an equal share of the lines, so the memory traffic
 * (192 KiB per image for the 1x1 benchmark shape) overlaps the arithmetic instead of stalling
 * the start of the next image (measured: the weight gradient of 64x128x16x16 -> 64 runs
 * 91 GFLOP/s on a cache-hot image, 58 while streaming images from memory). Prefetches never
 * fault, so a hint past the end of an array is harmless; NULL regions are skipped.
 * Locality 2 (prefetcht1): into L2 and below, the level the next image is read from.
 */
#ifndef CYCNN_CONV_PREFETCH_H
#define CYCNN_CONV_PREFETCH_H

#include <stddef.h>

typedef struct {
    const char *p[2];   /* next line of each region */
    size_t left[2];     /* lines left in each region */
    size_t per_step;    /* lines per step */
} cycnn_prefetch_cursor;

/* Regions a (abytes) and b (bbytes), either may be NULL, spread over `steps` steps. */
static inline void cycnn_prefetch_init(cycnn_prefetch_cursor *pf, const void *a, size_t abytes,
                                       const void *b, size_t bbytes, ptrdiff_t steps)
{
    size_t lines;
    pf->p[0] = (const char *)a;
    pf->p[1] = (const char *)b;
    pf->left[0] = a != NULL ? (abytes + 63) / 64 : 0;
    pf->left[1] = b != NULL ? (bbytes + 63) / 64 : 0;
    lines = pf->left[0] + pf->left[1];
    if (steps < 1)
        steps = 1;
    pf->per_step = (lines + (size_t)steps - 1) / (size_t)steps;
}

/* Issue the next share of prefetches. */
static inline void cycnn_prefetch_step(cycnn_prefetch_cursor *pf)
{
    size_t n = pf->per_step;
    int r;
    for (r = 0; r < 2 && n > 0; r++) {
        while (n > 0 && pf->left[r] > 0) {
#if defined(__GNUC__)
            __builtin_prefetch(pf->p[r], 0, 2);
#endif
            pf->p[r] += 64;
            pf->left[r]--;
            n--;
        }
    }
}

#endif /* CYCNN_CONV_PREFETCH_H */
