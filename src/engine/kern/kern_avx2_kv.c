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
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

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

#define KT KERN_KV_TILE

/* lanes [0, n) of 8 as a maskload / maskstore mask */
AI __m256i first8(int64_t n)
{
    const __m256i i = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 8 ? (n < 0 ? 0 : n) : 8)), i);
}

/* c + a * b: fused (F, one rounding) or a product then a sum */
AI __m256 madd(bool F, __m256 a, __m256 b, __m256 c)
{
    return F ? _mm256_fmadd_ps(a, b, c) : _mm256_add_ps(c, _mm256_mul_ps(a, b));
}

/* scores of keys [8kk, 8kk + 8) for H heads (H <= 2): 4 partial sums x H
 * accumulators, each K load shared by the H heads */
AI void scores_h(bool F, const float *q, int H, const float *kT, int64_t hd, float scale, float *s, int kk)
{
    __m256 a[2][4];
    UNROLL
    for (int h = 0; h < 2; h++)
        UNROLL
    for (int r = 0; r < 4; r++)
        a[h][r] = _mm256_setzero_ps();
    int64_t d = 0;
    for (; d + 4 <= hd; d += 4)
        UNROLL
    for (int r = 0; r < 4; r++) {
        const __m256 k = _mm256_loadu_ps(kT + (d + r) * KT + 8 * kk);
        UNROLL
        for (int h = 0; h < H; h++)
            a[h][r] = madd(F, _mm256_set1_ps(q[h * hd + d + r]), k, a[h][r]);
    }
    for (; d < hd; d++) {
        const __m256 k = _mm256_loadu_ps(kT + d * KT + 8 * kk);
        UNROLL
        for (int h = 0; h < H; h++)
            a[h][d % 4] = madd(F, _mm256_set1_ps(q[h * hd + d]), k, a[h][d % 4]);
    }
    UNROLL
    for (int h = 0; h < H; h++)
        _mm256_storeu_ps(s + h * KT + 8 * kk,
                         _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(a[h][0], a[h][1]), _mm256_add_ps(a[h][2], a[h][3])),
                                       _mm256_set1_ps(scale)));
}

AI void scores_all(bool F, const float *q, int64_t G, const float *kT, int64_t hd, float scale, float *s)
{
    int64_t g = 0;
    for (; g + 2 <= G; g += 2)
        for (int kk = 0; kk < KT / 8; kk++)
            scores_h(F, q + g * hd, 2, kT, hd, scale, s + g * KT, kk);
    if (g < G)
        for (int kk = 0; kk < KT / 8; kk++)
            scores_h(F, q + g * hd, 1, kT, hd, scale, s + g * KT, kk);
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

/* elements [d0, d0 + 32) of H heads (H <= 2): 4 vectors x H accumulators,
 * lanes past hd masked (they load zeros and are not stored) */
AI void axpy_h(bool F, float *o, const float *c, const float *p, int H, const float *v, int64_t vst, int64_t hd,
               int64_t nt, int64_t d0)
{
    __m256i m[4];
    UNROLL
    for (int i = 0; i < 4; i++)
        m[i] = first8(hd - d0 - 8 * i);
    __m256 a[2][4];
    UNROLL
    for (int h = 0; h < H; h++) {
        const __m256 ch = _mm256_set1_ps(c[h]);
        UNROLL
        for (int i = 0; i < 4; i++)
            a[h][i] = _mm256_mul_ps(_mm256_maskload_ps(o + h * hd + d0 + 8 * i, m[i]), ch);
    }
    for (int64_t t = 0; t < nt; t++) {
        __m256 x[4];
        UNROLL
        for (int i = 0; i < 4; i++)
            x[i] = _mm256_maskload_ps(v + t * vst + d0 + 8 * i, m[i]);
        UNROLL
        for (int h = 0; h < H; h++) {
            const __m256 pb = _mm256_set1_ps(p[h * KT + t]);
            UNROLL
            for (int i = 0; i < 4; i++)
                a[h][i] = madd(F, pb, x[i], a[h][i]);
        }
    }
    UNROLL
    for (int h = 0; h < H; h++)
        UNROLL
    for (int i = 0; i < 4; i++)
        _mm256_maskstore_ps(o + h * hd + d0 + 8 * i, m[i], a[h][i]);
}

AI void axpy_all(bool F, float *o, const float *c, const float *p, int64_t G, const float *v, int64_t vst, int64_t hd,
                 int64_t nt)
{
    for (int64_t d0 = 0; d0 < hd; d0 += 32) {
        int64_t g = 0;
        for (; g + 2 <= G; g += 2)
            axpy_h(F, o + g * hd, c + g, p + g * KT, 2, v, vst, hd, nt, d0);
        if (g < G)
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

void kern_avx2_kv_fill(kern_ops *o)
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
