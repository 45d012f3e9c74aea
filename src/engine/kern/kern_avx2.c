/* kern_avx2: AVX2 + FMA + F16C kernels for the float weight types (F32, F16,
 * BF16) and the 32-element block types (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0), and the
 * q8_32 x quantizer. Compiled with -mavx2 -mfma -mf16c; only called after
 * kern.c has checked the CPU.
 *
 * gemm structure (both families). out[c * ldo + r] = W[r, :k] . X[c, :k] is
 * computed in register tiles of R weight rows x C x rows (R, C compile-time
 * constants; every tile shape is generated from one always-inline function).
 * Each (r, c) pair owns one 8-lane float accumulator, and every tile shape
 * runs exactly the same instruction sequence on it (same k steps, same lanes,
 * same final horizontal sum), so a value does not depend on nr, nc or its
 * place in the call (the determinism contract of kern.h).
 *
 * Quantized weights, x in kx_q8_32. The unit is a GROUP of 2 blocks (64
 * elements). Byte lane 16*b + j of the "lo" vector holds element j of block
 * b, of the "hi" vector element 16 + j (b < 2, j < 16), so int32 lanes
 * 4b..4b+3 belong to block b:
 *   p    = maddubs(w_lo, x_lo) + maddubs(w_hi, x_hi)   int16, cannot saturate
 *   i    = madd(p, 1) + off                            exact integer dots
 *   acc += float(i) * (d_w[b] * d_x[b])
 *   acc += m_w[b] * (d_x[b] * sum_x[b])                 Q4_1 / Q5_1 only
 * w bytes are the unsigned 4/5-bit codes as stored; off holds -8 or -16 *
 * sum_x[b] in lane 4b for Q4_0 / Q5_0. Q8_0 (signed x signed) uses
 * maddubs(|w|, sign(x, w)) per half, each half widened to int32 before the
 * halves are added. With an odd number of blocks the last group has its
 * second block zeroed: it adds exact zeros. */
#include "kern.h"

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

/* kernel kinds: the float ones step over elements, the quantized ones over groups */
enum { F32, F16, BF16, Q40, Q41, Q50, Q51, Q80 };

AI int blk_bytes(int T) { return T == Q40 ? 18 : T == Q41 ? 20 : T == Q50 ? 22 : T == Q51 ? 24 : 34; }
AI bool has_off(int T) { return T == Q40 || T == Q50; }
AI bool has_min(int T) { return T == Q41 || T == Q51; }
AI bool has_qh(int T) { return T == Q50 || T == Q51; }
/* byte offset of the codes, the qh word and m inside a block */
AI int qs_off(int T) { return T == Q40 ? 2 : T == Q41 ? 4 : T == Q50 ? 6 : T == Q51 ? 8 : 2; }
AI int qh_off(int T) { return T == Q50 ? 2 : 4; }

AI uint32_t rd16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

AI uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

AI __m256i ld2x128(const unsigned char *lo, const unsigned char *hi)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)lo)),
                                   _mm_loadu_si128((const __m128i *)hi), 1);
}

/* horizontal sum of 8 floats, one fixed sequence */
AI float hsum(__m256 v)
{
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}

/* Software prefetch (the hardware prefetchers alone leave a matrix-vector
 * product streaming weights from memory well below the memory bandwidth):
 * each row of a tile is fetched PF_DIST bytes ahead of its reads; near the
 * end of the rows the prefetches run on into the rows of the next tile.
 * Returns where row 0's prefetches go when the tile reads offset `off` of its
 * R rows (rows rb bytes apart; the next tile starts R rows on). Prefetches
 * never fault, so running past the matrix is harmless. */
enum { PF_DIST = 1536 };

AI uintptr_t pf_base(const unsigned char *W, uint64_t rb, int R, uint64_t off)
{
    /* an integer address: it may lie past the matrix */
    uint64_t po = off + PF_DIST;
    return (uintptr_t)W + (po < rb ? po : (uint64_t)R * rb + (po - rb));
}

/* ---- x quantizer ---- */

// dst[k/32] = q8_32(x[k]), byte-identical to the reference
static void quant_x_q8_32(const float *x, void *dst, int64_t k)
{
    kx_q8_32 *b = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t i = 0; i < k / 32; i++, x += 32) {
        __m256 v[4];
        for (int j = 0; j < 4; j++)
            v[j] = _mm256_loadu_ps(x + 8 * j);
        /* max is exact, so the order does not matter */
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_movehdup_ps(h));
        float amax = _mm_cvtss_f32(h);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        /* cvtps rounds to nearest-even under the default MXCSR, as nearbyintf */
        for (int j = 0; j < 4; j++)
            q[j] = _mm256_cvtps_epi32(_mm256_mul_ps(v[j], vid));
        __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
        /* |q| <= 127: the saturating packs are exact; they interleave 128-bit
         * lanes, which the dword permute undoes */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        p = _mm256_permutevar8x32_epi32(p, order);
        b[i].d = d;
        b[i].sum = _mm_cvtsi128_si32(s4);
        _mm256_storeu_si256((__m256i *)b[i].qs, p);
    }
}

/* ---- float weights ---- */

/* 8 weights from element i of a row */
AI __m256 ld_wf(int T, const unsigned char *p, int64_t i)
{
    if (T == F32)
        return _mm256_loadu_ps((const float *)(p + 4 * i));
    __m128i h = _mm_loadu_si128((const __m128i *)(p + 2 * i));
    if (T == F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); /* bf16 */
}

/* 8 weights from element i of a row of which only n < 8 remain (zeros after) */
AI __m256 ld_wf_tail(int T, const unsigned char *p, int64_t i, int n)
{
    unsigned char t[32] = {0};
    memcpy(t, p + (T == F32 ? 4 : 2) * i, (size_t)n * (T == F32 ? 4 : 2));
    return ld_wf(T, t, 0);
}

// out[c*ldo + r] = W[r, :k] . X[c, :k]   (r < R, c < C; float x rows)
AI void ftile(int T, int R, int C, const unsigned char *W, uint64_t rb, const unsigned char *X, uint64_t xb,
              float *out, int64_t ldo, int64_t k)
{
    __m256 acc[8][6];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 xv[6];
        UNROLL for (int c = 0; c < C; c++) xv[c] = _mm256_loadu_ps((const float *)(X + (uint64_t)c * xb) + i);
        uintptr_t pf = pf_base(W, rb, R, (uint64_t)i * (T == F32 ? 4 : 2));
        UNROLL for (int r = 0; r < R; r++)
        {
            /* F16 / BF16: every 32 bytes (measured faster than every line);
             * F32 streams as well without */
            if (T != F32 && (i & 8) == 0)
                _mm_prefetch((const char *)(pf + r * rb), _MM_HINT_T0);
            __m256 w = ld_wf(T, W + (uint64_t)r * rb, i);
            UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(w, xv[c], acc[r][c]);
        }
    }
    if (i < k) { /* the same step on a zero-padded tail: exact zeros added */
        const int n = (int)(k - i);
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
        __m256 xv[6];
        UNROLL for (int c = 0; c < C; c++) xv[c] = _mm256_maskload_ps((const float *)(X + (uint64_t)c * xb) + i, m);
        UNROLL for (int r = 0; r < R; r++)
        {
            __m256 w = ld_wf_tail(T, W + (uint64_t)r * rb, i, n);
            UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(w, xv[c], acc[r][c]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) out[c * ldo + r] = hsum(acc[r][c]);
}

/* ---- quantized weights ---- */

/* one x group (2 kx_q8_32 blocks, 80 bytes; only block 0 if `one`) */
typedef struct {
    __m256i lo, hi, off;
    __m256 d, smin;
} xgrp;

AI xgrp x_group(int T, const unsigned char *p, bool one)
{
    xgrp g;
    float d0, d1 = 0.0f;
    int32_t s0, s1 = 0;
    memcpy(&d0, p, 4);
    memcpy(&s0, p + 4, 4);
    if (one) {
        g.lo = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 8)));
        g.hi = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p + 24)));
        g.lo = _mm256_inserti128_si256(g.lo, _mm_setzero_si128(), 1);
        g.hi = _mm256_inserti128_si256(g.hi, _mm_setzero_si128(), 1);
    } else {
        g.lo = ld2x128(p + 8, p + 48);
        g.hi = ld2x128(p + 24, p + 64);
        memcpy(&d1, p + 40, 4);
        memcpy(&s1, p + 44, 4);
    }
    g.d = _mm256_setr_m128(_mm_set1_ps(d0), _mm_set1_ps(d1));
    __m256i s = _mm256_setr_epi32(s0, 0, 0, 0, s1, 0, 0, 0); /* sum_b in lane 4b */
    g.off = _mm256_setzero_si256();
    g.smin = _mm256_setzero_ps();
    if (has_off(T))
        g.off = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(s, T == Q40 ? 3 : 4));
    if (has_min(T))
        g.smin = _mm256_mul_ps(_mm256_cvtepi32_ps(s), g.d);
    return g;
}

/* An x group prepared for the tiles of several columns (see prep_q): the
 * registers of x_group stored in order, lo hi off d (and smin for the kinds
 * with a min), 32 bytes each. */
AI int xg_bytes(int T) { return has_min(T) ? 160 : 128; }

AI void x_store(int T, unsigned char *p, const xgrp *g)
{
    _mm256_store_si256((__m256i *)p, g->lo);
    _mm256_store_si256((__m256i *)(p + 32), g->hi);
    if (has_off(T))
        _mm256_store_si256((__m256i *)(p + 64), g->off);
    _mm256_store_ps((float *)(p + 96), g->d);
    if (has_min(T))
        _mm256_store_ps((float *)(p + 128), g->smin);
}

AI xgrp x_load(int T, const unsigned char *p)
{
    xgrp g;
    g.lo = _mm256_load_si256((const __m256i *)p);
    g.hi = _mm256_load_si256((const __m256i *)(p + 32));
    g.off = has_off(T) ? _mm256_load_si256((const __m256i *)(p + 64)) : _mm256_setzero_si256();
    g.d = _mm256_load_ps((const float *)(p + 96));
    g.smin = has_min(T) ? _mm256_load_ps((const float *)(p + 128)) : _mm256_setzero_ps();
    return g;
}

/* one weight group (2 blocks, or block 0 only if `one`) */
typedef struct {
    __m256i lo, hi;   /* codes (Q8_0: the signed values) */
    __m256i alo, ahi; /* Q8_0: |lo|, |hi| */
    __m256 d, m;
} wgrp;

/* 32 byte lanes from 32 mask bits: byte j of the result is 0x10 where bit j is set */
AI __m256i qh_bytes(uint32_t bits)
{
    const __m256i rep = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                         3, 3, 3, 3, 3, 3, 3);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), rep);
    __m256i e = _mm256_cmpeq_epi8(_mm256_and_si256(v, sel), sel);
    return _mm256_and_si256(e, _mm256_set1_epi8(0x10));
}

AI wgrp w_group(int T, const unsigned char *p, bool one)
{
    wgrp g;
    const int bs = blk_bytes(T);
    const unsigned char *p1 = one ? p : p + bs; /* block 1 (block 0 again if absent, then zeroed) */
    /* scales: halves d0 (m0) d1 (m1) -> floats */
    __m128 h;
    if (has_min(T)) { /* d | m << 16 per block */
        uint64_t dm = rd32(p) | (one ? 0 : (uint64_t)rd32(p1) << 32);
        h = _mm_cvtph_ps(_mm_cvtsi64_si128((long long)dm)); /* d0 m0 d1 m1 */
        g.d = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(h), _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2));
        g.m = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(h), _mm256_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3));
    } else {
        uint32_t dd = rd16(p) | (one ? 0 : rd16(p1) << 16);
        h = _mm_cvtph_ps(_mm_cvtsi32_si128((int)dd)); /* d0 d1 0 0 */
        g.d = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(h), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
        g.m = _mm256_setzero_ps();
    }
    const __m256i keep = one ? _mm256_setr_epi64x(-1, -1, 0, 0) : _mm256_set1_epi8(-1);
    if (T == Q80) {
        g.lo = _mm256_and_si256(ld2x128(p + 2, p1 + 2), keep);
        g.hi = _mm256_and_si256(ld2x128(p + 18, p1 + 18), keep);
        g.alo = _mm256_abs_epi8(g.lo);
        g.ahi = _mm256_abs_epi8(g.hi);
        return g;
    }
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i q = _mm256_and_si256(ld2x128(p + qs_off(T), p1 + qs_off(T)), keep);
    g.lo = _mm256_and_si256(q, m4);
    g.hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if (has_qh(T)) {
        uint32_t h0 = rd32(p + qh_off(T)), h1 = one ? 0 : rd32(p1 + qh_off(T));
        g.lo = _mm256_or_si256(g.lo, qh_bytes((h0 & 0xffff) | h1 << 16));
        g.hi = _mm256_or_si256(g.hi, qh_bytes(h0 >> 16 | (h1 & 0xffff0000u)));
    }
    g.alo = g.ahi = _mm256_setzero_si256();
    return g;
}

/* one (r, c) pair, one group */
AI __m256 q_step(int T, __m256 acc, const wgrp *w, const xgrp *x)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i i;
    if (T == Q80) {
        __m256i pl = _mm256_maddubs_epi16(w->alo, _mm256_sign_epi8(x->lo, w->lo));
        __m256i ph = _mm256_maddubs_epi16(w->ahi, _mm256_sign_epi8(x->hi, w->hi));
        i = _mm256_add_epi32(_mm256_madd_epi16(pl, ones), _mm256_madd_epi16(ph, ones));
    } else {
        __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(w->lo, x->lo), _mm256_maddubs_epi16(w->hi, x->hi));
        i = _mm256_madd_epi16(p, ones);
        if (has_off(T))
            i = _mm256_add_epi32(i, x->off);
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_mul_ps(w->d, x->d), acc);
    if (has_min(T))
        acc = _mm256_fmadd_ps(w->m, x->smin, acc);
    return acc;
}

/* Where a tile's rows find their groups (2 blocks: 2g, 2g+1) in either
 * layout: group g of tile row r lies in unit u = g/2 at
 *   u < nu:  w0 + r * rs + u * us + (g & 1) * gb
 *   tail:    wt + r * rst + (g & 1) * gb
 * plain: w0 = W, rs = rb, us = U, wt = W + nu * U, rst = rb (= W + r*rb + g*gb);
 * x8 (see kern.h; W the 8-row group, r8 the tile's first row in it):
 *        w0 = W + r8 * U, rs = U, us = 8U, wt = W + nu * 8U + r8 * tail, rst = tail. */
typedef struct {
    const unsigned char *w0, *wt;
    uint64_t rs, us, rst;
} wlay;

AI wlay lay_of(int T, bool x8, const unsigned char *W, int r8, uint64_t rb, int64_t k)
{
    const uint64_t U = 4 * (uint64_t)blk_bytes(T), nu = (uint64_t)(k / 128),
                   tail = (uint64_t)(k / 32 % 4) * (uint64_t)blk_bytes(T);
    if (x8)
        return (wlay){W + (uint64_t)r8 * U, W + nu * 8 * U + (uint64_t)r8 * tail, U, 8 * U, tail};
    return (wlay){W, W + nu * U, rb, U, rb};
}

/* x8 prefetch: the 8 rows of a group read one stream; each group step (half
 * a unit, 4 blocks of the 8 rows) fetches its bytes PF_X8 ahead */
enum { PF_X8 = 3072 };

// out[c*ldo + r] = W[r, :k] . X[c, :k]   (r < R, c < C; kx_q8_32 x rows, or with
// C > 1 x rows prepared by prep_q: the same x groups decoded once; W in layout `x8`)
AI void qtile(int T, bool x8, int R, int C, const unsigned char *W, int r8, uint64_t rb, const unsigned char *X,
              uint64_t xb, float *out, int64_t ldo, int64_t k)
{
    const int gb = 2 * blk_bytes(T);
    const int64_t nblk = k / 32, ng = nblk / 2, nu = k / 128;
    const wlay L = lay_of(T, x8, W, r8, rb, k);
    __m256 acc[8][6];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    const bool pre = C > 1;
    for (int64_t g = 0; g < ng; g++) {
        xgrp xs[6];
        UNROLL for (int c = 0; c < C; c++) xs[c] = pre ? x_load(T, X + (uint64_t)c * xb + (uint64_t)g * xg_bytes(T))
                                                       : x_group(T, X + (uint64_t)c * xb + (uint64_t)g * 80, false);
        const int64_t u = g / 2;
        const uint64_t half = (uint64_t)(g & 1) * (uint64_t)gb;
        const unsigned char *wp = u < nu ? L.w0 + (uint64_t)u * L.us + half : L.wt + half;
        const uint64_t rs = u < nu ? L.rs : L.rst;
        if (x8) {
            const unsigned char *pf = W + (uint64_t)u * L.us + (uint64_t)(g & 1) * (L.us / 2) + PF_X8;
            UNROLL for (int i = 0; i < (8 * gb + 63) / 64; i++)
                _mm_prefetch((const char *)(pf + 64 * i), _MM_HINT_T0);
        }
        uintptr_t pf = pf_base(W, rb, R, (uint64_t)g * (uint64_t)gb);
        UNROLL for (int r = 0; r < R; r++)
        {
            if (!x8)
                UNROLL for (int i = 0; i < (gb + 63) / 64; i++)
                    _mm_prefetch((const char *)(pf + r * rb + 64 * i), _MM_HINT_T0);
            wgrp w = w_group(T, wp + (uint64_t)r * rs, false);
            UNROLL for (int c = 0; c < C; c++) acc[r][c] = q_step(T, acc[r][c], &w, &xs[c]);
        }
    }
    if (nblk % 2) { /* one block left: in the tail unit (nblk % 4 is odd) */
        xgrp xs[6];
        UNROLL for (int c = 0; c < C; c++) xs[c] = pre ? x_load(T, X + (uint64_t)c * xb + (uint64_t)ng * xg_bytes(T))
                                                       : x_group(T, X + (uint64_t)c * xb + (uint64_t)ng * 80, true);
        const unsigned char *wp = L.wt + (uint64_t)(ng & 1) * (uint64_t)gb;
        UNROLL for (int r = 0; r < R; r++)
        {
            wgrp w = w_group(T, wp + (uint64_t)r * L.rst, true);
            UNROLL for (int c = 0; c < C; c++) acc[r][c] = q_step(T, acc[r][c], &w, &xs[c]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) out[c * ldo + r] = hsum(acc[r][c]);
}

AI void tile(int T, int R, int C, const unsigned char *W, uint64_t rb, const unsigned char *X, uint64_t xb,
             float *out, int64_t ldo, int64_t k)
{
    if (T <= BF16)
        ftile(T, R, C, W, rb, X, xb, out, ldo, k);
    else
        qtile(T, false, R, C, W, 0, rb, X, xb, out, ldo, k);
}

/* one tile over x8 weights: G the 8-row group, r8 the tile's first row in it */
AI void tile_x8(int T, int R, int C, const unsigned char *G, int r8, uint64_t rb, const unsigned char *X,
                uint64_t xb, float *out, int64_t ldo, int64_t k)
{
    qtile(T, true, R, C, G, r8, rb, X, xb, out, ldo, k);
}

/* ---- tile instances and the driver ---- */

/* Tile shapes per kind: a column alone uses up to N1 rows x 1; otherwise up
 * to NM rows x NC columns. Float kinds keep R*C accumulators + C x vectors
 * in the 16 ymm registers; the quantized kinds do better with 4 x 4 tiles. */
#ifndef FT1
#define FT1 8
#define FTM 4
#define FTC 3
#endif
#ifndef QT1
#define QT1 8
#define QTM 4
#define QTC 4
#endif

/* The tiles of several columns read x groups decoded once per column tile
 * (prep_q), as in kern_avx512.c. Room for QTC columns of 512 groups of 160
 * bytes (k up to 32768 for Q4_1 / Q5_1, 40960 for the others at 128 bytes);
 * past that the driver falls back to one-column tiles, which compute the
 * same values. The buffer is a local of the driver (320 KiB of stack). */
#define TILE_PREP_BYTES (QTC * 512 * 160)

/* for prep_q (kern_tiles.h): a group is XG_BLOCKS blocks; the one at p has nb */
enum { XG_BLOCKS = 2 };
AI xgrp x_group_n(int T, const unsigned char *p, int nb) { return x_group(T, p, nb < 2); }

#define TILE_PREP_Q 1
#include "kern_tiles.h"

void kern_avx2_fill(kern_ops *o)
{
    /* no AVX2 kernels for the r16 layout: the reference's scalar ones would
     * be far slower than x8, so weights stay x8 on this table */
    memset(o->gemm_r16, 0, sizeof o->gemm_r16);
    memset(o->r16_rows, 0, sizeof o->r16_rows);
    o->quant_x[KX_Q8_32] = quant_x_q8_32;
    o->gemm[SOV_F32] = gemm_f32;
    o->gemm[SOV_F16] = gemm_f16;
    o->gemm[SOV_BF16] = gemm_bf16;
    o->gemm[SOV_Q4_0] = gemm_q4_0;
    o->gemm[SOV_Q4_1] = gemm_q4_1;
    o->gemm[SOV_Q5_0] = gemm_q5_0;
    o->gemm[SOV_Q5_1] = gemm_q5_1;
    o->gemm[SOV_Q8_0] = gemm_q8_0;
    o->gemm_x8[SOV_Q4_0] = gemm_x8_q4_0;
    o->gemm_x8[SOV_Q4_1] = gemm_x8_q4_1;
    o->gemm_x8[SOV_Q5_0] = gemm_x8_q5_0;
    o->gemm_x8[SOV_Q5_1] = gemm_x8_q5_1;
    o->gemm_x8[SOV_Q8_0] = gemm_x8_q8_0;
}
