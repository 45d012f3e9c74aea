/* kern: per-type compute kernels behind an ops table.
 *
 * kern_ref.c is the scalar reference ("the truth"); faster implementations
 * fill the same table and are checked against it by tests. kern_best()
 * picks the fastest table the CPU supports, at run time. */
#ifndef SOV_KERN_H
#define SOV_KERN_H

#include <stdint.h>

#include "../ttype.h"

/* dst[0..n) = dequantize(src); n is a multiple of the type's block size. */
typedef void (*kern_dequant_fn)(const void *src, float *dst, int64_t n);

/* returns sum_i W[i] * x[i] over one row of n elements stored as the type. */
typedef float (*kern_dot_fn)(const void *w, const float *x, int64_t n);

typedef struct kern_ops {
    const char *name;
    kern_dequant_fn dequant[SOV_TYPE_COUNT]; /* NULL where the type is unsupported */
    kern_dot_fn dot[SOV_TYPE_COUNT];
} kern_ops;

/* The scalar reference table (static storage). */
const kern_ops *kern_ref_ops(void);

/* The best table for this CPU (static storage; chosen once, thread-safe). */
const kern_ops *kern_best(void);

/* out[r] = W[r, 0..k) . x[0..k) for r in [r0, r1); W rows are row_bytes apart.
 * Uses ops->dot of `type`. */
void kern_matvec(const kern_ops *ops, uint32_t type, const void *W, uint64_t row_bytes,
                 const float *x, float *out, int64_t k, int64_t r0, int64_t r1);

#endif
