/* kern_avx2_k: AVX2 kernels for the k-quants: quant_x to Q8_K and the gemm of
 * Q2_K Q3_K Q4_K Q5_K Q6_K weights with Q8_K activations.
 *
 * Scheme (all five types). A 256-element super-block of a weight row is cut
 * into 8 units of 32 elements in element order; each unit becomes a vector U
 * of 32 unsigned codes (0..63) and a vector S of 16 int16 sub-block scales.
 * For one weight row r and one x row c, per super-block:
 *   isum[8 x i32] = sum_u madd(maddubs(U_u, xq_u), S_u)        (exact integers)
 *   corr[8 x i32] = madd(B, bsums)                              (exact integers)
 * where B is per row: the sub-block mins (Q2_K Q4_K Q5_K, times dmin) or
 * offset * scale (Q3_K: codes stored +4, Q6_K: +32; subtracted from isum).
 *   with mins:    V = hadd(isum, corr) = [i01 i23 c01 c23 | i45 i67 c45 c67],
 *                 F = [d d -dmin -dmin | d d -dmin -dmin] * dx
 *   with offsets: V = isum - corr, F = d * dx
 *   acc = fma(float(V), F, acc); out = fixed-order sum of acc's 8 lanes.
 * maddubs cannot saturate: |u * x + u' * x'| <= 2 * 63 * 128 < 2^15.
 *
 * Determinism. The integers are exact, so only the float steps matter: they
 * are written once (KQ_TILE) and every call shape (any nr, nc, tile edge)
 * runs that same sequence for each (r, c): one x row set of NC columns at a
 * time, NC a compile-time constant of each instantiation.
 *
 * Tiling. One weight row against NC x rows: each unpacked unit (U, S) is used
 * by NC columns before the next is made, so the unpacking is paid once per
 * NC columns; rows are walked in chunks that stay in L2 while the column
 * tiles pass over them. */
#include "kern.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

enum { XQS = offsetof(kx_q8_k, qs), XBS = offsetof(kx_q8_k, bsums), XSZ = sizeof(kx_q8_k) };

/* Software prefetch KPF bytes ahead of the super-block being read. One
 * weight row is walked at a time, so a thread reads one sequential stream;
 * on some CPUs the hardware prefetchers alone keep that stream far below
 * the memory bandwidth (Intel Xeon, AVX2 kernel, q4_k matrix-vector product
 * from DRAM at 1 thread: 7.0 GB/s without, 13.5 GB/s with 4 KiB ahead;
 * 1, 2, 8 KiB measured 9.4, 11.3, 13.5). Prefetches past the end of the
 * rows are harmless hints. */
enum { KPF = 4096 };

AI float ld_f16(const unsigned char *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

AI __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

AI __m256i b8(int v) { return _mm256_set1_epi8((char)v); }

/* fixed-order sum of 8 lanes: (0+4, 1+5, 2+6, 3+7), then (a+c, b+d), then a+b */
AI float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- quant_x: Q8_K ---- */

/* the bsums of 4 groups: t[i] holds 8 partial sums of group i -> [sum t0 .. sum t3] */
AI __m128i hsum4x8(__m256i t0, __m256i t1, __m256i t2, __m256i t3)
{
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(t0, t1), _mm256_hadd_epi32(t2, t3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// dst[k/256] = q8_k(x[k]); the same bytes as the reference (see kern.h)
static void quant_x_q8_k(const float *x, void *dst, int64_t k)
{
    kx_q8_k *b = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < k / QK_K; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8)
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        b[i].d = d;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i t[16];
        for (int j = 0; j < QK_K; j += 32) {
            /* x * id rounded to nearest-even (the MXCSR default), as the reference */
            __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), vid));
            __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), vid));
            __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 16), vid));
            __m256i q3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 24), vid));
            t[j / 16] = _mm256_add_epi32(q0, q1);
            t[j / 16 + 1] = _mm256_add_epi32(q2, q3);
            /* packs work per 128-bit lane: fix the dword order at the end */
            __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(b[i].qs + j), p);
        }
        __m128i s0 = hsum4x8(t[0], t[1], t[2], t[3]), s1 = hsum4x8(t[4], t[5], t[6], t[7]);
        __m128i s2 = hsum4x8(t[8], t[9], t[10], t[11]), s3 = hsum4x8(t[12], t[13], t[14], t[15]);
        _mm_storeu_si128((__m128i *)b[i].bsums, _mm_packs_epi32(s0, s1));
        _mm_storeu_si128((__m128i *)(b[i].bsums + 8), _mm_packs_epi32(s2, s3));
    }
}

/* ---- per-type block decoders ----
 * TYPE_setup(b, st): per-block state of one weight row (float scales, scale
 * vectors, the bsums factor B). TYPE_unit(b, st, u, U, S): unit u (elements
 * 32u .. 32u+32) as unsigned codes U and int16 scales S. */

typedef struct {
    __m256 F;   /* per-row float factor (times dx gives the step's F): with mins
                   [d, d, -dmin, -dmin] in both 128-bit lanes, with offsets d (8) */
    __m256i B;  /* 16 int16 bsums factors */
    __m256i sc; /* 32-element sub-blocks: the 8 int16 scales in both 128-bit lanes;
                   16-element sub-blocks: int16 scales 0..7 in both lanes */
    __m256i sc2; /* 16-element sub-blocks: scales 8..15 in both lanes */
} kq_st;

/* S for unit u of a type with 32-element sub-blocks: scale u in all 16 lanes */
AI __m256i scale32(const kq_st *st, int u)
{
    return _mm256_shuffle_epi8(st->sc, _mm256_set1_epi16((short)(0x0100 * (2 * u + 1) + 2 * u)));
}

/* S for unit u of a type with 16-element sub-blocks: scale 2u in the low
 * 8 lanes, 2u+1 in the high 8 */
AI __m256i scale16(const kq_st *st, int u)
{
    int e0 = (2 * u) % 8, e1 = (2 * u + 1) % 8;
    __m256i idx = _mm256_setr_epi8(2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1,
                                   2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1,
                                   2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1,
                                   2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1);
    return _mm256_shuffle_epi8(u < 4 ? st->sc : st->sc2, idx);
}

/* 16 signed scale bytes -> st->sc, st->sc2; returns all 16 as int16 */
AI __m256i scales16_setup(kq_st *st, __m128i s8)
{
    __m256i s16 = _mm256_cvtepi8_epi16(s8);
    st->sc = _mm256_permute2x128_si256(s16, s16, 0x00);
    st->sc2 = _mm256_permute2x128_si256(s16, s16, 0x11);
    return s16;
}

/* 8 unsigned scale bytes -> st->sc */
AI void scales8_setup(kq_st *st, uint64_t sc)
{
    __m128i s16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc));
    st->sc = _mm256_broadcastsi128_si256(s16);
}

/* F = [d, d, -dmin, -dmin] x 2 from the f16 pair at p (d, then dmin) */
AI __m256 f_min(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    __m128 dm = _mm_xor_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)v)), _mm_setr_ps(0.0f, -0.0f, 0.0f, 0.0f));
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(dm), _mm256_setr_epi32(0, 0, 1, 1, 0, 0, 1, 1));
}

/* F = d (8) from the f16 at p */
AI __m256 f_off(const unsigned char *p) { return _mm256_set1_ps(ld_f16(p)); }

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
    scales8_setup(st, sc);
    /* min j applies to bsums 2j and 2j+1 */
    __m128i m2 = _mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mn),
                                  _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7));
    st->B = _mm256_cvtepu8_epi16(m2);
}

/* q4_k (144 B): d | dmin | scales[12] | qs[128]; unit u = sub-block u: nibble
 * u&1 of qs[32*(u/2) + l] */
AI void q4k_setup(const unsigned char *b, kq_st *st) { k4_setup(b, st); }
AI void q4k_unit(const unsigned char *b, const kq_st *st, int u, __m256i *U, __m256i *S)
{
    __m256i q = ld256(b + 16 + 32 * (u / 2));
    *U = _mm256_and_si256(u & 1 ? _mm256_srli_epi16(q, 4) : q, b8(0x0f));
    *S = scale32(st, u);
}

/* q5_k (176 B): d | dmin | scales[12] | qh[32] | qs[128]; as q4_k plus bit u
 * of qh[l] as code bit 4 */
AI void q5k_setup(const unsigned char *b, kq_st *st) { k4_setup(b, st); }
AI void q5k_unit(const unsigned char *b, const kq_st *st, int u, __m256i *U, __m256i *S)
{
    __m256i q = ld256(b + 48 + 32 * (u / 2)), qh = ld256(b + 16);
    __m256i lo = _mm256_and_si256(u & 1 ? _mm256_srli_epi16(q, 4) : q, b8(0x0f));
    __m256i h = u < 4 ? _mm256_slli_epi16(qh, 4 - u) : u > 4 ? _mm256_srli_epi16(qh, u - 4) : qh;
    *U = _mm256_or_si256(lo, _mm256_and_si256(h, b8(0x10)));
    *S = scale32(st, u);
}

/* q6_k (210 B): ql[128] | qh[64] | i8 scales[16] | d; unit u = 4h + k: low
 * nibble k>>1 of ql[64h + 32(k&1) + l], high bits (qh[32h + l] >> 2k) & 3;
 * code - 32 via the bsums: B = 32 * scale */
AI void q6k_setup(const unsigned char *b, kq_st *st)
{
    st->F = f_off(b + 208);
    __m256i s16 = scales16_setup(st, _mm_loadu_si128((const __m128i *)(b + 192)));
    st->B = _mm256_slli_epi16(s16, 5);
}
AI void q6k_unit(const unsigned char *b, const kq_st *st, int u, __m256i *U, __m256i *S)
{
    const int h = u / 4, k = u % 4;
    __m256i ql = ld256(b + 64 * h + 32 * (k & 1)), qh = ld256(b + 128 + 32 * h);
    __m256i lo = _mm256_and_si256(k >= 2 ? _mm256_srli_epi16(ql, 4) : ql, b8(0x0f));
    __m256i hi = k == 0   ? _mm256_slli_epi16(qh, 4)
                 : k == 1 ? _mm256_slli_epi16(qh, 2)
                 : k == 2 ? qh
                          : _mm256_srli_epi16(qh, 2);
    *U = _mm256_or_si256(lo, _mm256_and_si256(hi, b8(0x30)));
    *S = scale16(st, u);
}

/* q3_k (110 B): hmask[32] | qs[64] | scales[12] | d; unit u = 4h + k: low
 * bits (qs[32h + l] >> 2k) & 3, bit 2 = bit u of hmask[l] (code + 4 stored:
 * B = 4 * scale) */
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
    __m256i s16 = scales16_setup(st, q3k_scales(b + 96));
    st->B = _mm256_slli_epi16(s16, 2);
}
AI void q3k_unit(const unsigned char *b, const kq_st *st, int u, __m256i *U, __m256i *S)
{
    const int h = u / 4, k = u % 4;
    __m256i q = ld256(b + 32 + 32 * h), hm = ld256(b);
    __m256i lo = _mm256_and_si256(k ? _mm256_srli_epi16(q, 2 * k) : q, b8(3));
    __m256i hb = u < 2 ? _mm256_slli_epi16(hm, 2 - u) : u > 2 ? _mm256_srli_epi16(hm, u - 2) : hm;
    *U = _mm256_or_si256(lo, _mm256_and_si256(hb, b8(4)));
    *S = scale16(st, u);
}

/* q2_k (84 B): scales[16] | qs[64] | d | dmin; unit u = 4h + k: codes
 * (qs[32h + l] >> 2k) & 3; sub-block s: scale sc[s] & 15, min sc[s] >> 4 */
AI void q2k_setup(const unsigned char *b, kq_st *st)
{
    st->F = f_min(b + 80);
    __m128i s = _mm_loadu_si128((const __m128i *)b);
    scales16_setup(st, _mm_and_si128(s, _mm_set1_epi8(0x0f)));
    st->B = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(0x0f)));
}
AI void q2k_unit(const unsigned char *b, const kq_st *st, int u, __m256i *U, __m256i *S)
{
    const int h = u / 4, k = u % 4;
    __m256i q = ld256(b + 16 + 32 * h);
    *U = _mm256_and_si256(k ? _mm256_srli_epi16(q, 2 * k) : q, b8(3));
    *S = scale16(st, u);
}

/* ---- the tile ----
 * out[c * ldo] = W[0, :k] . X[c, :k] for c < NC: one weight row w (nb
 * super-blocks of BYTES) against NC x rows (xb bytes apart). MIN: the type
 * has mins (corr scaled by dmin) rather than offsets (corr subtracted). */
#define KQ_TILE(NAME, BYTES, MIN)                                                                                      \
    AI void NAME##_tile(const unsigned char *w, const unsigned char *X, uint64_t xb, float *out, int64_t ldo,          \
                        int64_t nb, const int NC)                                                                      \
    {                                                                                                                  \
        __m256 acc[8];                                                                                                 \
        _Pragma("GCC unroll 8") for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps();                             \
        for (int64_t ib = 0; ib < nb; ib++) {                                                                          \
            const unsigned char *b = w + ib * (BYTES), *xk = X + ib * XSZ;                                             \
            _Pragma("GCC unroll 8") for (int i = 0; i < ((BYTES) + 63) / 64; i++)                                      \
                _mm_prefetch((const char *)b + KPF + 64 * i, _MM_HINT_T0);                                             \
            kq_st st;                                                                                                  \
            NAME##_setup(b, &st);                                                                                      \
            __m256i isum[8];                                                                                           \
            _Pragma("GCC unroll 8") for (int c = 0; c < NC; c++) isum[c] = _mm256_setzero_si256();                     \
            _Pragma("GCC unroll 8") for (int u = 0; u < 8; u++)                                                        \
            {                                                                                                          \
                __m256i U, S;                                                                                          \
                NAME##_unit(b, &st, u, &U, &S);                                                                        \
                _Pragma("GCC unroll 8") for (int c = 0; c < NC; c++)                                                   \
                {                                                                                                      \
                    __m256i p = _mm256_maddubs_epi16(U, ld256(xk + c * xb + XQS + 32 * u));                            \
                    isum[c] = _mm256_add_epi32(isum[c], _mm256_madd_epi16(p, S));                                      \
                    __asm__("" : "+x"(isum[c])); /* keep the sums sequential: no spills */                             \
                }                                                                                                      \
            }                                                                                                          \
            _Pragma("GCC unroll 8") for (int c = 0; c < NC; c++)                                                       \
            {                                                                                                          \
                const unsigned char *xc = xk + c * xb;                                                                 \
                float dx;                                                                                              \
                memcpy(&dx, xc, 4);                                                                                    \
                __m256i corr = _mm256_madd_epi16(st.B, ld256(xc + XBS));                                               \
                __m256i v = MIN ? _mm256_hadd_epi32(isum[c], corr) : _mm256_sub_epi32(isum[c], corr);                  \
                const __m256 f = _mm256_mul_ps(st.F, _mm256_set1_ps(dx));                                              \
                acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), f, acc[c]);                                            \
            }                                                                                                          \
        }                                                                                                              \
        _Pragma("GCC unroll 8") for (int c = 0; c < NC; c++) out[c * ldo] = hsum8(acc[c]);                             \
    }

/* NC of the column tiles; rows are walked in chunks of about ROWCHUNK bytes */
enum { NCT = 6, ROWCHUNK = 128 * 1024 };

/* out[c * ldo + r] = W[r, :k] . X[c, :k]: column tiles of NCT (the last one
 * narrower) over row chunks that stay in L2. */
#define KQ_GEMM(NAME, BYTES)                                                                                           \
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
KQ_GEMM(q2k, 84)
// out[c][r] = W[r,k] . X[c,k]   (Q3_K weights, Q8_K x)
KQ_GEMM(q3k, 110)
// out[c][r] = W[r,k] . X[c,k]   (Q4_K weights, Q8_K x)
KQ_GEMM(q4k, 144)
// out[c][r] = W[r,k] . X[c,k]   (Q5_K weights, Q8_K x)
KQ_GEMM(q5k, 176)
// out[c][r] = W[r,k] . X[c,k]   (Q6_K weights, Q8_K x)
KQ_GEMM(q6k, 210)

void kern_avx2_k_fill(kern_ops *o)
{
    o->quant_x[KX_Q8_K] = quant_x_q8_k;
    o->gemm[SOV_Q2_K] = gemm_q2k;
    o->gemm[SOV_Q3_K] = gemm_q3k;
    o->gemm[SOV_Q4_K] = gemm_q4k;
    o->gemm[SOV_Q5_K] = gemm_q5k;
    o->gemm[SOV_Q6_K] = gemm_q6k;
}
