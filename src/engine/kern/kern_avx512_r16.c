/* kern_avx512_r16: AVX-512 VNNI gemm over weights in the r16 layout
 * (kern.h) for Q4_0, Q8_0, Q4_K and Q6_K (see ktile, k6tile). Compiled
 * with the AVX-512 flags; only called after kern.c has checked the CPU.
 *
 * One 32-bit lane per weight row: a 64-byte vector holds code word t of 16
 * rows, and x word t of the column (4 int8 codes) goes to every lane, so
 * one vpdpbusd adds 4 products to each of 16 rows and no shuffles are
 * needed. Per block and group of 16 rows:
 *   Q4_0: 4 loads, 12 and/shift (low and high nibbles), 8 vpdpbusd
 *   Q8_0: 8 loads (codes stored + 128, unsigned as vpdpbusd wants them), 8 vpdpbusd
 *   then i += -8 or -128 * x.sum (the code offset, folded into the start
 *   value), acc = fma(float(i), d_w * x.d, acc): kern.h's sequence, lane
 *   by lane, in block order, in every tile shape.
 * This is about half the instructions per weight byte of the x8 / plain
 * tiles of kern_avx512.c (which pick codes and scales out of the blocks
 * with vpermt2w and add a horizontal sum): kern_bench, Intel Xeon, 1
 * thread, one column, weights in cache: Q4_0 22 -> 39-45 GB/s (Q4_K 14-18
 * -> 44-50, Q6_K 22-26 -> 35 against kern_avx512_k.c). A tile of one
 * column reads R1 groups (R1 streams; Q6_K R1_Q6K): the one-stream x8 walk
 * reached 13 GB/s from memory on that CPU, 4 streams 18-19 (its read
 * bandwidth: 19.5). */
#include "kern.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

enum { Q40, Q80, Q4K, Q6K };

/* bytes of one block of a 16-row group */
AI int span(int T) { return T == Q40 ? 16 * 18 : T == Q80 ? 16 * 34 : T == Q4K ? 16 * 144 : 16 * 210; }

/* Software prefetch, two distances ahead in each group's stream: d into
 * L1 and 2d into L2, d = RPF (Q6_K: RPF_Q6K, its blocks are the largest
 * and take the most work per byte). Kernel vs a plain read of the same
 * memory, 2 threads, Intel Xeon: Q4_0 L1 alone at 1 KiB 0.89 (512 to 9216
 * no better), with 2 KiB into L2 0.91; Q6_K 0.84 at 1 KiB, 0.91 at 2 KiB,
 * 0.96 at 4 KiB, 0.91 at 6 KiB; Q4_0 and Q4_K equal at 1 and 2 KiB, 1-2 %
 * lower at 3 and 4. */
#ifndef RPF
#define RPF 1024
#endif
#ifndef RPF_Q6K
#define RPF_Q6K 4096
#endif

/* Prefetch byte o of group g's stream of a tile of kind T and C columns
 * (G groups gs bytes apart, W the tile's first group).
 * One column (decode, bound by memory): d and 2d ahead. Past the end of
 * its stream (gs bytes) the address moves on to group g of the next tile
 * (G gs further on): tiles are walked in memory order, so the streams of
 * the next tile start warm instead of cold (Q4_0 0.91 -> 0.95 as above). A
 * prefetch past the weights is harmless: prefetches never fault.
 * Several columns (prompts, bound by compute; drive keeps a chunk of rows
 * in L2 for all column tiles): RPF ahead into L1 only, as cheap as it gets
 * (the above cost pp512 3-6 %). */
AI void pf(int T, int C, const unsigned char *W, uint64_t gs, int G, int g, uint64_t o)
{
    /* addresses as integers: they may lie past the weights' allocation */
    const uintptr_t s = (uintptr_t)W + (uintptr_t)((uint64_t)g * gs);
    if (C > 1) {
        _mm_prefetch((const char *)(s + o + RPF), _MM_HINT_T0);
        return;
    }
    const uint64_t d = T == Q6K ? RPF_Q6K : RPF, a = o + d, c = o + 2 * d, next = (uint64_t)(G - 1) * gs;
    _mm_prefetch((const char *)(s + a + (a >= gs ? next : 0)), _MM_HINT_T0);
    _mm_prefetch((const char *)(s + c + (c >= gs ? next : 0)), _MM_HINT_T1);
}

/* the 4 bytes at p (an x word: 4 int8 codes, or 2 int16 bsums) in every lane */
AI __m512i bcast32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* x block b of column c (x rows xb bytes apart, blocks of type B) */
#define XBLK(B, X, xb, c, b) ((const B *)((X) + (uint64_t)(c) * (xb)) + (b))

// out[c*ldo + 16g + l] = W[16g + l, :k] . X[c, :k]   (g < G groups gs bytes apart, l < 16, c < C; nb = k/32)
AI void rtile(int T, int G, int C, const unsigned char *W, uint64_t gs, const unsigned char *X, uint64_t xb,
              float *out, int64_t ldo, int64_t nb)
{
    const int S = span(T);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[4][4];
    UNROLL for (int g = 0; g < G; g++) UNROLL for (int c = 0; c < C; c++) acc[g][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        UNROLL for (int g = 0; g < G; g++)
        {
            const unsigned char *p = W + (uint64_t)g * gs + (uint64_t)b * (uint64_t)S;
            UNROLL for (int i = 0; i < (S + 63) / 64; i++) pf(T, C, W, gs, G, g, (uint64_t)b * (uint64_t)S + 64 * i);
            /* q[u] pairs with x word u: Q4_0 words 0-3 low nibbles, 4-7 high */
            __m512i q[8];
            if (T == Q40) {
                UNROLL for (int t = 0; t < 4; t++)
                {
                    __m512i v = _mm512_loadu_si512(p + 32 + 64 * t);
                    q[t] = _mm512_and_si512(v, m4);
                    q[4 + t] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                }
            } else {
                UNROLL for (int t = 0; t < 8; t++) q[t] = _mm512_loadu_si512(p + 32 + 64 * t);
            }
            __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
            UNROLL for (int c = 0; c < C; c++)
            {
                const kx_q8_32 *x = XBLK(kx_q8_32, X, xb, c, b);
                /* two chains, to halve the dependent vpdpbusd latency */
                __m512i i0 = _mm512_set1_epi32(x->sum * (T == Q40 ? -8 : -128)), i1 = _mm512_setzero_si512();
                UNROLL for (int u = 0; u < 8; u += 2)
                {
                    i0 = _mm512_dpbusd_epi32(i0, q[u], bcast32(x->qs + 4 * u));
                    i1 = _mm512_dpbusd_epi32(i1, q[u + 1], bcast32(x->qs + 4 * u + 4));
                }
                __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(x->d));
                acc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(i0, i1)), s, acc[g][c]);
            }
        }
    }
    UNROLL for (int g = 0; g < G; g++) UNROLL for (int c = 0; c < C; c++)
        _mm512_storeu_ps(out + c * ldo + 16 * g, acc[g][c]);
}

/* Q4_K: per super-block and group of 16 rows, the 3 scale words give the
 * 6-bit scales and mins of the 8 sub-blocks (4 in each byte lane group);
 * each of the 32 code words gives the low nibbles of sub-block 2i (and 0x0f)
 * and 16 x the high nibbles of 2i + 1 (and 0xf0, no shift); vpdpbusd forms
 * D_lo = D_2i and D_hi = 16 D_2i+1, and I += D_lo * 16 sc_2i + D_hi * sc_2i+1
 * (vpmulld) is 16 x kern.h's sum; the mins meet the x bsums in vpdpwssd, m_s
 * in both words of a lane against bsums 2s, 2s + 1. */

/* scale lanes of sub-block s as int32 (x16 for the even ones, see above):
 * sc[0] bytes = sc 0..3, sc[1] = sc 4..7 */
AI __m512i k_scale(const __m512i *sc, int s)
{
    __m512i v = sc[s / 4];
    int byte = s % 4;
    if (s % 2 == 0) /* 16 * byte: shift its bits to 4..11 */
        return _mm512_and_si512(byte ? _mm512_srli_epi32(v, 8 * byte - 4) : _mm512_slli_epi32(v, 4),
                                _mm512_set1_epi32(0xff0));
    return byte == 3 ? _mm512_srli_epi32(v, 24)
                     : _mm512_and_si512(_mm512_srli_epi32(v, 8 * byte), _mm512_set1_epi32(0xff));
}

/* acc[c] += v . (bsums[2s], bsums[2s + 1]) of x block b of column c, per
 * lane pair of words (vpdpwssd), c < C */
AI void bsum_madd(int C, __m512i *acc, __m512i v, const unsigned char *X, uint64_t xb, int64_t b, int s)
{
    UNROLL for (int c = 0; c < C; c++)
        acc[c] = _mm512_dpwssd_epi32(acc[c], v, bcast32(XBLK(kx_q8_k, X, xb, c, b)->bsums + 2 * s));
}

// out[c*ldo + 16g + l] = W[16g + l, :k] . X[c, :k]   (Q4_K, g < G groups gs bytes apart, c < C; nb = k/256)
AI void ktile(int G, int C, const unsigned char *W, uint64_t gs, const unsigned char *X, uint64_t xb, float *out,
              int64_t ldo, int64_t nb)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m4h = _mm512_set1_epi8((char)0xf0), m6 = _mm512_set1_epi8(0x3f);
    const __m512i m2 = _mm512_set1_epi8(0x30);
    /* vpshufb: byte s of a lane into both bytes 0 and 2 (words 0, 1), zeros above */
    __m512i pick[4];
    UNROLL for (int s = 0; s < 4; s++)
    {
        const int32_t w = (int32_t)(0x80008000u | (uint32_t)s | (uint32_t)s << 16);
        pick[s] = _mm512_add_epi32(_mm512_set1_epi32(w), _mm512_set4_epi32(12 | 12 << 16, 8 | 8 << 16, 4 | 4 << 16, 0));
    }
    __m512 acc[4][4];
    UNROLL for (int g = 0; g < G; g++) UNROLL for (int c = 0; c < C; c++) acc[g][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const unsigned char *blk = W + (uint64_t)b * (uint64_t)span(Q4K); /* group g's block at blk + g gs */
        __m512i I[4][4];
        UNROLL for (int g = 0; g < G; g++)
        {
            UNROLL for (int i = 0; i < 4; i++) pf(Q4K, C, W, gs, G, g, (uint64_t)b * (uint64_t)span(Q4K) + 64 * i);
            UNROLL for (int c = 0; c < C; c++) I[g][c] = _mm512_setzero_si512();
        }
        /* the groups advance together, a sub-block pair (512 bytes) at a
         * time: G streams side by side, as the 32-element kinds read them */
        UNROLL for (int i = 0; i < 4; i++) UNROLL for (int g = 0; g < G; g++)
        {
            const unsigned char *p = blk + g * gs;
            __m512i dlo[4], dhi[4];
            UNROLL for (int c = 0; c < C; c++) dlo[c] = dhi[c] = _mm512_setzero_si512();
            UNROLL for (int t = 0; t < 8; t++)
            {
                const unsigned char *q = p + 256 + 64 * (8 * i + t);
                pf(Q4K, C, W, gs, G, g, (uint64_t)b * (uint64_t)span(Q4K) + 256 + 64 * (8 * i + t));
                __m512i v = _mm512_loadu_si512(q);
                __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(v, m4h);
                UNROLL for (int c = 0; c < C; c++)
                {
                    const kx_q8_k *x = XBLK(kx_q8_k, X, xb, c, b);
                    dlo[c] = _mm512_dpbusd_epi32(dlo[c], lo, bcast32(x->qs + 64 * i + 4 * t));
                    dhi[c] = _mm512_dpbusd_epi32(dhi[c], hi, bcast32(x->qs + 64 * i + 32 + 4 * t));
                }
            }
            /* scales 0..3 (i < 2) or 4..7, one byte each */
            __m512i s0 = _mm512_loadu_si512(p + 64), sc[2];
            sc[i / 2] = i < 2 ? _mm512_and_si512(s0, m6)
                              : _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_loadu_si512(p + 192), m4),
                                                          _mm512_srli_epi32(s0, 2), m2, 0xF8); /* a | (b & c) */
            __m512i se = k_scale(sc, 2 * i), so = k_scale(sc, 2 * i + 1);
            UNROLL for (int c = 0; c < C; c++)
                I[g][c] = _mm512_add_epi32(I[g][c], _mm512_add_epi32(_mm512_mullo_epi32(dlo[c], se),
                                                                     _mm512_mullo_epi32(dhi[c], so)));
        }
        UNROLL for (int g = 0; g < G; g++)
        {
            const unsigned char *p = blk + g * gs;
            /* mins 0..3 | 4..7, one byte each */
            __m512i s1 = _mm512_loadu_si512(p + 128), s2 = _mm512_loadu_si512(p + 192), mn[2];
            mn[0] = _mm512_and_si512(s1, m6);
            mn[1] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi32(s2, 4), m4), _mm512_srli_epi32(s1, 2),
                                              m2, 0xF8);
            __m512i M[4];
            UNROLL for (int c = 0; c < C; c++) M[c] = _mm512_setzero_si512();
            UNROLL for (int s = 0; s < 8; s++)
                bsum_madd(C, M, _mm512_shuffle_epi8(mn[s / 4], pick[s % 4]), X, xb, b, s);
            __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
            __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
            UNROLL for (int c = 0; c < C; c++)
            {
                const kx_q8_k *x = XBLK(kx_q8_k, X, xb, c, b);
                __m512 xd = _mm512_set1_ps(x->d);
                __m512 f = _mm512_mul_ps(_mm512_mul_ps(dw, xd), _mm512_set1_ps(0.0625f));
                acc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(I[g][c]), f, acc[g][c]);
                acc[g][c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(M[c]), _mm512_mul_ps(dm, xd), acc[g][c]);
            }
        }
    }
    UNROLL for (int g = 0; g < G; g++) UNROLL for (int c = 0; c < C; c++)
        _mm512_storeu_ps(out + c * ldo + 16 * g, acc[g][c]);
}

/* Q6_K: code q = lo4 + 16 hi2 - 32 of element 128n + 32m + l is in ql word
 * 16n + 8(m % 2) + l/4 (low nibble for m < 2, high for m >= 2) and qh word
 * 32 + 8n + l/4 (bits 2m, 2m + 1). Masks alone (no shifts) take the parts:
 * lo = ql & 0x0f (x1) or & 0xf0 (x16), hi = qh & (3 << 2m) (x 4^m); two
 * vpdpbusd chains per sub-block of 16 give L and H, and one exact shift and
 * add gives D = sum lo4 x + 16 sum hi2 x. Then I += D * sc (vpmulld, the
 * int8 scale sign-extended) and, once per super-block, I -= 32 sum_s sc_s
 * bsums_s (vpdpwssd of the scales as words against the x bsums), which is
 * kern.h's sum of (q - 32) x. */

/* the scale bytes of pair u (sc 2u, 2u + 1) as int16 words, from scale word u/2 */
AI __m512i k6_pair(__m512i sw, int u)
{
    const int b0 = 2 * (u % 2);
    /* vpshufb: bytes b0, b0 + 1 of each lane to bytes 1, 3 (the words' high bytes), zeros below */
    const int32_t w = (int32_t)(0x80u | (uint32_t)b0 << 8 | 0x80u << 16 | (uint32_t)(b0 + 1) << 24);
    const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(w),
                                         _mm512_set4_epi32(0x0c000c00, 0x08000800, 0x04000400, 0));
    return _mm512_srai_epi16(_mm512_shuffle_epi8(sw, idx), 8);
}

// out[c*ldo + 16g + l] = W[16g + l, :k] . X[c, :k]   (Q6_K, g < G groups gs bytes apart, c < C; nb = k/256)
AI void k6tile(int G, int C, const unsigned char *W, uint64_t gs, const unsigned char *X, uint64_t xb, float *out,
               int64_t ldo, int64_t nb)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m4h = _mm512_set1_epi8((char)0xf0);
    __m512 acc[4][4];
    UNROLL for (int g = 0; g < G; g++) UNROLL for (int c = 0; c < C; c++) acc[g][c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const unsigned char *blk = W + (uint64_t)b * (uint64_t)span(Q6K); /* group g's block at blk + g gs */
        __m512i I[4][4];
        UNROLL for (int g = 0; g < G; g++)
        {
            const uint64_t o = (uint64_t)b * (uint64_t)span(Q6K);
            pf(Q6K, C, W, gs, G, g, o); /* d */
            UNROLL for (int u = 0; u < 4; u++) pf(Q6K, C, W, gs, G, g, o + 32 + 64 * (48 + u));
            UNROLL for (int c = 0; c < C; c++) I[g][c] = _mm512_setzero_si512();
        }
        /* the groups advance together, 16 elements of a row at a time */
        UNROLL for (int n = 0; n < 2; n++) UNROLL for (int h = 0; h < 2; h++) UNROLL for (int m = 0; m < 4; m++)
            UNROLL for (int g = 0; g < G; g++)
        {
            const unsigned char *wd = blk + g * gs + 32;
            __m512i L[4], H[4];
            UNROLL for (int c = 0; c < C; c++) L[c] = H[c] = _mm512_setzero_si512();
            const __m512i hm = _mm512_set1_epi8((char)(3 << 2 * m));
            UNROLL for (int q = 0; q < 4; q++)
            {
                const int l4 = 4 * h + q;
                const unsigned char *pl = wd + 64 * (16 * n + 8 * (m % 2) + l4), *ph = wd + 64 * (32 + 8 * n + l4);
                const uint64_t o = (uint64_t)b * (uint64_t)span(Q6K) + 32;
                if (m < 2) /* first touch of the ql word */
                    pf(Q6K, C, W, gs, G, g, o + 64 * (16 * n + 8 * (m % 2) + l4));
                if (m == 0) /* and of the qh word */
                    pf(Q6K, C, W, gs, G, g, o + 64 * (32 + 8 * n + l4));
                __m512i lo = _mm512_and_si512(_mm512_loadu_si512(pl), m < 2 ? m4 : m4h);
                __m512i hi = _mm512_and_si512(_mm512_loadu_si512(ph), hm);
                UNROLL for (int c = 0; c < C; c++)
                {
                    __m512i xw = bcast32(XBLK(kx_q8_k, X, xb, c, b)->qs + 128 * n + 32 * m + 4 * l4);
                    L[c] = _mm512_dpbusd_epi32(L[c], lo, xw);
                    H[c] = _mm512_dpbusd_epi32(H[c], hi, xw);
                }
            }
            const int sb = 8 * n + 2 * m + h; /* the sub-block */
            __m512i sw = _mm512_loadu_si512(wd + 64 * (48 + sb / 4));
            __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(sw, 24 - 8 * (sb % 4)), 24);
            UNROLL for (int c = 0; c < C; c++)
            {
                __m512i D = m == 0   ? _mm512_add_epi32(L[c], _mm512_slli_epi32(H[c], 4))
                            : m == 1 ? _mm512_add_epi32(L[c], _mm512_slli_epi32(H[c], 2))
                            : m == 2 ? _mm512_add_epi32(_mm512_srai_epi32(L[c], 4), H[c])
                                     : _mm512_add_epi32(_mm512_srai_epi32(L[c], 4), _mm512_srai_epi32(H[c], 2));
                I[g][c] = _mm512_add_epi32(I[g][c], _mm512_mullo_epi32(D, sc));
            }
        }
        UNROLL for (int g = 0; g < G; g++)
        {
            const unsigned char *p = blk + g * gs, *wd = p + 32;
            __m512i O[4];
            UNROLL for (int c = 0; c < C; c++) O[c] = _mm512_setzero_si512();
            UNROLL for (int u = 0; u < 8; u++)
                bsum_madd(C, O, k6_pair(_mm512_loadu_si512(wd + 64 * (48 + u / 2)), u), X, xb, b, u);
            __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
            UNROLL for (int c = 0; c < C; c++)
            {
                const kx_q8_k *x = XBLK(kx_q8_k, X, xb, c, b);
                __m512i Ic = _mm512_sub_epi32(I[g][c], _mm512_slli_epi32(O[c], 5));
                acc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(Ic), _mm512_mul_ps(dw, _mm512_set1_ps(x->d)), acc[g][c]);
            }
        }
    }
    UNROLL for (int g = 0; g < G; g++) UNROLL for (int c = 0; c < C; c++)
        _mm512_storeu_ps(out + c * ldo + 16 * g, acc[g][c]);
}

AI void any_tile(int T, int G, int C, const unsigned char *W, uint64_t gs, const unsigned char *X, uint64_t xb,
                 float *out, int64_t ldo, int64_t nb)
{
    if (T == Q4K)
        ktile(G, C, W, gs, X, xb, out, ldo, nb);
    else if (T == Q6K)
        k6tile(G, C, W, gs, X, xb, out, ldo, nb);
    else
        rtile(T, G, C, W, gs, X, xb, out, ldo, nb);
}

/* ---- tile instances and the driver ----
 * A column alone uses up to R1 groups x 1; otherwise up to RM groups x RC
 * columns (the k-quants: KRM x RC; their tiles hold more per column, and
 * one group x 4 columns measured fastest: kern_bench, 64 columns, Q4_K 230
 * -> 295 GFLOP/s, Q6_K 115 -> 130-150 against 2 groups). */
#ifndef R1
#define R1 4
#define RM 2
#define RC 4
#endif
#ifndef KRM
#define KRM 1
#endif

typedef void (*rtile_fn)(const unsigned char *W, uint64_t gs, const unsigned char *X, uint64_t xb, float *out,
                         int64_t ldo, int64_t nb);

#define RTILE_FN(T, G, C)                                                                                    \
    static void r_##T##_##G##_##C(const unsigned char *W, uint64_t gs, const unsigned char *X, uint64_t xb, \
                                  float *out, int64_t ldo, int64_t nb)                                      \
    {                                                                                                        \
        any_tile(T, G, C, W, gs, X, xb, out, ldo, nb);                                                       \
    }
#define RTILE_ENT(T, G, C) [G][C] = r_##T##_##G##_##C,
#define RG(M, T, C, N) RG_I(M, T, C, N) /* expands N first */
#define RG_I(M, T, C, N) RG_##N(M, T, C)
#define RG_1(M, T, C) M(T, 1, C)
#define RG_2(M, T, C) RG_1(M, T, C) M(T, 2, C)
#define RG_3(M, T, C) RG_2(M, T, C) M(T, 3, C)
#define RG_4(M, T, C) RG_3(M, T, C) M(T, 4, C)
#define RCOLS(M, T, NM, NC) RCOLS_I(M, T, NM, NC)
#define RCOLS_I(M, T, NM, NC) RCOLS_##NC(M, T, NM)
#define RCOLS_2(M, T, NM) RG(M, T, 2, NM)
#define RCOLS_3(M, T, NM) RCOLS_2(M, T, NM) RG(M, T, 3, NM)
#define RCOLS_4(M, T, NM) RCOLS_3(M, T, NM) RG(M, T, 4, NM)
#define RALL(M, T, NM) RG(M, T, 1, R1) RCOLS(M, T, NM, RC)

typedef struct {
    int r1;              /* groups of a tile of one column (<= R1) */
    int rm;              /* groups of a tile of several columns */
    rtile_fn fn[5][5];   /* [groups][cols] */
} rtiling;

/* Q6_K's one-column tile: 3 groups. Its blocks take the most work per byte;
 * with 4 streams its kernel read 78-86 % of what a plain read of the same
 * memory got on 2 threads, with 3 streams 82-87 % (Intel Xeon, 3 runs each;
 * Q4_0 and Q4_K lose 2-3 % with 3) */
#ifndef R1_Q6K
#define R1_Q6K 3
#endif

RALL(RTILE_FN, Q40, RM)
RALL(RTILE_FN, Q80, RM)
RALL(RTILE_FN, Q4K, KRM)
RALL(RTILE_FN, Q6K, KRM)
static const rtiling tiles_q40 = {R1, RM, {RALL(RTILE_ENT, Q40, RM)}};
static const rtiling tiles_q80 = {R1, RM, {RALL(RTILE_ENT, Q80, RM)}};
static const rtiling tiles_q4k = {R1, KRM, {RALL(RTILE_ENT, Q4K, KRM)}};
static const rtiling tiles_q6k = {R1_Q6K < R1 ? R1_Q6K : R1, KRM, {RALL(RTILE_ENT, Q6K, KRM)}};

/* Walks the output in tiles (nr a multiple of 16). With several column
 * tiles, rows go in chunks of ~256 KiB of weights so a chunk stays in L2
 * while every column tile passes over it. */
static void drive(const rtiling *t, int64_t blck, const void *W, uint64_t rb, const void *X, uint64_t xb,
                  float *out, int64_t ldo, int64_t k, int64_t nr, int64_t nc)
{
    const unsigned char *w = W, *x = X;
    const uint64_t gs = 16 * rb;
    const int64_t ng = nr / 16, nb = k / blck;
    int64_t chunk = ng;
    if (nc > RC) {
        chunk = (int64_t)((256u << 10) / (gs ? gs : 1));
        chunk = chunk < t->rm ? t->rm : chunk - chunk % t->rm; /* whole tiles */
    }
    for (int64_t g0 = 0; g0 < ng; g0 += chunk) {
        int64_t g1 = ng - g0 < chunk ? ng : g0 + chunk;
        for (int64_t c = 0; c < nc;) {
            int cw = nc - c >= RC ? RC : (int)(nc - c);
            int gt = cw == 1 ? t->r1 : t->rm;
            for (int64_t g = g0; g < g1; g += gt) {
                int gh = g1 - g < gt ? (int)(g1 - g) : gt;
                t->fn[gh][cw](w + (uint64_t)g * gs, gs, x + (uint64_t)c * xb, xb, out + c * ldo + 16 * g, ldo, nb);
            }
            c += cw;
        }
    }
}

// out[c*ldo + r] = W[r,k] . X[c,k], W q4_0 in the r16 layout, X q8_32
static void gemm_r16_q4_0(const void *W, uint64_t rb, const void *X, uint64_t xb, float *out, int64_t ldo,
                          int64_t k, int64_t nr, int64_t nc)
{
    drive(&tiles_q40, 32, W, rb, X, xb, out, ldo, k, nr, nc);
}

// out[c*ldo + r] = W[r,k] . X[c,k], W q8_0 in the r16 layout, X q8_32
static void gemm_r16_q8_0(const void *W, uint64_t rb, const void *X, uint64_t xb, float *out, int64_t ldo,
                          int64_t k, int64_t nr, int64_t nc)
{
    drive(&tiles_q80, 32, W, rb, X, xb, out, ldo, k, nr, nc);
}

// out[c*ldo + r] = W[r,k] . X[c,k], W q4_k in the r16 layout, X q8_k
static void gemm_r16_q4_k(const void *W, uint64_t rb, const void *X, uint64_t xb, float *out, int64_t ldo,
                          int64_t k, int64_t nr, int64_t nc)
{
    drive(&tiles_q4k, QK_K, W, rb, X, xb, out, ldo, k, nr, nc);
}

// out[c*ldo + r] = W[r,k] . X[c,k], W q6_k in the r16 layout, X q8_k
static void gemm_r16_q6_k(const void *W, uint64_t rb, const void *X, uint64_t xb, float *out, int64_t ldo,
                          int64_t k, int64_t nr, int64_t nc)
{
    drive(&tiles_q6k, QK_K, W, rb, X, xb, out, ldo, k, nr, nc);
}

void kern_avx512_r16_fill(kern_ops *o)
{
    o->gemm_r16[SOV_Q4_0] = gemm_r16_q4_0;
    o->gemm_r16[SOV_Q8_0] = gemm_r16_q8_0;
    o->gemm_r16[SOV_Q4_K] = gemm_r16_q4_k;
    o->gemm_r16[SOV_Q6_K] = gemm_r16_q6_k;
    o->r16_rows[SOV_Q4_0] = 16 * tiles_q40.r1;
    o->r16_rows[SOV_Q8_0] = 16 * tiles_q80.r1;
    o->r16_rows[SOV_Q4_K] = 16 * tiles_q4k.r1;
    o->r16_rows[SOV_Q6_K] = 16 * tiles_q6k.r1;
}
