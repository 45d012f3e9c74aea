/* Reference kernels: (a) for every type in the ref table, on random blocks,
 * dot() agrees with a double-precision sum over dequant() output, also on
 * unaligned data; (b) hand-built blocks dequantize to hand-computed values,
 * so a misread block layout cannot pass. */
#include "t.h"

#include "base/fp16.h"
#include "engine/kern/kern.h"
#include "format/ttype.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kern_rand.h"

/* (a) dot vs double sum of dequant, for 1, 2 and 7 blocks per row.
 *
 * Tolerance: the reference dot accumulates the n products y[i]*x[i] in float,
 * in order, so by the standard bound for recursive summation (Higham, gamma_n)
 * |dot - exact| <= gamma_{n+1} * sum_i |y_i x_i| with gamma_m = m*u/(1-m*u),
 * u = 2^-24. We allow 1.01 * (n+1) * 2^-24 * sum|y_i x_i| + 1e-6 (the
 * absolute term covers subnormal products). Any layout disagreement between
 * dot and dequant is O(sum|y_i x_i| / n) or larger and fails. */
static void check_dot(const kern_ops *ops, uint32_t type)
{
    const ttype_traits *tr = ttype_get(type);
    const int nblocks[] = {1, 2, 7};
    char name[96];
    bool finite_ok = true, dot_ok = true, unal_ok = true, canary_ok = true;
    char why[256] = "";
    for (size_t c = 0; c < sizeof nblocks / sizeof nblocks[0]; c++) {
        int64_t n = (int64_t)nblocks[c] * tr->blck;
        uint64_t nbytes = 0;
        if (ttype_nbytes(type, n, &nbytes) != 0) {
            finite_ok = false;
            snprintf(why, sizeof why, "ttype_nbytes failed for n=%lld", (long long)n);
            break;
        }
        unsigned char *w = malloc(nbytes);
        unsigned char *wu = malloc(nbytes + 1); /* copy at an odd address */
        float *x = malloc((size_t)n * sizeof *x);
        float *y = malloc(((size_t)n + 1) * sizeof *y);
        float *yu = malloc((size_t)n * sizeof *yu);
        if (!w || !wu || !x || !y || !yu) {
            free(w); free(wu); free(x); free(y); free(yu);
            finite_ok = false;
            snprintf(why, sizeof why, "out of memory");
            break;
        }
        fill_random(type, w, nbytes, n);
        memcpy(wu + 1, w, nbytes);
        for (int64_t i = 0; i < n; i++)
            x[i] = rng_uniform(-1.0f, 1.0f);
        y[n] = 12345.0f; /* canary: dequant must not write past n */
        ops->dequant[type](w, y, n);
        if (y[n] != 12345.0f && canary_ok) {
            canary_ok = false;
            snprintf(why, sizeof why, "dequant wrote past n=%lld", (long long)n);
        }
        double exact = 0.0, mag = 0.0;
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(y[i]) && finite_ok) {
                finite_ok = false;
                snprintf(why, sizeof why, "y[%lld]=%g with %d blocks", (long long)i, y[i], nblocks[c]);
            }
            exact += (double)y[i] * (double)x[i];
            mag += fabs((double)y[i] * (double)x[i]);
        }
        float got = ops->dot[type](w, x, n);
        double tol = 1.01 * (double)(n + 1) * 0x1p-24 * mag + 1e-6;
        if (!(fabs((double)got - exact) <= tol) && dot_ok) {
            dot_ok = false;
            snprintf(why, sizeof why, "%d blocks: dot %.9g, double sum %.9g, |diff| %.3g > tol %.3g", nblocks[c],
                     got, exact, fabs((double)got - exact), tol);
        }
        /* unaligned source: bit-identical results */
        ops->dequant[type](wu + 1, yu, n);
        float gotu = ops->dot[type](wu + 1, x, n);
        if ((memcmp(y, yu, (size_t)n * sizeof *y) != 0 || memcmp(&got, &gotu, sizeof got) != 0) && unal_ok) {
            unal_ok = false;
            snprintf(why, sizeof why, "%d blocks: unaligned data gives different results", nblocks[c]);
        }
        free(w); free(wu); free(x); free(y); free(yu);
    }
    snprintf(name, sizeof name, "%s random dequant finite, within n", tr->name);
    t_check(finite_ok && canary_ok, name, "%s", why);
    snprintf(name, sizeof name, "%s dot == double sum of dequant (1,2,7 blocks)", tr->name);
    t_check(dot_ok, name, "%s", why);
    snprintf(name, sizeof name, "%s unaligned blocks give identical results", tr->name);
    t_check(unal_ok, name, "%s", why);
}

/* ---- (b) hand-built blocks ---- */

/* Compares dequant of one block with expected values; one PASS/FAIL line. */
static void expect_block(const kern_ops *ops, uint32_t type, const void *blk, const float *want, const char *what)
{
    const ttype_traits *tr = ttype_get(type);
    float got[QK_K];
    ops->dequant[type](blk, got, tr->blck);
    char name[128];
    snprintf(name, sizeof name, "%s hand-built block: %s", tr->name, what);
    int bad = -1;
    for (int i = 0; i < tr->blck && bad < 0; i++)
        if (got[i] != want[i])
            bad = i;
    t_check(bad < 0, name, "element %d: got %g, want %g", bad, bad < 0 ? 0.0 : (double)got[bad],
            bad < 0 ? 0.0 : (double)want[bad]);
}

static void hand_float(const kern_ops *ops)
{
    /* f16: 1.0 = 0x3c00, -2.5 = 0xc100, 0.5 = 0x3800; bf16: 1.0 = 0x3f80, -2.5 = 0xc020 */
    const uint16_t h[3] = {0x3c00, 0xc100, 0x3800};
    const uint16_t bf[3] = {0x3f80, 0xc020, 0x0000};
    const float wh[3] = {1.0f, -2.5f, 0.5f}, wb[3] = {1.0f, -2.5f, 0.0f};
    float got[3];
    ops->dequant[SOV_F16](h, got, 3);
    t_check(memcmp(got, wh, sizeof got) == 0, "f16 hand-built values", "got %g %g %g", got[0], got[1], got[2]);
    ops->dequant[SOV_BF16](bf, got, 3);
    t_check(memcmp(got, wb, sizeof got) == 0, "bf16 hand-built values", "got %g %g %g", got[0], got[1], got[2]);
    const float f[3] = {3.25f, -0.0f, 7.0f};
    ops->dequant[SOV_F32](f, got, 3);
    t_check(memcmp(got, f, sizeof got) == 0, "f32 hand-built values", "got %g %g %g", got[0], got[1], got[2]);
}

static void hand_q8_0(const kern_ops *ops)
{
    /* d = 0.5 (f16 0x3800), qs[i] = i - 16 -> y[i] = (i - 16) / 2; qs[13] = -3 -> -1.5 */
    unsigned char b[34] = {0x00, 0x38};
    float want[32];
    for (int i = 0; i < 32; i++) {
        b[2 + i] = (unsigned char)(signed char)(i - 16);
        want[i] = (float)(i - 16) * 0.5f;
    }
    expect_block(ops, SOV_Q8_0, b, want, "d=0.5, qs=i-16 (qs=-3 -> -1.5)");
}

/* Nibble pattern for the 32-element formats: byte j = j | (15 - j) << 4,
 * so element j (low nibble) has code j and element 16 + j (high nibble) has
 * code 15 - j. */
static void nibbles(unsigned char *qs)
{
    for (int j = 0; j < 16; j++)
        qs[j] = (unsigned char)(j | (15 - j) << 4);
}

static void hand_q4(const kern_ops *ops)
{
    /* q4_0: d = 0.25 (0x3400): y[j] = (j - 8)/4, y[16+j] = (7 - j)/4; nibble 0 -> -8d = -2 */
    unsigned char b0[18] = {0x00, 0x34};
    nibbles(b0 + 2);
    float want[32];
    for (int j = 0; j < 16; j++) {
        want[j] = (float)(j - 8) * 0.25f;
        want[16 + j] = (float)(7 - j) * 0.25f;
    }
    expect_block(ops, SOV_Q4_0, b0, want, "d=0.25, y[0]=-2, y[16]=1.75");

    /* q4_1: d = 0.5 (0x3800), m = -1 (0xbc00): y = code/2 - 1 */
    unsigned char b1[20] = {0x00, 0x38, 0x00, 0xbc};
    nibbles(b1 + 4);
    for (int j = 0; j < 16; j++) {
        want[j] = (float)j * 0.5f - 1.0f;
        want[16 + j] = (float)(15 - j) * 0.5f - 1.0f;
    }
    expect_block(ops, SOV_Q4_1, b1, want, "d=0.5 m=-1, y[0]=-1, y[16]=6.5");
}

static void hand_q5(const kern_ops *ops)
{
    /* qh (u32 LE) = bytes 01 80 00 80: bits 0, 15, 31 set -> elements 0, 15,
     * 31 get +16 on their code. Codes: element j<16: j (+16 for j=0,15);
     * element 16+j: 15-j (+16 for j=15). */
    int code[32];
    for (int j = 0; j < 16; j++) {
        code[j] = j;
        code[16 + j] = 15 - j;
    }
    code[0] += 16;
    code[15] += 16;
    code[31] += 16;
    /* q5_0: d = 1 (0x3c00): y = code - 16 -> y[0]=0, y[1]=-15, y[15]=15, y[16]=-1, y[31]=0 */
    unsigned char b0[22] = {0x00, 0x3c, 0x01, 0x80, 0x00, 0x80};
    nibbles(b0 + 6);
    float want[32];
    for (int i = 0; i < 32; i++)
        want[i] = (float)(code[i] - 16);
    expect_block(ops, SOV_Q5_0, b0, want, "d=1, high bits 0,15,31");
    /* q5_1: d = 0.5 (0x3800), m = 2 (0x4000): y = code/2 + 2 */
    unsigned char b1[24] = {0x00, 0x38, 0x00, 0x40, 0x01, 0x80, 0x00, 0x80};
    nibbles(b1 + 8);
    for (int i = 0; i < 32; i++)
        want[i] = (float)code[i] * 0.5f + 2.0f;
    expect_block(ops, SOV_Q5_1, b1, want, "d=0.5 m=2, high bits 0,15,31");
}

static void hand_q8_k(const kern_ops *ops)
{
    /* d = 0.125 (f32), qs[i] = i - 128 -> y[i] = (i - 128) / 8; bsums ignored */
    unsigned char b[292];
    memset(b, 0x7f, sizeof b); /* garbage bsums must not matter */
    put_f32(b, 0.125f);
    float want[256];
    for (int i = 0; i < 256; i++) {
        b[4 + i] = (unsigned char)(signed char)(i - 128);
        want[i] = (float)(i - 128) * 0.125f;
    }
    expect_block(ops, SOV_Q8_K, b, want, "d=0.125, qs=i-128");
}

/* k-quant probes: a zeroed super-block with one sub-block's scale and one
 * element's code set; expected values derived by hand from the layout. */
static void hand_k(const kern_ops *ops)
{
    float want[256];

    /* q2_k: scales[5] = 0x23 (scale 3, min 2), d = 1, dmin = 0.5. Sub-block 5
     * = elements 80..95 (h=0, k=2, t=1); element 83's code sits in qs[16+3]
     * bits 4-5 = 3 -> y = 1*3*3 - 0.5*2 = 8; rest of 80..95: -1; others 0. */
    unsigned char q2[84] = {0};
    q2[5] = 0x23;
    q2[16 + 16 + 3] = 3 << 4;
    put_f16(q2 + 80, 1.0f);
    put_f16(q2 + 82, 0.5f);
    for (int i = 0; i < 256; i++)
        want[i] = (i >= 80 && i < 96) ? -1.0f : 0.0f;
    want[83] = 8.0f;
    expect_block(ops, SOV_Q2_K, q2, want, "sub-block 5, element 83");

    /* q3_k: d = 0.5. Sub-block 13: low 4 bits of its scale in scales[5] >> 4,
     * high 2 in scales[9] bits 6-7; stored 0b100101 = 37 -> scale 5. Every
     * other sub-block stores 0 -> scale -32, and every code is 0 - 4 (hmask
     * clear), so y = 0.5 * -32 * -4 = 64 there. Sub-block 13 = elements
     * 208..223 (h=1, k=2, t=1); element 210: qs[32+16+2] bits 4-5 = 2, hmask[18]
     * bit 6 set -> code 2, y = 0.5*5*2 = 5; rest of 208..223: 0.5*5*-4 = -10. */
    unsigned char q3[110] = {0};
    q3[96 + 5] = 0x50;
    q3[96 + 9] = 0x80;
    q3[32 + 50] = 2 << 4;
    q3[18] = 0x40;
    put_f16(q3 + 108, 0.5f);
    for (int i = 0; i < 256; i++)
        want[i] = (i >= 208 && i < 224) ? -10.0f : 64.0f;
    want[210] = 5.0f;
    expect_block(ops, SOV_Q3_K, q3, want, "sub-block 13, element 210");

    /* q4_k: d = 1, dmin = 0.25. Sub-block 6 (packed j >= 4): scale = (sc[10] &
     * 15) | (sc[2] >> 6) << 4 = 5 | 2<<4 = 37; min = (sc[10] >> 4) | (sc[6] >>
     * 6) << 4 = 3 | 1<<4 = 19. Sub-block 6 = elements 192..223, codes in the
     * low nibbles of qs[96..127]; element 200: qs[104] = 11 -> y = 37*11 -
     * 0.25*19 = 402.25; rest of 192..223: -4.75; others 0. */
    unsigned char q4[144] = {0};
    put_f16(q4, 1.0f);
    put_f16(q4 + 2, 0.25f);
    q4[4 + 10] = 0x35;
    q4[4 + 2] = 0x80;
    q4[4 + 6] = 0x40;
    q4[16 + 104] = 11;
    for (int i = 0; i < 256; i++)
        want[i] = (i >= 192 && i < 224) ? -4.75f : 0.0f;
    want[200] = 402.25f;
    expect_block(ops, SOV_Q4_K, q4, want, "sub-block 6, element 200");

    /* q5_k: same scales and nibble (qs at offset 48), plus qh[8] bit 6 (the
     * 5th bit of sub-block 6's element 8) -> code 27, y = 37*27 - 4.75 = 994.25. */
    unsigned char q5[176] = {0};
    put_f16(q5, 1.0f);
    put_f16(q5 + 2, 0.25f);
    q5[4 + 10] = 0x35;
    q5[4 + 2] = 0x80;
    q5[4 + 6] = 0x40;
    q5[16 + 8] = 0x40;
    q5[48 + 104] = 11;
    want[200] = 994.25f;
    expect_block(ops, SOV_Q5_K, q5, want, "sub-block 6, element 200 with high bit");

    /* q6_k: d = 0.5, scales[15] = -3. Element 244 = 128 + 32*3 + 20 (h=1, k=3,
     * l=20): low 4 bits in the high nibble of ql[64+32+20], high 2 bits in
     * qh[32+20] bits 6-7; code 0b10_1101 = 45 -> y = 0.5*-3*(45-32) = -19.5.
     * Sub-block 15 = elements 240..255, code 0 -> 0.5*-3*-32 = 48; others 0. */
    unsigned char q6[210] = {0};
    q6[116] = 0xd0;
    q6[128 + 52] = 0x80;
    q6[192 + 15] = (unsigned char)(signed char)-3;
    put_f16(q6 + 208, 0.5f);
    for (int i = 0; i < 256; i++)
        want[i] = i >= 240 ? 48.0f : 0.0f;
    want[244] = -19.5f;
    expect_block(ops, SOV_Q6_K, q6, want, "sub-block 15, element 244");
}

int main(void)
{
    const kern_ops *ops = kern_ref_ops();

    /* The ref table must cover every type sov declares supported. */
    char missing[256] = "";
    size_t len = 0;
    for (uint32_t t = 0; t < SOV_TYPE_COUNT; t++) {
        const ttype_traits *tr = ttype_get(t);
        if (tr && tr->supported && (!ops->dequant[t] || !ops->dot[t]) && len < sizeof missing)
            len += (size_t)snprintf(missing + len, sizeof missing - len, " %s", tr->name);
    }
    t_check(len == 0, "ref table covers every supported type", "missing:%s", missing);

    for (uint32_t t = 0; t < SOV_TYPE_COUNT; t++)
        if (ops->dequant[t] && ops->dot[t] && ttype_get(t))
            check_dot(ops, t);

    hand_float(ops);
    hand_q8_0(ops);
    hand_q4(ops);
    hand_q5(ops);
    hand_q8_k(ops);
    hand_k(ops);
    return t_done();
}
