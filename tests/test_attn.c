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

#include <math.h>
#include <stdint.h>
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
                    d += (double)q[e] * b->k[blk_of(b, t) * b->k_tile_stride + e * ATTN_KT + t % ATTN_KT];
                sc[t] = d * b->scale;
                mx = sc[t] > mx ? sc[t] : mx;
            }
            double sum = 0;
            for (int t = 0; t <= b->pos[j]; t++)
                sum += (sc[t] = exp(sc[t] - mx));
            for (int e = 0; e < hd; e++) {
                double o = 0;
                for (int t = 0; t <= b->pos[j]; t++)
                    o += sc[t] / sum * b->v[blk_of(b, t) * b->v_tile_stride + t % ATTN_KT * b->kv_stride + e];
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

int main(void)
{
    check_exp();
    check_attn();
    return t_done();
}
