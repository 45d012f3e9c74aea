/* kern_avx512_k: AVX-512 (F BW VL DQ VNNI) kernels for the k-quants: quant_x
 * to Q8_K and the gemm of Q2_K Q3_K Q4_K Q5_K Q6_K weights with Q8_K
 * activations.
 *
 * Scheme (all five types). A 256-element super-block of a weight row is cut
 * into 4 units of 64 elements in element order; unit g becomes a vector U_g
 * of 64 unsigned codes (0..63), so that its x bytes are contiguous. For one
 * weight row r and one x row c, per super-block:
 *   dp_g  = vpdpbusd(0, U_g, xq_g)          16 x i32, each the dot of 4 codes
 *                                          with 4 x bytes: |dp| <= 4*63*128 < 2^15
 *   P_01  = packs(dp_0, dp_1), P_23 = packs(dp_2, dp_3)     (exact: no saturation)
 *   isum  = vpdpwssd(madd(P_01, S_01), P_23, S_23)          16 x i32, exact
 * where S_01, S_23 hold each packed dp's sub-block scale (int16, per row), and
 *   corr  = madd(B, bsums)                   8 x i32, exact
 * with B per row: the sub-block mins (Q2_K Q4_K Q5_K) or offset * scale
 * (Q3_K: codes stored +4, Q6_K: +32). Then
 *   with mins:    V = [isum lo + isum hi (8) | corr (8)],  F = [d*dx (8) | -dmin*dx (8)]
 *   with offsets: V = isum - [corr | 0],                   F = d*dx
 *   acc = fma(float(V), F, acc);  out = fixed-order sum of acc's 16 lanes.
 *
 * Determinism. The integers are exact, so only the float steps matter: they
 * are written once (KQ_TILE) and every call shape (any nr, nc, tile edge)
 * runs the same sequence for each (r, c); F = (per-row factor) * dx is one
 * float product whatever the tile.
 *
 * Tiling. One weight row against NC x rows: each unpacked unit U_g is used by
 * NC columns before the next is made; rows are walked in chunks that stay in
 * L2 while the column tiles pass over them. */
#include "kern.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

enum { XQS = offsetof(kx_q8_k, qs), XBS = offsetof(kx_q8_k, bsums), XSZ = sizeof(kx_q8_k) };

/* Software prefetch KPF bytes ahead of the super-block being read, as in
 * kern_avx2_k.c (one row at a time is one stream per thread; Intel Xeon,
 * q4_k matrix-vector product from DRAM at 1 thread: 7.6 GB/s without, 13.3
 * with). Prefetches past the end of the rows are harmless hints. */
enum { KPF = 4096 };

AI __m512i b8(int v) { return _mm512_set1_epi8((char)v); }

/* the 32 bytes at p in both 256-bit halves */
AI __m512i bcast256(const unsigned char *p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p)); }

/* per-qword counts: a in the low 256 bits, b in the high */
AI __m512i cnt2(int a, int b) { return _mm512_setr_epi64(a, a, a, a, b, b, b, b); }

/* (a & c) | b, bytewise */
AI __m512i or_and(__m512i a, __m512i b, __m512i c) { return _mm512_ternarylogic_epi32(a, b, c, 0xEC); }

/* fixed-order sum of 16 lanes: halves (i + i+8), then (i + i+4), (i + i+2), 0 + 1 */
AI float hsum16(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- quant_x: Q8_K ---- */

// dst[k/256] = q8_k(x[k]); the same bytes as the reference (see kern.h)
static void quant_x_q8_k(const float *x, void *dst, int64_t k)
{
    kx_q8_k *b = dst;
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int j = 0; j < QK_K; j += 16)
            m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        const float amax = _mm512_reduce_max_ps(m);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = d;
        const __m512 vid = _mm512_set1_ps(id);
        __m512i s[4];
        for (int j = 0; j < QK_K; j += 64) {
            /* x * id rounded to nearest-even (the MXCSR default), as the reference */
            __m128i q0 = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), vid)));
            __m128i q1 = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j + 16), vid)));
            __m128i q2 = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j + 32), vid)));
            __m128i q3 = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j + 48), vid)));
            __m512i q = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1)),
                _mm256_inserti128_si256(_mm256_castsi128_si256(q2), q3, 1), 1);
            _mm512_storeu_si512(b[i].qs + j, q);
            /* group sums: sad of the biased bytes (q + 128) over 8-byte halves */
            __m512i sad = _mm512_sad_epu8(_mm512_xor_si512(q, bias), _mm512_setzero_si512());
            s[j / 64] = _mm512_add_epi64(sad, _mm512_bsrli_epi128(sad, 8));
        }
        /* qword 2i of s[] holds group sum + 16*128 */
        __m512i g0 = _mm512_permutex2var_epi64(s[0], even, s[1]), g1 = _mm512_permutex2var_epi64(s[2], even, s[3]);
        const __m128i off = _mm_set1_epi16(16 * 128);
        _mm_storeu_si128((__m128i *)b[i].bsums, _mm_sub_epi16(_mm512_cvtepi64_epi16(g0), off));
        _mm_storeu_si128((__m128i *)(b[i].bsums + 8), _mm_sub_epi16(_mm512_cvtepi64_epi16(g1), off));
    }
}

/* ---- per-type block decoders ----
 * TYPE_setup(b, st): per-block state of one weight row. TYPE_unit(b, st, g):
 * unit g (elements 64g .. 64g+64) as unsigned codes. */

typedef struct {
    __m512 F;        /* per-row float factor, times dx: [d (8) | -dmin (8)] or d (16) */
    __m512i S01, S23; /* int16 scales of the packed dp pairs */
    __m256i B;       /* 16 int16 bsums factors */
    __m512i qh;      /* q5_k / q3_k: the 32 high-bit bytes in both halves */
} kq_st;

/* scales for 32-element sub-blocks (8 int16 in sc16): dp_g lane 4L+i (128-bit
 * lane L) is in sub-block 2g + L/2; P_01 lane 8L+i is dp_0 (i < 4) or dp_1. */
AI void scales32_setup(kq_st *st, __m128i sc16)
{
    const __m512i i01 = _mm512_set_epi16(3, 3, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, 2,
                                         2, 2, 2, 0, 0, 0, 0);
    const __m512i i23 = _mm512_add_epi16(i01, _mm512_set1_epi16(4));
    __m512i s = _mm512_zextsi128_si512(sc16);
    st->S01 = _mm512_permutexvar_epi16(i01, s);
    st->S23 = _mm512_permutexvar_epi16(i23, s);
}

/* scales for 16-element sub-blocks (16 int16 in sc16): dp_g lane 4L+i is in
 * sub-block 4g + L. */
AI void scales16_setup(kq_st *st, __m256i sc16)
{
    const __m512i i01 = _mm512_set_epi16(7, 7, 7, 7, 3, 3, 3, 3, 6, 6, 6, 6, 2, 2, 2, 2, 5, 5, 5, 5, 1, 1, 1, 1, 4,
                                         4, 4, 4, 0, 0, 0, 0);
    const __m512i i23 = _mm512_add_epi16(i01, _mm512_set1_epi16(8));
    __m512i s = _mm512_zextsi256_si512(sc16);
    st->S01 = _mm512_permutexvar_epi16(i01, s);
    st->S23 = _mm512_permutexvar_epi16(i23, s);
}

/* F = [d (8) | -dmin (8)] from the f16 pair at p (d, then dmin) */
AI __m512 f_min(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128((int)v));
    dm = _mm_xor_ps(dm, _mm_setr_ps(0.0f, -0.0f, 0.0f, 0.0f));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                                 _mm512_castps128_ps512(dm));
}

/* F = d (16) from the f16 at p */
AI __m512 f_off(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _mm512_set1_ps(_cvtsh_ss(h));
}

/* The 8 6-bit (scale, min) pairs of q4_k / q5_k (layout: kern_ref.c
 * dequant_k4_scale_min) as 8 scale bytes and 8 min bytes. */
AI void k4_scales(const unsigned char *q, uint64_t *sc, uint64_t *mn)
{
    uint32_t u0, u1, u2;
    memcpy(&u0, q, 4);
    memcpy(&u1, q + 4, 4);
    memcpy(&u2, q + 8, 4);
    *sc = (uint64_t)(u0 & 0x3f3f3f3f) | (uint64_t)((u2 & 0x0f0f0f0f) | ((u0 >> 2) & 0x30303030)) << 32;
    *mn = (uint64_t)(u1 & 0x3f3f3f3f) | (uint64_t)(((u2 >> 4) & 0x0f0f0f0f) | ((u1 >> 2) & 0x30303030)) << 32;
}

AI void k4_setup(const unsigned char *b, kq_st *st)
{
    st->F = f_min(b);
    uint64_t sc, mn;
    k4_scales(b + 4, &sc, &mn);
    scales32_setup(st, _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc)));
    /* min j applies to bsums 2j and 2j+1 */
    __m128i m2 = _mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mn),
                                  _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    st->B = _mm256_cvtepu8_epi16(m2);
}

/* q4_k (144 B): d | dmin | scales[12] | qs[128]; unit g = sub-blocks 2g, 2g+1:
 * nibbles 0 and 1 of qs[32g + l] */
AI void q4k_setup(const unsigned char *b, kq_st *st) { k4_setup(b, st); }
AI __m512i q4k_unit(const unsigned char *b, const kq_st *st, int g)
{
    (void)st;
    return _mm512_and_si512(_mm512_srlv_epi64(bcast256(b + 16 + 32 * g), cnt2(0, 4)), b8(0x0f));
}

/* q5_k (176 B): d | dmin | scales[12] | qh[32] | qs[128]; as q4_k plus bit
 * 2g + t of qh[l] as code bit 4 (rotated there within its byte) */
AI void q5k_setup(const unsigned char *b, kq_st *st)
{
    k4_setup(b, st);
    st->qh = bcast256(b + 16);
}
AI __m512i q5k_unit(const unsigned char *b, const kq_st *st, int g)
{
    __m512i lo = _mm512_srlv_epi64(bcast256(b + 48 + 32 * g), cnt2(0, 4));
    __m512i hb = _mm512_and_si512(_mm512_rolv_epi64(st->qh, cnt2((4 - 2 * g) & 63, (3 - 2 * g) & 63)), b8(0x10));
    return or_and(lo, hb, b8(0x0f));
}

/* q6_k (210 B): ql[128] | qh[64] | i8 scales[16] | d; unit g = (h = g/2,
 * k = 2(g&1) + t): low nibble g&1 of ql[64h + 32t + l], high bits
 * (qh[32h + l] >> 2k) & 3 rotated to bits 4-5; code - 32 via B = 32 * scale */
AI void q6k_setup(const unsigned char *b, kq_st *st)
{
    st->F = f_off(b + 208);
    __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + 192)));
    scales16_setup(st, s16);
    st->B = _mm256_slli_epi16(s16, 5);
}
AI __m512i q6k_unit(const unsigned char *b, const kq_st *st, int g)
{
    (void)st;
    const int h = g / 2;
    __m512i ql = _mm512_loadu_si512(b + 64 * h);
    __m512i lo = g & 1 ? _mm512_srli_epi16(ql, 4) : ql;
    __m512i hb = _mm512_rolv_epi64(bcast256(b + 128 + 32 * h), g & 1 ? cnt2(0, 62) : cnt2(4, 2));
    return or_and(lo, _mm512_and_si512(hb, b8(0x30)), b8(0x0f));
}

/* q3_k (110 B): hmask[32] | qs[64] | scales[12] | d; unit g = (h = g/2,
 * k = 2(g&1) + t): low bits (qs[32h + l] >> 2k) & 3, bit 2 = bit 4h + k of
 * hmask[l] (code + 4 stored: B = 4 * scale) */
AI __m128i q3k_scales(const unsigned char *p)
{
    uint64_t a;
    uint32_t h;
    memcpy(&a, p, 8);
    memcpy(&h, p + 8, 4);
    const uint64_t m4 = 0x0f0f0f0f0f0f0f0full;
    const uint32_t m2 = 0x03030303u;
    uint64_t lo = (a & m4) | ((uint64_t)(h & m2) | (uint64_t)((h >> 2) & m2) << 32) << 4;
    uint64_t hi = ((a >> 4) & m4) | ((uint64_t)((h >> 4) & m2) | (uint64_t)((h >> 6) & m2) << 32) << 4;
    return _mm_sub_epi8(_mm_set_epi64x((long long)hi, (long long)lo), _mm_set1_epi8(32));
}
AI void q3k_setup(const unsigned char *b, kq_st *st)
{
    st->F = f_off(b + 108);
    __m256i s16 = _mm256_cvtepi8_epi16(q3k_scales(b + 96));
    scales16_setup(st, s16);
    st->B = _mm256_slli_epi16(s16, 2);
    st->qh = bcast256(b);
}
AI __m512i q3k_unit(const unsigned char *b, const kq_st *st, int g)
{
    const int h = g / 2, k0 = 2 * (g & 1), j0 = 4 * h + k0;
    __m512i lo = _mm512_srlv_epi64(bcast256(b + 32 + 32 * h), cnt2(2 * k0, 2 * k0 + 2));
    __m512i hb = _mm512_and_si512(_mm512_rolv_epi64(st->qh, cnt2((2 - j0) & 63, (1 - j0) & 63)), b8(0x04));
    return or_and(lo, hb, b8(0x03));
}

/* q2_k (84 B): scales[16] | qs[64] | d | dmin; unit g = (h = g/2,
 * k = 2(g&1) + t): codes (qs[32h + l] >> 2k) & 3; sub-block s: scale
 * sc[s] & 15, min sc[s] >> 4 */
AI void q2k_setup(const unsigned char *b, kq_st *st)
{
    st->F = f_min(b + 80);
    __m128i s = _mm_loadu_si128((const __m128i *)b);
    scales16_setup(st, _mm256_cvtepu8_epi16(_mm_and_si128(s, _mm_set1_epi8(0x0f))));
    st->B = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0f)));
}
AI __m512i q2k_unit(const unsigned char *b, const kq_st *st, int g)
{
    (void)st;
    const int k0 = 2 * (g & 1);
    return _mm512_and_si512(_mm512_srlv_epi64(bcast256(b + 16 + 32 * (g / 2)), cnt2(2 * k0, 2 * k0 + 2)), b8(3));
}

/* ---- the tile ----
 * out[c * ldo] = W[0, :k] . X[c, :k] for c < NC: one weight row w (nb
 * super-blocks of BYTES) against NC x rows (xb bytes apart). MIN: the type
 * has mins (corr scaled by -dmin) rather than offsets (corr subtracted). */
#define KQ_TILE(NAME, BYTES, MIN)                                                                                      \
    AI void NAME##_tile(const unsigned char *w, const unsigned char *X, uint64_t xb, float *out, int64_t ldo,          \
                        int64_t nb, const int NC)                                                                      \
    {                                                                                                                  \
        __m512 acc[8];                                                                                                 \
        _Pragma("GCC unroll 8") for (int c = 0; c < NC; c++) acc[c] = _mm512_setzero_ps();                             \
        for (int64_t ib = 0; ib < nb; ib++) {                                                                          \
            const unsigned char *b = w + ib * (BYTES), *xk = X + ib * XSZ;                                             \
            _Pragma("GCC unroll 8") for (int i = 0; i < ((BYTES) + 63) / 64; i++)                                      \
                _mm_prefetch((const char *)b + KPF + 64 * i, _MM_HINT_T0);                                             \
            kq_st st;                                                                                                  \
            NAME##_setup(b, &st);                                                                                      \
            __m512i isum[8];                                                                                           \
            _Pragma("GCC unroll 2") for (int p = 0; p < 2; p++)                                                        \
            {                                                                                                          \
                const __m512i ua = NAME##_unit(b, &st, 2 * p), ub = NAME##_unit(b, &st, 2 * p + 1);                    \
                _Pragma("GCC unroll 8") for (int c = 0; c < NC; c++)                                                   \
                {                                                                                                      \
                    const unsigned char *xq = xk + c * xb + XQS + 128 * p;                                             \
                    __m512i da = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ua, _mm512_loadu_si512(xq));              \
                    __m512i db = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ub, _mm512_loadu_si512(xq + 64));         \
                    __m512i pk = _mm512_packs_epi32(da, db);                                                           \
                    isum[c] = p ? _mm512_dpwssd_epi32(isum[c], pk, st.S23) : _mm512_madd_epi16(pk, st.S01);            \
                    __asm__("" : "+v"(isum[c])); /* keep the sums sequential: no spills */                             \
                }                                                                                                      \
            }                                                                                                          \
            _Pragma("GCC unroll 8") for (int c = 0; c < NC; c++)                                                       \
            {                                                                                                          \
                const unsigned char *xc = xk + c * xb;                                                                 \
                __m256i corr = _mm256_madd_epi16(st.B, _mm256_loadu_si256((const __m256i *)(xc + XBS)));               \
                __m512i v;                                                                                             \
                if (MIN) {                                                                                             \
                    __m256i f = _mm256_add_epi32(_mm512_castsi512_si256(isum[c]),                                      \
                                                 _mm512_extracti64x4_epi64(isum[c], 1));                               \
                    v = _mm512_inserti64x4(_mm512_castsi256_si512(f), corr, 1);                                        \
                } else {                                                                                               \
                    v = _mm512_sub_epi32(isum[c], _mm512_zextsi256_si512(corr));                                       \
                }                                                                                                      \
                float dx;                                                                                              \
                memcpy(&dx, xc, 4);                                                                                    \
                const __m512 f = _mm512_mul_ps(st.F, _mm512_set1_ps(dx));                                              \
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), f, acc[c]);                                            \
            }                                                                                                          \
        }                                                                                                              \
        _Pragma("GCC unroll 8") for (int c = 0; c < NC; c++) out[c * ldo] = hsum16(acc[c]);                            \
    }

/* NC of the column tiles; rows are walked in chunks of about ROWCHUNK bytes */
enum { NCT = 8, ROWCHUNK = 128 * 1024 };

/* out[c * ldo + r] = W[r, :k] . X[c, :k]: column tiles of NCT (the last one
 * narrower) over row chunks that stay in L2. */
#define KQ_GEMM(NAME)                                                                                                  \
    static void gemm_##NAME(const void *W, uint64_t row_bytes, const void *X, uint64_t x_bytes, float *out,            \
                            int64_t ldo, int64_t k, int64_t nr, int64_t nc)                                            \
    {                                                                                                                  \
        const unsigned char *w = W, *x = X;                                                                            \
        const int64_t nb = k / QK_K;                                                                                   \
        int64_t rc = (int64_t)(ROWCHUNK / (row_bytes ? row_bytes : 1));                                                \
        if (rc < 1)                                                                                                    \
            rc = 1;                                                                                                    \
        for (int64_t r0 = 0; r0 < nr; r0 += rc) {                                                                      \
            const int64_t r1 = nr - r0 < rc ? nr : r0 + rc;                                                            \
            for (int64_t c0 = 0; c0 < nc; c0 += NCT) {                                                                 \
                const int64_t n = nc - c0 < NCT ? nc - c0 : NCT;                                                       \
                const unsigned char *xc = x + (uint64_t)c0 * x_bytes;                                                  \
                for (int64_t r = r0; r < r1; r++) {                                                                    \
                    const unsigned char *wr = w + (uint64_t)r * row_bytes;                                             \
                    float *o = out + c0 * ldo + r;                                                                     \
                    switch (n) {                                                                                       \
                    case 8: NAME##_tile(wr, xc, x_bytes, o, ldo, nb, 8); break;                                        \
                    case 7: NAME##_tile(wr, xc, x_bytes, o, ldo, nb, 7); break;                                        \
                    case 6: NAME##_tile(wr, xc, x_bytes, o, ldo, nb, 6); break;                                        \
                    case 5: NAME##_tile(wr, xc, x_bytes, o, ldo, nb, 5); break;                                        \
                    case 4: NAME##_tile(wr, xc, x_bytes, o, ldo, nb, 4); break;                                        \
                    case 3: NAME##_tile(wr, xc, x_bytes, o, ldo, nb, 3); break;                                        \
                    case 2: NAME##_tile(wr, xc, x_bytes, o, ldo, nb, 2); break;                                        \
                    default: NAME##_tile(wr, xc, x_bytes, o, ldo, nb, 1); break;                                       \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }

KQ_TILE(q2k, 84, 1)
KQ_TILE(q3k, 110, 0)
KQ_TILE(q4k, 144, 1)
KQ_TILE(q5k, 176, 1)
KQ_TILE(q6k, 210, 0)
// out[c][r] = W[r,k] . X[c,k]   (Q2_K weights, Q8_K x)
KQ_GEMM(q2k)
// out[c][r] = W[r,k] . X[c,k]   (Q3_K weights, Q8_K x)
KQ_GEMM(q3k)
// out[c][r] = W[r,k] . X[c,k]   (Q4_K weights, Q8_K x)
KQ_GEMM(q4k)
// out[c][r] = W[r,k] . X[c,k]   (Q5_K weights, Q8_K x)
KQ_GEMM(q5k)
// out[c][r] = W[r,k] . X[c,k]   (Q6_K weights, Q8_K x)
KQ_GEMM(q6k)

void kern_avx512_k_fill(kern_ops *o)
{
    o->quant_x[KX_Q8_K] = quant_x_q8_k;
    o->gemm[SOV_Q2_K] = gemm_q2k;
    o->gemm[SOV_Q3_K] = gemm_q3k;
    o->gemm[SOV_Q4_K] = gemm_q4k;
    o->gemm[SOV_Q5_K] = gemm_q5k;
    o->gemm[SOV_Q6_K] = gemm_q6k;
}
