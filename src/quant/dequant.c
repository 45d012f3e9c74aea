/* dequant: the block formats of the GGUF tensor types, defined by their
 * scalar dequantizers (public ggml block layouts). Plain C, exact: every
 * other decoder (the SIMD kernels, the r16 / x8 repacks) is tested against
 * these. */
#include "dequant.h"

#include "../base/fp16.h"

#include <string.h>

/* ---- Float types ---- */
// dst[i] = src[i]
void dequant_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

// dst[i] = half(src[i])
void dequant_f16(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = fp16_to_f32(h);
    }
}

// dst[i] = bf16(src[i])
void dequant_bf16(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
    }
}

/* ---- Quantized block formats ----
 * Each blk_* decodes ONE block into y[blck]; the dequant and dot kernels for
 * the type are generated from it by REF_BLOCKED below, so dot is by
 * construction consistent with dequant (same values, float accumulation in
 * element order). Multi-byte fields are read with memcpy: blocks inside a
 * GGUF mapping are not necessarily aligned. Scales are little-endian, as in
 * the files (sov only targets little-endian hosts). */

static inline float rd_f16(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return fp16_to_f32(h);
}

static inline float rd_f32(const unsigned char *p)
{
    float f;
    memcpy(&f, p, 4);
    return f;
}

/* q4_0, 18 B / 32 elements: f16 d | u8 qs[16].
 * y[j] = d * ((qs[j] & 15) - 8), y[j+16] = d * ((qs[j] >> 4) - 8), j < 16. */
static void blk_q4_0(const unsigned char *b, float *y)
{
    const float d = rd_f16(b);
    const unsigned char *qs = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)((qs[j] & 0x0f) - 8);
        y[j + 16] = d * (float)((qs[j] >> 4) - 8);
    }
}

/* q4_1, 20 B / 32 elements: f16 d | f16 m | u8 qs[16].
 * y[j] = d * (qs[j] & 15) + m, y[j+16] = d * (qs[j] >> 4) + m. */
static void blk_q4_1(const unsigned char *b, float *y)
{
    const float d = rd_f16(b), m = rd_f16(b + 2);
    const unsigned char *qs = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)(qs[j] & 0x0f) + m;
        y[j + 16] = d * (float)(qs[j] >> 4) + m;
    }
}

/* q5_0, 22 B / 32 elements: f16 d | u32 qh (little-endian) | u8 qs[16].
 * Bit i of qh is bit 4 of element i's 5-bit code q; y[i] = d * (q - 16). */
static void blk_q5_0(const unsigned char *b, float *y)
{
    const float d = rd_f16(b);
    uint32_t qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
    const unsigned char *qs = b + 6;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)(lo - 16);
        y[j + 16] = d * (float)(hi - 16);
    }
}

/* q5_1, 24 B / 32 elements: f16 d | f16 m | u32 qh | u8 qs[16].
 * As q5_0 with an unsigned code: y[i] = d * q + m. */
static void blk_q5_1(const unsigned char *b, float *y)
{
    const float d = rd_f16(b), m = rd_f16(b + 2);
    uint32_t qh = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
    const unsigned char *qs = b + 8;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
        int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
        y[j] = d * (float)lo + m;
        y[j + 16] = d * (float)hi + m;
    }
}

/* q8_0, 34 B / 32 elements: f16 d | i8 qs[32]. y[i] = d * qs[i]. */
static void blk_q8_0(const unsigned char *b, float *y)
{
    const float d = rd_f16(b);
    const signed char *qs = (const signed char *)(b + 2);
    for (int j = 0; j < 32; j++)
        y[j] = d * (float)qs[j];
}

/* q2_k, 84 B / 256 elements: u8 scales[16] | u8 qs[64] | f16 d | f16 dmin.
 * 16 sub-blocks of 16; sub-block s has scale (scales[s] & 15) and min
 * (scales[s] >> 4). Element e = 128*h + 32*k + 16*t + l (h<2, k<4, t<2,
 * l<16) is in sub-block s = 8*h + 2*k + t and its 2-bit code is
 * (qs[32*h + 16*t + l] >> 2k) & 3; y = d*sc*q - dmin*mn. */
static void blk_q2_k(const unsigned char *b, float *y)
{
    const unsigned char *sc = b, *qs = b + 16;
    const float d = rd_f16(b + 80), dmin = rd_f16(b + 82);
    int s = 0;
    for (int h = 0; h < 2; h++) {
        const unsigned char *q = qs + 32 * h;
        for (int k = 0; k < 4; k++) {
            for (int t = 0; t < 2; t++, s++) {
                const float dl = d * (float)(sc[s] & 0x0f), ml = dmin * (float)(sc[s] >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * (float)((q[16 * t + l] >> (2 * k)) & 3) - ml;
            }
        }
    }
}

/* q3_k, 110 B / 256 elements: u8 hmask[32] | u8 qs[64] | u8 scales[12] | f16 d.
 * 16 sub-blocks of 16 with signed 6-bit scales (stored value - 32): for
 * sub-block s the low 4 bits are scales[s] & 15 (s < 8) or scales[s-8] >> 4
 * (s >= 8), the high 2 bits are (scales[8 + s%4] >> 2*(s/4)) & 3.
 * Element e = 128*h + 32*k + 16*t + l (as q2_k) has low code
 * (qs[32*h + 16*t + l] >> 2k) & 3, minus 4 when bit (4*h + k) of
 * hmask[16*t + l] is clear; y = d * (scale - 32) * code. */
static void blk_q3_k(const unsigned char *b, float *y)
{
    const unsigned char *hm = b, *qs = b + 32, *sc = b + 96;
    const float d = rd_f16(b + 108);
    int scale[16];
    for (int s = 0; s < 16; s++) {
        int lo = s < 8 ? (sc[s] & 0x0f) : (sc[s - 8] >> 4);
        int hi = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
        scale[s] = (lo | hi << 4) - 32;
    }
    int s = 0;
    for (int h = 0; h < 2; h++) {
        const unsigned char *q = qs + 32 * h;
        for (int k = 0; k < 4; k++) {
            const unsigned bit = 1u << (4 * h + k);
            for (int t = 0; t < 2; t++, s++) {
                const float dl = d * (float)scale[s];
                for (int l = 0; l < 16; l++) {
                    int c = (q[16 * t + l] >> (2 * k)) & 3;
                    if (!(hm[16 * t + l] & bit))
                        c -= 4;
                    *y++ = dl * (float)c;
                }
            }
        }
    }
}

/* q4_k, 144 B / 256 elements: f16 d | f16 dmin | u8 scales[12] | u8 qs[128].
 * 8 sub-blocks of 32. Element e = 64*g + 32*t + l (g<4, t<2, l<32) is in
 * sub-block 2g+t with code (qs[32*g + l] >> 4t) & 15;
 * y = d*scale*q - dmin*min. */
static void blk_q4_k(const unsigned char *b, float *y)
{
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    const unsigned char *sc = b + 4, *qs = b + 16;
    for (int g = 0; g < 4; g++) {
        for (int t = 0; t < 2; t++) {
            int scale, min;
            dequant_k4_scale_min(sc, 2 * g + t, &scale, &min);
            const float dl = d * (float)scale, ml = dmin * (float)min;
            for (int l = 0; l < 32; l++)
                *y++ = dl * (float)((qs[32 * g + l] >> (4 * t)) & 0x0f) - ml;
        }
    }
}

/* q5_k, 176 B / 256 elements: f16 d | f16 dmin | u8 scales[12] | u8 qh[32] |
 * u8 qs[128]. As q4_k, plus bit (2g + t) of qh[l] as bit 4 of the code. */
static void blk_q5_k(const unsigned char *b, float *y)
{
    const float d = rd_f16(b), dmin = rd_f16(b + 2);
    const unsigned char *sc = b + 4, *qh = b + 16, *qs = b + 48;
    for (int g = 0; g < 4; g++) {
        for (int t = 0; t < 2; t++) {
            int scale, min;
            dequant_k4_scale_min(sc, 2 * g + t, &scale, &min);
            const float dl = d * (float)scale, ml = dmin * (float)min;
            const unsigned bit = 1u << (2 * g + t);
            for (int l = 0; l < 32; l++) {
                int c = (qs[32 * g + l] >> (4 * t)) & 0x0f;
                if (qh[l] & bit)
                    c += 16;
                *y++ = dl * (float)c - ml;
            }
        }
    }
}

/* q6_k, 210 B / 256 elements: u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d.
 * Element e = 128*h + 32*k + l (h<2, k<4, l<32): low 4 bits from
 * ql[64*h + 32*(k&1) + l] (low nibble for k<2, high for k>=2), high 2 bits
 * (qh[32*h + l] >> 2k) & 3; scale scales[8*h + 2*k + l/16];
 * y = d * scale * (code - 32). */
static void blk_q6_k(const unsigned char *b, float *y)
{
    const unsigned char *ql = b, *qh = b + 128;
    const signed char *sc = (const signed char *)(b + 192);
    const float d = rd_f16(b + 208);
    for (int h = 0; h < 2; h++) {
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) {
                int lo = (ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0x0f;
                int hi = (qh[32 * h + l] >> (2 * k)) & 3;
                const float dl = d * (float)sc[8 * h + 2 * k + l / 16];
                *y++ = dl * (float)((lo | hi << 4) - 32);
            }
        }
    }
}

/* q8_k, 292 B / 256 elements: f32 d | i8 qs[256] | i16 bsums[16].
 * y[i] = d * qs[i] (bsums are sums of qs for fast dots; not needed here). */
static void blk_q8_k(const unsigned char *b, float *y)
{
    const float d = rd_f32(b);
    const signed char *qs = (const signed char *)(b + 4);
    for (int j = 0; j < 256; j++)
        y[j] = d * (float)qs[j];
}

/* Generates dequant_NAME from blk_NAME (QK elements in BYTES bytes per block):
 * dst[n] = dequant(n/QK blocks at src). */
#define DQ_BLOCKED(NAME, QK, BYTES)                                                   \
    void dequant_##NAME(const void *src, float *dst, int64_t n)               \
    {                                                                                \
        const unsigned char *p = src;                                                \
        for (int64_t i = 0; i < n / (QK); i++)                                       \
            blk_##NAME(p + i * (BYTES), dst + i * (QK));                             \
    }
DQ_BLOCKED(q4_0, 32, 18)
DQ_BLOCKED(q4_1, 32, 20)
DQ_BLOCKED(q5_0, 32, 22)
DQ_BLOCKED(q5_1, 32, 24)
DQ_BLOCKED(q8_0, 32, 34)
DQ_BLOCKED(q2_k, QK_K, 84)
DQ_BLOCKED(q3_k, QK_K, 110)
DQ_BLOCKED(q4_k, QK_K, 144)
DQ_BLOCKED(q5_k, QK_K, 176)
DQ_BLOCKED(q6_k, QK_K, 210)
DQ_BLOCKED(q8_k, QK_K, 292)

static const dequant_fn table[SOV_TYPE_COUNT] = {
    [SOV_F32] = dequant_f32,
    [SOV_F16] = dequant_f16,
    [SOV_BF16] = dequant_bf16,
    [SOV_Q4_0] = dequant_q4_0,
    [SOV_Q4_1] = dequant_q4_1,
    [SOV_Q5_0] = dequant_q5_0,
    [SOV_Q5_1] = dequant_q5_1,
    [SOV_Q8_0] = dequant_q8_0,
    [SOV_Q2_K] = dequant_q2_k,
    [SOV_Q3_K] = dequant_q3_k,
    [SOV_Q4_K] = dequant_q4_k,
    [SOV_Q5_K] = dequant_q5_k,
    [SOV_Q6_K] = dequant_q6_k,
    [SOV_Q8_K] = dequant_q8_k,
};

dequant_fn dequant_get(uint32_t type) { return type < SOV_TYPE_COUNT ? table[type] : NULL; }
