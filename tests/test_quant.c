/* Quantizers (src/engine/quant.c), checked through the reference
 * dequantizers of kern_ref.c:
 *  - round-trip relative RMSE = rms(dequant(quant(x)) - x) / rms(x) per type
 *    on normal and heavy-tailed data, within a bound per format;
 *  - the scale search beats the plain max-based scale (32-element formats)
 *    and comes within a few % of a brute-force scan of every f16 scale
 *    (q4_0, q8_0);
 *  - exact re-encoding: quantize(dequantize(block)) == block (q8_0, q4_0,
 *    q5_0);
 *  - edge cases: all-zero blocks, one huge value, extreme magnitudes, no
 *    NaN/Inf out;
 *  - the fast f16 row path gives f32_to_fp16's bits;
 *  - quant_rows gives the same bytes for 1 and 3 threads;
 *  - the mix rules (more-bits layers, per-tensor types, fallbacks);
 *  - quantize_gguf of the shared mini256-f16.gguf: per tensor, our error
 *    against the F16 original is within 2 % (+ a small absolute slack) of the
 *    error of llama.cpp's own file of the same type (mini256-<type>.gguf);
 *    the mixes (and q8_0, q6_k) give every tensor llama.cpp's type;
 *  - errors (unreadable tensor type, missing input) leave no output. */
#include "t.h"

#include "base/err.h"
#include "base/pool.h"
#include "format/gguf.h"
#include "format/gguf_write.h"
#include "base/fp16.h"
#include "engine/kern/kern.h"
#include "quant/quant.h"
#include "quant/quantize.h"
#include "format/ttype.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kern_rand.h"

static const kern_ops *ops;

static float rng_normal(void)
{
    double u = ((double)(rng_u64() >> 11) + 0.5) * 0x1p-53, v = (double)(rng_u64() >> 11) * 0x1p-53;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* heavy-tailed: normal / sqrt(|normal| + 0.05), a Student-t-like spread with
 * occasional values 10-20x the typical size (weights with outliers) */
static float rng_heavy(void)
{
    float a = rng_normal(), b = rng_normal();
    return 0.3f * a / sqrtf(fabsf(b) + 0.05f);
}

/* Round-trips x[n] through type; returns relative RMSE, sets *finite. */
static double roundtrip(uint32_t type, const float *x, float *y, unsigned char *buf, int64_t n, bool *finite)
{
    *finite = quant_row(type, x, buf, n) == 0;
    ops->dequant[type](buf, y, n);
    double e = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(y[i]))
            *finite = false;
        e += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        s += (double)x[i] * x[i];
    }
    return s > 0 ? sqrt(e / s) : sqrt(e);
}

/* ---- plain max-based quantizers (the common textbook choice), as error
 * only: the value each element would be reconstructed to ---- */
static double maxbased_err(uint32_t type, const float *x, int64_t n)
{
    double e = 0;
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0, m = 0, mn = xb[0], mx = xb[0];
        for (int i = 0; i < 32; i++) {
            if (fabsf(xb[i]) > amax) {
                amax = fabsf(xb[i]);
                m = xb[i];
            }
            mn = xb[i] < mn ? xb[i] : mn;
            mx = xb[i] > mx ? xb[i] : mx;
        }
        for (int i = 0; i < 32; i++) {
            double y;
            if (type == SOV_Q8_0 || type == SOV_Q4_0 || type == SOV_Q5_0) {
                int lo = type == SOV_Q8_0 ? -127 : type == SOV_Q4_0 ? -8 : -16;
                int hi = type == SOV_Q8_0 ? 127 : -lo - 1;
                float d = fp16_to_f32(f32_to_fp16(type == SOV_Q8_0 ? amax / 127.0f : m / (float)lo));
                double q = d != 0 ? nearbyint(xb[i] / d) : 0;
                q = q < lo ? lo : q > hi ? hi : q;
                y = d * q;
            } else { /* q4_1 / q5_1: [min, max] onto [0, nmax] */
                int nmax = type == SOV_Q4_1 ? 15 : 31;
                float d = fp16_to_f32(f32_to_fp16((mx - mn) / (float)nmax)), m0 = fp16_to_f32(f32_to_fp16(mn));
                double q = d != 0 ? nearbyint((xb[i] - m0) / d) : 0;
                q = q < 0 ? 0 : q > nmax ? nmax : q;
                y = d * q + m0;
            }
            e += (y - xb[i]) * (y - xb[i]);
        }
    }
    return e;
}

/* Smallest squared error of a symmetric block format over a dense scan of
 * f16 scales (both signs, |d| from amax/(1.6 nmax) to amax/(0.5 nmax)),
 * codes nearest and clamped to [lo, hi]. */
static double brute_sym(const float *x, int lo, int hi)
{
    float amax = 0;
    for (int i = 0; i < 32; i++)
        amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    double best = INFINITY;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        for (int k = 0; k <= 1500; k++) {
            float d = fp16_to_f32(f32_to_fp16((float)sgn * amax / ((float)hi * (0.5f + 1.1f * (float)k / 1500.0f))));
            if (d == 0)
                continue;
            double e = 0;
            for (int i = 0; i < 32; i++) {
                double q = nearbyint(x[i] / d);
                q = q < lo ? lo : q > hi ? hi : q;
                e += (x[i] - d * q) * (x[i] - d * q);
            }
            best = e < best ? e : best;
        }
    }
    return best;
}

/* ---- round-trip bounds ----
 * Relative RMSE of a b-bit uniform quantizer is about step / sqrt(12) / rms.
 * Measured values (this implementation, 64K elements, seed fixed) with ~8 %
 * headroom; a truncating instead of rounding quantizer roughly doubles the
 * error, a wrong scale (e.g. amax/8 for q4_0, or a scale-packing bug in the
 * k-quants) costs far more than the headroom. F16 / BF16: half an ulp of an
 * 11-bit / 8-bit mantissa, uniform over the binade: 2^-11/sqrt(3) * ~0.72,
 * 2^-8/sqrt(3) * ~0.72. */
typedef struct bound {
    uint32_t type;
    double normal_pct, heavy_pct; /* bounds */
} bound;

static const bound bounds[] = {
    {SOV_F32, 0.0, 0.0},      /* exact */
    {SOV_F16, 0.023, 0.023},  /* measured 0.0208 / 0.0207 */
    {SOV_BF16, 0.18, 0.18},   /* measured 0.166 / 0.166 */
    {SOV_Q8_0, 0.53, 0.71},   /* measured 0.491 / 0.655: 8-bit codes, step ~amax/127 */
    {SOV_Q6_K, 1.82, 2.30},   /* measured 1.685 / 2.127: 6-bit codes per 16, 8-bit scales */
    {SOV_Q5_1, 3.63, 4.37},   /* measured 3.379 / 4.061: 5-bit codes + offset per 32 */
    {SOV_Q5_K, 3.76, 4.54},   /* measured 3.477 / 4.202: as q5_1 with 6-bit scales/mins */
    {SOV_Q5_0, 4.32, 5.82},   /* measured 4.011 / 5.396: 5-bit signed codes per 32 */
    {SOV_Q4_1, 7.59, 9.14},   /* measured 7.027 / 8.445: 4-bit codes + offset per 32 */
    {SOV_Q4_K, 7.65, 9.22},   /* measured 7.079 / 8.536: as q4_1 with 6-bit scales/mins */
    {SOV_Q4_0, 8.77, 11.57},  /* measured 8.147 / 10.725: 4-bit signed codes per 32 */
};

#define N_RT (64 * 1024)

static void check_roundtrip(void)
{
    static float x[2][N_RT], y[N_RT];
    static unsigned char buf[N_RT * 4];
    rng_state = 0x1234567;
    for (int i = 0; i < N_RT; i++) {
        x[0][i] = rng_normal();
        x[1][i] = rng_heavy();
    }
    const size_t nb = sizeof bounds / sizeof bounds[0];
    double e[sizeof bounds / sizeof bounds[0]][2];
    bool fin[sizeof bounds / sizeof bounds[0]][2];
    printf("INFO round-trip relative RMSE (normal, heavy-tailed):");
    for (size_t k = 0; k < nb; k++) {
        for (int d = 0; d < 2; d++)
            e[k][d] = 100 * roundtrip(bounds[k].type, x[d], y, buf, N_RT, &fin[k][d]);
        printf(" %s %.3f%%/%.3f%%", ttype_name(bounds[k].type), e[k][0], e[k][1]);
    }
    printf("\n");
    for (size_t k = 0; k < nb; k++) {
        const bound *b = &bounds[k];
        char name[80];
        snprintf(name, sizeof name, "round trip %s within %.3g%% / %.3g%%", ttype_name(b->type), b->normal_pct,
                 b->heavy_pct);
        t_check(fin[k][0] && fin[k][1] && e[k][0] <= b->normal_pct && e[k][1] <= b->heavy_pct, name,
                "normal %.4f%%, heavy %.4f%%%s", e[k][0], e[k][1], fin[k][0] && fin[k][1] ? "" : ", non-finite output");
    }

    /* the search does at least as well as the max-based scale, overall */
    const uint32_t t32[] = {SOV_Q8_0, SOV_Q4_0, SOV_Q4_1, SOV_Q5_0, SOV_Q5_1};
    for (size_t k = 0; k < sizeof t32 / sizeof t32[0]; k++) {
        for (int dist = 0; dist < 2; dist++) {
            bool fin;
            double ours = roundtrip(t32[k], x[dist], y, buf, N_RT, &fin);
            double sx = 0;
            for (int i = 0; i < N_RT; i++)
                sx += (double)x[dist][i] * x[dist][i];
            double mb = sqrt(maxbased_err(t32[k], x[dist], N_RT) / sx);
            char name[96];
            snprintf(name, sizeof name, "%s scale search beats the max-based scale (%s data)", ttype_name(t32[k]),
                     dist ? "heavy" : "normal");
            t_check(ours <= mb, name, "search %.4f%%, max-based %.4f%%", 100 * ours, 100 * mb);
            if (dist == 0)
                printf("INFO %s: search %.3f%% vs max-based %.3f%%\n", ttype_name(t32[k]), 100 * ours, 100 * mb);
        }
    }

    /* within a few % of the best f16 scale found by brute force */
    const struct {
        uint32_t type;
        int lo, hi;
        double ratio; /* bound on sqrt(sum err ours / sum err brute); measured ~1.005 / ~1.05 */
    } bf[] = {{SOV_Q4_0, -8, 7, 1.02}, {SOV_Q8_0, -127, 127, 1.07}};
    for (size_t k = 0; k < 2; k++) {
        for (int dist = 0; dist < 2; dist++) {
            double eo = 0, eb = 0;
            unsigned char blk[34];
            float yb[32];
            for (int b = 0; b < 256; b++) {
                const float *xb = x[dist] + 32 * b;
                quant_row(bf[k].type, xb, blk, 32);
                ops->dequant[bf[k].type](blk, yb, 32);
                for (int i = 0; i < 32; i++)
                    eo += ((double)yb[i] - xb[i]) * ((double)yb[i] - xb[i]);
                eb += brute_sym(xb, bf[k].lo, bf[k].hi);
            }
            double r = sqrt(eo / eb);
            char name[96];
            snprintf(name, sizeof name, "%s error within %.2fx of brute-force best scale (%s, 256 blocks)",
                     ttype_name(bf[k].type), bf[k].ratio, dist ? "heavy" : "normal");
            printf("INFO %s vs brute force (%s): error ratio %.4f\n", ttype_name(bf[k].type), dist ? "heavy" : "normal", r);
            t_check(r <= bf[k].ratio && r >= 0.999, name, "ratio %.4f", r);
        }
    }
}

/* ---- exact re-encoding ---- */
static void check_reencode(void)
{
    rng_state = 0xabcdef;
    int bad[3] = {0, 0, 0}, first[3] = {-1, -1, -1};
    const uint32_t types[3] = {SOV_Q8_0, SOV_Q4_0, SOV_Q5_0};
    for (int b = 0; b < 3000; b++) {
        for (int k = 0; k < 3; k++) {
            unsigned char blk[34], again[34];
            float y[32];
            /* d: a normal f16 of magnitude 1e-4..10 (q8_0: positive, its canonical sign) */
            float mag = powf(10.0f, rng_uniform(-4.0f, 1.0f));
            float d = fp16_to_f32(f32_to_fp16(k == 0 || (rng_u64() & 1) ? mag : -mag));
            put_f16(blk, d);
            int size = k == 0 ? 34 : k == 1 ? 18 : 22;
            for (int i = 2; i < size; i++)
                blk[i] = (unsigned char)rng_u64();
            /* make the extreme code occur (the block's range is used, and the
             * encoding is unique) */
            int at = (int)(rng_u64() % 16);
            if (k == 0) {
                if ((signed char)blk[2] == -128)
                    blk[2] = 0x81; /* q8_0 codes are -127..127 */
                for (int i = 2; i < 34; i++)
                    if ((signed char)blk[i] == -128)
                        blk[i] = 0;
                blk[2 + at] = (rng_u64() & 1) ? 127 : (unsigned char)(signed char)-127;
            } else if (k == 1) {
                /* code 0 (-8) makes the encoding unique: without it, (-d, -codes)
                 * would encode the same values */
                blk[2 + at] &= 0xf0;
            } else {
                /* q5_0: force code 0 (-16) on element `at` (nibble 0, qh bit 0) */
                blk[6 + at] &= 0xf0;
                blk[2 + at / 8] &= (unsigned char)~(1u << (at % 8));
            }
            ops->dequant[types[k]](blk, y, 32);
            quant_row(types[k], y, again, 32);
            if (memcmp(blk, again, (size_t)size) != 0 && bad[k]++ == 0)
                first[k] = b;
        }
    }
    for (int k = 0; k < 3; k++) {
        char name[80];
        snprintf(name, sizeof name, "%s: quantize(dequantize(block)) == block (3000 blocks)", ttype_name(types[k]));
        t_check(bad[k] == 0, name, "%d blocks differ, first #%d", bad[k], first[k]);
    }
}

/* ---- edge cases ---- */
static void check_edges(void)
{
    const uint32_t types[] = {SOV_F16, SOV_BF16, SOV_Q8_0, SOV_Q4_0, SOV_Q4_1, SOV_Q5_0,
                              SOV_Q5_1, SOV_Q4_K, SOV_Q5_K, SOV_Q6_K};
    static float x[QK_K], y[QK_K];
    static unsigned char buf[QK_K * 4];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const uint32_t t = types[k];
        char name[96], why[160] = "";
        bool ok = true;
        /* all zero */
        memset(x, 0, sizeof x);
        quant_row(t, x, buf, QK_K);
        ops->dequant[t](buf, y, QK_K);
        for (int i = 0; i < QK_K && ok; i++)
            if (y[i] != 0.0f) {
                ok = false;
                snprintf(why, sizeof why, "zero block: y[%d] = %g", i, y[i]);
            }
        /* one huge value among normal ones: finite, the huge one kept within 1 % */
        rng_state = 99 + k;
        for (int i = 0; i < QK_K; i++)
            x[i] = rng_normal() * 0.02f;
        x[77] = 1000.0f;
        quant_row(t, x, buf, QK_K);
        ops->dequant[t](buf, y, QK_K);
        for (int i = 0; i < QK_K && ok; i++)
            if (!isfinite(y[i])) {
                ok = false;
                snprintf(why, sizeof why, "huge value: y[%d] = %g", i, y[i]);
            }
        if (ok && fabsf(y[77] - 1000.0f) > 10.0f) {
            ok = false;
            snprintf(why, sizeof why, "huge value reconstructed as %g", y[77]);
        }
        /* extremes: beyond the f16 range, and denormal-small: finite output */
        for (int i = 0; i < QK_K; i++)
            x[i] = (i % 3 ? 1e30f : -3e29f) * (float)(i % 7);
        quant_row(t, x, buf, QK_K);
        ops->dequant[t](buf, y, QK_K);
        for (int i = 0; i < QK_K && ok; i++)
            if (!isfinite(y[i]) && t != SOV_F16) { /* f16 itself overflows to inf, as it must */
                ok = false;
                snprintf(why, sizeof why, "1e30 inputs: y[%d] = %g", i, y[i]);
            }
        for (int i = 0; i < QK_K; i++)
            x[i] = (i % 2 ? 1e-30f : -2e-31f) * (float)(i % 5);
        quant_row(t, x, buf, QK_K);
        ops->dequant[t](buf, y, QK_K);
        for (int i = 0; i < QK_K && ok; i++)
            if (!isfinite(y[i]) || fabsf(y[i]) > 1e-6f) {
                ok = false;
                snprintf(why, sizeof why, "1e-30 inputs: y[%d] = %g", i, y[i]);
            }
        /* constant block (positive and negative) */
        for (int s = -1; s <= 1 && ok; s += 2) {
            for (int i = 0; i < QK_K; i++)
                x[i] = 0.37f * (float)s;
            quant_row(t, x, buf, QK_K);
            ops->dequant[t](buf, y, QK_K);
            for (int i = 0; i < QK_K && ok; i++)
                if (!(fabsf(y[i] - x[i]) <= 0.01f)) {
                    ok = false;
                    snprintf(why, sizeof why, "constant %g: y[%d] = %g", x[i], i, y[i]);
                }
        }
        snprintf(name, sizeof name, "%s edge cases (zeros, huge value, 1e30, 1e-30, constant)", ttype_name(t));
        t_check(ok, name, "%s", why);
    }
    /* argument checks */
    float z[48] = {0};
    t_check(quant_row(SOV_Q4_0, z, buf, 48) == SOV_EINVAL && quant_row(SOV_Q2_K, z, buf, 256) == SOV_EINVAL &&
                quant_row(SOV_Q8_1, z, buf, 32) == SOV_EINVAL,
            "quant_row rejects partial blocks and unsupported types", "%s", err_msg());
}

/* ---- f16 fast path ---- */
static void check_f16(void)
{
    enum { CHUNK = 4096 };
    static float x[CHUNK];
    static uint16_t h[CHUNK];
    uint64_t bad = 0, n = 0;
    uint32_t first = 0;
    /* every 1021st bit pattern (all exponents, both signs) plus the borders */
    for (uint64_t base = 0; base < (1ull << 32); base += (uint64_t)CHUNK * 1021) {
        for (int i = 0; i < CHUNK; i++) {
            uint32_t b = (uint32_t)(base + (uint64_t)i * 1021);
            if (i < 8) {
                static const uint32_t special[8] = {0x38800000, 0x387fffff, 0x477fefff, 0x477ff000,
                                                    0x47800000, 0x477fffff, 0xb8800000, 0x7f800000};
                b = special[i];
            }
            memcpy(&x[i], &b, 4);
        }
        quant_row(SOV_F16, x, h, CHUNK);
        for (int i = 0; i < CHUNK; i++, n++) {
            uint16_t r = f32_to_fp16(x[i]);
            if (r != h[i] && !(isnan(x[i]) && (h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff))) {
                if (!bad++)
                    memcpy(&first, &x[i], 4);
            }
        }
    }
    t_check(bad == 0, "f16 rows: same bits as f32_to_fp16", "%llu of %llu differ, first 0x%08x",
            (unsigned long long)bad, (unsigned long long)n, first);
}

/* ---- quant_rows threads ---- */
static void src_fn(void *ctx, int64_t row, float *out, int64_t n)
{
    const float *m = ctx;
    memcpy(out, m + row * n, (size_t)n * sizeof *out);
}

static void check_rows(void)
{
    enum { R = 37, C = 512 };
    static float m[R * C];
    static unsigned char a[R * C * 2], b[R * C * 2];
    rng_state = 4242;
    for (int i = 0; i < R * C; i++)
        m[i] = rng_normal();
    pool *p = NULL;
    bool ok = pool_new(&p, 3) == 0;
    const uint32_t types[] = {SOV_Q4_K, SOV_Q8_0, SOV_F16};
    for (size_t k = 0; ok && k < 3; k++) {
        uint64_t rb;
        ttype_nbytes(types[k], C, &rb);
        memset(a, 1, sizeof a);
        memset(b, 2, sizeof b);
        ok = quant_rows(NULL, types[k], R, C, src_fn, m, a) == 0 && quant_rows(p, types[k], R, C, src_fn, m, b) == 0 &&
             memcmp(a, b, (size_t)(R * rb)) == 0;
        for (int r = 0; ok && r < R; r++) { /* and equal to quant_row row by row */
            unsigned char one[C * 2];
            quant_row(types[k], m + r * C, one, C);
            ok = memcmp(one, a + r * rb, (size_t)rb) == 0;
        }
    }
    pool_free(p);
    t_check(ok, "quant_rows: 1 and 3 threads give the bytes of quant_row", "%s", err_msg());
    t_check(quant_rows(NULL, SOV_Q4_K, 2, 100, src_fn, m, a) == SOV_EINVAL, "quant_rows rejects a partial block",
            "accepted 100 columns for q4_k");
}

/* ---- mixes ---- */
static void check_mixes(void)
{
    /* more-bits layers: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 */
    char got[256] = "";
    for (int i = 0; i < 22; i++)
        if (quant_more_bits(i, 22))
            snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", i);
    t_check(!strcmp(got, "0 1 4 7 10 13 16 19 20 21 "), "more-bits layers of 22", "got %s", got);
    got[0] = 0;
    for (int i = 0; i < 32; i++)
        if (quant_more_bits(i, 32))
            snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", i);
    t_check(!strcmp(got, "0 1 2 3 6 9 12 15 18 21 24 27 28 29 30 31 "), "more-bits layers of 32", "got %s", got);

    const quant_mix *m = quant_mix_find("Q4_K_M"), *q8 = quant_mix_find("q8_0");
    bool ok = m && q8 && m->base == SOV_Q4_K && m->more == SOV_Q6_K && m->ftype == 15 && q8->ftype == 7 &&
              !quant_mix_find("q3_k") && !quant_mix_find("") && quant_mix_find("f16")->ftype == 1 &&
              quant_mix_find("q5_k_m")->ftype == 17 && quant_mix_find("bf16")->ftype == 32;
    t_check(ok, "quant_mix_find names and file types", "lookup mismatch");
    ok = quant_pick_type(m, "output.weight", 2, 4) == SOV_Q6_K && quant_pick_type(m, "token_embd.weight", 2, 4) == SOV_Q4_K &&
         quant_pick_type(m, "blk.2.attn_v.weight", 2, 4) == SOV_Q6_K &&
         quant_pick_type(m, "blk.1.attn_v.weight", 2, 4) == SOV_Q4_K &&
         quant_pick_type(m, "blk.3.ffn_down.weight", 2, 4) == SOV_Q6_K &&
         quant_pick_type(m, "blk.3.ffn_up.weight", 2, 4) == SOV_Q4_K &&
         quant_pick_type(m, "blk.3.attn_norm.weight", 1, 4) == SOV_F32 &&
         quant_pick_type(m, "xblk.2.attn_v.weight", 2, 4) == SOV_Q4_K &&
         quant_pick_type(q8, "output.weight", 2, 4) == SOV_Q8_0;
    t_check(ok, "quant_pick_type: q4_k_m rule, norms f32, single types pure", "wrong type");
    ok = quant_fit_type(SOV_Q4_K, 256) == SOV_Q4_K && quant_fit_type(SOV_Q4_K, 64) == SOV_Q5_0 &&
         quant_fit_type(SOV_Q5_K, 96) == SOV_Q5_1 && quant_fit_type(SOV_Q6_K, 64) == SOV_Q8_0 &&
         quant_fit_type(SOV_Q4_K, 172) == SOV_F16 && quant_fit_type(SOV_Q8_0, 172) == SOV_F16 &&
         quant_fit_type(SOV_F32, 7) == SOV_F32 && quant_fit_type(SOV_BF16, 7) == SOV_BF16;
    t_check(ok, "quant_fit_type fallbacks", "wrong fallback");
}

/* ---- quantize_gguf vs llama.cpp's files ---- */

/* Relative RMSE of tensor t (any readable type) against reference ref (F16/F32). */
static double tensor_err(const gguf_tensor *t, const gguf_tensor *ref)
{
    int64_t n = gguf_tensor_nelements(t);
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
    double e = -1;
    if (a && b) {
        ops->dequant[t->type](t->data, a, n);
        ops->dequant[ref->type](ref->data, b, n);
        double s = 0;
        e = 0;
        for (int64_t i = 0; i < n; i++) {
            e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            s += (double)b[i] * b[i];
        }
        e = s > 0 ? sqrt(e / s) : sqrt(e);
    }
    free(a);
    free(b);
    return e;
}

static void check_vs_llamacpp(void)
{
    gguf *src = NULL;
    if (!t_check(gguf_open(&src, t_shared("models/quant/mini256-f16.gguf")) == 0, "mini256-f16.gguf opens", "%s",
                 err_msg()))
        return;
    static const char *names[] = {"q8_0", "q6_k", "q5_k_m", "q5_1", "q5_0", "q4_k_m", "q4_1", "q4_0"};
    char out[64];
    snprintf(out, sizeof out, "/tmp/sov-test-quant-%d.gguf", (int)getpid());
    pool *p = NULL;
    pool_new(&p, 2);
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char rel[96], name[128], why[256] = "";
        snprintf(rel, sizeof rel, "models/quant/mini256-%s.gguf", names[k]);
        quantize_opts o = {.mix = quant_mix_find(names[k]), .pool = p, .quiet = true};
        quantize_stats st;
        gguf *ref = NULL, *ours = NULL;
        snprintf(name, sizeof name, "quantize mini256-f16 to %s: per tensor within 1.02x of llama.cpp's error", names[k]);
        if (quantize_gguf(t_shared("models/quant/mini256-f16.gguf"), out, &o, &st) || gguf_open(&ours, out) ||
            gguf_open(&ref, t_shared(rel))) {
            t_check(false, name, "%s", err_msg());
            gguf_close(ours);
            gguf_close(ref);
            continue;
        }
        /* the mixes, and the types llama.cpp keeps pure (q8_0, q6_k), give the
         * same type per tensor as llama.cpp (q4_0 etc.: llama.cpp uses q6_k for
         * output.weight, sov keeps single types pure) */
        bool skip_types = strcmp(names[k], "q8_0") && strcmp(names[k], "q6_k") && strcmp(names[k], "q4_k_m") &&
                          strcmp(names[k], "q5_k_m");
        char type_diff[160] = "";
        for (uint64_t i = 0; !skip_types && i < ours->n_tensors; i++) {
            const gguf_tensor *t = &ours->tensors[i];
            char tn[96];
            gguf_str_copy(t->name, tn, sizeof tn);
            const gguf_tensor *r = gguf_find_tensor(ref, tn);
            if ((!r || r->type != t->type) && !type_diff[0])
                snprintf(type_diff, sizeof type_diff, "%s: ours %s, llama.cpp %s", tn, ttype_name(t->type),
                         r ? ttype_name(r->type) : "missing");
        }
        if (!skip_types) {
            snprintf(name, sizeof name, "quantize mini256-f16 to %s: every tensor has llama.cpp's type", names[k]);
            t_check(!type_diff[0] && ours->n_tensors == ref->n_tensors, name, "%s", type_diff);
            snprintf(name, sizeof name, "quantize mini256-f16 to %s: per tensor within 1.02x of llama.cpp's error",
                     names[k]);
        }
        int compared = 0, worse = 0;
        double worst_ours = 0, worst_ref = 0, worst_ratio = 0;
        for (uint64_t i = 0; i < ours->n_tensors; i++) {
            const gguf_tensor *t = &ours->tensors[i];
            char tn[96];
            gguf_str_copy(t->name, tn, sizeof tn);
            const gguf_tensor *r = gguf_find_tensor(ref, tn), *s = gguf_find_tensor(src, tn);
            if (!r || !s || r->type != t->type || t->type == SOV_F32)
                continue;
            double eo = tensor_err(t, s), er = tensor_err(r, s);
            compared++;
            worst_ours = eo > worst_ours ? eo : worst_ours;
            worst_ref = er > worst_ref ? er : worst_ref;
            worst_ratio = eo / er > worst_ratio ? eo / er : worst_ratio;
            if (eo > 1.02 * er + 1e-5 && !worse++)
                snprintf(why, sizeof why, "%s (%s): ours %.4f%%, llama.cpp %.4f%%", tn, ttype_name(t->type), 100 * eo,
                         100 * er);
        }
        printf("INFO %s: %d tensors compared, worst ours %.3f%% vs llama.cpp %.3f%%, worst ratio %.3f\n", names[k],
               compared, 100 * worst_ours, 100 * worst_ref, worst_ratio);
        t_check(compared >= 25 && worse == 0, name, "%d of %d tensors worse: %s", worse, compared, why);
        gguf_close(ours);
        gguf_close(ref);
    }
    remove(out);
    pool_free(p);
    gguf_close(src);
}

/* Errors leave no output behind and do not touch an existing OUT. */
static void check_quantize_errors(void)
{
    char in[64], out[64], tmp[80];
    snprintf(in, sizeof in, "/tmp/sov-test-quant-in-%d.gguf", (int)getpid());
    snprintf(out, sizeof out, "/tmp/sov-test-quant-out-%d.gguf", (int)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    /* a file with a q8_1 tensor (a valid GGUF type sov cannot dequantize) */
    gguf_writer *w = NULL;
    static unsigned char blocks[2 * 40];
    int64_t ne[2] = {32, 2};
    bool built = gguf_writer_new(&w) == 0 && gguf_w_set_str(w, "general.architecture", "llama") == 0 &&
                 gguf_w_add_tensor(w, "blk.0.attn_q.weight", SOV_Q8_1, 2, ne, blocks, sizeof blocks) == 0 &&
                 gguf_w_write(w, in) == 0;
    gguf_writer_free(w);
    FILE *f = fopen(out, "wb");
    if (f) {
        fputs("previous", f);
        fclose(f);
    }
    quantize_opts o = {.mix = quant_mix_find("q4_0"), .quiet = true};
    int rc = built ? quantize_gguf(in, out, &o, NULL) : -100;
    char keep[16] = "";
    f = fopen(out, "rb");
    if (f) {
        if (!fgets(keep, sizeof keep, f))
            keep[0] = 0;
        fclose(f);
    }
    t_check(rc == SOV_EUNSUPPORTED && strstr(err_msg(), "q8_1") && !strcmp(keep, "previous") && access(tmp, F_OK) != 0,
            "quantize: unreadable tensor type is an error, OUT untouched, no .tmp left", "rc %d (%s), OUT '%s'", rc,
            err_msg(), keep);
    rc = quantize_gguf("/nonexistent/x.gguf", out, &o, NULL);
    t_check(rc == SOV_EIO || rc == SOV_ENOTFOUND, "quantize: missing input is an error", "rc %d (%s)", rc, err_msg());
    remove(in);
    remove(out);
}

int main(void)
{
    ops = kern_ref_ops();
    check_roundtrip();
    check_reencode();
    check_edges();
    check_f16();
    check_rows();
    check_mixes();
    check_vs_llamacpp();
    check_quantize_errors();
    return t_done();
}
