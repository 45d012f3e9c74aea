/* kern_avx512: AVX-512 (F, BW, VL, DQ, VNNI) kernels for the float weight
 * types (F32, F16, BF16) and the 32-element block types (Q4_0 Q4_1 Q5_0 Q5_1
 * Q8_0), and the q8_32 x quantizer. Compiled with the AVX-512 flags; only
 * called after kern.c has checked the CPU.
 *
 * gemm structure (both families). out[c * ldo + r] = W[r, :k] . X[c, :k] is
 * computed in register tiles of R weight rows x C x rows (R, C compile-time
 * constants; every tile shape is generated from one always-inline function).
 * Each (r, c) pair owns one 16-lane float accumulator; every tile shape runs
 * exactly the same instruction sequence on it (same k steps, same lanes, same
 * final horizontal sum), so a value does not depend on nr, nc or its place in
 * the call (the determinism contract of kern.h).
 *
 * Quantized weights, x in kx_q8_32. The unit is a GROUP of 4 blocks (128
 * elements). Lanes are split by half-block: byte lane 16*b + j of the "lo"
 * vector holds element j of block b, of the "hi" vector element 16 + j
 * (b < 4, j < 16), so int32 lanes 4b..4b+3 belong to block b:
 *   i    = dpbusd(dpbusd(off, w_lo, x_lo), w_hi, x_hi)   exact integer dots
 *   acc += float(i) * (d_w[b] * d_x[b])                  (lanes of block b)
 *   acc += m_w[b] * (d_x[b] * sum_x[b])                  Q4_1 / Q5_1 only
 * w bytes are unsigned (4/5-bit codes as stored; Q8_0 is shifted by +128);
 * off holds -8/-16/-128 * sum_x[b] in lane 4b for the types whose codes carry
 * an offset (Q4_0 Q5_0 Q8_0). The codes of a 4/5-bit group and the f16
 * scales of every group are picked out of two 64-byte windows by vpermt2w
 * (every field of these layouts sits at an even byte offset); Q8_0 codes
 * come from one 32-byte load per block. Tiles prefetch their rows ahead
 * (see pf_base). A last partial group (k/32 not a multiple of 4) uses the
 * same code with masked loads: missing blocks read as zeros and add exact
 * zeros. */
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
AI bool has_off(int T) { return T == Q40 || T == Q50 || T == Q80; }
AI bool has_min(int T) { return T == Q41 || T == Q51; }
AI bool has_qh(int T) { return T == Q50 || T == Q51; }
/* log2 of the code offset: Q4_0 codes are q - 8, Q5_0 q - 16, Q8_0 (q + 128) - 128 */
AI int off_shift(int T) { return T == Q40 ? 3 : T == Q50 ? 4 : 7; }

/* horizontal sum of 16 floats, one fixed sequence */
AI float hsum(__m512 v)
{
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
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
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t i = 0; i < k / 32; i++, x += 32) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        /* max is exact, so the order does not matter */
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        /* cvtps rounds to nearest-even under the default MXCSR, as nearbyintf */
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid));
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        b[i].d = d;
        b[i].sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        _mm_storeu_si128((__m128i *)b[i].qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(b[i].qs + 16), _mm512_cvtepi32_epi8(q1));
    }
}

/* ---- float weights ---- */

/* 16 weights from element i of a row (m: lanes to load; m == 0xffff: all) */
AI __m512 ld_wf(int T, const unsigned char *p, int64_t i, bool full, __mmask16 m)
{
    if (T == F32)
        return full ? _mm512_loadu_ps(p + 4 * i) : _mm512_maskz_loadu_ps(m, p + 4 * i);
    __m256i h = full ? _mm256_loadu_si256((const __m256i *)(p + 2 * i)) : _mm256_maskz_loadu_epi16(m, p + 2 * i);
    if (T == F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); /* bf16 */
}

// out[c*ldo + r] = W[r, :k] . X[c, :k]   (r < R, c < C; float x rows)
AI void ftile(int T, int R, int C, const unsigned char *W, uint64_t rb, const unsigned char *X, uint64_t xb,
              float *out, int64_t ldo, int64_t k)
{
    __m512 acc[8][6];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512 xv[6];
        UNROLL for (int c = 0; c < C; c++) xv[c] = _mm512_loadu_ps((const float *)(X + (uint64_t)c * xb) + i);
        uintptr_t pf = pf_base(W, rb, R, (uint64_t)i * (T == F32 ? 4 : 2));
        UNROLL for (int r = 0; r < R; r++)
        {
            /* F16 / BF16: one column every step (measured faster than every
             * line), several columns every line; F32 streams as well without */
            if (T != F32 && (C == 1 || (i & 16) == 0))
                _mm_prefetch((const char *)(pf + r * rb), _MM_HINT_T0);
            __m512 w = ld_wf(T, W + (uint64_t)r * rb, i, true, 0xffff);
            UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(w, xv[c], acc[r][c]);
        }
    }
    if (i < k) { /* the same step on a zero-padded tail: exact zeros added */
        __mmask16 m = (__mmask16)((1u << (k - i)) - 1);
        __m512 xv[6];
        UNROLL for (int c = 0; c < C; c++) xv[c] = _mm512_maskz_loadu_ps(m, (const float *)(X + (uint64_t)c * xb) + i);
        UNROLL for (int r = 0; r < R; r++)
        {
            __m512 w = ld_wf(T, W + (uint64_t)r * rb, i, false, m);
            UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(w, xv[c], acc[r][c]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) out[c * ldo + r] = hsum(acc[r][c]);
}

/* ---- quantized weights ---- */

/* vpermt2w word indices, per quantized kind (Q40..Q80): the code bytes of
 * the 4/5-bit kinds and the "meta" words: 0-15 d of block w/4; 16-19 low qh words, 20-23
 * high qh words; 24-27 m of blocks 0-3. Built by kern_avx512_fill. */
static __m512i idx_lo[5], idx_meta[5];

/* bytes [o, o+64) of p, of which only those below v exist (zeros past v) */
AI __m512i ld_win(const unsigned char *p, int o, bool full, int v)
{
    if (full)
        return _mm512_loadu_si512(p + o);
    int n = v - o;
    __mmask64 m = n >= 64 ? ~0ull : n <= 0 ? 0 : ((1ull << n) - 1);
    return _mm512_maskz_loadu_epi8(m, p + o);
}

AI __m256i ld_win256(const unsigned char *p, int o, bool full, int v)
{
    if (full)
        return _mm256_loadu_si256((const __m256i *)(p + o));
    int n = v - o;
    __mmask32 m = n >= 32 ? ~0u : n <= 0 ? 0 : ((1u << n) - 1);
    return _mm256_maskz_loadu_epi8(m, p + o);
}

/* one x group (4 kx_q8_32 blocks, 160 bytes) in the lane layout */
typedef struct {
    __m512i lo, hi, off;
    __m512 d, smin;
} xgrp;

AI xgrp x_group(int T, const unsigned char *p, bool full, int v)
{
    xgrp g;
    /* qs of block b at 40b + 8 */
    __m512i z01 = _mm512_inserti64x4(_mm512_castsi256_si512(ld_win256(p, 8, full, v)), ld_win256(p, 48, full, v), 1);
    __m512i z23 = _mm512_inserti64x4(_mm512_castsi256_si512(ld_win256(p, 88, full, v)), ld_win256(p, 128, full, v), 1);
    g.lo = _mm512_shuffle_i64x2(z01, z23, 0x88); /* 128-bit lanes 0, 2 of each */
    g.hi = _mm512_shuffle_i64x2(z01, z23, 0xdd); /* lanes 1, 3 */
    /* d of block b is dword 10b, sum dword 10b + 1 (bytes 0..160 as two windows) */
    __m512i w0 = ld_win(p, 0, full, v), w1 = ld_win(p, 64, full, v);
    __asm__("" : "+v"(w0), "+v"(w1)); /* loaded once, used twice */
    const __m512i id = _mm512_set_epi32(30, 30, 30, 30, 20, 20, 20, 20, 10, 10, 10, 10, 0, 0, 0, 0);
    const __m512i is = _mm512_set_epi32(0, 0, 0, 31, 0, 0, 0, 21, 0, 0, 0, 11, 0, 0, 0, 1);
    g.d = _mm512_castsi512_ps(_mm512_permutex2var_epi32(w0, id, w1));
    __m512i s = _mm512_maskz_permutex2var_epi32(0x1111, w0, is, w1); /* sum_b in lane 4b */
    g.off = _mm512_setzero_si512();
    g.smin = _mm512_setzero_ps();
    if (has_off(T))
        g.off = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(s, off_shift(T)));
    if (has_min(T))
        g.smin = _mm512_mul_ps(_mm512_cvtepi32_ps(s), g.d);
    return g;
}

/* An x group prepared for the tiles of several columns (see prep_q): the
 * registers of x_group stored in order, lo hi off d (and smin for the kinds
 * with a min), 64 bytes each. */
AI int xg_bytes(int T) { return has_min(T) ? 320 : 256; }

AI void x_store(int T, unsigned char *p, const xgrp *g)
{
    _mm512_store_si512(p, g->lo);
    _mm512_store_si512(p + 64, g->hi);
    if (has_off(T))
        _mm512_store_si512(p + 128, g->off);
    _mm512_store_ps(p + 192, g->d);
    if (has_min(T))
        _mm512_store_ps(p + 256, g->smin);
}

AI xgrp x_load(int T, const unsigned char *p)
{
    xgrp g;
    g.lo = _mm512_load_si512(p);
    g.hi = _mm512_load_si512(p + 64);
    g.off = has_off(T) ? _mm512_load_si512(p + 128) : _mm512_setzero_si512();
    g.d = _mm512_load_ps(p + 192);
    g.smin = has_min(T) ? _mm512_load_ps(p + 256) : _mm512_setzero_ps();
    return g;
}

/* one weight group (4 blocks) in the lane layout */
typedef struct {
    __m512i lo, hi;
    __m512 d, m;
} wgrp;

AI wgrp w_group(int T, const unsigned char *p, bool full, int v, __m512i ilo, __m512i imeta)
{
    wgrp g;
    __m512i meta;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    if (T == Q80) {
        /* lo codes and d from bytes [0, 128), hi codes from [8, 136) */
        /* codes: 32 bytes per block at 34b + 2, halves to lo / hi lanes */
        __m512i z01 = _mm512_inserti64x4(_mm512_castsi256_si512(ld_win256(p, 2, full, v)), ld_win256(p, 36, full, v), 1);
        __m512i z23 = _mm512_inserti64x4(_mm512_castsi256_si512(ld_win256(p, 70, full, v)), ld_win256(p, 104, full, v), 1);
        const __m512i x80 = _mm512_set1_epi8((char)0x80);
        g.lo = _mm512_xor_si512(_mm512_shuffle_i64x2(z01, z23, 0x88), x80);
        g.hi = _mm512_xor_si512(_mm512_shuffle_i64x2(z01, z23, 0xdd), x80);
        __m512i a = ld_win(p, 0, full, v), b = ld_win(p, 64, full, v);
        meta = _mm512_permutex2var_epi16(a, imeta, b);
    } else {
        const int gb = 4 * blk_bytes(T);
        __m512i a = ld_win(p, 0, full, v), b = ld_win(p, gb - 64, full, v);
        /* keep the windows in registers (GCC would reload them for each permute) */
        __asm__("" : "+v"(a), "+v"(b));
        __m512i q = _mm512_permutex2var_epi16(a, ilo, b);
        g.lo = _mm512_and_si512(q, m4);
        g.hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
        meta = _mm512_permutex2var_epi16(a, imeta, b);
        if (has_qh(T)) { /* bit 4 of the codes: one mask bit per byte lane */
            __m128i h = _mm512_extracti32x4_epi32(meta, 2);
            __mmask64 mlo = (__mmask64)_mm_cvtsi128_si64(h), mhi = (__mmask64)_mm_extract_epi64(h, 1);
            const __m512i sixteen = _mm512_set1_epi8(16);
            g.lo = _mm512_mask_add_epi8(g.lo, mlo, g.lo, sixteen);
            g.hi = _mm512_mask_add_epi8(g.hi, mhi, g.hi, sixteen);
        }
    }
    g.d = _mm512_cvtph_ps(_mm512_castsi512_si256(meta));
    g.m = _mm512_setzero_ps();
    if (has_min(T)) {
        const __m512i i4 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
        __m128 m = _mm_cvtph_ps(_mm512_extracti32x4_epi32(meta, 3));
        g.m = _mm512_permutexvar_ps(i4, _mm512_castps128_ps512(m));
    }
    return g;
}

/* one (r, c) pair, one group */
AI __m512 q_step(int T, __m512 acc, const wgrp *w, const xgrp *x)
{
    __m512i i = _mm512_dpbusd_epi32(x->off, w->lo, x->lo);
    i = _mm512_dpbusd_epi32(i, w->hi, x->hi);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(w->d, x->d), acc);
    if (has_min(T))
        acc = _mm512_fmadd_ps(w->m, x->smin, acc);
    return acc;
}

/* x8 prefetch: the 8 rows of a group read one stream; each unit step (8
 * units, one per row) fetches its bytes PF_X8 ahead */
enum { PF_X8 = 3072 };

// out[c*ldo + r] = W[r, :k] . X[c, :k]   (r < R, c < C; kx_q8_32 x rows, or
// with C > 1 x rows prepared by prep_q: the same x groups decoded once)
// Layouts: plain (x8 false): row r's group g (= unit g, 4 blocks) at W + r*rb + g*gb.
// x8 (kern.h; W the 8-row group, r8 the tile's first row in it): unit g of
// tile row r at W + g*8gb + (r8 + r)*gb, the tail at W + ng*8gb + (r8 + r)*tail.
AI void qtile(int T, bool x8, int R, int C, const unsigned char *W, int r8, uint64_t rb, const unsigned char *X,
              uint64_t xb, float *out, int64_t ldo, int64_t k)
{
    const int q = T - Q40, gb = 4 * blk_bytes(T);
    const __m512i ilo = idx_lo[q], imeta = idx_meta[q];
    const int64_t nblk = k / 32, ng = nblk / 4;
    const int nt = (int)(nblk % 4);
    const uint64_t tail = (uint64_t)nt * (uint64_t)blk_bytes(T);
    const unsigned char *w0 = x8 ? W + (uint64_t)r8 * (uint64_t)gb : W;
    const unsigned char *wt = x8 ? W + (uint64_t)ng * 8 * (uint64_t)gb + (uint64_t)r8 * tail : W + (uint64_t)ng * (uint64_t)gb;
    const uint64_t rs = x8 ? (uint64_t)gb : rb, us = x8 ? 8 * (uint64_t)gb : (uint64_t)gb, rst = x8 ? tail : rb;
    __m512 acc[8][6];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
    const bool pre = C > 1;
    for (int64_t g = 0; g < ng; g++) {
        xgrp xs[6];
        UNROLL for (int c = 0; c < C; c++) xs[c] = pre ? x_load(T, X + (uint64_t)c * xb + (uint64_t)g * xg_bytes(T))
                                                       : x_group(T, X + (uint64_t)c * xb + (uint64_t)g * 160, true, 0);
        const unsigned char *wp = w0 + (uint64_t)g * us;
        if (x8) {
            const unsigned char *pf = W + (uint64_t)g * us + PF_X8;
            UNROLL for (int i = 0; i < (8 * gb + 63) / 64; i++)
                _mm_prefetch((const char *)(pf + 64 * i), _MM_HINT_T0);
        }
        uintptr_t pf = pf_base(W, rb, R, (uint64_t)g * (uint64_t)gb);
        UNROLL for (int r = 0; r < R; r++)
        {
            if (!x8)
                UNROLL for (int i = 0; i < (gb + 63) / 64; i++)
                    _mm_prefetch((const char *)(pf + r * rb + 64 * i), _MM_HINT_T0);
            wgrp w = w_group(T, wp + (uint64_t)r * rs, true, 0, ilo, imeta);
            UNROLL for (int c = 0; c < C; c++) acc[r][c] = q_step(T, acc[r][c], &w, &xs[c]);
        }
    }
    if (nt) {
        xgrp xs[6];
        UNROLL for (int c = 0; c < C; c++) xs[c] = pre ? x_load(T, X + (uint64_t)c * xb + (uint64_t)ng * xg_bytes(T))
                                                       : x_group(T, X + (uint64_t)c * xb + (uint64_t)ng * 160, false, nt * 40);
        UNROLL for (int r = 0; r < R; r++)
        {
            wgrp w = w_group(T, wt + (uint64_t)r * rst, false, nt * blk_bytes(T), ilo, imeta);
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
 * to NM rows x NC columns. */
#ifndef FT1
#define FT1 8
#define FTM 6
#define FTC 4
#endif
#ifndef QT1
#define QT1 8
#define QTM 6
#define QTC 4
#endif

/* The tiles of several columns read x groups decoded once per column tile
 * (prep_q), not once per row tile: a 6 x 4 tile otherwise spends about a
 * quarter of its instructions turning x blocks into the lane layout
 * (kern_bench, Intel Xeon, 1 thread, 64 columns: Q4_0 137 -> 157 GFLOP/s,
 * Q8_0 139 -> 156, x8 layout 128 -> 155). Room for QTC columns of 256
 * groups of 320 bytes (k up to 32768 for Q4_1 / Q5_1, whose groups carry a
 * min, 40960 for the others at 256 bytes); past that the driver falls back
 * to one-column tiles, which compute the same values. The buffer is a local
 * of the driver (320 KiB of stack; threads get megabytes). */
#define TILE_PREP_BYTES (QTC * 256 * 320)

/* for prep_q (kern_tiles.h): a group is XG_BLOCKS blocks; the one at p has nb */
enum { XG_BLOCKS = 4 };
AI xgrp x_group_n(int T, const unsigned char *p, int nb) { return x_group(T, p, nb == 4, nb * 40); }

#define TILE_PREP_Q 1
#include "kern_tiles.h"

/* ---- index tables ---- */

/* vpermt2w index of the 2 bytes at offset o, from window A (bytes [oa, oa+64))
 * or B ([ob, ob+64)); -1 if neither holds them. */
static int widx(int o, int oa, int ob)
{
    if (o >= oa && o + 2 <= oa + 64)
        return (o - oa) / 2;
    if (o >= ob && o + 2 <= ob + 64)
        return 32 + (o - ob) / 2;
    return -1;
}

/* Builds the tables for one kind; false if a field falls outside the windows
 * (a layout error: the kind is then left to the AVX2 entries). Q8_0 only
 * uses the meta table (its codes come from plain 32-byte loads). */
static bool build_idx(int T)
{
    const int q = T - Q40, bs = blk_bytes(T);
    /* byte offsets inside a block: codes, qh (d at 0, m at 2) */
    const int qoff = T == Q40 ? 2 : T == Q41 ? 4 : T == Q50 ? 6 : 8;
    const int qhoff = T == Q50 ? 2 : 4;
    const int oa = 0, ob = T == Q80 ? 64 : 4 * bs - 64;
    int16_t lo[32], meta[32];
    bool ok = true;
    for (int w = 0; w < 32; w++) {
        int b = w / 8, j = w % 8;
        lo[w] = T == Q80 ? 0 : (int16_t)widx(bs * b + qoff + 2 * j, oa, ob);
        int o = -2; /* -2: unused word */
        if (w < 16)
            o = bs * (w / 4);
        else if (w < 24 && has_qh(T))
            o = bs * ((w - 16) % 4) + qhoff + (w < 20 ? 0 : 2);
        else if (w >= 24 && w < 28 && has_min(T))
            o = bs * (w - 24) + 2;
        meta[w] = o == -2 ? 0 : (int16_t)widx(o, oa, ob);
        ok = ok && lo[w] >= 0 && meta[w] >= 0;
    }
    memcpy(&idx_lo[q], lo, 64);
    memcpy(&idx_meta[q], meta, 64);
    return ok;
}

void kern_avx512_fill(kern_ops *o)
{
    o->quant_x[KX_Q8_32] = quant_x_q8_32;
    o->gemm[SOV_F32] = gemm_f32;
    o->gemm[SOV_F16] = gemm_f16;
    o->gemm[SOV_BF16] = gemm_bf16;
    static const struct {
        int kind;
        uint32_t type;
        kern_gemm_fn fn, fn_x8;
    } q[] = {{Q40, SOV_Q4_0, gemm_q4_0, gemm_x8_q4_0}, {Q41, SOV_Q4_1, gemm_q4_1, gemm_x8_q4_1},
             {Q50, SOV_Q5_0, gemm_q5_0, gemm_x8_q5_0}, {Q51, SOV_Q5_1, gemm_q5_1, gemm_x8_q5_1},
             {Q80, SOV_Q8_0, gemm_q8_0, gemm_x8_q8_0}};
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        if (build_idx(q[i].kind)) {
            o->gemm[q[i].type] = q[i].fn;
            o->gemm_x8[q[i].type] = q[i].fn_x8;
        }
}
