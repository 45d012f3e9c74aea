#include "act.h"

#include "vexp.h"

#include <string.h>

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#define ACT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ACT_CLONES
#endif

/* g = silu(g) * u over 16 lanes: e = e^-|g| (<= 1), sigmoid(g) = 1 / (1 + e)
 * for g >= 0 and e / (1 + e) below, so neither branch overflows */
static inline __attribute__((always_inline)) void swiglu16(v16f *g, const v16f *u)
{
    v16f x = *g;
    v16i neg = x < 0.0f; /* -1 where g < 0 */
    v16f e = (v16f)((v16i)x | ((v16i){0} + INT32_MIN)); /* -|g|: the sign bit set */
    vexp16(&e);
    v16f one = (v16f){0} + 1.0f;
    v16f num = (v16f)(((v16i)e & neg) | ((v16i)one & ~neg));
    *g = x * (num / (one + e)) * *u;
}

ACT_CLONES void act_swiglu(float *g, const float *u, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16f a, b;
        memcpy(&a, g + i, sizeof a);
        memcpy(&b, u + i, sizeof b);
        swiglu16(&a, &b);
        memcpy(g + i, &a, sizeof a);
    }
    if (i < n) { /* the tail through the same 16-lane code, zero-padded */
        v16f a = {0}, b = {0};
        memcpy(&a, g + i, sizeof(float) * (size_t)(n - i));
        memcpy(&b, u + i, sizeof(float) * (size_t)(n - i));
        swiglu16(&a, &b);
        memcpy(g + i, &a, sizeof(float) * (size_t)(n - i));
    }
}
