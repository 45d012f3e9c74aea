#include "attn.h"

#include "vexp.h"

#include <math.h>
#include <string.h>

/* 8-lane float vectors (GCC/Clang vector extension): the compiler emits SSE,
 * AVX2 or AVX-512 code for them per target clone below. The clones name
 * features, not CPUs: an "avx2" clone is chosen only on Intel
 * Haswell parts (the resolver tests the CPU model), so AMD CPUs with AVX2
 * would fall to the SSE default. */
typedef float v8f __attribute__((vector_size(32), aligned(4)));

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#define ATTN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ATTN_CLONES
#endif

/* o[d0 ..) for NV vectors of L lanes (type VT) side by side over the keys:
 * independent chains, the accumulators in registers (constant counts) */
#define AXPY_TILE(VT, L, NV)                                                                                    \
    do {                                                                                                        \
        VT acc[NV];                                                                                             \
        _Pragma("GCC unroll 8") for (int i = 0; i < NV; i++)                                                    \
        {                                                                                                       \
            memcpy(&acc[i], o + d0 + L * i, sizeof acc[i]);                                                     \
            acc[i] *= c;                                                                                        \
        }                                                                                                       \
        for (int t = 0; t < nt; t++)                                                                            \
            _Pragma("GCC unroll 8") for (int i = 0; i < NV; i++)                                                \
            {                                                                                                   \
                VT x;                                                                                           \
                memcpy(&x, v + t * stride + d0 + L * i, sizeof x);                                              \
                acc[i] += p[t] * x;                                                                             \
            }                                                                                                   \
        _Pragma("GCC unroll 8") for (int i = 0; i < NV; i++) memcpy(o + d0 + L * i, &acc[i], sizeof acc[i]);    \
    } while (0)

// o[d] = o[d] * c + sum_t p[t] * V[t][d]   (per element: o * c, then + p[t] * V[t][d] in t order,
// whatever the vector width: the same bits on every path)
static inline __attribute__((always_inline)) void axpy_rows(float *o, float c, const float *p, const float *v,
                                                            int64_t stride, int nt, int n)
{
    int d0 = 0;
/* 64 elements at a time as 64 / L vectors of L lanes, then L at a time */
#define AXPY_ALL(VT, L)                       \
    do {                                      \
        for (; d0 + 64 <= n; d0 += 64)        \
            AXPY_TILE(VT, L, 64 / (L));       \
        for (; d0 < n; d0 += (L))             \
            AXPY_TILE(VT, L, 1);              \
    } while (0)
    if (n % 16 == 0) {
        AXPY_ALL(v16f, 16);
        return;
    }
    if (n % 8 == 0) {
        AXPY_ALL(v8f, 8);
        return;
    }
#undef AXPY_ALL
    for (int d = 0; d < n; d++)
        o[d] *= c;
    for (int t = 0; t < nt; t++) {
        const float *vt = v + t * stride;
        float pt = p[t];
        for (int d = 0; d < n; d++)
            o[d] += pt * vt[d];
    }
}

/* scratch: m, l [nqg], s [nqg][ATTN_KT], then (f16 / q8_0) the decoded tile:
 * K [head_dim][ATTN_KT] and V [ATTN_KT][head_dim], 16-float aligned offsets */
static int64_t scratch_tile_off(int64_t nqg) { return (nqg * (2 + ATTN_KT) + 15) & ~(int64_t)15; }

int64_t attn_scratch_floats(int32_t nq, int32_t n_group, int32_t head_dim)
{
    return scratch_tile_off((int64_t)nq * n_group) + 2 * (int64_t)ATTN_KT * head_dim;
}

/* s[i] = e^(s[i] - sub), i < 16 (vexp16; the argument is <= 0 in a softmax
 * after its max) */
static inline __attribute__((always_inline)) void v_exp(float *s, float sub)
{
    v16f x;
    memcpy(&x, s, sizeof x);
    x -= sub;
    vexp16(&x);
    memcpy(s, &x, sizeof x);
}

void attn_exp16(float *s, float sub) { v_exp(s, sub); }

_Static_assert(ATTN_KT % 16 == 0, "tile_scores takes key tiles of whole 16-key vectors");

/* s[t] = scale * q . k_t for the ATTN_KT keys of a tile, from kT[d][t] (the
 * tile transposed): 16 keys per vector, the d sum in 4 interleaved partial
 * sums added in a fixed order (d = r mod 4, then (0 + 1) + (2 + 3)) */
static inline __attribute__((always_inline)) void tile_scores(const float *qv, const float *kT, int hd, float scale,
                                                              float *s)
{
    enum { H = ATTN_KT / 16 };
    v16f acc[4][H]; /* constant trip counts, unrolled: the 4 x H accumulators stay in registers */
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int h = 0; h < H; h++)
            acc[r][h] = (v16f){0};
    int d = 0;
    for (; d + 4 <= hd; d += 4)
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
            for (int h = 0; h < H; h++) {
                v16f kv;
                memcpy(&kv, kT + (int64_t)(d + r) * ATTN_KT + 16 * h, sizeof kv);
                acc[r][h] += qv[d + r] * kv;
            }
    for (; d < hd; d++)
#pragma GCC unroll 4
        for (int h = 0; h < H; h++) {
            v16f kv;
            memcpy(&kv, kT + (int64_t)d * ATTN_KT + 16 * h, sizeof kv);
            acc[d % 4][h] += qv[d] * kv;
        }
#pragma GCC unroll 4
    for (int h = 0; h < H; h++) {
        v16f t = ((acc[0][h] + acc[1][h]) + (acc[2][h] + acc[3][h])) * scale;
        memcpy(s + 16 * h, &t, sizeof t);
    }
}

ATTN_CLONES
void attn_run(const attn_block *b, float *scratch)
{
    const int hd = b->head_dim, G = b->n_group;
    const int64_t nqg = (int64_t)b->nq * G;
    float *m = scratch, *l = scratch + nqg, *s = scratch + 2 * nqg; /* s: [nqg][ATTN_KT] */
    int32_t maxpos = 0;
    for (int32_t j = 0; j < b->nq; j++) {
        if (b->pos[j] > maxpos)
            maxpos = b->pos[j];
        for (int g = 0; g < G; g++)
            memset(b->out + j * b->out_stride + (int64_t)g * hd, 0, sizeof(float) * (size_t)hd);
    }
    for (int64_t i = 0; i < nqg; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    float *kdec = scratch + scratch_tile_off(nqg), *vdec = kdec + (int64_t)ATTN_KT * hd;
    const int elt = kv_elt_bytes(b->kv_type);
    for (int32_t t0 = 0; t0 <= maxpos; t0 += ATTN_KT) {
        /* the tile's keys, transposed in the cache; keys past the last
         * position hold whatever is there (their scores are unused) */
        const int64_t blk = b->tiles ? b->tiles[t0 / ATTN_KT] : t0 / ATTN_KT;
        const unsigned char *kb = (const unsigned char *)b->k + blk * b->k_tile_stride * elt;
        const unsigned char *vb = (const unsigned char *)b->v + blk * b->v_tile_stride * elt;
        const float *kT = (const float *)(const void *)kb, *vt = (const float *)(const void *)vb;
        int64_t vstride = b->kv_stride;
        if (b->kv_type != KV_F32) {
            /* decode the keys and the values any query of the block sees */
            const int nv = maxpos + 1 - t0 < ATTN_KT ? maxpos + 1 - t0 : ATTN_KT;
            if (b->kv_type == KV_F16) {
                b->ops->kv_k_f16(kb, NULL, hd, kdec);
                b->ops->kv_v_f16(vb, b->kv_stride, NULL, 0, hd, nv, vdec);
            } else {
                b->ops->kv_k_q8_0(kb, b->ks + blk * b->ks_tile_stride, hd, kdec);
                b->ops->kv_v_q8_0(vb, b->kv_stride, b->vs + blk * b->vs_tile_stride, b->vs_stride, hd, nv, vdec);
            }
            kT = kdec, vt = vdec, vstride = hd;
        }
        for (int32_t j = 0; j < b->nq; j++) {
            int32_t nt = b->pos[j] + 1 - t0; /* keys of this tile the query sees */
            if (nt <= 0)
                continue;
            if (nt > ATTN_KT)
                nt = ATTN_KT;
            for (int g = 0; g < G; g++) {
                int64_t i = (int64_t)j * G + g;
                const float *qv = b->q + j * b->q_stride + (int64_t)g * hd;
                float *si = s + i * ATTN_KT;
                tile_scores(qv, kT, hd, b->scale, si);
                /* the running max over the keys this query sees (exact in
                 * any order; NaN scores are skipped, as by a > max) */
                for (int t = nt; t < ATTN_KT; t++)
                    si[t] = -INFINITY;
                v16f mv = {0}, sv;
                mv -= INFINITY;
                for (int h = 0; h < ATTN_KT / 16; h++) {
                    memcpy(&sv, si + 16 * h, sizeof sv);
                    v16i gt = sv > mv; /* -1 where sv > mv (false for NaN) */
                    mv = (v16f)(((v16i)sv & gt) | ((v16i)mv & ~gt));
                }
                float mx = m[i];
                for (int t = 0; t < 16; t++)
                    if (mv[t] > mx)
                        mx = mv[t];
                float c = expf(m[i] - mx); /* 0 on the first tile (m = -inf) */
                for (int h = 0; h < ATTN_KT / 16; h++)
                    v_exp(si + 16 * h, mx);
                float sum = 0.0f;
                for (int t = 0; t < nt; t++)
                    sum += si[t];
                l[i] = l[i] * c + sum;
                m[i] = mx;
                axpy_rows(b->out + j * b->out_stride + (int64_t)g * hd, c, si, vt, vstride, nt, hd);
            }
        }
    }
    for (int32_t j = 0; j < b->nq; j++)
        for (int g = 0; g < G; g++) {
            float inv = 1.0f / l[(int64_t)j * G + g];
            float *o = b->out + j * b->out_stride + (int64_t)g * hd;
            for (int d = 0; d < hd; d++)
                o[d] *= inv;
        }
}
