/* vexp: e^x over 16 float lanes for x <= 0, written with the GCC/Clang
 * vector extension so each target clone of a caller compiles it for its own
 * instruction set. Header-only (static inline): attn.c (softmax) and act.c
 * (SiLU) inline it into their clones. */
#ifndef SOV_VEXP_H
#define SOV_VEXP_H

#include <stdint.h>

typedef float v16f __attribute__((vector_size(64), aligned(4)));
typedef int32_t v16i __attribute__((vector_size(64), aligned(4)));

/* *xp = e^x lane-wise (in place: vectors are not passed by value, whose
 * ABI differs between clones), for x <= 0: x = n ln2 + r with n = round(x log2 e), |r| <= ln2 / 2
 * (ln2 in two parts, so r is exact to a few ulp), e^r by its Taylor
 * polynomial to r^7 (truncation < 1e-8 relative), times 2^n built in the
 * exponent bits; x < -87 (the result would be subnormal or 0) gives 0, -inf
 * gives 0, NaN stays NaN. Within 2 ulp of expf; one fixed sequence of IEEE
 * operations (no contraction under -std=c11), so the same bits in every
 * clone. x > 0 is outside the domain (wrong for x > 88). */
static inline __attribute__((always_inline)) void vexp16(v16f *xp)
{
    v16f x = *xp;
    const v16f magic = (v16f){0} + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    v16f n = (x * 1.44269504f + magic) - magic;
    v16f r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
    v16f p = (v16f){0} + (1.0f / 5040.0f);
    p = p * r + (1.0f / 720.0f);
    p = p * r + (1.0f / 120.0f);
    p = p * r + (1.0f / 24.0f);
    p = p * r + (1.0f / 6.0f);
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    v16i ni = __builtin_convertvector(n, v16i);
    v16i big = x < -87.0f; /* -1 there: result 0 (also clears -inf) */
    v16i scale = ((ni + 127) << 23) & ~big;
    v16f y = p * (v16f)scale;
    *xp = (v16f)((v16i)y & ~big);
}

#endif
