/* dequant: scalar dequantizers of every supported GGUF tensor type; they
 * define the block layouts (quant.c is their inverse, kern/ computes with
 * them). */
#ifndef SOV_DEQUANT_H
#define SOV_DEQUANT_H

#include <stdint.h>

#include "../format/ttype.h"

/* dst[0..n) = dequantize(src); n is a multiple of the type's block size;
 * src may be unaligned. */
typedef void (*dequant_fn)(const void *src, float *dst, int64_t n);

/* One per type: dst[0..n) = dequant(src), as dequant_fn. */
void dequant_f32(const void *src, float *dst, int64_t n);
void dequant_f16(const void *src, float *dst, int64_t n);
void dequant_bf16(const void *src, float *dst, int64_t n);
void dequant_q4_0(const void *src, float *dst, int64_t n);
void dequant_q4_1(const void *src, float *dst, int64_t n);
void dequant_q5_0(const void *src, float *dst, int64_t n);
void dequant_q5_1(const void *src, float *dst, int64_t n);
void dequant_q8_0(const void *src, float *dst, int64_t n);
void dequant_q2_k(const void *src, float *dst, int64_t n);
void dequant_q3_k(const void *src, float *dst, int64_t n);
void dequant_q4_k(const void *src, float *dst, int64_t n);
void dequant_q5_k(const void *src, float *dst, int64_t n);
void dequant_q6_k(const void *src, float *dst, int64_t n);
void dequant_q8_k(const void *src, float *dst, int64_t n);

/* The 8 packed 6-bit (scale, min) pairs of q4_k / q5_k (12 bytes):
 * j < 4: scale = q[j] & 63, min = q[j+4] & 63;
 * j >= 4: scale = (q[j+4] & 15) | (q[j-4] >> 6) << 4,
 *         min = (q[j+4] >> 4) | (q[j] >> 6) << 4. */
static inline void dequant_k4_scale_min(const unsigned char *q, int j, int *scale, int *min)
{
    if (j < 4) {
        *scale = q[j] & 63;
        *min = q[j + 4] & 63;
    } else {
        *scale = (q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4;
        *min = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}


/* The dequantizer of type (enum sov_type), or NULL if sov has none. */
dequant_fn dequant_get(uint32_t type);

#endif
