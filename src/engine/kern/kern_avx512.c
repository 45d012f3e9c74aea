/* kern_avx512: SIMD kernels (filled in by the kernel work; until then the table
 * keeps the reference entries). */
#include "kern.h"

void kern_avx512_fill(kern_ops *o) { (void)o; }
