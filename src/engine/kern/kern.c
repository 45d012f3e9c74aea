#include "kern.h"

#include <stddef.h>

const kern_ops *kern_best(void)
{
    /* Only the scalar reference exists so far; SIMD tables plug in here via CPUID. */
    return kern_ref_ops();
}

// out[r] = W[r, :k] @ x[:k] for r in [r0, r1)
void kern_matvec(const kern_ops *ops, uint32_t type, const void *W, uint64_t row_bytes,
                 const float *x, float *out, int64_t k, int64_t r0, int64_t r1)
{
    kern_dot_fn dot = ops->dot[type];
    const unsigned char *w = W;
    for (int64_t r = r0; r < r1; r++)
        out[r] = dot(w + (uint64_t)r * row_bytes, x, k);
}
