/* kern_avx512_kv: AVX-512 (F, BW, VL) decoders of f16 and q8_0 KV cache
 * tiles (kern.h: the layouts). Compiled with the AVX-512 flags; only called
 * after kern.c has checked the CPU. Every value is one exact conversion
 * (vcvtph2ps, int8 -> float) or one product code * scale, as in the
 * reference, so the bits are the reference's. Rows and chunks shorter than
 * 16 lanes use masked loads and stores. */
#include "kern.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define AI static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

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

/* c + a * b: fused (F, one rounding) or a product then a sum */
AI __m512 madd(bool F, __m512 a, __m512 b, __m512 c)
{
    return F ? _mm512_fmadd_ps(a, b, c) : _mm512_add_ps(c, _mm512_mul_ps(a, b));
}

/* scores of H heads (H <= 2) at once: 2 key vectors x 4 partial sums x H
 * accumulators, each K load shared by the H heads */
#define KT KERN_KV_TILE
AI void scores_h(bool F, const float *q, int H, const float *kT, int64_t hd, float scale, float *s)
{
    __m512 a[2][4][2];
    UNROLL
    for (int h = 0; h < 2; h++)
        UNROLL
    for (int r = 0; r < 4; r++)
        a[h][r][0] = a[h][r][1] = _mm512_setzero_ps();
    int64_t d = 0;
    for (; d + 4 <= hd; d += 4)
        UNROLL
    for (int r = 0; r < 4; r++) {
        const __m512 k0 = _mm512_loadu_ps(kT + (d + r) * KT), k1 = _mm512_loadu_ps(kT + (d + r) * KT + 16);
        UNROLL
        for (int h = 0; h < H; h++) {
            const __m512 qb = _mm512_set1_ps(q[h * hd + d + r]);
            a[h][r][0] = madd(F, qb, k0, a[h][r][0]);
            a[h][r][1] = madd(F, qb, k1, a[h][r][1]);
        }
    }
    for (; d < hd; d++) {
        const __m512 k0 = _mm512_loadu_ps(kT + d * KT), k1 = _mm512_loadu_ps(kT + d * KT + 16);
        UNROLL
        for (int h = 0; h < H; h++) {
            const __m512 qb = _mm512_set1_ps(q[h * hd + d]);
            a[h][d % 4][0] = madd(F, qb, k0, a[h][d % 4][0]);
            a[h][d % 4][1] = madd(F, qb, k1, a[h][d % 4][1]);
        }
    }
    const __m512 sc = _mm512_set1_ps(scale);
    UNROLL
    for (int h = 0; h < H; h++)
        UNROLL
    for (int x = 0; x < 2; x++)
        _mm512_storeu_ps(s + h * KT + 16 * x, _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(a[h][0][x], a[h][1][x]),
                                                                          _mm512_add_ps(a[h][2][x], a[h][3][x])),
                                                            sc));
}

AI void scores_all(bool F, const float *q, int64_t G, const float *kT, int64_t hd, float scale, float *s)
{
    int64_t g = 0;
    for (; g + 2 <= G; g += 2)
        scores_h(F, q + g * hd, 2, kT, hd, scale, s + g * KT);
    if (g < G)
        scores_h(F, q + g * hd, 1, kT, hd, scale, s + g * KT);
}

// s[g*32 + t] = ((a0 + a1) + (a2 + a3)) * scale, a_r = a_r + q[g*hd + d] * kT[d*32 + t] over d = r mod 4
static void attn_scores(const float *q, int64_t G, const float *kT, int64_t hd, float scale, float *s)
{
    scores_all(false, q, G, kT, hd, scale, s);
}

// as attn_scores with a_r = fma(q[g*hd + d], kT[d*32 + t], a_r)
static void attn_scores_fma(const float *q, int64_t G, const float *kT, int64_t hd, float scale, float *s)
{
    scores_all(true, q, G, kT, hd, scale, s);
}

/* elements [d0, d0 + 64) of H heads (H <= 4): 4 vectors x H accumulators,
 * lanes past hd masked (they load zeros and are not stored) */
AI void axpy_h(bool F, float *o, const float *c, const float *p, int H, const float *v, int64_t vst, int64_t hd,
               int64_t nt, int64_t d0)
{
    __mmask16 m[4];
    UNROLL
    for (int i = 0; i < 4; i++)
        m[i] = d0 + 16 * i < hd ? first(hd - d0 - 16 * i) : 0;
    __m512 a[4][4];
    UNROLL
    for (int h = 0; h < H; h++) {
        const __m512 ch = _mm512_set1_ps(c[h]);
        UNROLL
        for (int i = 0; i < 4; i++)
            a[h][i] = _mm512_mul_ps(_mm512_maskz_loadu_ps(m[i], o + h * hd + d0 + 16 * i), ch);
    }
    for (int64_t t = 0; t < nt; t++) {
        __m512 x[4];
        UNROLL
        for (int i = 0; i < 4; i++)
            x[i] = _mm512_maskz_loadu_ps(m[i], v + t * vst + d0 + 16 * i);
        UNROLL
        for (int h = 0; h < H; h++) {
            const __m512 pb = _mm512_set1_ps(p[h * KT + t]);
            UNROLL
            for (int i = 0; i < 4; i++)
                a[h][i] = madd(F, pb, x[i], a[h][i]);
        }
    }
    UNROLL
    for (int h = 0; h < H; h++)
        UNROLL
    for (int i = 0; i < 4; i++)
        _mm512_mask_storeu_ps(o + h * hd + d0 + 16 * i, m[i], a[h][i]);
}

AI void axpy_all(bool F, float *o, const float *c, const float *p, int64_t G, const float *v, int64_t vst, int64_t hd,
                 int64_t nt)
{
    for (int64_t d0 = 0; d0 < hd; d0 += 64) {
        int64_t g = 0;
        for (; g + 4 <= G; g += 4)
            axpy_h(F, o + g * hd, c + g, p + g * KT, 4, v, vst, hd, nt, d0);
        for (; g < G; g++)
            axpy_h(F, o + g * hd, c + g, p + g * KT, 1, v, vst, hd, nt, d0);
    }
}

// o[g*hd + d] = o[g*hd + d] * c[g], then + p[g*32 + t] * v[t*vst + d] for t < nt in order
static void attn_axpy(float *o, const float *c, const float *p, int64_t G, const float *v, int64_t vst, int64_t hd,
                      int64_t nt)
{
    axpy_all(false, o, c, p, G, v, vst, hd, nt);
}

// as attn_axpy with x = fma(p[g*32 + t], v[t*vst + d], x)
static void attn_axpy_fma(float *o, const float *c, const float *p, int64_t G, const float *v, int64_t vst, int64_t hd,
                          int64_t nt)
{
    axpy_all(true, o, c, p, G, v, vst, hd, nt);
}

void kern_avx512_kv_fill(kern_ops *o)
{
    o->attn_scores = attn_scores;
    o->attn_scores_fma = attn_scores_fma;
    o->attn_axpy = attn_axpy;
    o->attn_axpy_fma = attn_axpy_fma;
    o->kv_k_f16 = kv_k_f16;
    o->kv_k_q8_0 = kv_k_q8_0;
    o->kv_v_f16 = kv_v_f16;
    o->kv_v_q8_0 = kv_v_q8_0;
}
