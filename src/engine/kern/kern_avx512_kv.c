/* kern_avx512_kv: AVX-512 (F, BW, VL) decoders of f16 and q8_0 KV cache
 * tiles (kern.h: the layouts). Compiled with the AVX-512 flags; only called
 * after kern.c has checked the CPU. Every value is one exact conversion
 * (vcvtph2ps, int8 -> float) or one product code * scale, as in the
 * reference, so the bits are the reference's. Rows and chunks shorter than
 * 16 lanes use masked loads and stores. */
#include "kern.h"

#include <immintrin.h>
#include <stdint.h>

#define AI static inline __attribute__((always_inline))

/* the first n (<= 16) lanes */
AI __mmask16 first(int64_t n) { return (__mmask16)(n >= 16 ? 0xffff : (1u << n) - 1); }

/* 16 halves at p as floats (lanes outside m read nothing, give 0) */
AI __m512 ld16h(const uint16_t *p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }

/* 16 int8 codes at p as floats (lanes outside m read nothing, give 0) */
AI __m512 ld16q(const int8_t *p, __mmask16 m)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

// dst[d*32 + t] = half(k[d*32 + t]) for d < hd, t < 32
static void kv_k_f16(const void *k, const uint16_t *ks, int64_t hd, float *dst)
{
    (void)ks;
    const uint16_t *h = k;
    for (int64_t i = 0; i < hd * KERN_KV_TILE; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(h + i))));
}

// dst[d*32 + t] = k[d*32 + t] * half(ks[(d/32)*32 + t]) for d < hd, t < 32
static void kv_k_q8_0(const void *k, const uint16_t *ks, int64_t hd, float *dst)
{
    const int8_t *q = k;
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (int64_t d = 0; d < hd; d++) {
        if (d % KERN_KV_CHUNK == 0) { /* the 32 keys' scales of this chunk */
            s0 = ld16h(ks + d / KERN_KV_CHUNK * KERN_KV_TILE, 0xffff);
            s1 = ld16h(ks + d / KERN_KV_CHUNK * KERN_KV_TILE + 16, 0xffff);
        }
        _mm512_storeu_ps(dst + d * KERN_KV_TILE, _mm512_mul_ps(ld16q(q + d * KERN_KV_TILE, 0xffff), s0));
        _mm512_storeu_ps(dst + d * KERN_KV_TILE + 16, _mm512_mul_ps(ld16q(q + d * KERN_KV_TILE + 16, 0xffff), s1));
    }
}

// dst[t*hd + d] = half(v[t*vst + d]) for t < nt, d < hd
static void kv_v_f16(const void *v, int64_t vst, const uint16_t *vs, int64_t sst, int64_t hd, int64_t nt, float *dst)
{
    (void)vs, (void)sst;
    for (int64_t t = 0; t < nt; t++) {
        const uint16_t *r = (const uint16_t *)v + t * vst;
        float *o = dst + t * hd;
        for (int64_t d = 0; d < hd; d += 16) {
            __mmask16 m = first(hd - d);
            _mm512_mask_storeu_ps(o + d, m, ld16h(r + d, m));
        }
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
            const __m512 s = _mm512_cvtph_ps(_mm256_set1_epi16((short)vs[t * sst + c0 / KERN_KV_CHUNK]));
            for (int64_t d = c0; d < e; d += 16) {
                __mmask16 m = first(e - d);
                _mm512_mask_storeu_ps(o + d, m, _mm512_mul_ps(ld16q(r + d, m), s));
            }
        }
    }
}

void kern_avx512_kv_fill(kern_ops *o)
{
    o->kv_k_f16 = kv_k_f16;
    o->kv_k_q8_0 = kv_k_q8_0;
    o->kv_v_f16 = kv_v_f16;
    o->kv_v_q8_0 = kv_v_q8_0;
}
