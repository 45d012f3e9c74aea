#include "quant.h"

#include "../base/err.h"
#include "../base/fp16.h"
#include "../format/ttype.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- scalar helpers ---------------------------------------------------- */

#define F16_MAX 65504.0f
#define MAGIC 12582912.0f /* 1.5 * 2^23: adding and subtracting it rounds to an integer */

/* round-to-nearest-even of v, exact for |v| < 2^22 (callers clamp first) */
static inline float rnd(float v) { return (v + MAGIC) - MAGIC; }

/* v clamped to [lo, hi]; NaN gives lo (so codes derived from it are in range) */
static inline float clampf(float v, float lo, float hi)
{
    v = v > lo ? v : lo;
    return v < hi ? v : hi;
}

/* Integer code nearest to v, clamped to [lo, hi] (|lo|, |hi| < 2^22). The
 * clamp comes first, so a NaN or huge v still gives a code in range. */
static inline int qcode(float v, int lo, int hi) { return (int)rnd(clampf(v, (float)lo, (float)hi)); }

/* f16 bits of f, clamped to the finite f16 range */
static inline uint16_t h16(float f) { return f32_to_fp16(clampf(f, -F16_MAX, F16_MAX)); }

/* f rounded to the nearest f16 value (clamped) */
static inline float r16(float f) { return fp16_to_f32(h16(f)); }

static inline void put_h16(uint8_t *p, float f)
{
    uint16_t h = h16(f);
    memcpy(p, &h, 2);
}

/* ---- scale searches ---------------------------------------------------- */

/* Sums are kept in 8 lanes (element i in lane i % 8) and added in a fixed
 * order, so the loops vectorize without reassociation and every build gives
 * the same bytes. Block lengths are multiples of 8. */
static inline float sum8(const float *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* Candidate offsets of the code that the largest element maps to (see
 * fit_sym / fit_asym). 0 is the plain max-based scale; negative values
 * widen the steps, positive ones narrow them (clipping the largest element
 * a little). Chosen by measuring against a dense brute-force scan
 * (tests/test_quant.c checks the result stays within a few % of it). */
static const float D_Q8[] = {0.0f, -0.25f, -0.5f, -0.75f, -1.0f, -1.5f, -2.0f, 0.25f, 0.5f};
static const float D_SYM[] = {0.0f, -0.5f, -1.0f, 0.5f};            /* q4_0, q5_0 (x2 sides) */
static const float D_ASYM[] = {0.0f, -0.4f, -0.8f, -1.2f, 0.4f};     /* q4_1, q5_1 */
static const float D_K[] = {0.0f, -0.5f, -1.0f, -1.5f, 0.5f, 1.0f}; /* k-quant sub-blocks */
#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Scale s for x[0..n) ~= s * q with integer codes q = clamp(round(x/s),
 * -nlo, nhi). Each candidate maps the element m of largest magnitude to
 * code -(nlo + d) or (nhi + d) for d in deltas[nd] (only the latter, with
 * m = |m|, when nlo == nhi: the two are mirror images and s > 0 is the
 * canonical choice), rounds the codes, and
 * refits s = sum(x q) / sum(q q) by least squares; the candidate with the
 * smallest squared error (largest sum(xq)^2 / sum(qq)) wins. Returns 0 for
 * an all-zero block. */
static float fit_sym(const float *x, int n, int nlo, int nhi, const float *deltas, int nd)
{
    float am[8] = {0};
    for (int i = 0; i < n; i += 8)
        for (int k = 0; k < 8; k++)
            am[k] = fabsf(x[i + k]) > am[k] ? fabsf(x[i + k]) : am[k];
    float amax = am[0], m = 0.0f;
    for (int k = 1; k < 8; k++)
        amax = am[k] > amax ? am[k] : amax;
    if (!(amax > 0.0f))
        return 0.0f;
    for (int i = 0; i < n; i++) /* the first element of largest magnitude */
        if (fabsf(x[i]) == amax) {
            m = x[i];
            break;
        }
    const float lo = (float)-nlo, hi = (float)nhi;
    if (nlo == nhi) /* symmetric: keep the scale positive (canonical bytes) */
        m = amax;
    float best_s = m / hi, best = -1.0f;
    /* with a symmetric code range both sides give the same error */
    for (int side = nlo == nhi; side < 2; side++) {
        for (int k = 0; k < nd; k++) {
            const float is = (side ? (float)nhi + deltas[k] : -((float)nlo + deltas[k])) / m;
            float axq[8] = {0}, aqq[8] = {0};
            for (int i = 0; i < n; i += 8) {
                for (int k = 0; k < 8; k++) {
                    float q = rnd(clampf(x[i + k] * is, lo, hi));
                    axq[k] += x[i + k] * q;
                    aqq[k] += q * q;
                }
            }
            float sxq = sum8(axq), sqq = sum8(aqq);
            if (sqq > 0.0f && sxq * sxq / sqq > best) {
                best = sxq * sxq / sqq;
                best_s = sxq / sqq;
            }
        }
    }
    return best_s;
}

/* Least-squares fit of x ~= s*q + b for fixed codes (sums over n elements);
 * with nonpos_b the offset is constrained to b <= 0 (the k-quants store
 * -b as an unsigned min). Returns the squared error minus sum(x^2). */
static float ls_affine(float sx, float sq, float sqq, float sxq, int n, bool nonpos_b, float *s, float *b)
{
    const float fn = (float)n;
    float det = fn * sqq - sq * sq;
    float ss = 0.0f, bb = sx / fn;
    if (det > 0.0f) {
        ss = (fn * sxq - sq * sx) / det;
        bb = (sx - ss * sq) / fn;
    }
    if (nonpos_b && bb > 0.0f) {
        bb = 0.0f;
        ss = sqq > 0.0f ? sxq / sqq : 0.0f;
    }
    if (ss < 0.0f) { /* only in degenerate blocks: fall back to a constant */
        ss = 0.0f;
        bb = sx / fn;
        if (nonpos_b && bb > 0.0f)
            bb = 0.0f;
    }
    *s = ss;
    *b = bb;
    return ss * ss * sqq + fn * bb * bb + 2.0f * ss * bb * sq - 2.0f * ss * sxq - 2.0f * bb * sx;
}

/* Scale s >= 0 and offset b for x[0..n) ~= s * q + b with codes
 * q = clamp(round((x - b) / s), 0, nmax). Candidates map [min, max] onto
 * [0, nmax + d] for d in deltas[nd]; each candidate's codes are refit by
 * least squares in (s, b), and the best is refined once more (codes
 * recomputed from the fitted s, b and refit). nonpos_b: b <= 0 (min taken as
 * min(x, 0)), as the k-quants require. */
static void fit_asym(const float *x, int n, int nmax, bool nonpos_b, const float *deltas, int nd, float *s_out,
                     float *b_out)
{
    float mn = x[0], mx = x[0], sx = 0.0f;
    for (int i = 0; i < n; i++) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
        sx += x[i];
    }
    if (nonpos_b && mn > 0.0f)
        mn = 0.0f;
    if (!(mx > mn)) { /* constant block (or NaN) */
        *s_out = 0.0f;
        *b_out = mn;
        return;
    }
    const float fmax = (float)nmax;
    float best = INFINITY, bs = (mx - mn) / fmax, bb = mn;
    for (int k = 0; k <= nd; k++) {
        float is, off;
        if (k < nd) {
            is = ((float)nmax + deltas[k]) / (mx - mn);
            off = mn;
        } else { /* refinement of the best candidate */
            if (!(bs > 0.0f))
                break;
            is = 1.0f / bs;
            off = bb;
        }
        float aq[8] = {0}, aqq[8] = {0}, axq[8] = {0};
        for (int i = 0; i < n; i += 8) {
            for (int k = 0; k < 8; k++) {
                float q = rnd(clampf((x[i + k] - off) * is, 0.0f, fmax));
                aq[k] += q;
                aqq[k] += q * q;
                axq[k] += x[i + k] * q;
            }
        }
        float sq = sum8(aq), sqq = sum8(aqq), sxq = sum8(axq);
        float s, b;
        float e = ls_affine(sx, sq, sqq, sxq, n, nonpos_b, &s, &b);
        if (e < best) {
            best = e;
            bs = s;
            bb = b;
        }
    }
    *s_out = bs;
    *b_out = bb;
}

/* ---- 32-element formats ------------------------------------------------ */

/* q4_0 block (18 B): f16 d | qs[16], element j code c = q + 8 in the low
 * nibble of qs[j] (j < 16) or the high nibble of qs[j - 16]. */
static void blk_q4_0(const float *x, uint8_t *b)
{
    float d = r16(fit_sym(x, 32, 8, 7, D_SYM, NELEM(D_SYM)));
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_h16(b, d);
    for (int j = 0; j < 16; j++) {
        int c0 = qcode(x[j] * id, -8, 7) + 8, c1 = qcode(x[j + 16] * id, -8, 7) + 8;
        b[2 + j] = (uint8_t)(c0 | c1 << 4);
    }
}

/* q4_1 block (20 B): f16 d | f16 m | qs[16]; y = d * c + m, c in 0..15. */
static void blk_q4_1(const float *x, uint8_t *b)
{
    float s, o;
    fit_asym(x, 32, 15, false, D_ASYM, NELEM(D_ASYM), &s, &o);
    float d = r16(s), m = r16(o);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_h16(b, d);
    put_h16(b + 2, m);
    for (int j = 0; j < 16; j++) {
        int c0 = qcode((x[j] - m) * id, 0, 15), c1 = qcode((x[j + 16] - m) * id, 0, 15);
        b[4 + j] = (uint8_t)(c0 | c1 << 4);
    }
}

/* Packs 32 5-bit codes: low nibbles as q4_0's qs, bit 4 of code i in bit i
 * of the little-endian u32 qh. */
static void pack5(const int *c, uint8_t *qh, uint8_t *qs)
{
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((c[j] & 15) | (c[j + 16] & 15) << 4);
        h |= (uint32_t)(c[j] >> 4) << j;
        h |= (uint32_t)(c[j + 16] >> 4) << (j + 16);
    }
    qh[0] = (uint8_t)h;
    qh[1] = (uint8_t)(h >> 8);
    qh[2] = (uint8_t)(h >> 16);
    qh[3] = (uint8_t)(h >> 24);
}

/* q5_0 block (22 B): f16 d | u32 qh | qs[16]; y = d * (c - 16), c in 0..31. */
static void blk_q5_0(const float *x, uint8_t *b)
{
    float d = r16(fit_sym(x, 32, 16, 15, D_SYM, NELEM(D_SYM)));
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    int c[32];
    for (int j = 0; j < 32; j++)
        c[j] = qcode(x[j] * id, -16, 15) + 16;
    put_h16(b, d);
    pack5(c, b + 2, b + 6);
}

/* q5_1 block (24 B): f16 d | f16 m | u32 qh | qs[16]; y = d * c + m. */
static void blk_q5_1(const float *x, uint8_t *b)
{
    float s, o;
    fit_asym(x, 32, 31, false, D_ASYM, NELEM(D_ASYM), &s, &o);
    float d = r16(s), m = r16(o);
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    int c[32];
    for (int j = 0; j < 32; j++)
        c[j] = qcode((x[j] - m) * id, 0, 31);
    put_h16(b, d);
    put_h16(b + 2, m);
    pack5(c, b + 4, b + 8);
}

/* q8_0 block (34 B): f16 d | i8 qs[32]; y = d * q, q in -127..127. */
static void blk_q8_0(const float *x, uint8_t *b)
{
    float d = r16(fit_sym(x, 32, 127, 127, D_Q8, NELEM(D_Q8)));
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_h16(b, d);
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)qcode(x[j] * id, -127, 127);
}

/* ---- k-quants (256-element super-blocks) --------------------------------- */

/* Per-sub-block sums of the codes c and of x for the least-squares refits. */
typedef struct ksums {
    float q[16], qq[16], xq[16]; /* sum c, sum c^2, sum x c per sub-block */
} ksums;

/* Codes of the q4_k / q5_k super-block x[256] for f16 d, dmin and 6-bit
 * sc[8], mn[8]: sub-block j (32 elements) has y = d*sc[j]*c - dmin*mn[j],
 * c in 0..nmax. Writes c to L[256] and the sums to *ks; returns the squared
 * error. */
static float k4_codes(const float *x, float d, float dmin, const int *sc, const int *mn, int nmax, uint8_t *L,
                      ksums *ks)
{
    const float fmax = (float)nmax;
    float err = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float dl = d * (float)sc[j], ml = dmin * (float)mn[j];
        const float id = dl != 0.0f ? 1.0f / dl : 0.0f;
        const float *xb = x + 32 * j;
        uint8_t *lb = L + 32 * j;
        float ae[8] = {0}, aq[8] = {0}, aqq[8] = {0}, axq[8] = {0};
        for (int i = 0; i < 32; i += 8) {
            for (int k = 0; k < 8; k++) {
                const float xi = xb[i + k], c = rnd(clampf((xi + ml) * id, 0.0f, fmax));
                const float e = xi - (dl * c - ml);
                lb[i + k] = (uint8_t)(int)c;
                ae[k] += e * e;
                aq[k] += c;
                aqq[k] += c * c;
                axq[k] += xi * c;
            }
        }
        err += sum8(ae);
        ks->q[j] = sum8(aq);
        ks->qq[j] = sum8(aqq);
        ks->xq[j] = sum8(axq);
    }
    return err;
}

/* Squared error of 32 elements coded as dl * c - ml, c = nearest in 0..nmax. */
static float k4_sub_err(const float *x, float dl, float ml, int nmax)
{
    const float id = dl != 0.0f ? 1.0f / dl : 0.0f, fmax = (float)nmax;
    float acc[8] = {0};
    for (int i = 0; i < 32; i += 8) {
        for (int k = 0; k < 8; k++) {
            float c = rnd(clampf((x[i + k] + ml) * id, 0.0f, fmax));
            float e = x[i + k] - (dl * c - ml);
            acc[k] += e * e;
        }
    }
    return sum8(acc);
}

/* Shared search of q4_k (nmax 15) and q5_k (nmax 31): per-sub-block (scale,
 * min) by fit_asym, 6-bit scales/mins against d = max scale / 63 and
 * dmin = max min / 63, then d/dmin refit by least squares over the
 * super-block with the integer scales and codes fixed (kept if better). */
static void k4_search(const float *x, int nmax, float *d_out, float *dmin_out, int *sc, int *mn, uint8_t *L)
{
    float s[8], m[8], smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < 8; j++) {
        float b;
        fit_asym(x + 32 * j, 32, nmax, true, D_K, NELEM(D_K), &s[j], &b);
        m[j] = -b;
        smax = s[j] > smax ? s[j] : smax;
        mmax = m[j] > mmax ? m[j] : mmax;
    }
    float d = r16(smax / 63.0f), dmin = r16(mmax / 63.0f);
    for (int j = 0; j < 8; j++) {
        /* the 6-bit scale and min: floor or ceil of each, whichever pair
         * reconstructs the sub-block best */
        int s0 = d > 0.0f ? qcode(floorf(clampf(s[j] / d, 0.0f, 63.0f)), 0, 63) : 0;
        int m0 = dmin > 0.0f ? qcode(floorf(clampf(m[j] / dmin, 0.0f, 63.0f)), 0, 63) : 0;
        float best = INFINITY;
        sc[j] = s0;
        mn[j] = m0;
        for (int a = s0; a <= s0 + 1 && a <= 63; a++) {
            for (int c = m0; c <= m0 + 1 && c <= 63; c++) {
                float e = k4_sub_err(x + 32 * j, d * (float)a, dmin * (float)c, nmax);
                if (e < best) {
                    best = e;
                    sc[j] = a;
                    mn[j] = c;
                }
            }
        }
    }
    ksums ks, ks2;
    float sx[8];
    for (int j = 0; j < 8; j++) {
        float a[8] = {0};
        for (int i = 0; i < 32; i += 8)
            for (int k = 0; k < 8; k++)
                a[k] += x[32 * j + i + k];
        sx[j] = sum8(a);
    }
    float err = k4_codes(x, d, dmin, sc, mn, nmax, L, &ks);
    for (int it = 0; it < 2; it++) {
        /* x ~= d * a - dmin * c with a = sc[j]*code, c = mn[j]: normal
         * equations from the per-sub-block sums */
        float saa = 0, sac = 0, scc = 0, sxa = 0, sxc = 0;
        for (int j = 0; j < 8; j++) {
            const float s = (float)sc[j], c = (float)mn[j];
            saa += s * s * ks.qq[j];
            sac += s * c * ks.q[j];
            scc += 32.0f * c * c;
            sxa += s * ks.xq[j];
            sxc += c * sx[j];
        }
        float det = saa * scc - sac * sac, nd, ndmin;
        if (det > 0.0f) {
            nd = (sxa * scc - sxc * sac) / det;
            ndmin = -(saa * sxc - sac * sxa) / det;
        } else {
            nd = saa > 0.0f ? sxa / saa : 0.0f;
            ndmin = dmin;
        }
        if (!(nd > 0.0f) || !(ndmin >= 0.0f))
            break;
        nd = r16(nd);
        ndmin = r16(ndmin);
        uint8_t L2[QK_K];
        float e2 = k4_codes(x, nd, ndmin, sc, mn, nmax, L2, &ks2);
        if (!(e2 < err))
            break;
        err = e2;
        d = nd;
        dmin = ndmin;
        ks = ks2;
        memcpy(L, L2, QK_K);
    }
    *d_out = d;
    *dmin_out = dmin;
}

/* Packs 8 (scale, min) pairs of 6 bits into 12 bytes (inverse of
 * dequant.h's dequant_k4_scale_min). */
static void k4_pack_scales(const int *sc, const int *mn, uint8_t *q)
{
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(sc[j] & 63);
        q[j + 4] = (uint8_t)(mn[j] & 63);
    }
    for (int j = 4; j < 8; j++) {
        q[j + 4] = (uint8_t)((sc[j] & 15) | (mn[j] & 15) << 4);
        q[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
        q[j] |= (uint8_t)((mn[j] >> 4) << 6);
    }
}

/* q4_k super-block (144 B): f16 d | f16 dmin | scales[12] | qs[128];
 * element 64g + 32t + l has its code in nibble t of qs[32g + l]. */
static void blk_q4_k(const float *x, uint8_t *b)
{
    float d, dmin;
    int sc[8], mn[8];
    uint8_t L[QK_K];
    k4_search(x, 15, &d, &dmin, sc, mn, L);
    put_h16(b, d);
    put_h16(b + 2, dmin);
    k4_pack_scales(sc, mn, b + 4);
    uint8_t *qs = b + 16;
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++)
            qs[32 * g + l] = (uint8_t)(L[64 * g + l] | L[64 * g + 32 + l] << 4);
}

/* q5_k super-block (176 B): f16 d | f16 dmin | scales[12] | qh[32] |
 * qs[128]; as q4_k, bit 4 of element 64g + 32t + l in bit 2g+t of qh[l]. */
static void blk_q5_k(const float *x, uint8_t *b)
{
    float d, dmin;
    int sc[8], mn[8];
    uint8_t L[QK_K];
    k4_search(x, 31, &d, &dmin, sc, mn, L);
    put_h16(b, d);
    put_h16(b + 2, dmin);
    k4_pack_scales(sc, mn, b + 4);
    uint8_t *qh = b + 16, *qs = b + 48;
    memset(qh, 0, 32);
    for (int g = 0; g < 4; g++) {
        for (int l = 0; l < 32; l++) {
            int c0 = L[64 * g + l], c1 = L[64 * g + 32 + l];
            qs[32 * g + l] = (uint8_t)((c0 & 15) | (c1 & 15) << 4);
            qh[l] |= (uint8_t)((c0 >> 4) << (2 * g) | (c1 >> 4) << (2 * g + 1));
        }
    }
}

/* Codes of a q6_k super-block for f16 d and int8 scales sc[16]: sub-block
 * j (16 elements) has y = d*sc[j]*q, q in -32..31. L[i] = q + 32, sums of
 * q^2 and x q per sub-block to *ks. Returns the squared error. */
static float k6_codes(const float *x, float d, const int *sc, uint8_t *L, ksums *ks)
{
    float err = 0.0f;
    for (int j = 0; j < 16; j++) {
        const float dl = d * (float)sc[j], id = dl != 0.0f ? 1.0f / dl : 0.0f;
        const float *xb = x + 16 * j;
        uint8_t *lb = L + 16 * j;
        float ae[8] = {0}, aqq[8] = {0}, axq[8] = {0};
        for (int i = 0; i < 16; i += 8) {
            for (int k = 0; k < 8; k++) {
                const float xi = xb[i + k], q = rnd(clampf(xi * id, -32.0f, 31.0f));
                const float e = xi - dl * q;
                lb[i + k] = (uint8_t)((int)q + 32);
                ae[k] += e * e;
                aqq[k] += q * q;
                axq[k] += xi * q;
            }
        }
        err += sum8(ae);
        ks->qq[j] = sum8(aqq);
        ks->xq[j] = sum8(axq);
    }
    return err;
}

/* q6_k super-block (210 B): ql[128] | qh[64] | i8 scales[16] | f16 d.
 * Element e = 128h + 32k + l: low 4 bits of its code in nibble k>>1 of
 * ql[64h + 32(k&1) + l], high 2 bits at bit 2k of qh[32h + l]; sub-block
 * e/16 scale. Per-sub-block scales by fit_sym, 8-bit scales against
 * d = max |scale| / 127, then d refit by least squares (kept if better). */
static void blk_q6_k(const float *x, uint8_t *b)
{
    float s[16], amax = 0.0f;
    for (int j = 0; j < 16; j++) {
        s[j] = fit_sym(x + 16 * j, 16, 32, 31, D_K, NELEM(D_K));
        amax = fabsf(s[j]) > amax ? fabsf(s[j]) : amax;
    }
    float d = r16(amax / 127.0f);
    int sc[16];
    for (int j = 0; j < 16; j++)
        sc[j] = d > 0.0f ? qcode(s[j] / d, -127, 127) : 0;
    uint8_t L[QK_K], L2[QK_K];
    ksums ks, ks2;
    float err = k6_codes(x, d, sc, L, &ks);
    for (int it = 0; it < 2; it++) {
        /* x ~= d * sc[j] * q: d = sum(x a) / sum(a a), a = sc[j] q */
        float saa = 0.0f, sxa = 0.0f;
        for (int j = 0; j < 16; j++) {
            const float s = (float)sc[j];
            saa += s * s * ks.qq[j];
            sxa += s * ks.xq[j];
        }
        if (!(saa > 0.0f))
            break;
        float nd = r16(sxa / saa);
        float e2 = k6_codes(x, nd, sc, L2, &ks2);
        if (!(e2 < err))
            break;
        err = e2;
        d = nd;
        ks = ks2;
        memcpy(L, L2, QK_K);
    }
    uint8_t *ql = b, *qh = b + 128;
    memset(qh, 0, 64);
    for (int h = 0; h < 2; h++) {
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < 32; l++) {
                int c = L[128 * h + 32 * k + l];
                uint8_t *lo = &ql[64 * h + 32 * (k & 1) + l];
                if (k < 2)
                    *lo = (uint8_t)(c & 15);
                else
                    *lo |= (uint8_t)((c & 15) << 4);
                qh[32 * h + l] |= (uint8_t)((c >> 4) << (2 * k));
            }
        }
    }
    for (int j = 0; j < 16; j++)
        b[192 + j] = (uint8_t)(int8_t)sc[j];
    put_h16(b + 208, d);
}

/* ---- rows ------------------------------------------------------------------ */

/* f32_to_fp16 (round to nearest even) without its data-dependent rounding
 * branch for values in the normal f16 range [2^-14, 2^16), where it is
 * ((|x| + 0xfff + lsb) >> 13) - (112 << 10) plus the sign; the rest (zero,
 * subnormal, overflow, NaN) goes to f32_to_fp16. Same bits as f32_to_fp16
 * for every input (tests/test_quant.c checks). */
static inline uint16_t f16_fast(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t ax = x & 0x7fffffffu;
    if (ax - 0x38800000u >= 0x47800000u - 0x38800000u)
        return f32_to_fp16(f);
    uint32_t h = ((ax + 0x0fffu + ((ax >> 13) & 1u)) >> 13) - (112u << 10);
    return (uint16_t)(h | (x >> 16 & 0x8000u));
}

typedef void (*blk_fn)(const float *x, uint8_t *dst);

static blk_fn blk_of(uint32_t type)
{
    switch (type) {
    case SOV_Q4_0: return blk_q4_0;
    case SOV_Q4_1: return blk_q4_1;
    case SOV_Q5_0: return blk_q5_0;
    case SOV_Q5_1: return blk_q5_1;
    case SOV_Q8_0: return blk_q8_0;
    case SOV_Q4_K: return blk_q4_k;
    case SOV_Q5_K: return blk_q5_k;
    case SOV_Q6_K: return blk_q6_k;
    default: return NULL;
    }
}

bool quant_supported(uint32_t type)
{
    return type == SOV_F32 || type == SOV_F16 || type == SOV_BF16 || blk_of(type) != NULL;
}

/* quant_row without argument checks */
static void row_unchecked(uint32_t type, const float *x, uint8_t *dst, int64_t n)
{
    if (type == SOV_F32) {
        memcpy(dst, x, (size_t)n * sizeof(float));
    } else if (type == SOV_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = f16_fast(x[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
    } else if (type == SOV_BF16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = f32_to_bf16(x[i]);
            memcpy(dst + 2 * i, &h, 2);
        }
    } else {
        const ttype_traits *tr = ttype_get(type);
        blk_fn f = blk_of(type);
        for (int64_t i = 0; i < n / tr->blck; i++)
            f(x + i * tr->blck, dst + i * tr->size);
    }
}

static int check_type(uint32_t type, int64_t n)
{
    if (!quant_supported(type))
        return err_set(SOV_EINVAL, "cannot quantize to type %s", ttype_name(type));
    const ttype_traits *tr = ttype_get(type);
    if (n < 0 || n % tr->blck)
        return err_set(SOV_EINVAL, "row of %lld elements is not a multiple of the %s block size %d", (long long)n,
                       tr->name, tr->blck);
    return 0;
}

int quant_row(uint32_t type, const float *x, void *dst, int64_t n)
{
    int rc = check_type(type, n);
    if (rc)
        return rc;
    row_unchecked(type, x, dst, n);
    return 0;
}

typedef struct qjob {
    uint32_t type;
    int64_t n_rows, n_cols;
    uint64_t row_bytes;
    quant_src_fn src;
    void *ctx;
    uint8_t *dst;
    float *scratch; /* n_cols floats per thread */
    atomic_llong next;
} qjob;

#define QCHUNK 4 /* rows per grab */

static void qjob_run(void *arg, int ith, int nth)
{
    (void)nth;
    qjob *j = arg;
    float *buf = j->scratch + (size_t)ith * (size_t)j->n_cols;
    for (;;) {
        int64_t r0 = atomic_fetch_add(&j->next, QCHUNK);
        if (r0 >= j->n_rows)
            break;
        int64_t r1 = r0 + QCHUNK < j->n_rows ? r0 + QCHUNK : j->n_rows;
        for (int64_t r = r0; r < r1; r++) {
            j->src(j->ctx, r, buf, j->n_cols);
            row_unchecked(j->type, buf, j->dst + (size_t)r * j->row_bytes, j->n_cols);
        }
    }
}

int quant_rows(pool *p, uint32_t type, int64_t n_rows, int64_t n_cols, quant_src_fn src, void *ctx, void *dst)
{
    int rc = check_type(type, n_cols);
    if (rc)
        return rc;
    if (n_rows < 0)
        return err_set(SOV_EINVAL, "negative row count");
    uint64_t row_bytes;
    if ((rc = ttype_nbytes(type, n_cols, &row_bytes)))
        return rc;
    int nth = p ? pool_size(p) : 1;
    qjob j = {.type = type, .n_rows = n_rows, .n_cols = n_cols, .row_bytes = row_bytes, .src = src, .ctx = ctx,
              .dst = dst};
    atomic_init(&j.next, 0);
    j.scratch = malloc((size_t)nth * (size_t)(n_cols ? n_cols : 1) * sizeof(float));
    if (!j.scratch)
        return err_set(SOV_ENOMEM, "out of memory for %d rows of %lld floats", nth, (long long)n_cols);
    if (p && nth > 1 && n_rows > QCHUNK)
        pool_run(p, qjob_run, &j);
    else
        qjob_run(&j, 0, 1);
    free(j.scratch);
    return 0;
}

/* ---- mixes ------------------------------------------------------------------ */

/* general.file_type numbers are llama.cpp's LLAMA_FTYPE_MOSTLY_*; a single
 * k-quant maps to the nearest _S ftype (llama.cpp's Q4_K_S / Q5_K_S bump a
 * few tensors, sov's q4_k / q5_k are pure). */
static const quant_mix mixes[] = {
    {"f32", SOV_F32, SOV_F32, 0},       {"f16", SOV_F16, SOV_F16, 1},
    {"bf16", SOV_BF16, SOV_BF16, 32},   {"q8_0", SOV_Q8_0, SOV_Q8_0, 7},
    {"q4_0", SOV_Q4_0, SOV_Q4_0, 2},    {"q4_1", SOV_Q4_1, SOV_Q4_1, 3},
    {"q5_0", SOV_Q5_0, SOV_Q5_0, 8},    {"q5_1", SOV_Q5_1, SOV_Q5_1, 9},
    {"q4_k", SOV_Q4_K, SOV_Q4_K, 14},   {"q5_k", SOV_Q5_K, SOV_Q5_K, 16},
    {"q6_k", SOV_Q6_K, SOV_Q6_K, 18},   {"q4_k_m", SOV_Q4_K, SOV_Q6_K, 15},
    {"q5_k_m", SOV_Q5_K, SOV_Q6_K, 17},
};

const quant_mix *quant_mix_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof mixes / sizeof mixes[0]; i++)
        if (!strcasecmp(mixes[i].name, name))
            return &mixes[i];
    return NULL;
}

const char *quant_mix_names(void)
{
    return "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m";
}

bool quant_more_bits(int64_t layer, int64_t n_layer)
{
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

/* Layer index of "blk.N.<suffix>", or -1 if name is not that. */
static int64_t blk_layer(const char *name, const char *suffix)
{
    if (strncmp(name, "blk.", 4) != 0)
        return -1;
    const char *p = name + 4;
    int64_t v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9' && v < 100000000)
        v = v * 10 + (*p++ - '0');
    if (*p != '.' || strcmp(p + 1, suffix) != 0)
        return -1;
    return v;
}

uint32_t quant_pick_type(const quant_mix *m, const char *name, uint32_t n_dims, int64_t n_layer)
{
    if (n_dims <= 1)
        return SOV_F32;
    if (m->more == m->base)
        return m->base;
    if (!strcmp(name, "output.weight"))
        return m->more;
    int64_t l = blk_layer(name, "attn_v.weight");
    if (l < 0)
        l = blk_layer(name, "ffn_down.weight");
    if (l >= 0 && quant_more_bits(l, n_layer))
        return m->more;
    return m->base;
}

uint32_t quant_fit_type(uint32_t want, int64_t ne0)
{
    const ttype_traits *tr = ttype_get(want);
    if (tr && ne0 % tr->blck == 0)
        return want;
    uint32_t fb = SOV_F16;
    switch (want) {
    case SOV_Q4_K: fb = SOV_Q5_0; break;
    case SOV_Q5_K: fb = SOV_Q5_1; break;
    case SOV_Q6_K: fb = SOV_Q8_0; break;
    default: break;
    }
    return ne0 % ttype_get(fb)->blck == 0 ? fb : SOV_F16;
}
