/* attn_run against a float64 reference on random data (several query
 * blocks, group sizes, head sizes, positions across key tiles), each query
 * of a block against the same query alone (bitwise), and the softmax's
 * vector exp against exp() in double. K is laid out as the cache holds it
 * (transposed tiles), with NaN in the lanes past the last key, which the
 * kernel must leave unused.
 *
 * Tolerance of the attention check: the output is a convex combination of
 * value rows; float scores, exp within 2 ulp, a float running sum and
 * float products over at most ~130 keys give errors of a few hundred
 * 2^-24 relative at most: |got - ref| <= 1e-4 * max|v| + 1e-6. A wrong key,
 * mask, scale or rescaling step moves outputs by a sizeable part of max|v|. */
#include "t.h"

#include "engine/attn.h"
#include "engine/kern/kern.h"
#include "engine/kv.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / 16777216.0 * 2.0 - 1.0);
}

/* exp: relative error in ulps of the float result, over x in [-87, 0] */
static void check_exp(void)
{
    double worst = 0;
    float worst_x = 0;
    for (int i = 0; i < 200000; i++) {
        float s[16];
        for (int l = 0; l < 16; l++)
            s[l] = -87.0f * (float)(i * 16 + l) / (200000.0f * 16.0f);
        float x[16];
        memcpy(x, s, sizeof x);
        attn_exp16(s, 0.0f);
        for (int l = 0; l < 16; l++) {
            double e = exp((double)x[l]);
            double ulp = ldexp(1.0, ilogb(e) - 23);
            double err = fabs(s[l] - e) / ulp;
            if (!(err <= worst)) {
                worst = isnan(err) ? INFINITY : err;
                worst_x = x[l];
            }
        }
    }
    char name[128];
    snprintf(name, sizeof name, "attn exp within 2 ulp on [-87, 0] (worst %.2f ulp)", worst);
    t_check(worst <= 2.0, name, "%.3g ulp at x = %.9g", worst, worst_x);
    float s[16] = {-INFINITY, -100.0f, -87.5f, NAN, 0.0f, -1e-30f, 3.0f, -0.0f};
    attn_exp16(s, 0.0f);
    t_check(s[0] == 0.0f && s[1] == 0.0f && s[2] == 0.0f && isnan(s[3]) && s[4] == 1.0f && s[5] == 1.0f &&
                fabsf(s[6] - 20.085537f) < 1e-5f && s[7] == 1.0f,
            "attn exp: -inf, -100, -87.5 -> 0; NaN stays; e^0 = 1; e^3", "%g %g %g %g %g %g %g %g", s[0], s[1], s[2],
            s[3], s[4], s[5], s[6], s[7]);
    /* sub is subtracted first */
    float t[16] = {5.0f, 4.0f};
    attn_exp16(t, 5.0f);
    t_check(t[0] == 1.0f && fabsf(t[1] - 0.36787944f) < 1e-7f, "attn exp: e^(s - sub)", "%.9g %.9g", t[0], t[1]);
}

/* block holding position t */
static int64_t blk_of(const attn_block *b, int t) { return b->tiles ? b->tiles[t / ATTN_KT] : t / ATTN_KT; }

/* out(j, g) by the definition, in double */
static void ref_attn(const attn_block *b, double *out)
{
    const int hd = b->head_dim;
    for (int j = 0; j < b->nq; j++)
        for (int g = 0; g < b->n_group; g++) {
            const float *q = b->q + j * b->q_stride + g * hd;
            double mx = -INFINITY, sc[512];
            for (int t = 0; t <= b->pos[j]; t++) {
                double d = 0;
                for (int e = 0; e < hd; e++)
                    d += (double)q[e] * ((const float *)b->k)[blk_of(b, t) * b->k_tile_stride + e * ATTN_KT + t % ATTN_KT];
                sc[t] = d * b->scale;
                mx = sc[t] > mx ? sc[t] : mx;
            }
            double sum = 0;
            for (int t = 0; t <= b->pos[j]; t++)
                sum += (sc[t] = exp(sc[t] - mx));
            for (int e = 0; e < hd; e++) {
                double o = 0;
                for (int t = 0; t <= b->pos[j]; t++)
                    o += sc[t] / sum *
                         ((const float *)b->v)[blk_of(b, t) * b->v_tile_stride + t % ATTN_KT * b->kv_stride + e];
                out[(j * b->n_group + g) * hd + e] = o;
            }
        }
}

static void check_attn(void)
{
    const int hds[] = {8, 40, 64, 80, 128}, groups[] = {1, 4, 8}, nqs[] = {1, 5, 16};
    const int32_t starts[] = {0, 3, 31, 100};
    bool ok = true, same = true;
    char why[256] = "";
    for (size_t hi = 0; hi < 5; hi++)
        for (size_t gi = 0; gi < 3; gi++)
            for (size_t qi = 0; qi < 3; qi++)
                for (size_t si = 0; si < 4; si++) {
                    const int hd = hds[hi], G = groups[gi], nq = nqs[qi];
                    const int64_t kvs = hd + 3, n_pos = starts[si] + nq; /* kv rows wider than the head */
                    float *k = malloc(sizeof(float) * (size_t)(n_pos * kvs)), *v = malloc(sizeof(float) * (size_t)(n_pos * kvs));
                    float *q = malloc(sizeof(float) * (size_t)(nq * G * hd)), *out = malloc(sizeof(float) * (size_t)(nq * G * hd));
                    float *one = malloc(sizeof(float) * (size_t)(G * hd));
                    double *ref = malloc(sizeof(double) * (size_t)(nq * G * hd));
                    float *scr = malloc(sizeof(float) * (size_t)attn_scratch_floats(nq, G, hd));
                    int32_t pos[16];
                    if (!k || !v || !q || !out || !one || !ref || !scr) {
                        t_check(false, "attn case setup", "out of memory");
                        return;
                    }
                    double vmax = 0;
                    for (int64_t i = 0; i < n_pos * kvs; i++) {
                        k[i] = urand(), v[i] = urand();
                        vmax = fabs(v[i]) > vmax ? fabs(v[i]) : vmax;
                    }
                    for (int64_t i = 0; i < nq * G * hd; i++)
                        q[i] = 3.0f * urand(); /* peaked enough that the softmax is not flat */
                    for (int j = 0; j < nq; j++)
                        pos[j] = starts[si] + j;
                    /* K as the cache holds it: tiles of [hd][ATTN_KT], a gap of 3 floats between them,
                     * NaN past the last key (the kernel must not use those lanes) */
                    const int64_t nt = (n_pos + ATTN_KT - 1) / ATTN_KT, kts = hd * ATTN_KT + 3;
                    float *kt = malloc(sizeof(float) * (size_t)(nt * kts));
                    if (!kt) {
                        t_check(false, "attn case setup", "out of memory");
                        return;
                    }
                    for (int64_t i = 0; i < nt * kts; i++)
                        kt[i] = NAN;
                    for (int64_t t = 0; t < n_pos; t++)
                        for (int e = 0; e < hd; e++)
                            kt[t / ATTN_KT * kts + e * ATTN_KT + t % ATTN_KT] = k[t * kvs + e];
                    attn_block b = {.nq = nq, .n_group = G, .head_dim = hd, .pos = pos, .q = q, .q_stride = G * hd,
                                    .k = kt, .k_tile_stride = kts, .v = v, .v_tile_stride = ATTN_KT * kvs,
                                    .kv_stride = kvs, .out = out, .out_stride = G * hd,
                                    .scale = 1.0f / sqrtf((float)hd)};
                    attn_run(&b, scr);
                    ref_attn(&b, ref);
                    /* the same tiles in other blocks (in reverse order, one block
                     * more, through a block table): the same bits */
                    {
                        const int64_t nb = nt + 1, vts = ATTN_KT * kvs;
                        float *kb = malloc(sizeof(float) * (size_t)(nb * kts)), *vb = malloc(sizeof(float) * (size_t)(nb * vts));
                        float *ob = malloc(sizeof(float) * (size_t)(nq * G * hd));
                        int32_t tab[16];
                        for (int64_t i = 0; kb && vb && i < nb * kts; i++)
                            kb[i] = NAN;
                        for (int64_t i = 0; kb && vb && i < nb * vts; i++)
                            vb[i] = NAN;
                        for (int64_t t = 0; kb && vb && ob && t < nt; t++) {
                            tab[t] = (int32_t)(nb - 1 - t);
                            memcpy(kb + tab[t] * kts, kt + t * kts, sizeof(float) * (size_t)kts);
                            int64_t rows = n_pos - t * ATTN_KT < ATTN_KT ? n_pos - t * ATTN_KT : ATTN_KT;
                            memcpy(vb + tab[t] * vts, v + t * ATTN_KT * kvs, sizeof(float) * (size_t)(rows * kvs));
                        }
                        if (kb && vb && ob) {
                            attn_block p = b;
                            p.tiles = tab, p.k = kb, p.v = vb, p.v_tile_stride = vts, p.out = ob;
                            attn_run(&p, scr);
                            if (same && memcmp(ob, out, sizeof(float) * (size_t)(nq * G * hd)) != 0) {
                                same = false;
                                snprintf(why, sizeof why, "hd %d G %d nq %d start %d: blocks through a table differ",
                                         hd, G, nq, starts[si]);
                            }
                        }
                        free(kb), free(vb), free(ob);
                    }
                    for (int64_t i = 0; i < nq * G * hd && ok; i++)
                        if (!(fabs(out[i] - ref[i]) <= 1e-4 * vmax + 1e-6)) {
                            ok = false;
                            snprintf(why, sizeof why, "hd %d G %d nq %d start %d: [%lld] got %.9g ref %.9g", hd, G, nq,
                                     starts[si], (long long)i, out[i], ref[i]);
                        }
                    /* each query alone: the same bits */
                    for (int j = 0; j < nq && same; j++) {
                        attn_block a = b;
                        a.nq = 1, a.pos = pos + j, a.q = q + j * G * hd, a.out = one;
                        attn_run(&a, scr);
                        if (memcmp(one, out + j * G * hd, sizeof(float) * (size_t)(G * hd)) != 0) {
                            same = false;
                            snprintf(why, sizeof why, "hd %d G %d nq %d start %d: query %d alone differs", hd, G, nq,
                                     starts[si], j);
                        }
                    }
                    free(k), free(kt), free(v), free(q), free(out), free(one), free(ref), free(scr);
                }
    t_check(ok, "attn_run within 1e-4 max|v| of the float64 reference (hd 8..128, groups, blocks, tiles)", "%s", why);
    t_check(same, "attn_run: a query alone, and blocks placed anywhere through a table, give the same bits", "%s",
            why);
}

/* ---- f16 / q8_0 caches ----
 * K and V quantized by the reference kv_put into caches of each type (K
 * codes [hd][ATTN_KT] per tile with gaps between tiles, q8_0 scales
 * [nch][ATTN_KT] per tile, V rows wider than the head, scales with a
 * stride wider than nch; lanes and rows past the last position hold NaN /
 * random codes). (1) Every table gives the ref table's bits (the decoders
 * are exact and the fused multiply-add kernels fix their sequence, kern.h);
 * (2) each query alone and (3) the tiles in other blocks through a table
 * give the same bits; (4) the result is within the f32 check's 1e-4 max|v|
 * + 1e-6 of the float64 reference on the decoded values (a fused
 * multiply-add rounds less than a product and a sum), and (5) against the
 * float64 reference on the original (unquantized) K and V within a bound that
 * follows from the formats: a key element off by e moves a score by
 * scale * q e (|q| <= 3, |k| <= 1; e <= 2^-11 |k| for f16, <= s / 2 ~
 * max|k| / 254 for q8_0), the output by about the score change times
 * 2 max|v|, plus the value rounding (2^-11 resp. 1/254 of max|v|). With
 * independent errors over head_dim d the score error is ~sqrt(d) |q| e
 * / sqrt(d) = |q| e, rms ~1.7 e: a few 1e-4 (f16) and 1e-2 (q8_0) of
 * max|v|; the bounds are 2e-3 and 6e-2 (the worst measured is printed;
 * errors aligned over all d would allow more, random data does not reach
 * that). A wrong scale, chunk or lane moves outputs by a sizeable part of
 * max|v|. */

/* one case: fills the typed arrays from rows k, v ([n_pos][kvs]) */
typedef struct typed_kv {
    unsigned char *kc, *vc; /* codes: tiles of kts / vts elements */
    uint16_t *ks, *vs;      /* q8_0 scales: tiles of ksts / vsts, V rows sst apart */
    int64_t kts, vts, ksts, vsts, sst, vst;
} typed_kv;

static bool typed_fill(typed_kv *c, int type, const float *k, const float *v, int64_t kvs, int64_t n_pos, int hd)
{
    const kern_ops *ref = kern_ref_ops();
    const int64_t nt = (n_pos + ATTN_KT - 1) / ATTN_KT, nch = (hd + 31) / 32, elt = type == KV_F16 ? 2 : 1;
    c->kts = (int64_t)hd * ATTN_KT + 7, c->vst = hd + 5, c->vts = ATTN_KT * c->vst;
    c->ksts = nch * ATTN_KT + 3, c->sst = nch + 2, c->vsts = ATTN_KT * c->sst;
    c->kc = malloc((size_t)(nt * c->kts * elt)), c->vc = malloc((size_t)(nt * c->vts * elt));
    c->ks = malloc(2 * (size_t)(nt * c->ksts)), c->vs = malloc(2 * (size_t)(nt * c->vsts));
    if (!c->kc || !c->vc || !c->ks || !c->vs)
        return false;
    /* NaN halves (f16) or random codes and scales everywhere first */
    for (int64_t i = 0; i < nt * c->kts * elt; i++)
        c->kc[i] = type == KV_F16 ? (i % 2 ? 0x7e : 0x00) : (unsigned char)(rng >> 13 ^ (uint64_t)i * 77);
    for (int64_t i = 0; i < nt * c->vts * elt; i++)
        c->vc[i] = type == KV_F16 ? (i % 2 ? 0x7e : 0x00) : (unsigned char)(rng >> 17 ^ (uint64_t)i * 91);
    for (int64_t i = 0; i < nt * c->ksts; i++)
        c->ks[i] = 0x3c00;
    for (int64_t i = 0; i < nt * c->vsts; i++)
        c->vs[i] = 0x7e00;
    for (int64_t t = 0; t < n_pos; t++) {
        int64_t tile = t / ATTN_KT, l = t % ATTN_KT;
        unsigned char *kd = c->kc + (tile * c->kts + l) * elt, *vd = c->vc + (tile * c->vts + l * c->vst) * elt;
        if (type == KV_F16) {
            ref->kv_put_f16(k + t * kvs, 1, hd, kd, ATTN_KT, NULL, 0);
            ref->kv_put_f16(v + t * kvs, 1, hd, vd, 1, NULL, 0);
        } else {
            ref->kv_put_q8_0(k + t * kvs, 1, hd, kd, ATTN_KT, c->ks + tile * c->ksts + l, ATTN_KT);
            ref->kv_put_q8_0(v + t * kvs, 1, hd, vd, 1, c->vs + tile * c->vsts + l * c->sst, 1);
        }
    }
    return true;
}

static void typed_free(typed_kv *c) { free(c->kc), free(c->vc), free(c->ks), free(c->vs); }

static void check_attn_types(void)
{
    const int hds[] = {4, 8, 40, 64, 80, 128}, groups[] = {1, 4}, nqs[] = {1, 5, 16};
    const int32_t starts[] = {0, 31, 100};
    const char *const tables[] = {"ref", "avx2", "avx512"};
    const double bound[2] = {2e-3, 6e-2};
    for (int type = KV_F16; type <= KV_Q8_0; type++) {
        const char *tn = kv_type_name(type);
        bool same = true, alone = true, placed = true, close = true, closed = true;
        double worst = 0;
        char why[256] = "";
        for (size_t hi = 0; hi < sizeof hds / sizeof hds[0]; hi++)
            for (size_t gi = 0; gi < 2; gi++)
                for (size_t qi = 0; qi < 3; qi++)
                    for (size_t si = 0; si < 3; si++) {
                        const int hd = hds[hi], G = groups[gi], nq = nqs[qi];
                        const int64_t kvs = hd + 3, n_pos = starts[si] + nq, nt = (n_pos + ATTN_KT - 1) / ATTN_KT;
                        const int64_t kts = hd * ATTN_KT + 3, nout = (int64_t)nq * G * hd;
                        float *k = malloc(sizeof(float) * (size_t)(n_pos * kvs)),
                              *v = malloc(sizeof(float) * (size_t)(n_pos * kvs));
                        float *q = malloc(sizeof(float) * (size_t)nout), *want = malloc(sizeof(float) * (size_t)nout);
                        float *out = malloc(sizeof(float) * (size_t)nout), *ob = malloc(sizeof(float) * (size_t)nout);
                        float *kt = malloc(sizeof(float) * (size_t)(nt * kts)),
                              *kdt = malloc(sizeof(float) * (size_t)(nt * kts));
                        float *vd = malloc(sizeof(float) * (size_t)(nt * ATTN_KT * hd));
                        double *ref = malloc(sizeof(double) * (size_t)nout);
                        double *refd = malloc(sizeof(double) * (size_t)nout);
                        float *scr = malloc(sizeof(float) * (size_t)attn_scratch_floats(nq, G, hd));
                        typed_kv c = {0}, p = {0};
                        if (!k || !v || !q || !want || !out || !ob || !kt || !kdt || !vd || !ref || !refd || !scr) {
                            t_check(false, "attn typed setup", "out of memory");
                            return;
                        }
                        double vmax = 0;
                        for (int64_t i = 0; i < n_pos * kvs; i++) {
                            k[i] = urand(), v[i] = urand();
                            vmax = fabs(v[i]) > vmax ? fabs(v[i]) : vmax;
                        }
                        for (int64_t i = 0; i < nout; i++)
                            q[i] = 3.0f * urand();
                        int32_t pos[16];
                        for (int j = 0; j < nq; j++)
                            pos[j] = starts[si] + j;
                        /* the original keys as an f32 cache, for the float64 reference */
                        for (int64_t i = 0; i < nt * kts; i++)
                            kt[i] = kdt[i] = NAN;
                        for (int64_t t = 0; t < n_pos; t++)
                            for (int e = 0; e < hd; e++)
                                kt[t / ATTN_KT * kts + e * ATTN_KT + t % ATTN_KT] = k[t * kvs + e];
                        attn_block fb = {.nq = nq,
                                         .n_group = G,
                                         .head_dim = hd,
                                         .pos = pos,
                                         .q = q,
                                         .q_stride = G * hd,
                                         .k = kt,
                                         .k_tile_stride = kts,
                                         .v = v,
                                         .v_tile_stride = ATTN_KT * kvs,
                                         .kv_stride = kvs,
                                         .out = want,
                                         .out_stride = G * hd,
                                         .scale = 1.0f / sqrtf((float)hd)};
                        ref_attn(&fb, ref);
                        if (!typed_fill(&c, type, k, v, kvs, n_pos, hd)) {
                            t_check(false, "attn typed setup", "out of memory");
                            return;
                        }
                        /* the decoded values as an f32 cache: the expected bits */
                        const kern_ops *r = kern_ref_ops();
                        for (int64_t t = 0; t < nt; t++) {
                            const int64_t rows = n_pos - t * ATTN_KT < ATTN_KT ? n_pos - t * ATTN_KT : ATTN_KT;
                            const int elt = type == KV_F16 ? 2 : 1;
                            float tile[128 * ATTN_KT];
                            if (type == KV_F16) {
                                r->kv_k_f16(c.kc + t * c.kts * elt, NULL, hd, tile);
                                r->kv_v_f16(c.vc + t * c.vts * elt, c.vst, NULL, 0, hd, rows, vd + t * ATTN_KT * hd);
                            } else {
                                r->kv_k_q8_0(c.kc + t * c.kts, c.ks + t * c.ksts, hd, tile);
                                r->kv_v_q8_0(c.vc + t * c.vts, c.vst, c.vs + t * c.vsts, c.sst, hd, rows,
                                             vd + t * ATTN_KT * hd);
                            }
                            for (int64_t l = 0; l < rows; l++)
                                for (int e = 0; e < hd; e++)
                                    kdt[t * kts + e * ATTN_KT + l] = tile[e * ATTN_KT + l];
                        }
                        fb.k = kdt, fb.v = vd, fb.v_tile_stride = ATTN_KT * hd, fb.kv_stride = hd;
                        ref_attn(&fb, refd);
                        attn_block tb = {.nq = nq,
                                         .n_group = G,
                                         .head_dim = hd,
                                         .pos = pos,
                                         .q = q,
                                         .q_stride = G * hd,
                                         .kv_type = type,
                                         .k = c.kc,
                                         .k_tile_stride = c.kts,
                                         .ks = c.ks,
                                         .ks_tile_stride = c.ksts,
                                         .v = c.vc,
                                         .v_tile_stride = c.vts,
                                         .kv_stride = c.vst,
                                         .vs = c.vs,
                                         .vs_tile_stride = c.vsts,
                                         .vs_stride = c.sst,
                                         .out = out,
                                         .out_stride = G * hd,
                                         .scale = 1.0f / sqrtf((float)hd)};
                        /* the same tiles reversed in nt + 1 blocks */
                        int32_t tab[16];
                        const int elt = type == KV_F16 ? 2 : 1;
                        p = c;
                        p.kc = malloc((size_t)((nt + 1) * c.kts * elt)),
                        p.vc = malloc((size_t)((nt + 1) * c.vts * elt));
                        p.ks = malloc(2 * (size_t)((nt + 1) * c.ksts)), p.vs = malloc(2 * (size_t)((nt + 1) * c.vsts));
                        for (int64_t t = 0; p.kc && p.vc && p.ks && p.vs && t < nt; t++) {
                            tab[t] = (int32_t)(nt - t);
                            memcpy(p.kc + tab[t] * c.kts * elt, c.kc + t * c.kts * elt, (size_t)(c.kts * elt));
                            memcpy(p.vc + tab[t] * c.vts * elt, c.vc + t * c.vts * elt, (size_t)(c.vts * elt));
                            memcpy(p.ks + tab[t] * c.ksts, c.ks + t * c.ksts, 2 * (size_t)c.ksts);
                            memcpy(p.vs + tab[t] * c.vsts, c.vs + t * c.vsts, 2 * (size_t)c.vsts);
                        }
                        for (size_t ti = 0; ti < 3; ti++) { /* tables[0] = ref: its result is `want` */
                            tb.ops = kern_by_name(tables[ti]);
                            if (!tb.ops)
                                continue;
                            tb.out = ti ? out : want, tb.nq = nq, tb.pos = pos, tb.q = q, tb.tiles = NULL;
                            tb.k = c.kc, tb.ks = c.ks, tb.v = c.vc, tb.vs = c.vs;
                            attn_run(&tb, scr);
                            for (int64_t i = 0; ti == 0 && i < nout; i++) {
                                double e = fabs(want[i] - ref[i]) / vmax;
                                worst = !(e <= worst) ? (isnan(e) ? INFINITY : e) : worst;
                                if (close && !(e <= bound[type - 1])) {
                                    close = false;
                                    snprintf(why, sizeof why, "hd %d G %d nq %d start %d: [%lld] got %.9g ref %.9g", hd,
                                             G, nq, starts[si], (long long)i, want[i], ref[i]);
                                }
                                if (closed && !(fabs(want[i] - refd[i]) <= 1e-4 * vmax + 1e-6)) {
                                    closed = false;
                                    snprintf(why, sizeof why,
                                             "hd %d G %d nq %d start %d: [%lld] got %.9g, float64 on decoded %.9g", hd, G,
                                             nq, starts[si], (long long)i, want[i], refd[i]);
                                }
                            }
                            float *res = tb.out;
                            if (same && memcmp(res, want, sizeof(float) * (size_t)nout)) {
                                same = false;
                                snprintf(why, sizeof why, "%s hd %d G %d nq %d start %d: differs from ref's bits",
                                         tables[ti], hd, G, nq, starts[si]);
                            }
                            for (int j = 0; j < nq && alone; j++) {
                                attn_block a = tb;
                                a.nq = 1, a.pos = pos + j, a.q = q + j * G * hd, a.out = ob;
                                attn_run(&a, scr);
                                if (memcmp(ob, res + j * G * hd, sizeof(float) * (size_t)(G * hd))) {
                                    alone = false;
                                    snprintf(why, sizeof why, "%s hd %d G %d nq %d start %d: query %d alone differs",
                                             tables[ti], hd, G, nq, starts[si], j);
                                }
                            }
                            if (p.kc && p.vc && p.ks && p.vs) {
                                attn_block a = tb;
                                a.tiles = tab, a.k = p.kc, a.ks = p.ks, a.v = p.vc, a.vs = p.vs, a.out = ob;
                                attn_run(&a, scr);
                                if (placed && memcmp(ob, res, sizeof(float) * (size_t)nout)) {
                                    placed = false;
                                    snprintf(why, sizeof why, "%s hd %d G %d nq %d start %d: blocks through a table",
                                             tables[ti], hd, G, nq, starts[si]);
                                }
                            } else {
                                placed = false;
                            }
                        }
                        typed_free(&p);
                        typed_free(&c);
                        free(k), free(v), free(q), free(want), free(out), free(ob), free(kt), free(kdt), free(vd);
                        free(ref), free(refd), free(scr);
                    }
        char name[200];
        snprintf(name, sizeof name, "attn_run %s cache: every table gives the ref table's bits", tn);
        t_check(same, name, "%s", why);
        snprintf(name, sizeof name, "attn_run %s cache within 1e-4 max|v| of the float64 reference on the decoded values",
                 tn);
        t_check(closed, name, "%s", why);
        snprintf(name, sizeof name, "attn_run %s cache: a query alone, and blocks placed anywhere, give the same bits",
                 tn);
        t_check(alone && placed, name, "%s", why);
        snprintf(name, sizeof name,
                 "attn_run %s cache within %.0e max|v| of the float64 reference on unquantized K, V "
                 "(worst %.2e)",
                 tn, bound[type - 1], worst);
        t_check(close, name, "%s", why);
    }
}

int main(void)
{
    check_exp();
    check_attn();
    check_attn_types();
    return t_done();
}
