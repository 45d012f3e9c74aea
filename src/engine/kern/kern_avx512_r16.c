/* kern_avx512_r16: AVX-512 VNNI gemm over weights in the r16 layout
 * (kern.h) for Q4_0 and Q8_0. Compiled with the AVX-512 flags; only called
 * after kern.c has checked the CPU.
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
 * thread, one column, weights in cache: Q4_0 22 -> 45 GB/s. A tile of one
 * column reads R1 groups (R1 streams): the one-stream x8 walk reached 13
 * GB/s from memory on that CPU, 4 streams 18-19 (its read bandwidth: 19.5). */
#include "kern.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

enum { Q40, Q80 };

/* bytes of one block of a 16-row group */
AI int span(int T) { return T == Q40 ? 16 * 18 : 16 * 34; }

/* software prefetch distance (bytes ahead in each group's stream) */
#ifndef RPF
#define RPF 1024
#endif

/* x word t (codes 4t..4t+3) of an x block, in every lane */
AI __m512i x_word(const kx_q8_32 *x, int t)
{
    int32_t v;
    memcpy(&v, x->qs + 4 * t, 4);
    return _mm512_set1_epi32(v);
}

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
            UNROLL for (int i = 0; i < (S + 63) / 64; i++)
                _mm_prefetch((const char *)(p + RPF + 64 * i), _MM_HINT_T0);
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
                const kx_q8_32 *x = (const kx_q8_32 *)(X + (uint64_t)c * xb) + b;
                /* two chains, to halve the dependent vpdpbusd latency */
                __m512i i0 = _mm512_set1_epi32(x->sum * (T == Q40 ? -8 : -128)), i1 = _mm512_setzero_si512();
                UNROLL for (int u = 0; u < 8; u += 2)
                {
                    i0 = _mm512_dpbusd_epi32(i0, q[u], x_word(x, u));
                    i1 = _mm512_dpbusd_epi32(i1, q[u + 1], x_word(x, u + 1));
                }
                __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(x->d));
                acc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(i0, i1)), s, acc[g][c]);
            }
        }
    }
    UNROLL for (int g = 0; g < G; g++) UNROLL for (int c = 0; c < C; c++)
        _mm512_storeu_ps(out + c * ldo + 16 * g, acc[g][c]);
}

/* ---- tile instances and the driver ----
 * A column alone uses up to R1 groups x 1; otherwise up to RM groups x RC
 * columns. */
#ifndef R1
#define R1 4
#define RM 2
#define RC 4
#endif

typedef void (*rtile_fn)(const unsigned char *W, uint64_t gs, const unsigned char *X, uint64_t xb, float *out,
                         int64_t ldo, int64_t nb);

#define RTILE_FN(T, G, C)                                                                                    \
    static void r_##T##_##G##_##C(const unsigned char *W, uint64_t gs, const unsigned char *X, uint64_t xb, \
                                  float *out, int64_t ldo, int64_t nb)                                      \
    {                                                                                                        \
        rtile(T, G, C, W, gs, X, xb, out, ldo, nb);                                                          \
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
#define RALL(M, T) RG(M, T, 1, R1) RCOLS(M, T, RM, RC)

typedef struct {
    rtile_fn fn[5][5]; /* [groups][cols] */
} rtiling;

RALL(RTILE_FN, Q40)
RALL(RTILE_FN, Q80)
static const rtiling tiles_q40 = {{RALL(RTILE_ENT, Q40)}};
static const rtiling tiles_q80 = {{RALL(RTILE_ENT, Q80)}};

/* Walks the output in tiles (nr a multiple of 16). With several column
 * tiles, rows go in chunks of ~256 KiB of weights so a chunk stays in L2
 * while every column tile passes over it. */
static void drive(const rtiling *t, const void *W, uint64_t rb, const void *X, uint64_t xb, float *out,
                  int64_t ldo, int64_t k, int64_t nr, int64_t nc)
{
    const unsigned char *w = W, *x = X;
    const uint64_t gs = 16 * rb;
    const int64_t ng = nr / 16, nb = k / 32;
    int64_t chunk = ng;
    if (nc > RC) {
        chunk = (int64_t)((256u << 10) / (gs ? gs : 1));
        chunk = chunk < RM ? RM : chunk - chunk % RM; /* whole tiles */
    }
    for (int64_t g0 = 0; g0 < ng; g0 += chunk) {
        int64_t g1 = ng - g0 < chunk ? ng : g0 + chunk;
        for (int64_t c = 0; c < nc;) {
            int cw = nc - c >= RC ? RC : (int)(nc - c);
            int gt = cw == 1 ? R1 : RM;
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
    drive(&tiles_q40, W, rb, X, xb, out, ldo, k, nr, nc);
}

// out[c*ldo + r] = W[r,k] . X[c,k], W q8_0 in the r16 layout, X q8_32
static void gemm_r16_q8_0(const void *W, uint64_t rb, const void *X, uint64_t xb, float *out, int64_t ldo,
                          int64_t k, int64_t nr, int64_t nc)
{
    drive(&tiles_q80, W, rb, X, xb, out, ldo, k, nr, nc);
}

void kern_avx512_r16_fill(kern_ops *o)
{
    o->gemm_r16[SOV_Q4_0] = gemm_r16_q4_0;
    o->gemm_r16[SOV_Q8_0] = gemm_r16_q8_0;
}
