/* SIMD kernels against the scalar reference, for every table this CPU runs
 * (ref, avx2, avx512):
 *  (a) quant_x produces the same bytes as the reference for every x format;
 *  (b) gemm agrees with the reference gemm within a stated bound, for every
 *      supported weight type, several k, nr, nc, and unaligned weight rows;
 *  (c) gemm is deterministic: each (r, c) value has the same bits whether it
 *      is computed in a big call, a sub-range call or a 1x1 call (so neither
 *      the thread split nor the batch size changes results); and for every
 *      nc from 1 to 17, so every column-tile width and edge of a tiled kernel
 *      is compared with its 1x1 result;
 *  (d) the x8 layout: kern_x8_pack puts every block where kern.h says, and
 *      gemm_x8 over packed weights gives the same bits as gemm over the
 *      plain ones, for whole and partial units, every tile edge, row and
 *      column sub-ranges and the multi-column row chunks; bad arguments are
 *      refused;
 *  (e) the r16 layout: kern_r16_pack puts every scale and code byte where
 *      kern.h says; the reference gemm_r16 is within the bound of (b) of
 *      the reference gemm; every table's gemm_r16 gives the reference
 *      gemm_r16's bits (kern.h fixes its sequence), whole, for every row
 *      group and column range and across the multi-column row chunks; bad
 *      arguments are refused.
 *
 * Tolerance of (b). Float weights: both sides sum k products in float in
 * different orders: |got - ref| <= 2 (k + 1) 2^-24 sum|w_i x_i| (+1e-6).
 * Quantized weights: the reference sums in double (exact but for the final
 * rounding); a SIMD kernel sums exact integer block products, scaled and
 * accumulated in float, a few roundings per block and k/32 accumulation
 * steps at most: |got - ref| <= 8 (k/32 + 8) 2^-24 sum|w_i x_i| (+1e-6),
 * where w_i, x_i are the dequantized values. A wrong block, nibble, scale or
 * offset moves the result by O(sum|w_i x_i| / k) or more and fails.
 *
 * k-quants with mins (Q2_K Q4_K Q5_K: w = d sc q - dmin m). A kernel forms
 * per super-block the exact integers I = sum_j sc_j sum_i q_i x_i and
 * M = sum_j m_j bsum_j, then d dx float(I) - dmin dx float(M): a few roundings
 * on each term (conversion, factor product, fma), i.e. an error of about
 * 4 2^-24 (|d dx I| + |dmin dx M|) per block plus one accumulation rounding.
 * |d dx I| + |dmin dx M| <= sum_i (|d sc q_i| + |dmin m|) |x_i|, which is
 * sum|w_i x_i| unless w_i cancels (d sc q ~ dmin m). Cancellation costs the
 * reference the same: it dequantizes w_i in float, with an error of
 * 2^-24 (|d sc q_i| + |dmin m|) per element. The random blocks here have
 * independent d, dmin and codes, so the terms do not cancel systematically
 * and the bound holds with a wide margin (the worst ratio is printed; about
 * 0.02 for the k-quants); inputs built to cancel would need the bound taken
 * over sum (|d sc q_i| + |dmin m|) |x_i| instead. Offsets (Q3_K Q6_K) are
 * integer and exact. */
#include "t.h"

#include "base/err.h"
#include "engine/kern/kern.h"
#include "kern_rand.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const table_names[] = {"ref", "avx2", "avx512"};

static int64_t x_block(uint32_t fmt) { return fmt == KX_Q8_32 ? 32 : fmt == KX_Q8_K ? QK_K : 1; }

/* x values of several shapes: uniform, mixed magnitudes, an all-zero block,
 * exact .5 ties after scaling (a block of +-127 multiples of 0.5). */
static void fill_x(float *x, int64_t k, int shape)
{
    for (int64_t i = 0; i < k; i++) {
        float v = rng_uniform(-1.0f, 1.0f);
        if (shape == 1)
            v *= (i % 7 == 0) ? 100.0f : 0.01f;
        if (shape == 2 && i < 32)
            v = 0.0f;
        if (shape == 3)
            v = 0.5f * (float)((int)(rng_u64() % 255) - 127);
        x[i] = v;
    }
}

/* (a) */
static void check_quant_x(const kern_ops *ops)
{
    const kern_ops *ref = kern_ref_ops();
    for (uint32_t fmt = 0; fmt < KX_COUNT; fmt++) {
        bool ok = true;
        char why[160] = "";
        const int64_t ks[] = {x_block(fmt) == 1 ? 32 : x_block(fmt), 2048, 5632};
        for (size_t ki = 0; ki < 3 && ok; ki++) {
            int64_t k = ks[ki];
            uint64_t xb = kern_x_row_bytes(fmt, k);
            float *x = malloc((size_t)k * sizeof *x);
            unsigned char *a = calloc(1, xb), *b = calloc(1, xb);
            for (int shape = 0; shape < 4 && ok && x && a && b; shape++) {
                fill_x(x, k, shape);
                memset(a, 0, xb);
                memset(b, 0, xb);
                ref->quant_x[fmt](x, a, k);
                ops->quant_x[fmt](x, b, k);
                if (memcmp(a, b, xb) != 0) {
                    ok = false;
                    snprintf(why, sizeof why, "k %lld shape %d: bytes differ", (long long)k, shape);
                }
            }
            free(x);
            free(a);
            free(b);
        }
        char name[96];
        snprintf(name, sizeof name, "%s quant_x fmt %u identical to ref", ops->name, fmt);
        t_check(ok, name, "%s", why);
    }
}

typedef struct {
    int64_t k, nr, nc;
    unsigned char *wbuf; /* weights at wbuf + 1 (odd address) */
    const unsigned char *W;
    uint64_t row_bytes;
    float *xf;           /* [nc][k] float x */
    unsigned char *X;    /* [nc] x rows */
    uint64_t x_bytes;
    float *ref, *got, *one; /* [nc][nr] */
    double *mag;         /* [nc][nr] sum |w_i x_i| */
} gcase;

static void gcase_free(gcase *g)
{
    free(g->wbuf);
    free(g->xf);
    free(g->X);
    free(g->ref);
    free(g->got);
    free(g->one);
    free(g->mag);
}

static bool gcase_make(gcase *g, uint32_t type, int64_t k, int64_t nr, int64_t nc)
{
    memset(g, 0, sizeof *g);
    g->k = k, g->nr = nr, g->nc = nc;
    uint64_t rb;
    if (ttype_nbytes(type, k, &rb) != 0)
        return false;
    g->row_bytes = rb;
    uint32_t fmt = kern_xfmt(type);
    g->x_bytes = kern_x_row_bytes(fmt, k);
    g->wbuf = malloc(rb * (uint64_t)nr + 1);
    g->xf = malloc(sizeof(float) * (size_t)(k * nc));
    g->X = aligned_alloc(64, g->x_bytes * (uint64_t)nc);
    g->ref = malloc(sizeof(float) * (size_t)(nr * nc));
    g->got = malloc(sizeof(float) * (size_t)(nr * nc));
    g->one = malloc(sizeof(float) * (size_t)(nr * nc));
    g->mag = calloc((size_t)(nr * nc), sizeof(double));
    float *wf = malloc(sizeof(float) * (size_t)k);
    if (!g->wbuf || !g->xf || !g->X || !g->ref || !g->got || !g->one || !g->mag || !wf) {
        free(wf);
        return false;
    }
    g->W = g->wbuf + 1;
    fill_random(type, g->wbuf + 1, rb * (uint64_t)nr, k * nr);
    const kern_ops *ref = kern_ref_ops();
    for (int64_t c = 0; c < nc; c++) {
        fill_x(g->xf + c * k, k, (int)(c % 4));
        ref->quant_x[fmt](g->xf + c * k, g->X + (uint64_t)c * g->x_bytes, k);
    }
    /* magnitudes from dequantized w and the x values the x row stands for */
    float *xv = malloc(sizeof(float) * (size_t)k);
    for (int64_t r = 0; r < nr && xv; r++) {
        ref->dequant[type](g->W + (uint64_t)r * rb, wf, k);
        for (int64_t c = 0; c < nc; c++) {
            const float *xc = g->xf + c * k;
            if (fmt == KX_F32) {
                memcpy(xv, xc, sizeof(float) * (size_t)k);
            } else if (fmt == KX_Q8_32) {
                const kx_q8_32 *b = (const kx_q8_32 *)(g->X + (uint64_t)c * g->x_bytes);
                for (int64_t i = 0; i < k; i++)
                    xv[i] = b[i / 32].d * b[i / 32].qs[i % 32];
            } else {
                const kx_q8_k *b = (const kx_q8_k *)(g->X + (uint64_t)c * g->x_bytes);
                for (int64_t i = 0; i < k; i++)
                    xv[i] = b[i / QK_K].d * b[i / QK_K].qs[i % QK_K];
            }
            double m = 0;
            for (int64_t i = 0; i < k; i++)
                m += fabs((double)wf[i] * xv[i]);
            g->mag[c * nr + r] = m;
        }
    }
    free(xv);
    free(wf);
    ref->gemm[type](g->W, rb, g->X, g->x_bytes, g->ref, nr, k, nr, nc);
    return true;
}

/* the bound of (b) for quantized weights, k elements of magnitude sum mag */
static double quant_tol(int64_t k, double mag) { return 8.0 * (double)(k / 32 + 8) * 0x1p-24 * mag + 1e-6; }

/* (c): the first element of g->got (index c * nr + r) whose bits differ
 * from a 1x1 call on its row and column, with that call's value in *v; -1
 * if none */
static int64_t first_not_1x1(const kern_ops *ops, uint32_t type, const gcase *g, float *v)
{
    for (int64_t c = 0; c < g->nc; c++)
        for (int64_t r = 0; r < g->nr; r++) {
            ops->gemm[type](g->W + (uint64_t)r * g->row_bytes, g->row_bytes, g->X + (uint64_t)c * g->x_bytes,
                            g->x_bytes, v, 1, g->k, 1, 1);
            if (memcmp(v, &g->got[c * g->nr + r], sizeof *v) != 0)
                return c * g->nr + r;
        }
    return -1;
}

/* (b) and (c) for one type on one table */
static void check_gemm(const kern_ops *ops, uint32_t type)
{
    const ttype_traits *tr = ttype_get(type);
    bool is_float = kern_xfmt(type) == KX_F32;
    int64_t B = tr->blck < 32 ? 32 : tr->blck;
    /* k: one block; 5, 6, 7 blocks (a SIMD kernel working on groups of 2 or
     * 4 blocks meets every partial last group); long rows. Float types also
     * get k that is no multiple of the vector width (37, 1001). */
    const int64_t ks[] = {B, 5 * B, 6 * B, 7 * B, 2048, 5632, is_float ? 37 : 0, is_float ? 1001 : 0};
    /* shapes: tiles of every height and width with partial edges; nc up to 20 */
    const int64_t shapes[][2] = {{1, 1}, {5, 3}, {37, 9}, {64, 16}, {13, 20}};
    const size_t nks = sizeof ks / sizeof ks[0], nshapes = sizeof shapes / sizeof shapes[0];
    bool ok_val = true, ok_det = true;
    char why[256] = "";
    double worst = 0; /* |diff| / tol */
    for (size_t ki = 0; ki < nks; ki++) {
        for (size_t si = 0; si < nshapes; si++) {
            int64_t k = ks[ki], nr = shapes[si][0], nc = shapes[si][1];
            if (k == 0 || (k * nr > 2048 * 64 && k >= 2048 && si == 3))
                continue; /* keep the biggest shapes for the shorter rows */
            gcase g;
            if (!gcase_make(&g, type, k, nr, nc)) {
                gcase_free(&g);
                t_check(false, "gemm case setup", "out of memory");
                return;
            }
            ops->gemm[type](g.W, g.row_bytes, g.X, g.x_bytes, g.got, nr, k, nr, nc);
            for (int64_t i = 0; i < nr * nc; i++) {
                double tol = is_float ? 2.0 * (double)(k + 1) * 0x1p-24 * g.mag[i] + 1e-6 : quant_tol(k, g.mag[i]);
                double d = fabs((double)g.got[i] - (double)g.ref[i]);
                if (d / tol > worst)
                    worst = d / tol;
                if (!(d <= tol) && ok_val) {
                    ok_val = false;
                    snprintf(why, sizeof why, "k %lld %lldx%lld (r %lld c %lld): got %.9g ref %.9g tol %.3g",
                             (long long)k, (long long)nr, (long long)nc, (long long)(i % nr), (long long)(i / nr),
                             g.got[i], g.ref[i], tol);
                }
            }
            /* (c): every element again from a 1x1 call, and a sub-range call */
            float v;
            int64_t bad = ok_det ? first_not_1x1(ops, type, &g, &v) : -1;
            if (bad >= 0) {
                ok_det = false;
                snprintf(why, sizeof why, "k %lld %lldx%lld: (r %lld, c %lld) differs in a 1x1 call", (long long)k,
                         (long long)nr, (long long)nc, (long long)(bad % nr), (long long)(bad / nr));
            }
            if (nr > 4 && nc > 2 && ok_det) {
                int64_t r0 = 3, c0 = 1, sr = nr - 4, sc = nc - 2;
                ops->gemm[type](g.W + (uint64_t)r0 * g.row_bytes, g.row_bytes, g.X + (uint64_t)c0 * g.x_bytes,
                                g.x_bytes, g.one, sr, k, sr, sc);
                for (int64_t c = 0; c < sc; c++)
                    for (int64_t r = 0; r < sr; r++)
                        if (memcmp(&g.one[c * sr + r], &g.got[(c + c0) * nr + r + r0], sizeof(float)) != 0 &&
                            ok_det) {
                            ok_det = false;
                            snprintf(why, sizeof why, "k %lld: sub-range call differs at (r %lld, c %lld)",
                                     (long long)k, (long long)(r + r0), (long long)(c + c0));
                        }
            }
            gcase_free(&g);
        }
    }
    char name[128];
    snprintf(name, sizeof name, "%s gemm %s within bound of ref (worst %.3f of tol)", ops->name, tr->name, worst);
    t_check(ok_val, name, "%s", why);
    snprintf(name, sizeof name, "%s gemm %s deterministic over nr, nc, sub-ranges", ops->name, tr->name);
    t_check(ok_det, name, "%s", why);
}

/* (c) over every nc in 1..17 (tile widths and edges of tiled kernels): each
 * value of an nr x nc call equals the 1x1 call's bits */
static void check_tiles(const kern_ops *ops, uint32_t type)
{
    const ttype_traits *tr = ttype_get(type);
    const int64_t k = 2 * (tr->blck < 32 ? 256 : tr->blck), nr = 3;
    bool ok = true;
    char why[160] = "";
    for (int64_t nc = 1; nc <= 17 && ok; nc++) {
        gcase g;
        if (!gcase_make(&g, type, k, nr, nc)) {
            gcase_free(&g);
            t_check(false, "tile case setup", "out of memory");
            return;
        }
        ops->gemm[type](g.W, g.row_bytes, g.X, g.x_bytes, g.got, nr, k, nr, nc);
        float v;
        int64_t bad = first_not_1x1(ops, type, &g, &v);
        if (bad >= 0) {
            ok = false;
            snprintf(why, sizeof why, "nc %lld: (r %lld, c %lld) differs from the 1x1 call", (long long)nc,
                     (long long)(bad % nr), (long long)(bad / nr));
        }
        gcase_free(&g);
    }
    char name[128];
    snprintf(name, sizeof name, "%s gemm %s deterministic for nc 1..17", ops->name, tr->name);
    t_check(ok, name, "%s", why);
}

/* Long rows of the 32-block types: tiles of several columns may read x
 * prepared in a bounded buffer (kern_avx512.c: room for 4 columns of k up
 * to 32768 for Q4_1 / Q5_1, 40960 for the others) and fall back to
 * one-column tiles past it; at the bounds and past them every value stays
 * within the bound of ref and equals the 1x1 call's bits. */
static void check_long_k(const kern_ops *ops, uint32_t type)
{
    const int64_t ks[] = {32768, 32768 + 192, 40960, 40960 + 160}, nr = 3, nc = 5;
    bool ok = true;
    char why[200] = "";
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0] && ok; ki++) {
        int64_t k = ks[ki];
        gcase g;
        if (!gcase_make(&g, type, k, nr, nc)) {
            gcase_free(&g);
            t_check(false, "long-k case setup", "out of memory");
            return;
        }
        ops->gemm[type](g.W, g.row_bytes, g.X, g.x_bytes, g.got, nr, k, nr, nc);
        for (int64_t i = 0; i < nr * nc && ok; i++) {
            double tol = quant_tol(k, g.mag[i]);
            if (!(fabs((double)g.got[i] - (double)g.ref[i]) <= tol)) {
                ok = false;
                snprintf(why, sizeof why, "k %lld (r %lld, c %lld): got %.9g, ref %.9g", (long long)k,
                         (long long)(i % nr), (long long)(i / nr), g.got[i], g.ref[i]);
            }
        }
        float v;
        int64_t bad = ok ? first_not_1x1(ops, type, &g, &v) : -1;
        if (bad >= 0) {
            ok = false;
            snprintf(why, sizeof why, "k %lld (r %lld, c %lld): got %.9g, 1x1 %.9g", (long long)k,
                     (long long)(bad % nr), (long long)(bad / nr), g.got[bad], v);
        }
        gcase_free(&g);
    }
    char name[128];
    snprintf(name, sizeof name, "%s gemm %s k 32768..41120: within bound, same as 1x1", ops->name, ttype_name(type));
    t_check(ok, name, "%s", why);
}

/* (d) for one type on one table */
static void check_x8(const kern_ops *ops, uint32_t type)
{
    const ttype_traits *tr = ttype_get(type);
    const uint64_t B = (uint64_t)tr->size;
    /* k: 1..7 blocks (every tail), a tail after whole units, long rows */
    const int64_t ks[] = {32, 64, 96, 128, 160, 192, 224, 416, 2048};
    const int64_t shapes[][2] = {{8, 1}, {16, 3}, {24, 9}, {64, 17}, {248, 9}};
    bool ok_lay = true, ok_val = true;
    char why[256] = "";
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int64_t k = ks[ki], nr = shapes[si][0], nc = shapes[si][1];
            if (nr == 248 && k != 2048)
                continue; /* the row chunks of multi-column calls need big rows */
            gcase g;
            unsigned char *P = NULL;
            if (!gcase_make(&g, type, k, nr, nc) || !(P = malloc(g.row_bytes * (uint64_t)nr))) {
                gcase_free(&g);
                t_check(false, "x8 case setup", "out of memory");
                return;
            }
            const uint64_t rb = g.row_bytes;
            memcpy(P, g.W, rb * (uint64_t)nr);
            if (kern_x8_pack(type, P, rb, nr, k) != 0) {
                ok_lay = false;
                snprintf(why, sizeof why, "k %lld nr %lld: pack failed: %s", (long long)k, (long long)nr, err_msg());
            }
            /* every block where kern.h puts it */
            const uint64_t nb = (uint64_t)k / 32, U = 4 * B, nu = nb / 4, nt = nb % 4;
            for (int64_t r = 0; r < nr && ok_lay; r++)
                for (uint64_t b = 0; b < nb && ok_lay; b++) {
                    uint64_t u = b / 4, rr = (uint64_t)r % 8;
                    uint64_t at = (uint64_t)(r - (int64_t)rr) * rb +
                                  (u < nu ? u * 8 * U + rr * U : nu * 8 * U + rr * nt * B) + (b % 4) * B;
                    if (memcmp(P + at, g.W + (uint64_t)r * rb + b * B, B) != 0) {
                        ok_lay = false;
                        snprintf(why, sizeof why, "k %lld: row %lld block %llu misplaced", (long long)k, (long long)r,
                                 (unsigned long long)b);
                    }
                }
            /* plain gemm, then x8 whole, by row groups, by column ranges */
            ops->gemm[type](g.W, rb, g.X, g.x_bytes, g.ref, nr, k, nr, nc);
            ops->gemm_x8[type](P, rb, g.X, g.x_bytes, g.got, nr, k, nr, nc);
            if (ok_val && memcmp(g.ref, g.got, sizeof(float) * (size_t)(nr * nc)) != 0) {
                ok_val = false;
                snprintf(why, sizeof why, "k %lld %lldx%lld: x8 differs from plain", (long long)k, (long long)nr,
                         (long long)nc);
            }
            for (int64_t r0 = 0; r0 < nr && ok_val; r0 += 8)
                for (int64_t c = 0; c < nc && ok_val; c++) {
                    int64_t sr = nr - r0 < 16 ? nr - r0 : 16, sc = nc - c < 2 ? nc - c : 2;
                    ops->gemm_x8[type](P + (uint64_t)r0 * rb, rb, g.X + (uint64_t)c * g.x_bytes, g.x_bytes, g.one, sr,
                                       k, sr, sc);
                    for (int64_t cc = 0; cc < sc && ok_val; cc++)
                        if (memcmp(g.one + cc * sr, g.ref + (c + cc) * nr + r0, sizeof(float) * (size_t)sr) != 0) {
                            ok_val = false;
                            snprintf(why, sizeof why, "k %lld: x8 rows %lld.. cols %lld.. differ from plain",
                                     (long long)k, (long long)r0, (long long)c);
                        }
                }
            free(P);
            gcase_free(&g);
        }
    char name[128];
    snprintf(name, sizeof name, "%s x8 pack %s puts every block in place", ops->name, tr->name);
    t_check(ok_lay, name, "%s", why);
    snprintf(name, sizeof name, "%s gemm_x8 %s identical to plain gemm", ops->name, tr->name);
    t_check(ok_val, name, "%s", why);
}

/* kern_x8_pack refuses what it cannot pack, leaving the bytes alone */
static void check_x8_errors(void)
{
    unsigned char w[8 * 18 * 8], c[sizeof w]; /* 8 rows of 8 Q4_0 blocks (2 units) */
    for (size_t i = 0; i < sizeof w; i++)
        w[i] = (unsigned char)(i * 7);
    memcpy(c, w, sizeof w);
    t_check(kern_x8_pack(SOV_Q4_0, w, 36, 12, 64) == SOV_EINVAL, "x8 pack: 12 rows refused", "%s", err_msg());
    t_check(kern_x8_pack(SOV_Q4_0, w, 40, 8, 64) == SOV_EINVAL, "x8 pack: wrong row bytes refused", "%s", err_msg());
    t_check(kern_x8_pack(SOV_Q4_0, w, 36, 8, 48) == SOV_EINVAL, "x8 pack: k not a multiple of 32 refused", "%s",
            err_msg());
    t_check(kern_x8_pack(SOV_F16, w, 64, 8, 32) == SOV_EINVAL, "x8 pack: f16 refused", "%s", err_msg());
    t_check(kern_x8_pack(SOV_Q4_K, w, 144, 8, 256) == SOV_EINVAL, "x8 pack: q4_k refused", "%s", err_msg());
    t_check(memcmp(w, c, sizeof w) == 0, "x8 pack: refused calls leave the weights alone", "changed");
    t_check(kern_x8_pack(SOV_Q4_0, w, 144, 8, 256) == 0 && memcmp(w, c, sizeof w) != 0,
            "x8 pack: 8 rows of 2 units packed", "%s", err_msg());
}

/* (e) for one type on one table */
static void check_r16(const kern_ops *ops, uint32_t type)
{
    const kern_ops *ref = kern_ref_ops();
    const ttype_traits *tr = ttype_get(type);
    const uint64_t B = (uint64_t)tr->size, S = 16 * B;
    /* kern.h's form, written out here: f16 fields, then the words */
    const uint64_t nf = type == SOV_Q4_K ? 2 : 1, nw = (B - 2 * nf) / 4, w0 = type == SOV_Q6_K ? 0 : 2 * nf;
    const uint64_t fo[2] = {type == SOV_Q6_K ? B - 2 : 0, 2};
    const unsigned char flip = type == SOV_Q8_0 ? 0x80 : 0;
    const int64_t kb = tr->blck; /* 1, 2, 3, 5 blocks; long rows */
    const int64_t ks[] = {kb, 2 * kb, 3 * kb, 5 * kb, 2048, 5632};
    /* every tile height and width with partial edges; 272 rows at k 2048
     * span two multi-column row chunks (14 groups each) */
    const int64_t shapes[][2] = {{16, 1}, {16, 5}, {32, 4}, {48, 9}, {80, 3}, {64, 17}, {272, 9}};
    bool ok_lay = true, ok_bound = true, ok_val = true;
    char why[256] = "";
    double worst = 0;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int64_t k = ks[ki], nr = shapes[si][0], nc = shapes[si][1];
            if ((nr == 272) != (k == 2048) && nr >= 64)
                continue; /* the biggest shapes only where they matter */
            gcase g;
            unsigned char *pbuf = NULL;
            float *rr = NULL;
            if (!gcase_make(&g, type, k, nr, nc) || !(pbuf = malloc(g.row_bytes * (uint64_t)nr + 1)) ||
                !(rr = malloc(sizeof(float) * (size_t)(nr * nc)))) {
                free(pbuf);
                gcase_free(&g);
                t_check(false, "r16 case setup", "out of memory");
                return;
            }
            unsigned char *P = pbuf + 1; /* odd address, as the plain cases */
            const uint64_t rb = g.row_bytes, nb = (uint64_t)(k / kb);
            memcpy(P, g.W, rb * (uint64_t)nr);
            if (kern_r16_pack(type, P, rb, nr, k) != 0) {
                ok_lay = false;
                snprintf(why, sizeof why, "k %lld nr %lld: pack failed: %s", (long long)k, (long long)nr, err_msg());
            }
            /* every scale and code byte where kern.h puts it */
            for (int64_t r = 0; r < nr && ok_lay; r++)
                for (uint64_t b = 0; b < nb && ok_lay; b++) {
                    const unsigned char *src = g.W + (uint64_t)r * rb + b * B;
                    const unsigned char *blk = P + (uint64_t)(r / 16) * 16 * rb + b * S;
                    const uint64_t l = (uint64_t)(r % 16);
                    bool same = true;
                    for (uint64_t f = 0; f < nf; f++)
                        same = same && blk[32 * f + 2 * l] == src[fo[f]] && blk[32 * f + 2 * l + 1] == src[fo[f] + 1];
                    for (uint64_t t = 0; t < nw; t++)
                        for (uint64_t j = 0; j < 4; j++)
                            same = same && blk[32 * nf + 64 * t + 4 * l + j] == (src[w0 + 4 * t + j] ^ flip);
                    if (!same) {
                        ok_lay = false;
                        snprintf(why, sizeof why, "k %lld: row %lld block %llu misplaced", (long long)k, (long long)r,
                                 (unsigned long long)b);
                    }
                }
            /* the reference r16 within the bound of (b) of the reference gemm
             * (checked once, with the ref table) */
            ref->gemm_r16[type](P, rb, g.X, g.x_bytes, rr, nr, k, nr, nc);
            for (int64_t i = 0; i < nr * nc && ops == ref; i++) {
                double tol = quant_tol(k, g.mag[i]);
                double d = fabs((double)rr[i] - (double)g.ref[i]);
                worst = d / tol > worst ? d / tol : worst;
                if (!(d <= tol) && ok_bound) {
                    ok_bound = false;
                    snprintf(why, sizeof why, "k %lld %lldx%lld (r %lld c %lld): r16 %.9g ref %.9g tol %.3g",
                             (long long)k, (long long)nr, (long long)nc, (long long)(i % nr), (long long)(i / nr),
                             rr[i], g.ref[i], tol);
                }
            }
            /* this table: the reference's bits, whole, then by row groups and column ranges */
            ops->gemm_r16[type](P, rb, g.X, g.x_bytes, g.got, nr, k, nr, nc);
            if (ok_val && memcmp(rr, g.got, sizeof(float) * (size_t)(nr * nc)) != 0) {
                ok_val = false;
                snprintf(why, sizeof why, "k %lld %lldx%lld: r16 differs from the reference r16", (long long)k,
                         (long long)nr, (long long)nc);
            }
            for (int64_t r0 = 0; r0 < nr && ok_val; r0 += 16)
                for (int64_t c = 0; c < nc && ok_val; c += 2) {
                    int64_t sr = nr - r0 < 32 ? nr - r0 : 32, sc = nc - c < 2 ? nc - c : 2;
                    ops->gemm_r16[type](P + (uint64_t)r0 * rb, rb, g.X + (uint64_t)c * g.x_bytes, g.x_bytes, g.one,
                                        sr, k, sr, sc);
                    for (int64_t cc = 0; cc < sc && ok_val; cc++)
                        if (memcmp(g.one + cc * sr, rr + (c + cc) * nr + r0, sizeof(float) * (size_t)sr) != 0) {
                            ok_val = false;
                            snprintf(why, sizeof why, "k %lld: r16 rows %lld.. cols %lld.. differ", (long long)k,
                                     (long long)r0, (long long)c);
                        }
                }
            free(rr);
            free(pbuf);
            gcase_free(&g);
        }
    char name[128];
    snprintf(name, sizeof name, "%s r16 pack %s puts every byte in place", ops->name, tr->name);
    t_check(ok_lay, name, "%s", why);
    if (ops == ref) {
        snprintf(name, sizeof name, "ref gemm_r16 %s within bound of ref gemm (worst %.3f of tol)", tr->name, worst);
        t_check(ok_bound, name, "%s", why);
    }
    snprintf(name, sizeof name, "%s gemm_r16 %s identical to ref gemm_r16 in every split", ops->name, tr->name);
    t_check(ok_val, name, "%s", why);
}

/* kern_r16_pack refuses what it cannot pack, leaving the bytes alone */
static void check_r16_errors(void)
{
    unsigned char w[16 * 18 * 2], c[sizeof w]; /* 16 rows of 2 Q4_0 blocks */
    for (size_t i = 0; i < sizeof w; i++)
        w[i] = (unsigned char)(i * 7);
    memcpy(c, w, sizeof w);
    t_check(kern_r16_pack(SOV_Q4_0, w, 36, 8, 64) == SOV_EINVAL, "r16 pack: 8 rows refused", "%s", err_msg());
    t_check(kern_r16_pack(SOV_Q4_0, w, 34, 16, 64) == SOV_EINVAL, "r16 pack: wrong row bytes refused", "%s",
            err_msg());
    t_check(kern_r16_pack(SOV_Q4_0, w, 36, 16, 48) == SOV_EINVAL, "r16 pack: k not a multiple of 32 refused", "%s",
            err_msg());
    t_check(kern_r16_pack(SOV_Q4_1, w, 40, 16, 64) == SOV_EINVAL, "r16 pack: q4_1 refused", "%s", err_msg());
    t_check(kern_r16_pack(SOV_F16, w, 64, 16, 32) == SOV_EINVAL, "r16 pack: f16 refused", "%s", err_msg());
    t_check(memcmp(w, c, sizeof w) == 0, "r16 pack: refused calls leave the weights alone", "changed");
    t_check(kern_r16_pack(SOV_Q4_0, w, 36, 16, 64) == 0 && memcmp(w, c, sizeof w) != 0,
            "r16 pack: 16 rows of 2 blocks packed", "%s", err_msg());
}

int main(void)
{
    /* ref must cover every supported type */
    const kern_ops *ref = kern_ref_ops();
    for (uint32_t t = 0; t < SOV_TYPE_COUNT; t++) {
        const ttype_traits *tr = ttype_get(t);
        if (tr && tr->supported && t != SOV_Q8_1) {
            char name[64];
            snprintf(name, sizeof name, "ref gemm covers %s", tr->name);
            t_check(ref->gemm[t] != NULL, name, "missing");
        }
    }
    for (size_t i = 0; i < sizeof table_names / sizeof table_names[0]; i++) {
        const kern_ops *ops = kern_by_name(table_names[i]);
        if (!ops) {
            printf("SKIP table %s: this CPU lacks it\n", table_names[i]);
            continue;
        }
        check_quant_x(ops);
        for (uint32_t t = 0; t < SOV_TYPE_COUNT; t++)
            if (ops->gemm[t] && ttype_get(t)) {
                check_gemm(ops, t);
                check_tiles(ops, t);
                if (kern_xfmt(t) == KX_Q8_32)
                    check_long_k(ops, t);
                if (ops->gemm_x8[t])
                    check_x8(ops, t);
                if (ops->gemm_r16[t])
                    check_r16(ops, t);
            }
    }
    check_x8_errors();
    check_r16_errors();
    for (uint32_t t = 0; t < SOV_TYPE_COUNT; t++)
        if (kern_r16_type(t)) {
            char name[64];
            snprintf(name, sizeof name, "ref has gemm_r16 for %s", ttype_name(t));
            t_check(kern_ref_ops()->gemm_r16[t] != NULL, name, "missing");
        }
    if (kern_by_name("avx512"))
        for (uint32_t t = 0; t < SOV_TYPE_COUNT; t++)
            if (kern_r16_type(t)) {
                char name[64];
                snprintf(name, sizeof name, "avx512 has gemm_r16 for %s", ttype_name(t));
                t_check(kern_by_name("avx512")->gemm_r16[t] != NULL, name, "missing");
            }
    const kern_ops *best = kern_best();
    if (strcmp(best->name, "ref") != 0)
        for (uint32_t t = 0; t < SOV_TYPE_COUNT; t++)
            if (kern_x8_type(t)) {
                char name[64];
                snprintf(name, sizeof name, "%s has gemm_x8 for %s", best->name, ttype_name(t));
                t_check(best->gemm_x8[t] != NULL, name, "missing");
            }
    printf("kern_best: %s\n", kern_best()->name);
    return t_done();
}
