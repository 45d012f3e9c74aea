/* kern_avx2_kv: AVX2 + F16C decoders of f16 and q8_0 KV cache tiles (kern.h:
 * the layouts). Compiled with -mavx2 -mfma -mf16c; only called after kern.c
 * has checked the CPU. Every value is one exact conversion (vcvtph2ps,
 * int8 -> float) or one product code * scale, as in the reference, so the
 * bits are the reference's. Tails shorter than 8 lanes (heads of 4 or 8
 * elements, chunks of a head that is not a multiple of 32) take the
 * reference's scalar conversion. */
#include "kern.h"

#include "../../base/fp16.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float half_at(const uint16_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return fp16_to_f32(h);
}

/* 8 halves at p as floats */
AI __m256 ld8h(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p)); }

/* 8 int8 codes at p as floats */
AI __m256 ld8q(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}

// dst[d*32 + t] = half(k[d*32 + t]) for d < hd, t < 32
static void kv_k_f16(const void *k, const uint16_t *ks, int64_t hd, float *dst)
{
    (void)ks;
    const uint16_t *h = k;
    for (int64_t i = 0; i < hd * KERN_KV_TILE; i += 8)
        _mm256_storeu_ps(dst + i, ld8h(h + i));
}

// dst[d*32 + t] = k[d*32 + t] * half(ks[(d/32)*32 + t]) for d < hd, t < 32
static void kv_k_q8_0(const void *k, const uint16_t *ks, int64_t hd, float *dst)
{
    const int8_t *q = k;
    __m256 s[4];
    for (int64_t d = 0; d < hd; d++) {
        if (d % KERN_KV_CHUNK == 0) /* the 32 keys' scales of this chunk */
            for (int j = 0; j < 4; j++)
                s[j] = ld8h(ks + d / KERN_KV_CHUNK * KERN_KV_TILE + 8 * j);
        for (int j = 0; j < 4; j++)
            _mm256_storeu_ps(dst + d * KERN_KV_TILE + 8 * j, _mm256_mul_ps(ld8q(q + d * KERN_KV_TILE + 8 * j), s[j]));
    }
}

// dst[t*hd + d] = half(v[t*vst + d]) for t < nt, d < hd
static void kv_v_f16(const void *v, int64_t vst, const uint16_t *vs, int64_t sst, int64_t hd, int64_t nt, float *dst)
{
    (void)vs, (void)sst;
    for (int64_t t = 0; t < nt; t++) {
        const uint16_t *r = (const uint16_t *)v + t * vst;
        float *o = dst + t * hd;
        int64_t d = 0;
        for (; d + 8 <= hd; d += 8)
            _mm256_storeu_ps(o + d, ld8h(r + d));
        for (; d < hd; d++)
            o[d] = half_at(r + d);
    }
}

// dst[t*hd + d] = v[t*vst + d] * half(vs[t*sst + d/32]) for t < nt, d < hd
static void kv_v_q8_0(const void *v, int64_t vst, const uint16_t *vs, int64_t sst, int64_t hd, int64_t nt, float *dst)
{
    for (int64_t t = 0; t < nt; t++) {
        const int8_t *r = (const int8_t *)v + t * vst;
        float *o = dst + t * hd;
        for (int64_t c0 = 0; c0 < hd; c0 += KERN_KV_CHUNK) {
            const int64_t e = c0 + KERN_KV_CHUNK < hd ? c0 + KERN_KV_CHUNK : hd;
            const float sf = half_at(vs + t * sst + c0 / KERN_KV_CHUNK);
            const __m256 s = _mm256_set1_ps(sf);
            int64_t d = c0;
            for (; d + 8 <= e; d += 8)
                _mm256_storeu_ps(o + d, _mm256_mul_ps(ld8q(r + d), s));
            for (; d < e; d++)
                o[d] = (float)r[d] * sf;
        }
    }
}

void kern_avx2_kv_fill(kern_ops *o)
{
    o->kv_k_f16 = kv_k_f16;
    o->kv_k_q8_0 = kv_k_q8_0;
    o->kv_v_f16 = kv_v_f16;
    o->kv_v_q8_0 = kv_v_q8_0;
}
