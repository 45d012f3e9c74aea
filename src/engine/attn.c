#include "attn.h"

#include "vexp.h"

#include <math.h>
#include <string.h>

/* The dot products of a tile (scores, value sums) run in the kernel table
 * (kern.h attn_scores / attn_axpy, chosen by CPUID like every kernel); the
 * rest (masks, running max, exponentials, sums) is written with 16-lane
 * vectors (vexp.h, GCC/Clang vector extension), which the compiler emits as
 * SSE, AVX2 or AVX-512 code per target clone below. The clones name
 * features, not CPUs: an "avx2" clone is chosen only on Intel Haswell parts
 * (the resolver tests the CPU model), so AMD CPUs with AVX2 fall to the SSE
 * default; 16-lane vectors outside the avx512f clone are split and spilled
 * (the dot products written that way, before they moved to the kernel
 * table, took 17 ms per token for tinyllama's shapes at 256 positions in an
 * avx2 build, 0.8 ms in the avx512f clone). */

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#define ATTN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ATTN_CLONES
#endif

/* scratch: m, l, c, u [nqg], s [nqg][ATTN_KT], then (f16 / q8_0) the decoded
 * tile: K [head_dim][ATTN_KT] and V [ATTN_KT][head_dim], 16-float aligned
 * offsets */
static int64_t scratch_tile_off(int64_t nqg) { return (nqg * (4 + ATTN_KT) + 15) & ~(int64_t)15; }

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

/* v[0] = the largest of the 16 lanes, for lanes that hold no NaN, by halving
 * (a > b selects a): the value a left-to-right scan finds; of +0 and -0 it
 * may keep the other zero, which no later step can tell apart (the max only
 * enters differences s - max and m - max, whose zeros exp maps to 1) */
static inline __attribute__((always_inline)) void hmax16(v16f *v)
{
    v16f x = *v, y;
    y = __builtin_shuffle(x, (v16i){8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7});
    x = (v16f)(((v16i)y & (y > x)) | ((v16i)x & ~(y > x)));
    y = __builtin_shuffle(x, (v16i){4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3});
    x = (v16f)(((v16i)y & (y > x)) | ((v16i)x & ~(y > x)));
    y = __builtin_shuffle(x, (v16i){2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1});
    x = (v16f)(((v16i)y & (y > x)) | ((v16i)x & ~(y > x)));
    y = __builtin_shuffle(x, (v16i){1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0});
    x = (v16f)(((v16i)y & (y > x)) | ((v16i)x & ~(y > x)));
    *v = x;
}

/* Reads share `part` of `nparts` of the V and K lines of the tile of
 * positions t0 .. (up to maxpos) into the cache ahead of use: attn_run
 * asks for the next tile's lines while it computes this one, one share per
 * head of the block's first query, so the prefetches spread over the
 * tile's arithmetic. V rows first: they are short strided runs, which the
 * hardware prefetchers miss. Without it the loads that decode an f16 tile
 * waited on memory (tinyllama shapes, 2048 positions, 1 thread: attention
 * 13.9 ms per token against 10.3 for f32); every line is needed (one per
 * 128 bytes: f16 18 ms). No effect on results. */
static inline __attribute__((always_inline)) void prefetch_tile(const attn_block *b, int32_t t0, int32_t maxpos,
                                                                 int elt, int part, int nparts)
{
    const int64_t blk = b->tiles ? b->tiles[t0 / ATTN_KT] : t0 / ATTN_KT;
    const unsigned char *kb = (const unsigned char *)b->k + blk * b->k_tile_stride * elt;
    const unsigned char *vb = (const unsigned char *)b->v + blk * b->v_tile_stride * elt;
    const int64_t kbytes = (int64_t)b->head_dim * ATTN_KT * elt, vbytes = (int64_t)b->head_dim * elt;
    const int nv = maxpos + 1 - t0 < ATTN_KT ? maxpos + 1 - t0 : ATTN_KT;
    /* this part's share: V rows [r0, r1), then K lines [k0, k1) */
    const int r0 = nv * part / nparts, r1 = nv * (part + 1) / nparts;
    const int64_t kl = (kbytes + 63) / 64, k0 = kl * part / nparts, k1 = kl * (part + 1) / nparts;
    for (int t = r0; t < r1; t++)
        for (int64_t o = 0; o < vbytes; o += 64)
            __builtin_prefetch(vb + (int64_t)t * b->kv_stride * elt + o);
    for (int64_t i = k0; i < k1; i++)
        __builtin_prefetch(kb + 64 * i);
    if (b->kv_type == KV_Q8_0 && part == nparts - 1) {
        const int64_t nch = (b->head_dim + 31) / 32;
        for (int64_t o = 0; o < nch * ATTN_KT * 2; o += 64)
            __builtin_prefetch(b->ks + blk * b->ks_tile_stride + o / 2);
        for (int t = 0; t < nv; t++)
            __builtin_prefetch(b->vs + blk * b->vs_tile_stride + (int64_t)t * b->vs_stride);
    }
}

ATTN_CLONES
void attn_run(const attn_block *b, float *scratch)
{
    const int hd = b->head_dim, G = b->n_group;
    const int64_t nqg = (int64_t)b->nq * G;
    /* per (query, head) i = j * G + g: running max m, sum l, this tile's rescale
     * factor c and sum u; s: [nqg][ATTN_KT] the tile's scores, then e^(s - m) */
    float *m = scratch, *l = scratch + nqg, *cf = scratch + 2 * nqg, *u = scratch + 3 * nqg, *s = scratch + 4 * nqg;
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
    /* f32: tiles read in place, products and sums in separate roundings;
     * f16 / q8_0: tiles decoded into the scratch, fused multiply-adds */
    const bool typed = b->kv_type != KV_F32;
    const kern_ops *ops = b->ops ? b->ops : kern_best();
    const kern_attn_scores_fn scores = typed ? ops->attn_scores_fma : ops->attn_scores;
    const kern_attn_axpy_fn axpy = typed ? ops->attn_axpy_fma : ops->attn_axpy;
    for (int32_t t0 = 0; t0 <= maxpos; t0 += ATTN_KT) {
        /* the tile's keys, transposed in the cache; keys past the last
         * position hold whatever is there (their scores are unused) */
        const int64_t blk = b->tiles ? b->tiles[t0 / ATTN_KT] : t0 / ATTN_KT;
        const unsigned char *kb = (const unsigned char *)b->k + blk * b->k_tile_stride * elt;
        const unsigned char *vb = (const unsigned char *)b->v + blk * b->v_tile_stride * elt;
        const float *kT = (const float *)(const void *)kb, *vt = (const float *)(const void *)vb;
        int64_t vstride = b->kv_stride;
        const bool pf = t0 + ATTN_KT <= maxpos;
        if (b->kv_type != KV_F32) {
            /* decode the keys and the values any query of the block sees */
            const int nv = maxpos + 1 - t0 < ATTN_KT ? maxpos + 1 - t0 : ATTN_KT;
            if (b->kv_type == KV_F16) {
                ops->kv_k_f16(kb, NULL, hd, kdec);
                ops->kv_v_f16(vb, b->kv_stride, NULL, 0, hd, nv, vdec);
            } else {
                ops->kv_k_q8_0(kb, b->ks + blk * b->ks_tile_stride, hd, kdec);
                ops->kv_v_q8_0(vb, b->kv_stride, b->vs + blk * b->vs_tile_stride, b->vs_stride, hd, nv, vdec);
            }
            kT = kdec, vt = vdec, vstride = hd;
        }
        /* 1: scores, the new running max, the rescale factor and the
         * exponentials of every (query, head) that sees the tile */
        for (int32_t j = 0; j < b->nq; j++) {
            int32_t nt = b->pos[j] + 1 - t0; /* keys of this tile the query sees */
            if (nt <= 0)
                continue;
            if (nt > ATTN_KT)
                nt = ATTN_KT;
            /* the G heads' scores at once */
            scores(b->q + j * b->q_stride, G, kT, hd, b->scale, s + (int64_t)j * G * ATTN_KT);
            for (int g = 0; g < G; g++) {
                if (pf && j == 0)
                    prefetch_tile(b, t0 + ATTN_KT, maxpos, elt, g, G);
                int64_t i = (int64_t)j * G + g;
                float *si = s + i * ATTN_KT;
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
                hmax16(&mv);
                if (mv[0] > mx)
                    mx = mv[0];
                cf[i] = expf(m[i] - mx); /* 0 on the first tile (m = -inf) */
                for (int h = 0; h < ATTN_KT / 16; h++)
                    v_exp(si + 16 * h, mx);
                m[i] = mx;
                u[i] = 0.0f;
            }
        }
        /* 2: u = the sum of the exponentials, one float chain per (query,
         * head) in key order; the chains are interleaved (each alone waits
         * on its adds' latency: 31 % of decode attention). Lanes past a
         * query's last key hold e^-inf = +0, and adding +0 to a sum of
         * non-negative terms leaves every bit, so each chain runs over all
         * ATTN_KT lanes with the bits of a sum over its nt keys. */
        for (int t = 0; t < ATTN_KT; t++)
            for (int32_t j = 0; j < b->nq; j++) {
                if (b->pos[j] < t0)
                    continue;
                const float *sj = s + (int64_t)j * G * ATTN_KT + t;
                float *uj = u + (int64_t)j * G;
                for (int g = 0; g < G; g++)
                    uj[g] += sj[(int64_t)g * ATTN_KT];
            }
        /* 3: the sums and outputs rescaled, this tile's values added */
        for (int32_t j = 0; j < b->nq; j++) {
            int32_t nt = b->pos[j] + 1 - t0;
            if (nt <= 0)
                continue;
            if (nt > ATTN_KT)
                nt = ATTN_KT;
            for (int g = 0; g < G; g++) {
                int64_t i = (int64_t)j * G + g;
                l[i] = l[i] * cf[i] + u[i];
            }
            axpy(b->out + j * b->out_stride, cf + (int64_t)j * G, s + (int64_t)j * G * ATTN_KT, G, vt, vstride, hd, nt);
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
