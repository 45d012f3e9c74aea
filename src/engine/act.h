/* act: elementwise activations of the feed-forward block. */
#ifndef SOV_ACT_H
#define SOV_ACT_H

#include <stdint.h>

/* g[i] = silu(g[i]) * u[i] = g[i] * sigmoid(g[i]) * u[i] for i < n, 16 lanes
 * at a time with a polynomial e^x (within 2 ulp of expf; e^-|g| only, so
 * nothing overflows): within a few ulp of the exact value. Each element
 * gets the same bits whatever n, its index, and the instruction set. g and
 * u may not overlap unless equal. No errors. */
void act_swiglu(float *g, const float *u, int64_t n);

#endif
