/* kern_ref: scalar reference kernels, one dequantize and one dot per type.
 * Plain C, float accumulation in element order; the truth the SIMD kernels
 * are tested against. Block layouts follow the public GGUF/ggml formats. */
#include "kern.h"

#include "../../quant/dequant.h"

#include "../../base/fp16.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* ---- F32 ---- */
// sum_i w[i] * x[i]   (w may be unaligned: loads via memcpy)
static float dot_f32(const void *w, const float *x, int64_t n)
{
    const unsigned char *p = w;
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float a;
        memcpy(&a, p + 4 * i, 4);
        s += a * x[i];
    }
    return s;
}

/* ---- F16 ---- */
// sum_i half(w[i]) * x[i]
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
// sum_i bf16(w[i]) * x[i]
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

/* Generates, from the block format's dequantizer (quant/dequant.c; QK
 * elements in BYTES bytes per block):
 *   dot_NAME: sum_i dequant(w)[i] * x[i], float, in element order, so dot is
 *   by construction consistent with dequant. */
#define REF_BLOCKED(NAME, QK, BYTES)                                                  \
    static float dot_##NAME(const void *w, const float *x, int64_t n)                \
    {                                                                                \
        const unsigned char *p = w;                                                  \
        float buf[QK];                                                               \
        float s = 0.0f;                                                              \
        for (int64_t i = 0; i < n / (QK); i++) {                                     \
            dequant_##NAME(p + i * (BYTES), buf, (QK));                              \
            const float *xb = x + i * (QK);                                          \
            for (int j = 0; j < (QK); j++)                                           \
                s += buf[j] * xb[j];                                                 \
        }                                                                            \
        return s;                                                                    \
    }

// dot = sum_i dequant(W)[i] x[i], q4_0 blocks
REF_BLOCKED(q4_0, 32, 18)
// dot = sum_i dequant(W)[i] x[i], q4_1 blocks
REF_BLOCKED(q4_1, 32, 20)
// dot = sum_i dequant(W)[i] x[i], q5_0 blocks
REF_BLOCKED(q5_0, 32, 22)
// dot = sum_i dequant(W)[i] x[i], q5_1 blocks
REF_BLOCKED(q5_1, 32, 24)
// dot = sum_i dequant(W)[i] x[i], q8_0 blocks
REF_BLOCKED(q8_0, 32, 34)
// dot = sum_i dequant(W)[i] x[i], q2_k super-blocks
REF_BLOCKED(q2_k, QK_K, 84)
// dot = sum_i dequant(W)[i] x[i], q3_k super-blocks
REF_BLOCKED(q3_k, QK_K, 110)
// dot = sum_i dequant(W)[i] x[i], q4_k super-blocks
REF_BLOCKED(q4_k, QK_K, 144)
// dot = sum_i dequant(W)[i] x[i], q5_k super-blocks
REF_BLOCKED(q5_k, QK_K, 176)
// dot = sum_i dequant(W)[i] x[i], q6_k super-blocks
REF_BLOCKED(q6_k, QK_K, 210)
// dot = sum_i dequant(W)[i] x[i], q8_k super-blocks
REF_BLOCKED(q8_k, QK_K, 292)

/* ---- Activation formats (x side of the gemm) ---- */

/* The scale of a block: d = amax / 127 and its inverse (0 for an all-zero block). */
static void q8_scale(const float *x, int n, float *d, float *id)
{
    float amax = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax)
            amax = a;
    }
    *d = amax / 127.0f;
    *id = *d != 0.0f ? 1.0f / *d : 0.0f;
}

/* One quantized element: nearest-even(x * id), which |x * id| <= 127 keeps in range. */
static int8_t q8_elem(float x, float id) { return (int8_t)nearbyintf(x * id); }

// dst[k/32] = q8_32(x[k])
static void quant_x_q8_32(const float *x, void *dst, int64_t k)
{
    kx_q8_32 *b = dst;
    for (int64_t i = 0; i < k / 32; i++, x += 32) {
        float id;
        q8_scale(x, 32, &b[i].d, &id);
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) {
            b[i].qs[j] = q8_elem(x[j], id);
            sum += b[i].qs[j];
        }
        b[i].sum = sum;
    }
}

// dst[k/256] = q8_k(x[k])
static void quant_x_q8_k(const float *x, void *dst, int64_t k)
{
    kx_q8_k *b = dst;
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        float id;
        q8_scale(x, QK_K, &b[i].d, &id);
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 16 * g; j < 16 * g + 16; j++) {
                b[i].qs[j] = q8_elem(x[j], id);
                s += b[i].qs[j];
            }
            b[i].bsums[g] = (int16_t)s;
        }
    }
}

// dst[k] = x[k]
static void quant_x_f32(const float *x, void *dst, int64_t k) { memcpy(dst, x, (size_t)k * sizeof(float)); }

/* xf[k] = the values an x row in fmt stands for. */
static void x_to_float(uint32_t fmt, const void *X, float *xf, int64_t k)
{
    if (fmt == KX_Q8_32) {
        const kx_q8_32 *b = X;
        for (int64_t i = 0; i < k / 32; i++)
            for (int j = 0; j < 32; j++)
                xf[32 * i + j] = b[i].d * (float)b[i].qs[j];
    } else if (fmt == KX_Q8_K) {
        const kx_q8_k *b = X;
        for (int64_t i = 0; i < k / QK_K; i++)
            for (int j = 0; j < QK_K; j++)
                xf[QK_K * i + j] = b[i].d * (float)b[i].qs[j];
    } else {
        memcpy(xf, X, (size_t)k * sizeof(float));
    }
}

/* Reference gemm, one generator per type:
 * float weights (x format F32): out = the type's dot (float, element order);
 * quantized weights: the row is dequantized, x is expanded from its 8-bit
 * format, and the products are summed in double, so the reference carries
 * only the rounding of the final float.
 * out[c * ldo + r] = W[r, 0..k) . X[c, 0..k) */
static void gemm_ref(uint32_t type, const void *W, uint64_t row_bytes, const void *X, uint64_t x_bytes,
                     float *out, int64_t ldo, int64_t k, int64_t nr, int64_t nc)
{
    const kern_ops *o = kern_ref_ops();
    uint32_t fmt = kern_xfmt(type);
    const unsigned char *w = W, *xp = X;
    if (fmt == KX_F32) {
        for (int64_t c = 0; c < nc; c++)
            for (int64_t r = 0; r < nr; r++)
                out[c * ldo + r] = o->dot[type](w + (uint64_t)r * row_bytes,
                                                (const float *)(xp + (uint64_t)c * x_bytes), k);
        return;
    }
    /* small rows on the stack; larger ones in a bounded loop over chunks */
    enum { CH = 4096 };
    float wf[CH], xf[CH];
    const ttype_traits *tr = ttype_get(type);
    int64_t chunk = CH - CH % tr->blck;
    for (int64_t c = 0; c < nc; c++) {
        for (int64_t r = 0; r < nr; r++) {
            double acc = 0.0;
            for (int64_t k0 = 0; k0 < k; k0 += chunk) {
                int64_t n = k - k0 < chunk ? k - k0 : chunk;
                o->dequant[type](w + (uint64_t)r * row_bytes + (uint64_t)(k0 / tr->blck) * (uint64_t)tr->size, wf, n);
                /* x blocks: 32 or 256 elements; chunk is a multiple of both */
                uint64_t xoff = fmt == KX_Q8_32 ? (uint64_t)(k0 / 32) * sizeof(kx_q8_32)
                                                : (uint64_t)(k0 / QK_K) * sizeof(kx_q8_k);
                x_to_float(fmt, xp + (uint64_t)c * x_bytes + xoff, xf, n);
                for (int64_t i = 0; i < n; i++)
                    acc += (double)wf[i] * (double)xf[i];
            }
            out[c * ldo + r] = (float)acc;
        }
    }
}

#define GEMM_REF(NAME, TYPE)                                                                            \
    static void gemm_##NAME(const void *W, uint64_t row_bytes, const void *X, uint64_t x_bytes,       \
                            float *out, int64_t ldo, int64_t k, int64_t nr, int64_t nc)               \
    {                                                                                                 \
        gemm_ref(TYPE, W, row_bytes, X, x_bytes, out, ldo, k, nr, nc);                                \
    }
GEMM_REF(f32, SOV_F32)
GEMM_REF(f16, SOV_F16)
GEMM_REF(bf16, SOV_BF16)
GEMM_REF(q4_0, SOV_Q4_0)
GEMM_REF(q4_1, SOV_Q4_1)
GEMM_REF(q5_0, SOV_Q5_0)
GEMM_REF(q5_1, SOV_Q5_1)
GEMM_REF(q8_0, SOV_Q8_0)
GEMM_REF(q2_k, SOV_Q2_K)
GEMM_REF(q3_k, SOV_Q3_K)
GEMM_REF(q4_k, SOV_Q4_K)
GEMM_REF(q5_k, SOV_Q5_K)
GEMM_REF(q6_k, SOV_Q6_K)
GEMM_REF(q8_k, SOV_Q8_K)

/* ob = the plain bytes of the block of row `lane` whose r16 form is at blk
 * (kern_r16_form: f16 fields, then words; Q8_0 codes back to signed) */
static void r16_block(uint32_t type, const unsigned char *blk, int lane, unsigned char *ob)
{
    int nf, fo[2], w0, nw;
    unsigned char flip;
    kern_r16_form(type, &nf, fo, &w0, &nw, &flip);
    for (int f = 0; f < nf; f++)
        memcpy(ob + fo[f], blk + 32 * f + 2 * lane, 2);
    for (int t = 0; t < nw; t++)
        for (int j = 0; j < 4; j++)
            ob[w0 + 4 * t + j] = blk[32 * nf + 64 * t + 4 * lane + j] ^ flip;
}

/* one block's step of kern.h's r16 sequence (ob the plain block, x its x block) */
static float r16_step(uint32_t type, const unsigned char *ob, const void *xv, float acc)
{
    uint16_t h;
    memcpy(&h, type == SOV_Q6_K ? ob + 208 : ob, 2);
    const float d = fp16_to_f32(h);
    if (type == SOV_Q6_K) { /* ql[128] qh[64] scales[16] d */
        const kx_q8_k *x = xv;
        int32_t I = 0;
        for (int s = 0; s < 16; s++) {
            int dot = 0;
            for (int e = 16 * s; e < 16 * s + 16; e++) { /* e = 128n + 32m + l */
                int n = e / 128, m = e % 128 / 32, l = e % 32;
                int lo = (ob[64 * n + 32 * (m % 2) + l] >> (4 * (m / 2))) & 15;
                int hi = (ob[128 + 32 * n + l] >> (2 * m)) & 3;
                dot += (lo + 16 * hi - 32) * x->qs[e];
            }
            I += (int8_t)ob[192 + s] * dot;
        }
        return fmaf((float)I, d * x->d, acc);
    }
    if (type == SOV_Q4_K) {
        const kx_q8_k *x = xv;
        memcpy(&h, ob + 2, 2);
        const float dmin = fp16_to_f32(h);
        int32_t I = 0, M = 0;
        for (int s = 0; s < 8; s++) {
            int sc, m, dot = 0;
            dequant_k4_scale_min(ob + 4, s, &sc, &m);
            for (int l = 0; l < 32; l++) /* sub-block s: codes (qs[32(s/2) + l] >> 4(s%2)) & 15 */
                dot += ((ob[16 + 32 * (s / 2) + l] >> (4 * (s % 2))) & 15) * x->qs[32 * s + l];
            I += sc * dot;
            M += m * (x->bsums[2 * s] + x->bsums[2 * s + 1]);
        }
        acc = fmaf((float)(16 * I), (d * x->d) * 0.0625f, acc);
        return fmaf((float)M, -(dmin * x->d), acc);
    }
    const kx_q8_32 *x = xv;
    int32_t i = 0;
    for (int e = 0; e < 32; e++) {
        int q = type == SOV_Q8_0 ? (int8_t)ob[2 + e]
                                 : (e < 16 ? ob[2 + e] & 15 : ob[2 + e - 16] >> 4) - 8; /* element e's code */
        i += q * x->qs[e];
    }
    return fmaf((float)i, d * x->d, acc);
}

/* Reference gemm over the r16 layout (kern.h), its sequence step by step.
 * out[c * ldo + r] = W[r, 0..k) . X[c, 0..k)   (W at a 16-row group, nr a multiple of 16) */
static void gemm_r16_ref(uint32_t type, const void *W, uint64_t row_bytes, const void *X, uint64_t x_bytes,
                         float *out, int64_t ldo, int64_t k, int64_t nr, int64_t nc)
{
    const ttype_traits *tr = ttype_get(type);
    const uint64_t S = 16 * (uint64_t)tr->size, xs = kern_xfmt(type) == KX_Q8_K ? sizeof(kx_q8_k) : sizeof(kx_q8_32);
    const int64_t nb = k / tr->blck;
    unsigned char ob[256];
    for (int64_t c = 0; c < nc; c++) {
        const unsigned char *x = (const unsigned char *)X + (uint64_t)c * x_bytes;
        for (int64_t r = 0; r < nr; r++) {
            const unsigned char *grp = (const unsigned char *)W + (uint64_t)(r / 16) * 16 * row_bytes;
            float acc = 0.0f;
            for (int64_t b = 0; b < nb; b++) {
                r16_block(type, grp + (uint64_t)b * S, (int)(r % 16), ob);
                acc = r16_step(type, ob, x + (uint64_t)b * xs, acc);
            }
            out[c * ldo + r] = acc;
        }
    }
}

#define GEMM_R16_REF(NAME, TYPE)                                                                        \
    static void gemm_r16_##NAME(const void *W, uint64_t row_bytes, const void *X, uint64_t x_bytes,   \
                                float *out, int64_t ldo, int64_t k, int64_t nr, int64_t nc)           \
    {                                                                                                 \
        gemm_r16_ref(TYPE, W, row_bytes, X, x_bytes, out, ldo, k, nr, nc);                            \
    }
// out[c*ldo + r] = W[r,k] . X[c,k], W q4_0 in the r16 layout, X q8_32
GEMM_R16_REF(q4_0, SOV_Q4_0)
// out[c*ldo + r] = W[r,k] . X[c,k], W q8_0 in the r16 layout, X q8_32
GEMM_R16_REF(q8_0, SOV_Q8_0)
// out[c*ldo + r] = W[r,k] . X[c,k], W q4_k in the r16 layout, X q8_k
GEMM_R16_REF(q4_k, SOV_Q4_K)
// out[c*ldo + r] = W[r,k] . X[c,k], W q6_k in the r16 layout, X q8_k
GEMM_R16_REF(q6_k, SOV_Q6_K)

/* ---- KV cache (kern.h: the layouts and the q8_0 rule) ---- */

/* chunks of KERN_KV_CHUNK elements in a head of hd (the last may be shorter) */
static int64_t kv_nch(int64_t hd) { return (hd + KERN_KV_CHUNK - 1) / KERN_KV_CHUNK; }

static float half_at(const uint16_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return fp16_to_f32(h);
}

// dst[i * es] = half(x[i]) for i < n_head * hd
static void kv_put_f16(const float *x, int64_t n_head, int64_t hd, void *dst, int64_t es, uint16_t *ds, int64_t ss)
{
    (void)ds, (void)ss;
    unsigned char *o = dst;
    for (int64_t i = 0; i < n_head * hd; i++) {
        uint16_t h = f32_to_fp16(x[i]);
        memcpy(o + 2 * i * es, &h, 2);
    }
}

/* The f16 scale of a q8_0 chunk with max |x| = amax: half(amax / 127),
 * saturated at the largest finite half (65504) */
static uint16_t kv_q8_scale(float amax)
{
    float d = amax / 127.0f;
    return d < 65504.0f ? f32_to_fp16(d) : 0x7bff;
}

// per chunk j of x[n_head * hd]: ds[j * ss] = half(amax / 127), dst[i * es] = q(x[i]) (kern.h)
static void kv_put_q8_0(const float *x, int64_t n_head, int64_t hd, void *dst, int64_t es, uint16_t *ds, int64_t ss)
{
    int8_t *o = dst;
    const int64_t nch = kv_nch(hd);
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t c = 0; c < nch; c++) {
            const int64_t i0 = h * hd + c * KERN_KV_CHUNK;
            const int64_t n = hd - c * KERN_KV_CHUNK < KERN_KV_CHUNK ? hd - c * KERN_KV_CHUNK : KERN_KV_CHUNK;
            float amax = 0.0f;
            for (int64_t i = 0; i < n; i++) {
                float a = fabsf(x[i0 + i]);
                if (a > amax)
                    amax = a;
            }
            uint16_t s = kv_q8_scale(amax);
            float sf = fp16_to_f32(s), id = sf != 0.0f ? 1.0f / sf : 0.0f;
            memcpy(ds + (h * nch + c) * ss, &s, 2);
            for (int64_t i = 0; i < n; i++)
                o[(i0 + i) * es] = (int8_t)nearbyintf(fminf(fmaxf(x[i0 + i] * id, -127.0f), 127.0f));
        }
}

// dst[d*32 + t] = half(k[d*32 + t]) for d < hd, t < 32
static void kv_k_f16(const void *k, const uint16_t *ks, int64_t hd, float *dst)
{
    (void)ks;
    for (int64_t i = 0; i < hd * KERN_KV_TILE; i++)
        dst[i] = half_at((const uint16_t *)k + i);
}

// dst[d*32 + t] = k[d*32 + t] * half(ks[(d/32)*32 + t]) for d < hd, t < 32
static void kv_k_q8_0(const void *k, const uint16_t *ks, int64_t hd, float *dst)
{
    const int8_t *q = k;
    for (int64_t d = 0; d < hd; d++)
        for (int t = 0; t < KERN_KV_TILE; t++)
            dst[d * KERN_KV_TILE + t] =
                (float)q[d * KERN_KV_TILE + t] * half_at(ks + d / KERN_KV_CHUNK * KERN_KV_TILE + t);
}

// dst[t*hd + d] = half(v[t*vst + d]) for t < nt, d < hd
static void kv_v_f16(const void *v, int64_t vst, const uint16_t *vs, int64_t sst, int64_t hd, int64_t nt, float *dst)
{
    (void)vs, (void)sst;
    for (int64_t t = 0; t < nt; t++)
        for (int64_t d = 0; d < hd; d++)
            dst[t * hd + d] = half_at((const uint16_t *)v + t * vst + d);
}

// dst[t*hd + d] = v[t*vst + d] * half(vs[t*sst + d/32]) for t < nt, d < hd
static void kv_v_q8_0(const void *v, int64_t vst, const uint16_t *vs, int64_t sst, int64_t hd, int64_t nt,
                      float *dst)
{
    const int8_t *q = v;
    for (int64_t t = 0; t < nt; t++)
        for (int64_t d = 0; d < hd; d++)
            dst[t * hd + d] = (float)q[t * vst + d] * half_at(vs + t * sst + d / KERN_KV_CHUNK);
}

/* the two attention steps (kern.h), fused (F) or in separate roundings */
static void scores_ref(bool F, const float *q, int64_t G, const float *kT, int64_t hd, float scale, float *s)
{
    for (int64_t g = 0; g < G; g++)
        for (int t = 0; t < KERN_KV_TILE; t++) {
            float a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int64_t d = 0; d < hd; d++) {
                const float x = q[g * hd + d], k = kT[d * KERN_KV_TILE + t];
                a[d % 4] = F ? fmaf(x, k, a[d % 4]) : a[d % 4] + x * k;
            }
            s[g * KERN_KV_TILE + t] = ((a[0] + a[1]) + (a[2] + a[3])) * scale;
        }
}

static void axpy_ref(bool F, float *o, const float *c, const float *p, int64_t G, const float *v, int64_t vst,
                     int64_t hd, int64_t nt)
{
    for (int64_t g = 0; g < G; g++)
        for (int64_t d = 0; d < hd; d++) {
            float x = o[g * hd + d] * c[g];
            for (int64_t t = 0; t < nt; t++) {
                const float w = p[g * KERN_KV_TILE + t], y = v[t * vst + d];
                x = F ? fmaf(w, y, x) : x + w * y;
            }
            o[g * hd + d] = x;
        }
}

// s[g*32 + t] = ((a0 + a1) + (a2 + a3)) * scale, a_r = a_r + q[g*hd + d] * kT[d*32 + t] over d = r mod 4
static void attn_scores(const float *q, int64_t G, const float *kT, int64_t hd, float scale, float *s)
{
    scores_ref(false, q, G, kT, hd, scale, s);
}

// as attn_scores with a_r = fma(q[g*hd + d], kT[d*32 + t], a_r)
static void attn_scores_fma(const float *q, int64_t G, const float *kT, int64_t hd, float scale, float *s)
{
    scores_ref(true, q, G, kT, hd, scale, s);
}

// o[g*hd + d] = o[g*hd + d] * c[g], then + p[g*32 + t] * v[t*vst + d] for t < nt in order
static void attn_axpy(float *o, const float *c, const float *p, int64_t G, const float *v, int64_t vst, int64_t hd,
                      int64_t nt)
{
    axpy_ref(false, o, c, p, G, v, vst, hd, nt);
}

// as attn_axpy with x = fma(p[g*32 + t], v[t*vst + d], x)
static void attn_axpy_fma(float *o, const float *c, const float *p, int64_t G, const float *v, int64_t vst,
                          int64_t hd, int64_t nt)
{
    axpy_ref(true, o, c, p, G, v, vst, hd, nt);
}

static const kern_ops ref_ops = {
    .name = "ref",
    .dequant = {
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
    },
    .dot = {
        [SOV_F32] = dot_f32,
        [SOV_F16] = dot_f16,
        [SOV_BF16] = dot_bf16,
        [SOV_Q4_0] = dot_q4_0,
        [SOV_Q4_1] = dot_q4_1,
        [SOV_Q5_0] = dot_q5_0,
        [SOV_Q5_1] = dot_q5_1,
        [SOV_Q8_0] = dot_q8_0,
        [SOV_Q2_K] = dot_q2_k,
        [SOV_Q3_K] = dot_q3_k,
        [SOV_Q4_K] = dot_q4_k,
        [SOV_Q5_K] = dot_q5_k,
        [SOV_Q6_K] = dot_q6_k,
        [SOV_Q8_K] = dot_q8_k,
    },
    .quant_x = {
        [KX_F32] = quant_x_f32,
        [KX_Q8_32] = quant_x_q8_32,
        [KX_Q8_K] = quant_x_q8_k,
    },
    .gemm = {
        [SOV_F32] = gemm_f32,
        [SOV_F16] = gemm_f16,
        [SOV_BF16] = gemm_bf16,
        [SOV_Q4_0] = gemm_q4_0,
        [SOV_Q4_1] = gemm_q4_1,
        [SOV_Q5_0] = gemm_q5_0,
        [SOV_Q5_1] = gemm_q5_1,
        [SOV_Q8_0] = gemm_q8_0,
        [SOV_Q2_K] = gemm_q2_k,
        [SOV_Q3_K] = gemm_q3_k,
        [SOV_Q4_K] = gemm_q4_k,
        [SOV_Q5_K] = gemm_q5_k,
        [SOV_Q6_K] = gemm_q6_k,
        [SOV_Q8_K] = gemm_q8_k,
    },
    .gemm_r16 = {
        [SOV_Q4_0] = gemm_r16_q4_0,
        [SOV_Q8_0] = gemm_r16_q8_0,
        [SOV_Q4_K] = gemm_r16_q4_k,
        [SOV_Q6_K] = gemm_r16_q6_k,
    },
    .kv_put_f16 = kv_put_f16,
    .kv_put_q8_0 = kv_put_q8_0,
    .kv_k_f16 = kv_k_f16,
    .kv_k_q8_0 = kv_k_q8_0,
    .kv_v_f16 = kv_v_f16,
    .kv_v_q8_0 = kv_v_q8_0,
    .attn_scores = attn_scores,
    .attn_scores_fma = attn_scores_fma,
    .attn_axpy = attn_axpy,
    .attn_axpy_fma = attn_axpy_fma,
};

const kern_ops *kern_ref_ops(void) { return &ref_ops; }
