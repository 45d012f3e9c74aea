/* kern_ref: scalar reference kernels, one dequantize and one dot per type.
 * Plain C, float accumulation in element order; the truth the SIMD kernels
 * are tested against. Block layouts follow the public GGUF/ggml formats. */
#include "kern.h"

#include "fp16.h"

#include <string.h>

/* ---- F32 ---- */
// dst[i] = src[i]
static void dequant_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

// sum_i w[i] * x[i]
static float dot_f32(const void *w, const float *x, int64_t n)
{
    const float *a = w;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * x[i];
    return s;
}

/* ---- F16 ---- */
static void dequant_f16(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = fp16_to_f32(h);
    }
}

static float dot_f16(const void *w, const float *x, int64_t n)
{
    const unsigned char *p = w;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        s += fp16_to_f32(h) * x[i];
    }
    return s;
}

/* ---- BF16 ---- */
static void dequant_bf16(const void *src, float *dst, int64_t n)
{
    const unsigned char *p = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_f32(h);
    }
}

static float dot_bf16(const void *w, const float *x, int64_t n)
{
    const unsigned char *p = w;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        s += bf16_to_f32(h) * x[i];
    }
    return s;
}

static const kern_ops ref_ops = {
    .name = "ref",
    .dequant = {
        [SOV_F32] = dequant_f32,
        [SOV_F16] = dequant_f16,
        [SOV_BF16] = dequant_bf16,
    },
    .dot = {
        [SOV_F32] = dot_f32,
        [SOV_F16] = dot_f16,
        [SOV_BF16] = dot_bf16,
    },
};

const kern_ops *kern_ref_ops(void) { return &ref_ops; }
