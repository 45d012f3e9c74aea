/* kern_rand: seeded random data for the kernel tests (header-only, test code).
 * fill_random() makes blocks of any supported type whose values are finite. */
#ifndef SOV_TEST_KERN_RAND_H
#define SOV_TEST_KERN_RAND_H

#include "base/fp16.h"
#include "format/ttype.h"

#include <stdint.h>
#include <string.h>

/* ---- seeded PRNG (splitmix64) ---- */
static uint64_t rng_state = 0x5eed5eed12345678ull;

static inline uint64_t rng_u64(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi) */
static inline float rng_uniform(float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rng_u64() >> 11) * 0x1p-53);
}

/* A random finite scale: magnitude in [0.01, 1), random sign. */
static inline float rng_scale(void)
{
    float v = rng_uniform(0.01f, 1.0f);
    return (rng_u64() & 1) ? -v : v;
}

static inline void put_f16(unsigned char *p, float v)
{
    uint16_t h = f32_to_fp16(v);
    memcpy(p, &h, 2);
}

static inline void put_f32(unsigned char *p, float v) { memcpy(p, &v, 4); }

/* Where the float scale fields of one block of each type are. */
typedef struct {
    uint32_t type;
    int f16_off[2]; /* offsets of f16 scales in a block, -1 = none */
    int f32_off;    /* offset of an f32 scale, -1 = none */
} scale_fields;

static const scale_fields quant_types[] = {
    {SOV_Q4_0, {0, -1}, -1},   {SOV_Q4_1, {0, 2}, -1},    {SOV_Q5_0, {0, -1}, -1},
    {SOV_Q5_1, {0, 2}, -1},    {SOV_Q8_0, {0, -1}, -1},   {SOV_Q2_K, {80, 82}, -1},
    {SOV_Q3_K, {108, -1}, -1}, {SOV_Q4_K, {0, 2}, -1},    {SOV_Q5_K, {0, 2}, -1},
    {SOV_Q6_K, {208, -1}, -1}, {SOV_Q8_K, {-1, -1}, 0},
};

/* Fills n elements of `type` at p (nbytes) with random data whose values are
 * all finite: random bytes with finite scales for quant types, random finite
 * values for float types. */
static inline void fill_random(uint32_t type, unsigned char *p, uint64_t nbytes, int64_t n)
{
    if (type == SOV_F32) {
        for (int64_t i = 0; i < n; i++)
            put_f32(p + 4 * i, rng_uniform(-1.0f, 1.0f));
        return;
    }
    if (type == SOV_F16 || type == SOV_BF16) {
        for (int64_t i = 0; i < n; i++) {
            float v = rng_uniform(-1.0f, 1.0f);
            uint16_t h = type == SOV_F16 ? f32_to_fp16(v) : f32_to_bf16(v);
            memcpy(p + 2 * i, &h, 2);
        }
        return;
    }
    for (uint64_t i = 0; i < nbytes; i++)
        p[i] = (unsigned char)rng_u64();
    const ttype_traits *tr = ttype_get(type);
    const scale_fields *sf = NULL;
    for (size_t k = 0; k < sizeof quant_types / sizeof quant_types[0]; k++)
        if (quant_types[k].type == type)
            sf = &quant_types[k];
    if (!sf || !tr)
        return; /* unknown layout: the finiteness check will report it */
    for (int64_t b = 0; b < n / tr->blck; b++) {
        unsigned char *blk = p + b * tr->size;
        for (int k = 0; k < 2; k++)
            if (sf->f16_off[k] >= 0)
                put_f16(blk + sf->f16_off[k], rng_scale());
        if (sf->f32_off >= 0)
            put_f32(blk + sf->f32_off, rng_scale());
    }
}

#endif
