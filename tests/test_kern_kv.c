/* KV cache kernels (kern.h "KV cache tiles"), for every table this CPU runs
 * (ref, avx2, avx512):
 *  (a) kv_put_f16 / kv_put_q8_0 give the reference's bytes (codes and
 *      scales, at the element and scale strides asked for, nothing else
 *      written), and the reference follows its definition: f16 is
 *      f32_to_fp16 of each element; q8_0 per chunk of 32 elements of a head
 *      (the last chunk shorter when head_dim is not a multiple of 32) stores
 *      s = half(amax / 127) and codes with |code| <= 127, and a change to one
 *      element changes only its own chunk (never another token's or chunk's
 *      bytes: results cannot depend on batching);
 *  (b) put then decode reproduces x within the format's rounding: f16
 *      |dec - x| <= 2^-11 |x| + 2^-25 (half precision, subnormal halves
 *      below 2^-14); q8_0 |dec - x| <= max(0.5001 s, amax - 127 s): half a
 *      code step (the code is rounded in float against the stored scale s;
 *      1/s and x * (1/s) add < 2^-21 relative), or, where s rounded below
 *      amax / 127 and the code clamped at +-127, the distance to 127 s. For
 *      a normal half s (>= 2^-14, i.e. amax >= 7.8e-3) s <= (1 + 2^-10)
 *      amax / 127 and the clamp moves a value by < 0.07 s, so the bound is
 *      0.5001 s; below that the scale is a subnormal half with fewer bits
 *      (amax < 3.8e-6 gives s = 0: the chunk decodes to zeros);
 *  (c) the decoders kv_k_* (a 32-key tile [hd][32]) and kv_v_* (nt value
 *      rows, strided source) give, in every table, exactly the values of
 *      their definition (half(h), or code * half(s): one float product), bit
 *      for bit, for head sizes 4..128 (tails of every length, chunks of 4, 8,
 *      16 and 32), 1..32 rows, and write nothing past their output;
 *  (d) attn_scores / attn_axpy (products and sums in separate roundings) and
 *      their fused variants give the reference's bits in every table, for
 *      1..9 heads, head sizes 4..128, value rows of the head's width or
 *      wider and 1..32 of them, write nothing past their outputs, and the
 *      reference is within the rounding of its sequence of the float64
 *      value: a score is a chain of ceil(hd / 4) steps of one fma (or a
 *      product and a sum: two roundings), three adds and a multiply, |err|
 *      <= (k (hd / 4 + 1) + 4) 2^-24 sum_d |q_d k_d| |scale| with k = 1
 *      fused, 2 not; an output is one multiply and nt steps, |err| <= (k nt
 *      + 1) 2^-24 (|o c| + sum_t |p_t v_t|) (each rounding at most 2^-24 of
 *      a partial sum bounded by those sums; checked at 1.01 x, plus 1e-30
 *      for subnormal sums). */
#include "t.h"

#include "base/fp16.h"
#include "engine/kern/kern.h"
#include "kern_rand.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const table_names[] = {"ref", "avx2", "avx512"};
static const int hds[] = {4, 8, 16, 40, 64, 80, 96, 128};
#define NHD ((int)(sizeof hds / sizeof hds[0]))

static int64_t nch_of(int64_t hd) { return (hd + 31) / 32; }

/* random row: mostly uniform in [-a, a] with a random per-row magnitude,
 * some exact zeros, a few large values (outliers a quantizer must scale to) */
static void fill_row(float *x, int64_t n)
{
    float a = powf(10.0f, rng_uniform(-3.0f, 2.0f));
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = rng_u64() % 32;
        x[i] = r == 0 ? 0.0f : r == 1 ? 8.0f * a * rng_uniform(-1.0f, 1.0f) : a * rng_uniform(-1.0f, 1.0f);
    }
}

static float half_of(const uint16_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return fp16_to_f32(h);
}

/* (a), (b): put on rows of n_head heads, K-like strides (es 32, ss 32) and
 * V-like (es 1, ss 1); canary bytes around and between the written ones */
static void check_put(const kern_ops *ops)
{
    const kern_ops *ref = kern_ref_ops();
    bool same = true, def = true, round_f16 = true, round_q8 = true, local = true;
    char why[300] = "";
    double worst16 = 0, worst8 = 0;
    for (int hi = 0; hi < NHD; hi++)
        for (int nh = 1; nh <= 3; nh++)
            for (int kstyle = 0; kstyle < 2; kstyle++) {
                const int64_t hd = hds[hi], n = nh * hd, nch = nch_of(hd), es = kstyle ? 32 : 1, ss = es;
                const int64_t cbytes = n * es * 2 + 64, sn = nh * nch * ss + 8; /* codes (2 bytes max), scales */
                float *x = malloc(sizeof(float) * (size_t)n);
                unsigned char *c1 = malloc((size_t)cbytes), *c2 = malloc((size_t)cbytes);
                uint16_t *s1 = malloc(2 * (size_t)sn), *s2 = malloc(2 * (size_t)sn);
                if (!x || !c1 || !c2 || !s1 || !s2) {
                    t_check(false, "kv put setup", "out of memory");
                    return;
                }
                for (int rep = 0; rep < 4; rep++) {
                    fill_row(x, n);
                    /* f16 */
                    memset(c1, 0xa5, (size_t)cbytes), memset(c2, 0xa5, (size_t)cbytes);
                    ref->kv_put_f16(x, nh, hd, c1, es, NULL, 0);
                    ops->kv_put_f16(x, nh, hd, c2, es, NULL, 0);
                    if (same && memcmp(c1, c2, (size_t)cbytes)) {
                        same = false;
                        snprintf(why, sizeof why, "f16 hd %lld heads %d es %lld: bytes differ from ref", (long long)hd,
                                 nh, (long long)es);
                    }
                    for (int64_t i = 0; i < n; i++) {
                        uint16_t h, want = f32_to_fp16(x[i]);
                        memcpy(&h, c1 + 2 * i * es, 2);
                        double e = fabs((double)fp16_to_f32(h) - x[i]), b = 0x1p-11 * fabs(x[i]) + 0x1p-25;
                        worst16 = fmax(worst16, e / b);
                        if (def && h != want) {
                            def = false;
                            snprintf(why, sizeof why, "f16 [%lld] = %04x, f32_to_fp16 %04x", (long long)i, h, want);
                        }
                        if (round_f16 && !(e <= b)) {
                            round_f16 = false;
                            snprintf(why, sizeof why, "f16 %.9g -> %.9g", x[i], fp16_to_f32(h));
                        }
                    }
                    for (int64_t i = 0; i < cbytes && def; i++) /* bytes between the strided codes untouched */
                        if (!(i % (2 * es) < 2 && i / (2 * es) < n) && c1[i] != 0xa5) {
                            def = false;
                            snprintf(why, sizeof why, "f16 es %lld: byte %lld written", (long long)es, (long long)i);
                        }
                    /* q8_0 */
                    memset(c1, 0xa5, (size_t)cbytes), memset(c2, 0xa5, (size_t)cbytes);
                    memset(s1, 0xa5, 2 * (size_t)sn), memset(s2, 0xa5, 2 * (size_t)sn);
                    ref->kv_put_q8_0(x, nh, hd, c1, es, s1, ss);
                    ops->kv_put_q8_0(x, nh, hd, c2, es, s2, ss);
                    if (same && (memcmp(c1, c2, (size_t)cbytes) || memcmp(s1, s2, 2 * (size_t)sn))) {
                        same = false;
                        snprintf(why, sizeof why, "q8_0 hd %lld heads %d es %lld: bytes differ from ref", (long long)hd,
                                 nh, (long long)es);
                    }
                    for (int64_t h = 0; h < nh; h++)
                        for (int64_t c = 0; c < nch; c++) {
                            const int64_t i0 = h * hd + 32 * c, len = hd - 32 * c < 32 ? hd - 32 * c : 32;
                            float amax = 0;
                            for (int64_t i = 0; i < len; i++)
                                amax = fmaxf(amax, fabsf(x[i0 + i]));
                            const uint16_t sh = s1[(h * nch + c) * ss];
                            const float s = fp16_to_f32(sh);
                            if (def && sh != f32_to_fp16(amax / 127.0f)) {
                                def = false;
                                snprintf(why, sizeof why, "q8_0 hd %lld chunk %lld: scale %04x, half(amax/127) %04x",
                                         (long long)hd, (long long)c, sh, f32_to_fp16(amax / 127.0f));
                            }
                            if (round_q8 && s >= 0x1p-14f && !(s <= (1 + 0x1p-10) * amax / 127.0f))
                                round_q8 = false, snprintf(why, sizeof why, "q8_0 scale %g for amax %g", s, amax);
                            const double bound = fmax(0.5001 * s, (double)amax - 127.0 * s);
                            for (int64_t i = 0; i < len; i++) {
                                int q = (int8_t)c1[(i0 + i) * es];
                                double e = fabs((double)((float)q * s) - x[i0 + i]);
                                if (s >= 0x1p-14f)
                                    worst8 = fmax(worst8, e / s);
                                if (round_q8 && (q < -127 || q > 127 || !(e <= bound))) {
                                    round_q8 = false;
                                    snprintf(why, sizeof why, "q8_0 hd %lld: %.9g -> code %d scale %g", (long long)hd,
                                             x[i0 + i], q, s);
                                }
                            }
                        }
                    for (int64_t i = 0; i < cbytes && def; i++)
                        if (!(i % es == 0 && i / es < n) && c1[i] != 0xa5) {
                            def = false;
                            snprintf(why, sizeof why, "q8_0 es %lld: code byte %lld written", (long long)es,
                                     (long long)i);
                        }
                    for (int64_t j = 0; j < sn && def; j++)
                        if (!(j % ss == 0 && j / ss < nh * nch) && s1[j] != 0xa5a5) {
                            def = false;
                            snprintf(why, sizeof why, "q8_0 ss %lld: scale slot %lld written", (long long)ss,
                                     (long long)j);
                        }
                    /* locality: change one element; only its chunk's bytes may change */
                    int64_t at = (int64_t)(rng_u64() % (uint64_t)n);
                    x[at] = x[at] * -3.0f + 1.0f;
                    ops->kv_put_q8_0(x, nh, hd, c2, es, s2, ss);
                    const int64_t ch = at / hd * nch + at % hd / 32;
                    for (int64_t i = 0; i < n && local; i++) {
                        int64_t ci = i / hd * nch + i % hd / 32;
                        if (ci != ch && c1[i * es] != c2[i * es]) {
                            local = false;
                            snprintf(why, sizeof why, "q8_0 hd %lld: element %lld changed element %lld", (long long)hd,
                                     (long long)at, (long long)i);
                        }
                    }
                    for (int64_t j = 0; j < nh * nch && local; j++)
                        if (j != ch && s1[j * ss] != s2[j * ss]) {
                            local = false;
                            snprintf(why, sizeof why, "q8_0: element %lld changed the scale of chunk %lld",
                                     (long long)at, (long long)j);
                        }
                }
                free(x), free(c1), free(c2), free(s1), free(s2);
            }
    char name[200];
    snprintf(name, sizeof name, "%s kv_put f16 / q8_0: the reference's bytes, strided", ops->name);
    t_check(same, name, "%s", why);
    if (ops == ref) {
        t_check(def, "ref kv_put: f16 = f32_to_fp16, q8_0 scale = half(amax/127), nothing else written", "%s", why);
        snprintf(name, sizeof name, "ref kv_put f16 within 2^-11 |x| + 2^-25 (worst %.3f of the bound)", worst16);
        t_check(round_f16, name, "%s", why);
        snprintf(name, sizeof name,
                 "ref kv_put q8_0 within max(0.5001 s, amax - 127 s), |code| <= 127 (worst %.4f s for normal s)",
                 worst8);
        t_check(round_q8, name, "%s", why);
        t_check(local, "ref kv_put q8_0: one element changes only its own chunk", "%s", why);
    }
}

/* q8_0 by hand: one chunk of 8 (head_dim 8) and a head of 40 (chunks 32 + 8) */
static void check_put_hand(void)
{
    const kern_ops *ref = kern_ref_ops();
    float x[8] = {1.27f, -0.635f, 0.0f, 0.01f, -1.27f, 0.3175f, 0.005f, -0.005f};
    int8_t q[8];
    uint16_t s;
    ref->kv_put_q8_0(x, 1, 8, q, 1, &s, 1);
    /* d = 0.01 -> half 0x211f = 0.010002136, codes x / s rounded */
    const float sf = fp16_to_f32(f32_to_fp16(0.01f));
    bool ok = s == f32_to_fp16(0.01f);
    for (int i = 0; i < 8; i++)
        ok = ok && q[i] == (int8_t)nearbyintf(fminf(fmaxf(x[i] * (1.0f / sf), -127.0f), 127.0f));
    ok = ok && q[0] == 127 && q[1] == -63 && q[2] == 0 && q[3] == 1 && q[4] == -127 && q[5] == 32;
    t_check(ok, "ref kv_put q8_0 by hand: head of 8, scale half(0.01), codes 127 -63 0 1 -127 32",
            "s %04x codes %d %d %d %d %d %d", s, q[0], q[1], q[2], q[3], q[4], q[5]);
    float y[40];
    for (int i = 0; i < 40; i++)
        y[i] = i < 32 ? 0.5f : 2.54f;
    int8_t r[40];
    uint16_t t[2];
    ref->kv_put_q8_0(y, 1, 40, r, 1, t, 1);
    ok = fp16_to_f32(t[0]) == fp16_to_f32(f32_to_fp16(0.5f / 127.0f)) &&
         fp16_to_f32(t[1]) == fp16_to_f32(f32_to_fp16(0.02f));
    for (int i = 0; i < 40; i++)
        ok = ok && r[i] == 127;
    t_check(ok, "ref kv_put q8_0 by hand: head of 40 = chunks of 32 and 8, each its own scale", "scales %04x %04x",
            t[0], t[1]);
    /* an all-zero chunk: scale 0, codes 0; huge values: the scale saturates at 65504 */
    float z[32] = {0}, big[32];
    for (int i = 0; i < 32; i++)
        big[i] = i == 3 ? -1e30f : 1e7f;
    int8_t zq[32], bq[32];
    uint16_t zs, bs;
    ref->kv_put_q8_0(z, 1, 32, zq, 1, &zs, 1);
    ref->kv_put_q8_0(big, 1, 32, bq, 1, &bs, 1);
    ok = zs == 0 && bs == 0x7bff && bq[3] == -127 && bq[0] == 127; /* 1e7 / 65504 = 152.7: clamped */
    for (int i = 0; i < 32; i++)
        ok = ok && zq[i] == 0;
    t_check(ok, "ref kv_put q8_0: zero chunk -> scale 0; scale saturates at 65504", "zs %04x bs %04x bq %d %d", zs, bs,
            bq[0], bq[3]);
}

/* (c) decoders against their definition, bit for bit, canaries after the output */
static void check_decode(const kern_ops *ops)
{
    bool ok = true;
    char why[300] = "";
    for (int hi = 0; hi < NHD && ok; hi++) {
        const int64_t hd = hds[hi], nch = nch_of(hd), vst = hd + 5, sst = nch + 3;
        uint16_t *kh = malloc(2 * (size_t)(hd * 32)), *ks = malloc(2 * (size_t)(nch * 32));
        int8_t *kq = malloc((size_t)(hd * 32)), *vq = malloc((size_t)(32 * vst));
        uint16_t *vh = malloc(2 * (size_t)(32 * vst)), *vs = malloc(2 * (size_t)(32 * sst));
        float *dst = malloc(sizeof(float) * (size_t)(hd * 32 + 16));
        if (!kh || !ks || !kq || !vq || !vh || !vs || !dst) {
            t_check(false, "kv decode setup", "out of memory");
            return;
        }
        for (int64_t i = 0; i < hd * 32; i++) {
            kh[i] = f32_to_fp16(rng_uniform(-70000.0f, 70000.0f) * powf(2.0f, -(float)(rng_u64() % 40)));
            kq[i] = (int8_t)(rng_u64() % 255 - 127);
        }
        for (int64_t i = 0; i < nch * 32; i++)
            ks[i] = f32_to_fp16(rng_scale() * powf(2.0f, -(float)(rng_u64() % 20)));
        for (int64_t i = 0; i < 32 * vst; i++) {
            vh[i] = f32_to_fp16(rng_uniform(-4.0f, 4.0f) * powf(2.0f, -(float)(rng_u64() % 30)));
            vq[i] = (int8_t)(rng_u64() % 255 - 127);
        }
        for (int64_t i = 0; i < 32 * sst; i++)
            vs[i] = f32_to_fp16(rng_scale());
        /* K tiles */
        for (int ty = 0; ty < 2 && ok; ty++) {
            for (int64_t i = 0; i < hd * 32 + 16; i++)
                dst[i] = 12345.0f;
            if (ty == 0)
                ops->kv_k_f16(kh, NULL, hd, dst);
            else
                ops->kv_k_q8_0(kq, ks, hd, dst);
            for (int64_t d = 0; d < hd && ok; d++)
                for (int t = 0; t < 32 && ok; t++) {
                    float want =
                        ty == 0 ? half_of(kh + d * 32 + t) : (float)kq[d * 32 + t] * half_of(ks + d / 32 * 32 + t);
                    if (memcmp(&want, &dst[d * 32 + t], 4)) {
                        ok = false;
                        snprintf(why, sizeof why, "kv_k_%s hd %lld: [%lld][%d] %.9g, want %.9g", ty ? "q8_0" : "f16",
                                 (long long)hd, (long long)d, t, dst[d * 32 + t], want);
                    }
                }
            for (int i = 0; i < 16 && ok; i++)
                if (dst[hd * 32 + i] != 12345.0f)
                    ok = false, snprintf(why, sizeof why, "kv_k hd %lld wrote past the tile", (long long)hd);
        }
        /* V rows */
        const int nts[] = {1, 5, 17, 32};
        for (int ni = 0; ni < 4 && ok; ni++)
            for (int ty = 0; ty < 2 && ok; ty++) {
                const int64_t nt = nts[ni];
                for (int64_t i = 0; i < hd * 32 + 16; i++)
                    dst[i] = 12345.0f;
                if (ty == 0)
                    ops->kv_v_f16(vh, vst, NULL, 0, hd, nt, dst);
                else
                    ops->kv_v_q8_0(vq, vst, vs, sst, hd, nt, dst);
                for (int64_t t = 0; t < nt && ok; t++)
                    for (int64_t d = 0; d < hd && ok; d++) {
                        float want = ty == 0 ? half_of(vh + t * vst + d)
                                             : (float)vq[t * vst + d] * half_of(vs + t * sst + d / 32);
                        if (memcmp(&want, &dst[t * hd + d], 4)) {
                            ok = false;
                            snprintf(why, sizeof why, "kv_v_%s hd %lld nt %lld: [%lld][%lld] %.9g, want %.9g",
                                     ty ? "q8_0" : "f16", (long long)hd, (long long)nt, (long long)t, (long long)d,
                                     dst[t * hd + d], want);
                        }
                    }
                for (int64_t i = nt * hd; i < hd * 32 + 16 && ok; i++)
                    if (dst[i] != 12345.0f)
                        ok = false, snprintf(why, sizeof why, "kv_v hd %lld nt %lld wrote past its rows", (long long)hd,
                                             (long long)nt);
            }
        free(kh), free(ks), free(kq), free(vq), free(vh), free(vs), free(dst);
    }
    char name[200];
    snprintf(name, sizeof name, "%s kv_k / kv_v f16 and q8_0: the definition's bits (hd 4..128, 1..32 rows)",
             ops->name);
    t_check(ok, name, "%s", why);
}

/* (d) */
static void check_attn_kernels(const kern_ops *ops)
{
    const kern_ops *ref = kern_ref_ops();
    bool same = true, bounded = true, canary = true;
    char why[300] = "";
    double worst_s = 0, worst_o = 0;
    for (int hi = 0; hi < NHD; hi++)
        for (int gi = 0; gi < 14; gi++) {
            const int G = (const int[]){1, 2, 3, 4, 5, 8, 9}[gi % 7];
            const bool F = gi >= 7;                              /* the fused variant */
            const int64_t hd = hds[hi], vst = hd + 3 * (gi % 2); /* value rows wider than the head, or not */
            float *q = malloc(sizeof(float) * (size_t)(G * hd)), *kT = malloc(sizeof(float) * (size_t)(hd * 32));
            float *v = malloc(sizeof(float) * (size_t)(32 * vst)), *p = malloc(sizeof(float) * (size_t)(G * 32));
            float *s1 = malloc(sizeof(float) * (size_t)(G * 32 + 16)),
                  *s2 = malloc(sizeof(float) * (size_t)(G * 32 + 16));
            float *o0 = malloc(sizeof(float) * (size_t)(G * hd)), *o1 = malloc(sizeof(float) * (size_t)(G * hd + 16));
            float *o2 = malloc(sizeof(float) * (size_t)(G * hd + 16)), c[9];
            if (!q || !kT || !v || !p || !s1 || !s2 || !o0 || !o1 || !o2) {
                t_check(false, "attn kernels setup", "out of memory");
                return;
            }
            for (int64_t i = 0; i < G * hd; i++)
                q[i] = rng_uniform(-3.0f, 3.0f), o0[i] = rng_uniform(-1.0f, 1.0f);
            for (int64_t i = 0; i < hd * 32; i++)
                kT[i] = rng_uniform(-1.0f, 1.0f);
            for (int64_t i = 0; i < 32 * vst; i++)
                v[i] = rng_uniform(-1.0f, 1.0f);
            for (int64_t i = 0; i < G * 32; i++)
                p[i] = rng_uniform(0.0f, 1.0f);
            for (int g = 0; g < G; g++)
                c[g] = rng_uniform(0.0f, 1.0f);
            const float scale = 1.0f / sqrtf((float)hd);
            for (int64_t i = 0; i < G * 32 + 16; i++)
                s1[i] = s2[i] = 777.0f;
            (F ? ref->attn_scores_fma : ref->attn_scores)(q, G, kT, hd, scale, s1);
            (F ? ops->attn_scores_fma : ops->attn_scores)(q, G, kT, hd, scale, s2);
            if (same && memcmp(s1, s2, sizeof(float) * (size_t)(G * 32)))
                same = false, snprintf(why, sizeof why, "attn_scores hd %lld G %d differ from ref", (long long)hd, G);
            for (int i = 0; i < 16; i++)
                if (canary && s2[G * 32 + i] != 777.0f)
                    canary = false,
                    snprintf(why, sizeof why, "attn_scores hd %lld G %d wrote past s", (long long)hd, G);
            for (int g = 0; g < G && ops == ref; g++)
                for (int t = 0; t < 32; t++) {
                    double e = 0, mag = 0;
                    for (int64_t d = 0; d < hd; d++) {
                        e += (double)q[g * hd + d] * kT[d * 32 + t];
                        mag += fabs((double)q[g * hd + d] * kT[d * 32 + t]);
                    }
                    double err = fabs(s1[g * 32 + t] - e * scale),
                           b = 1.01 * (double)((F ? 1 : 2) * (hd / 4 + 1) + 4) * 0x1p-24 * mag * scale + 1e-30;
                    worst_s = fmax(worst_s, err / b);
                    if (bounded && !(err <= b))
                        bounded = false, snprintf(why, sizeof why, "ref attn_scores hd %lld: %.9g vs %.9g",
                                                  (long long)hd, s1[g * 32 + t], e * scale);
                }
            const int nts[] = {1, 7, 32};
            for (int ni = 0; ni < 3; ni++) {
                const int64_t nt = nts[ni];
                memcpy(o1, o0, sizeof(float) * (size_t)(G * hd));
                memcpy(o2, o0, sizeof(float) * (size_t)(G * hd));
                for (int i = 0; i < 16; i++)
                    o2[G * hd + i] = 777.0f;
                (F ? ref->attn_axpy_fma : ref->attn_axpy)(o1, c, p, G, v, vst, hd, nt);
                (F ? ops->attn_axpy_fma : ops->attn_axpy)(o2, c, p, G, v, vst, hd, nt);
                if (same && memcmp(o1, o2, sizeof(float) * (size_t)(G * hd)))
                    same = false, snprintf(why, sizeof why, "attn_axpy hd %lld G %d nt %lld differ from ref",
                                           (long long)hd, G, (long long)nt);
                for (int i = 0; i < 16; i++)
                    if (canary && o2[G * hd + i] != 777.0f)
                        canary = false,
                        snprintf(why, sizeof why, "attn_axpy hd %lld G %d wrote past o", (long long)hd, G);
                for (int g = 0; g < G && ops == ref; g++)
                    for (int64_t d = 0; d < hd; d++) {
                        double e = (double)o0[g * hd + d] * c[g], mag = fabs(e);
                        for (int64_t t = 0; t < nt; t++) {
                            e += (double)p[g * 32 + t] * v[t * vst + d];
                            mag += fabs((double)p[g * 32 + t] * v[t * vst + d]);
                        }
                        double err = fabs(o1[g * hd + d] - e),
                               b = 1.01 * (double)((F ? 1 : 2) * nt + 1) * 0x1p-24 * mag + 1e-30;
                        worst_o = fmax(worst_o, err / b);
                        if (bounded && !(err <= b))
                            bounded = false, snprintf(why, sizeof why, "ref attn_axpy hd %lld nt %lld: %.9g vs %.9g",
                                                      (long long)hd, (long long)nt, o1[g * hd + d], e);
                    }
            }
            free(q), free(kT), free(v), free(p), free(s1), free(s2), free(o0), free(o1), free(o2);
        }
    char name[200];
    snprintf(name, sizeof name,
             "%s attn_scores / attn_axpy, plain and fused: the reference's bits (1..9 heads, hd 4..128, 1..32 rows)",
             ops->name);
    t_check(same && canary, name, "%s", why);
    if (ops == ref) {
        snprintf(
            name, sizeof name,
            "ref attn_scores / attn_axpy, plain and fused, within their rounding bounds of float64 (worst %.3f / %.3f "
            "of the bound)",
            worst_s, worst_o);
        t_check(bounded, name, "%s", why);
    }
}

int main(void)
{
    check_put_hand();
    for (size_t i = 0; i < sizeof table_names / sizeof table_names[0]; i++) {
        const kern_ops *ops = kern_by_name(table_names[i]);
        if (!ops) {
            printf("SKIP table %s: this CPU lacks it\n", table_names[i]);
            continue;
        }
        char name[96];
        snprintf(name, sizeof name, "%s has every KV kernel", ops->name);
        if (!t_check(ops->kv_put_f16 && ops->kv_put_q8_0 && ops->kv_k_f16 && ops->kv_k_q8_0 && ops->kv_v_f16 &&
                         ops->kv_v_q8_0 && ops->attn_scores && ops->attn_axpy && ops->attn_scores_fma &&
                         ops->attn_axpy_fma,
                     name, "missing"))
            continue;
        check_put(ops);
        check_decode(ops);
        check_attn_kernels(ops);
    }
    return t_done();
}
